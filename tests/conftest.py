"""Both backends for every test that touches the store: SQLite files and PostgreSQL schemas.

PostgreSQL comes from SHIPLEDGER_TEST_POSTGRES_URL (default postgres@127.0.0.1:5432/test).
Each test gets its own schema, dropped afterwards. When PostgreSQL cannot be reached the
PostgreSQL half is skipped with one loud line, except with CI=true, where the run fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from ledger.application import Ledger
from ledger.store import parse_url
from projections.db import Database
from projections.migrations import migrate
from support.clock import Clock

POSTGRES_URL = os.environ.get(
    "SHIPLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_postgres_problem: str | None = None


def _check_postgres() -> str | None:
    try:
        with psycopg.connect(parse_url(POSTGRES_URL).psycopg_conninfo(), connect_timeout=5):
            return None
    except psycopg.Error as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"


def pytest_sessionstart(session: pytest.Session) -> None:
    global _postgres_problem
    _postgres_problem = _check_postgres()
    if _postgres_problem and IN_CI:
        pytest.exit(
            f"PostgreSQL at {parse_url(POSTGRES_URL).redacted()} is unreachable and CI=true: "
            f"{_postgres_problem}",
            returncode=3,
        )


def pytest_report_header(config: pytest.Config) -> str:
    if _postgres_problem:
        return (
            f"!!! PostgreSQL UNREACHABLE ({_postgres_problem}): "
            "the PostgreSQL half of the suite is SKIPPED !!!"
        )
    return f"backends: sqlite, postgres ({parse_url(POSTGRES_URL).redacted()})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _postgres_problem:
        terminalreporter.write_line(
            f"!!! PostgreSQL UNREACHABLE: PostgreSQL tests were SKIPPED ({_postgres_problem})",
            red=True,
            bold=True,
        )


def postgres_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, as a database URL; dropped afterwards."""
    if _postgres_problem:
        pytest.skip(f"PostgreSQL unreachable: {_postgres_problem}")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conninfo = parse_url(POSTGRES_URL).psycopg_conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}schema={schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database URL for an empty store, once per backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "ledger.db"
        yield f"sqlite:///{path}"
    else:
        yield from postgres_schema_url()


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], str]]:
    """Makes as many empty stores of one backend as a test needs (one per hypothesis example)."""
    cleanups: list[Iterator[str]] = []

    def make() -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('store') / 'ledger.db'}"
        schema = postgres_schema_url()
        cleanups.append(schema)
        return next(schema)

    yield make
    for schema in cleanups:
        for _ in schema:  # runs the generator's cleanup
            pass


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL-only store (for tests about PostgreSQL behaviour)."""
    yield from postgres_schema_url()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 20, 14, 0, tzinfo=UTC))


@pytest.fixture
def db(store_url: str) -> Iterator[Database]:
    """The views' database on the same store, migrated (closed after the test, passed or not)."""
    views = Database(store_url)
    migrate(views)
    yield views
    views.close()


@pytest.fixture
def ledger(store_url: str, clock: Clock) -> Iterator[Ledger]:
    app = Ledger(store_url, clock=clock)
    try:
        yield app
    finally:
        app.close()
