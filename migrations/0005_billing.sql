-- Billing lines with their history: a line is valid from the log position that produced it
-- until the position that replaced it, so an export pinned to a position is exact and
-- repeatable while new events arrive (PRODUCT §6).
CREATE TABLE IF NOT EXISTS billing_lines (
    line_id TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT,
    load_id TEXT NOT NULL,
    load_reference TEXT NOT NULL,
    tenant TEXT NOT NULL,
    charge_key TEXT NOT NULL,
    code TEXT NOT NULL,
    stop_id TEXT,
    quantity TEXT NOT NULL,
    unit TEXT NOT NULL,
    rate TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    rate_card TEXT,
    rate_version INTEGER,
    sources TEXT NOT NULL,
    status TEXT NOT NULL,
    invoice_number TEXT,
    adjusts TEXT,
    PRIMARY KEY (line_id, valid_from)
);
CREATE INDEX IF NOT EXISTS billing_lines_current ON billing_lines (load_id, valid_to);
CREATE INDEX IF NOT EXISTS billing_lines_pinned ON billing_lines (valid_from, valid_to);

-- Which rate card each load is priced with (a new version of a card re-prices its loads).
CREATE TABLE IF NOT EXISTS billing_loads (
    load_id TEXT PRIMARY KEY,
    rate_card TEXT
);
