"""Applies the numbered SQL files in `migrations/` once each, in order, on both backends.

`NNNN_name.sql` holds portable SQL; `NNNN_name.postgres.sql` / `NNNN_name.sqlite.sql`, when
present, hold what only one backend needs. Applied versions are recorded in
`schema_migrations`; a run takes a lock so two processes never apply the same file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from projections.db import Cursor, Database, DatabaseErrors

__all__ = ["MIGRATIONS_DIR", "Migration", "applied", "migrate", "pending", "split_statements"]

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DOLLAR_QUOTE = re.compile(r"(?<![A-Za-z0-9_$])\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    def statements(self, backend: str) -> list[str]:
        text = self.path.read_text(encoding="utf-8")
        specific = self.path.with_name(f"{self.version}_{self.name}.{backend}.sql")
        if specific.exists():
            text += "\n" + specific.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
        return split_statements("\n".join(lines))


def split_statements(text: str) -> list[str]:
    """Splits SQL on `;`, except inside PostgreSQL dollar quotes (`DO $$ … $$`, `$fn$ … $fn$`)."""
    statements: list[str] = []
    start = index = 0
    while True:
        semicolon = text.find(";", index)
        quote = _DOLLAR_QUOTE.search(text, index)
        if quote is not None and (semicolon == -1 or quote.start() < semicolon):
            close = text.find(quote.group(0), quote.end())
            index = len(text) if close == -1 else close + len(quote.group(0))
            continue
        if semicolon == -1:
            statements.append(text[start:])
            break
        statements.append(text[start:semicolon])
        start = index = semicolon + 1
    return [s.strip() for s in statements if s.strip()]


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(match.group(1), match.group(2), path))
    return found


def _ensure_table(cursor: Cursor) -> None:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )


def applied(db: Database) -> set[str]:
    with db.transaction() as cursor:
        _ensure_table(cursor)
        return {
            row[0] for row in cursor.execute("SELECT version FROM schema_migrations").fetchall()
        }


def pending(db: Database, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    done = applied(db)
    return [m for m in available(directory) if m.version not in done]


def _already_applied(db: Database) -> set[str] | None:
    """The applied versions, read without any DDL (None when the table is not there yet) —
    so an application role that may not create tables can start on a migrated database."""
    try:
        rows = db.query("SELECT version FROM schema_migrations")
    except DatabaseErrors:
        db.reset()
        return None
    return {str(r[0]) for r in rows}


def migrate(db: Database, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Applies every pending migration, each in its own transaction; returns those applied."""
    done: list[Migration] = []
    known = _already_applied(db)
    if known is not None and all(m.version in known for m in available(directory)):
        return done
    for migration in available(directory):
        with db.transaction() as cursor:
            _ensure_table(cursor)
            if not db.sqlite:  # one migrator at a time; SQLite's BEGIN IMMEDIATE already is
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (0x5EED_0001,))
            row = cursor.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
            ).fetchone()
            if row is not None:
                continue
            for statement in migration.statements("sqlite" if db.sqlite else "postgres"):
                cursor.execute(statement)
            cursor.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
        done.append(migration)
    return done
