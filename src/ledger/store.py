"""Database URL → the eventsourcing library's environment (SQLite embedded, PostgreSQL).

`sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:` or
`postgresql://user:password@host:port/dbname[?schema=name][&create_tables=0]`. The default is
the SQLite file `shipledger.db` in the working directory; `SHIPLEDGER_DATABASE_URL` overrides it.

`create_tables=0` (PostgreSQL) starts the ledger without creating its tables, for a role that
may not create them (the application role `shipledger_app`: see `projections/audit.py`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.errors import InvalidInput

__all__ = ["DEFAULT_URL", "ENV_VAR", "StoreConfig", "parse_url", "resolve_url"]

ENV_VAR = "SHIPLEDGER_DATABASE_URL"
DEFAULT_URL = "sqlite:///shipledger.db"
#: Accepted values of the `create_tables` URL option.
_FLAGS = {"1": True, "yes": True, "true": True, "0": False, "no": False, "false": False}


@dataclass(frozen=True)
class StoreConfig:
    """Where the one global log lives."""

    url: str
    backend: str  # "sqlite" | "postgres"
    sqlite_path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""
    create_tables: bool = True

    def library_env(self) -> dict[str, str]:
        """The environment the eventsourcing application is constructed with."""
        if self.backend == "sqlite":
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_POOL_SIZE": "8",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_LOCK_TIMEOUT": "30",
            # The insert path keeps its table lock: database functions let readers skip
            # events under concurrent writers.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "PROCESS_RECORDER_TOPIC": "ledger.pgrecorder:LedgerPostgresProcessRecorder",
        }
        if self.schema:
            env["POSTGRES_SCHEMA"] = self.schema
        if not self.create_tables:
            env["CREATE_TABLE"] = "n"
        return env

    def psycopg_conninfo(self) -> str:
        parts = [f"dbname={self.dbname}", f"host={self.host}", f"port={self.port}"]
        if self.user:
            parts.append(f"user={self.user}")
        if self.password:
            parts.append(f"password={self.password}")
        return " ".join(parts)

    def redacted(self) -> str:
        """The URL with any password removed, for logs and messages."""
        if self.backend == "sqlite":
            return self.url
        auth = f"{self.user}@" if self.user else ""
        options = ([f"schema={self.schema}"] if self.schema else []) + (
            [] if self.create_tables else ["create_tables=0"]
        )
        suffix = f"?{'&'.join(options)}" if options else ""
        return f"postgresql://{auth}{self.host}:{self.port}/{self.dbname}{suffix}"


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def parse_url(url: str | None = None) -> StoreConfig:
    """Parses a database URL; refuses anything but SQLite and PostgreSQL."""
    url = resolve_url(url)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise InvalidInput("sqlite URL needs a file path", field="database_url")
        return StoreConfig(url=url, backend="sqlite", sqlite_path=path)
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise InvalidInput(
            f"unsupported database URL scheme {parts.scheme!r}: use sqlite:/// or postgresql://",
            field="database_url",
        )
    query = parse_qs(parts.query)
    schema = query.get("schema", [""])[0]
    if schema and not schema.replace("_", "").isalnum():
        raise InvalidInput(f"invalid schema name {schema!r}", field="database_url")
    create_tables = query.get("create_tables", ["1"])[0].lower()
    if create_tables not in _FLAGS:
        raise InvalidInput(
            f"create_tables must be 1 or 0, got {create_tables!r}", field="database_url"
        )
    return StoreConfig(
        url=url,
        backend="postgres",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        dbname=(parts.path or "/").lstrip("/") or "postgres",
        schema=schema,
        create_tables=_FLAGS[create_tables],
    )
