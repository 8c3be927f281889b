-- Tamper evidence (PRODUCT §7). One row per stored event: the SHA-256 link over the event's
-- stored bytes and the previous link, written once by `projections.chain.Chainer`. The
-- chain's highest position is the chainer's own tracking: a position is never written twice.
CREATE TABLE IF NOT EXISTS ledger_chain (
    position BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

-- Every signed checkpoint taken (position, chain hash there, time, HMAC-SHA256 signature);
-- `document` is the JSON exactly as it was signed and handed out.
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    signature TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_checkpoints_position ON ledger_checkpoints (position);
