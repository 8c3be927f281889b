-- Orders as the planner and dispatch need them, and the fleet (vehicles and drivers).
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    reference TEXT NOT NULL,
    status TEXT NOT NULL,
    on_hold INTEGER NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    day TEXT NOT NULL,
    ship_to TEXT NOT NULL,
    warehouse TEXT,
    weight_kg TEXT NOT NULL,
    volume_m3 TEXT NOT NULL,
    service_minutes INTEGER NOT NULL,
    load_id TEXT,
    position BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_day ON orders (day, status);

CREATE TABLE IF NOT EXISTS fleet_vehicles (
    vehicle_code TEXT PRIMARY KEY,
    carrier_code TEXT NOT NULL,
    capacity_kg TEXT NOT NULL,
    capacity_m3 TEXT NOT NULL,
    pallets INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    position BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS fleet_drivers (
    driver_code TEXT PRIMARY KEY,
    carrier_code TEXT NOT NULL,
    first_name TEXT NOT NULL,
    cycle_hours INTEGER NOT NULL,
    position BIGINT NOT NULL
);
