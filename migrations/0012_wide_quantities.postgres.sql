-- Quantities are 64-bit, like SQLite's integers: a lot may hold more than 2^31 units.
ALTER TABLE inventory_positions
    ALTER COLUMN on_hand TYPE BIGINT,
    ALTER COLUMN reserved TYPE BIGINT,
    ALTER COLUMN picked TYPE BIGINT,
    ALTER COLUMN staged TYPE BIGINT,
    ALTER COLUMN quarantined TYPE BIGINT,
    ALTER COLUMN available TYPE BIGINT;
