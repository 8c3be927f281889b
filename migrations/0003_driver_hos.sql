-- Hours of Service per driver, as of the driver's latest duty change in event time; the
-- remaining clocks at any other moment come from the same fold at read time.
CREATE TABLE IF NOT EXISTS driver_hos (
    driver_code TEXT PRIMARY KEY,
    status TEXT,
    status_since TEXT,
    as_of TEXT NOT NULL,
    drive_remaining_minutes INTEGER NOT NULL,
    window_remaining_minutes INTEGER NOT NULL,
    until_break_minutes INTEGER NOT NULL,
    cycle_remaining_minutes INTEGER NOT NULL,
    violations INTEGER NOT NULL,
    violation_kinds TEXT NOT NULL,
    position BIGINT NOT NULL
);
