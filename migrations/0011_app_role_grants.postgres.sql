-- PostgreSQL only, after every table exists: the application role's rights over the whole
-- schema. The log, its chain and the signed checkpoints: SELECT and INSERT, never UPDATE,
-- DELETE or TRUNCATE. Every other table (read models, tracking, keys, jobs, outbox) is the
-- application's working state: full DML. Re-running narrows nothing it should keep.
DO $$
DECLARE
    s text := current_schema();
    t record;
    q text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shipledger_app') THEN
        RETURN;
    END IF;
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = s LOOP
        q := quote_ident(s) || '.' || quote_ident(t.tablename);
        IF t.tablename IN ('shipledger_events', 'ledger_chain', 'ledger_checkpoints') THEN
            EXECUTE 'REVOKE ALL ON ' || q || ' FROM shipledger_app';
            EXECUTE 'GRANT SELECT, INSERT ON ' || q || ' TO shipledger_app';
        ELSIF t.tablename = 'schema_migrations' THEN
            EXECUTE 'GRANT SELECT ON ' || q || ' TO shipledger_app';
        ELSE
            EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ' || q || ' TO shipledger_app';
        END IF;
    END LOOP;
    FOR t IN SELECT viewname FROM pg_views WHERE schemaname = s LOOP
        EXECUTE 'GRANT SELECT ON ' || quote_ident(s) || '.' || quote_ident(t.viewname)
            || ' TO shipledger_app';
    END LOOP;
    EXECUTE 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA ' || quote_ident(s) || ' TO shipledger_app';
END
$$;
