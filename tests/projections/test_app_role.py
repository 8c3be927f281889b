"""PostgreSQL: the application runs as a role that may append to the log but never change it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from ledger.application import Ledger
from ledger.store import parse_url
from projections.db import Database
from projections.migrations import migrate
from projections.worker import Worker
from support.factories import ADMIN, reference_data


@pytest.fixture
def app_login(postgres_url: str) -> Iterator[str]:
    """A URL that logs in as a throwaway member of shipledger_app, on a migrated schema."""
    Ledger(postgres_url).close()  # the library creates its tables as the owner
    owner_db = Database(postgres_url)
    migrate(owner_db)
    owner_db.close()
    config = parse_url(postgres_url)
    name = f"app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(config.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE shipledger_app')
    base, _, query = postgres_url.partition("?")
    user_url = base.replace("postgres@", f"{name}@", 1) + f"?{query}&create_tables=0"
    try:
        yield user_url
    finally:
        with psycopg.connect(config.psycopg_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE "{name}"')


def test_the_application_role_appends_and_keeps_views_but_cannot_alter_the_log(
    app_login: str,
) -> None:
    ledger = Ledger(app_login)
    db = Database(app_login)
    reference_data(ledger)
    position = ledger.receive_stock(ADMIN, warehouse="WH-1", sku="S", quantity=4)

    Worker(ledger, db).catch_up()  # views: insert, update, delete as the role

    assert db.query("SELECT on_hand FROM inventory_positions") == [(4,)]
    config = parse_url(app_login)
    with psycopg.connect(config.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{config.schema}"')
        assert conn.execute("SELECT COUNT(*) FROM shipledger_events").fetchone() == (position,)
        for statement in (
            "UPDATE shipledger_events SET topic = 'x'",
            "DELETE FROM shipledger_events",
            "TRUNCATE shipledger_events",
            "DELETE FROM ledger_chain",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    ledger.close()
    db.close()
