-- PostgreSQL only: the application role gets DML on the notification tables (0004 creates the
-- role; a store migrated without it has nothing to grant to).
DO $$
DECLARE
    s text := current_schema();
    q text;
    name text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shipledger_app') THEN
        RETURN;
    END IF;
    FOREACH name IN ARRAY ARRAY[
        'notification_subscriptions', 'notification_outbox', 'notification_attempts',
        'tracking_tokens', 'order_loads'
    ] LOOP
        q := quote_ident(s) || '.' || quote_ident(name);
        IF to_regclass(q) IS NOT NULL THEN
            EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ' || q || ' TO shipledger_app';
        END IF;
    END LOOP;
END
$$;
