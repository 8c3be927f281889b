"""Database URLs select the backend; one setting decides the store."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidInput
from ledger.store import DEFAULT_URL, parse_url


def test_default_is_the_sqlite_file_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHIPLEDGER_DATABASE_URL", raising=False)

    config = parse_url(None)

    assert config.url == DEFAULT_URL
    assert config.library_env()["SQLITE_DBNAME"] == "shipledger.db"


def test_environment_variable_selects_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPLEDGER_DATABASE_URL", "postgresql://app:s3cret@db.local:6543/ledger")

    config = parse_url(None)
    env = config.library_env()

    assert (config.backend, config.host, config.port, config.dbname) == (
        "postgres",
        "db.local",
        6543,
        "ledger",
    )
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"  # keep the table-lock insert path
    assert "s3cret" not in config.redacted()


def test_unknown_scheme_is_refused_naming_the_setting() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_url("mysql://root@localhost/x")

    assert refused.value.field == "database_url"
