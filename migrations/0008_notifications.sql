-- Customer notifications and tracking links (PRODUCT §8 Customers).
--
-- Subscriptions are configuration, not facts: a shipper's webhook endpoint, the milestones it
-- wants and the secret that signs what is sent to it (kept so it can sign; shown once). A
-- subscription hears about facts recorded after `since_position` (the log head when it was
-- created) up to `until_position` (the head when it was deleted), so a rebuild of the outbox
-- enqueues exactly what the live projection did.
CREATE TABLE IF NOT EXISTS notification_subscriptions (
    subscription_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    url TEXT NOT NULL,
    milestones TEXT NOT NULL,
    eta_threshold_minutes INTEGER NOT NULL,
    secret TEXT NOT NULL,
    since_position BIGINT NOT NULL,
    until_position BIGINT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    deleted_at TEXT,
    deleted_by TEXT
);
CREATE INDEX IF NOT EXISTS notification_subscriptions_tenant
    ON notification_subscriptions (tenant, created_at);

-- The outbox: one row per notification, written by the `notification_outbox` projection in
-- the runner's transaction (the id is deterministic, so a replay inserts nothing twice), then
-- delivered at least once by the sender. `payload` is the JSON body exactly as it is sent.
-- `status`: pending | delivered | dead (retries exhausted) | cancelled (subscription gone).
-- A sender claims a row by setting `lease_until`/`lease_token`; a row whose lease expired is
-- due again (a killed sender loses nothing).
CREATE TABLE IF NOT EXISTS notification_outbox (
    notification_id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    milestone TEXT NOT NULL,
    subject TEXT NOT NULL,
    fact TEXT NOT NULL,
    corrects TEXT,
    milestone_at TEXT,
    payload TEXT NOT NULL,
    position BIGINT NOT NULL,
    recorded_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_until TEXT,
    lease_token TEXT,
    last_status_code INTEGER,
    last_error TEXT,
    delivered_at TEXT,
    dead_at TEXT,
    redelivered_at TEXT,
    redelivered_by TEXT
);
CREATE INDEX IF NOT EXISTS notification_outbox_due
    ON notification_outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS notification_outbox_subject
    ON notification_outbox (subscription_id, milestone, subject, position);
CREATE INDEX IF NOT EXISTS notification_outbox_tenant
    ON notification_outbox (tenant, position);

-- The delivery log: every attempt, with the status code or the error and the latency. An
-- attempt whose `finished_at` stays empty was interrupted (its sender died holding the row).
CREATE TABLE IF NOT EXISTS notification_attempts (
    notification_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    lease_token TEXT NOT NULL,
    sender TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status_code INTEGER,
    error TEXT,
    latency_ms INTEGER,
    PRIMARY KEY (notification_id, attempt)
);

-- Public tracking links: an unguessable token per order. The projection creates one when the
-- order is placed (origin 'placed', at most one per order); more come from the API (origin
-- 'api'). A revoked token reads as unknown.
CREATE TABLE IF NOT EXISTS tracking_tokens (
    token TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    reference TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE INDEX IF NOT EXISTS tracking_tokens_order ON tracking_tokens (order_id);
CREATE UNIQUE INDEX IF NOT EXISTS tracking_tokens_placed
    ON tracking_tokens (order_id) WHERE origin = 'placed';

-- Which loads carry an order (from `Load.Planned`), so a tracking page finds the load before
-- the order ships.
CREATE TABLE IF NOT EXISTS order_loads (
    order_id TEXT NOT NULL,
    load_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (order_id, load_id)
);
