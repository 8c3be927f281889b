-- The read models (PRODUCT §5). Times are ISO 8601 text in UTC, so they sort as text on both
-- backends; money and quantities that must stay exact are text (Decimal) or integers.

CREATE TABLE IF NOT EXISTS load_board (
    load_id TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    tenants TEXT NOT NULL,
    status TEXT NOT NULL,
    status_since TEXT NOT NULL,
    carrier_code TEXT,
    driver_code TEXT,
    vehicle_code TEXT,
    stops_total INTEGER NOT NULL,
    stops_done INTEGER NOT NULL,
    next_stop_id TEXT,
    next_stop_sequence INTEGER,
    next_window_end TEXT,
    next_eta TEXT,
    lateness_risk TEXT NOT NULL,
    open_exceptions INTEGER NOT NULL,
    next_action_owner TEXT,
    conflicts INTEGER NOT NULL,
    tenders INTEGER NOT NULL,
    tenders_accepted INTEGER NOT NULL,
    planned_day TEXT NOT NULL,
    computed_from TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS load_board_status ON load_board (status, reference);

CREATE TABLE IF NOT EXISTS stop_times (
    stop_id TEXT PRIMARY KEY,
    load_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    kind TEXT NOT NULL,
    location_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    appointment_start TEXT,
    appointment_end TEXT,
    arrived_at TEXT,
    arrival_source TEXT,
    arrival_fact TEXT,
    departed_at TEXT,
    departure_source TEXT,
    departure_fact TEXT,
    dwell_minutes INTEGER,
    detention_minutes INTEGER NOT NULL,
    on_time INTEGER,
    eta TEXT,
    day TEXT NOT NULL,
    computed_from TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS stop_times_load ON stop_times (load_id, sequence);

CREATE TABLE IF NOT EXISTS inventory_positions (
    stock_id TEXT PRIMARY KEY,
    warehouse TEXT NOT NULL,
    sku TEXT NOT NULL,
    lot TEXT NOT NULL,
    expiry TEXT,
    on_hand INTEGER NOT NULL,
    reserved INTEGER NOT NULL,
    picked INTEGER NOT NULL,
    staged INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    available INTEGER NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS inventory_positions_sku ON inventory_positions (warehouse, sku, lot);

CREATE TABLE IF NOT EXISTS vehicle_positions (
    device_id TEXT PRIMARY KEY,
    vehicle_code TEXT,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    speed_kph DOUBLE PRECISION,
    heading DOUBLE PRECISION,
    fix_at TEXT NOT NULL,
    ping_id TEXT NOT NULL,
    position BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS exceptions_queue (
    exception_id TEXT PRIMARY KEY,
    load_id TEXT NOT NULL,
    load_reference TEXT NOT NULL,
    stop_id TEXT,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    note TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    carrier_code TEXT,
    tenants TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS exceptions_queue_raised ON exceptions_queue (raised_at);

-- Every exception ever raised (the queue only holds open ones), for the exception-rate KPI.
CREATE TABLE IF NOT EXISTS exception_log (
    exception_id TEXT PRIMARY KEY,
    load_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    position BIGINT NOT NULL
);

-- KPIs by day, carrier and customer, computed from the tables above (PRODUCT §5).
CREATE VIEW kpi_daily AS
SELECT
    s.day AS day,
    COALESCE(b.carrier_code, '') AS carrier_code,
    b.tenants AS customer,
    COUNT(*) AS stops,
    SUM(CASE WHEN s.kind = 'pickup' AND s.arrived_at IS NOT NULL THEN 1 ELSE 0 END) AS pickups,
    SUM(CASE WHEN s.kind = 'pickup' AND s.on_time = 1 THEN 1 ELSE 0 END) AS pickups_on_time,
    SUM(CASE WHEN s.kind = 'delivery' AND s.arrived_at IS NOT NULL THEN 1 ELSE 0 END) AS deliveries,
    SUM(CASE WHEN s.kind = 'delivery' AND s.on_time = 1 THEN 1 ELSE 0 END) AS deliveries_on_time,
    SUM(COALESCE(s.dwell_minutes, 0)) AS dwell_minutes,
    SUM(CASE WHEN s.dwell_minutes IS NOT NULL THEN 1 ELSE 0 END) AS dwell_stops,
    SUM(s.detention_minutes) AS detention_minutes
FROM stop_times s JOIN load_board b ON b.load_id = s.load_id
GROUP BY s.day, COALESCE(b.carrier_code, ''), b.tenants;

CREATE VIEW kpi_loads_daily AS
SELECT
    b.planned_day AS day,
    COALESCE(b.carrier_code, '') AS carrier_code,
    b.tenants AS customer,
    COUNT(*) AS loads,
    SUM(b.tenders) AS tenders,
    SUM(b.tenders_accepted) AS tenders_accepted,
    SUM((SELECT COUNT(*) FROM exception_log e WHERE e.load_id = b.load_id)) AS exceptions
FROM load_board b
GROUP BY b.planned_day, COALESCE(b.carrier_code, ''), b.tenants;
