-- PostgreSQL only: the application role `shipledger_app` (PRODUCT §7: the application may
-- INSERT and SELECT the event tables and nothing more). How to run as it: the docstring of
-- `projections/audit.py`. (No percent signs in this file: statements go through psycopg.)
--
-- Roles are cluster-wide, so the role is created once, NOLOGIN, and only if missing; the
-- grants are for the tables of the schema this migration runs in (`current_schema()`).
--
-- Order: the library creates the events and tracking tables when a `Ledger(url)` first
-- starts on the schema, so start the ledger once before migrating (`shipledger status` does).
-- Should the events table appear only after this migration, the default privileges below
-- give it (and every later table the migrating role creates here) SELECT and INSERT, never
-- more; the tracking table then needs `GRANT UPDATE ON shipledger_tracking TO shipledger_app`.
-- A later migration that adds a read-model table grants DML on it to shipledger_app itself.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shipledger_app') THEN
        CREATE ROLE shipledger_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
END
$$;

DO $$
DECLARE
    s text := current_schema();
    q text;
    name text;
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no current schema: set search_path (the ?schema= of the URL)';
    END IF;
    EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(s) || ' TO shipledger_app';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || quote_ident(s)
        || ' GRANT SELECT, INSERT ON TABLES TO shipledger_app';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || quote_ident(s)
        || ' GRANT USAGE ON SEQUENCES TO shipledger_app';

    -- Append-only: the log, its chain and the signed checkpoints. Read and append; no
    -- UPDATE, DELETE or TRUNCATE (REVOKE first, so that running this again only narrows).
    FOREACH name IN ARRAY ARRAY['shipledger_events', 'ledger_chain', 'ledger_checkpoints'] LOOP
        q := quote_ident(s) || '.' || quote_ident(name);
        IF to_regclass(q) IS NOT NULL THEN
            EXECUTE 'REVOKE ALL ON ' || q || ' FROM shipledger_app';
            EXECUTE 'GRANT SELECT, INSERT ON ' || q || ' TO shipledger_app';
        ELSE
            RAISE NOTICE USING MESSAGE = 'shipledger_app: no table ' || q
                || ' yet (start the ledger once, then migrate)';
        END IF;
    END LOOP;
    q := quote_ident(s) || '.shipledger_events';
    IF to_regclass(q) IS NOT NULL THEN
        EXECUTE 'GRANT USAGE ON SEQUENCE ' || pg_get_serial_sequence(q, 'notification_id')
            || ' TO shipledger_app';
    END IF;

    -- The library's tracking of the policies that write events: an upsert per position.
    q := quote_ident(s) || '.shipledger_tracking';
    IF to_regclass(q) IS NOT NULL THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE ON ' || q || ' TO shipledger_app';
    END IF;

    -- Which migrations ran: read only (migrating is the owner's job).
    EXECUTE 'GRANT SELECT ON ' || quote_ident(s) || '.schema_migrations TO shipledger_app';

    -- The read models are dropped and rebuilt from the log: full DML.
    FOREACH name IN ARRAY ARRAY[
        'projection_positions', 'load_board', 'stop_times', 'inventory_positions',
        'vehicle_positions', 'exceptions_queue', 'exception_log', 'driver_hos'
    ] LOOP
        q := quote_ident(s) || '.' || quote_ident(name);
        IF to_regclass(q) IS NOT NULL THEN
            EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ' || q || ' TO shipledger_app';
        END IF;
    END LOOP;
    FOREACH name IN ARRAY ARRAY['kpi_daily', 'kpi_loads_daily'] LOOP
        q := quote_ident(s) || '.' || quote_ident(name);
        IF to_regclass(q) IS NOT NULL THEN
            EXECUTE 'GRANT SELECT ON ' || q || ' TO shipledger_app';
        END IF;
    END LOOP;
END
$$;

-- The library serialises appends with `LOCK TABLE … IN EXCLUSIVE MODE`, which PostgreSQL
-- (before 17) allows only to roles with UPDATE, DELETE or TRUNCATE on the table. This
-- function takes that same lock with its owner's rights, so that a recorder running as
-- shipledger_app can append without those privileges by calling it instead of LOCK TABLE.
DO $$
DECLARE
    s text := current_schema();
    f text := quote_ident(current_schema()) || '.shipledger_lock_events()';
BEGIN
    EXECUTE 'CREATE OR REPLACE FUNCTION ' || f || ' RETURNS void LANGUAGE plpgsql'
        || ' SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$ BEGIN LOCK TABLE '
        || quote_ident(s) || '.shipledger_events IN EXCLUSIVE MODE; END $fn$';
    EXECUTE 'REVOKE ALL ON FUNCTION ' || f || ' FROM PUBLIC';
    EXECUTE 'GRANT EXECUTE ON FUNCTION ' || f || ' TO shipledger_app';
END
$$;
