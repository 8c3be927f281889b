"""The views' database: the same SQLite file or PostgreSQL schema as the log.

SQL in the read side is written once with `%s` placeholders and portable types; on SQLite
the placeholders become `?`. Connections are plain DB-API ones (sqlite3, psycopg 3).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from ledger.store import StoreConfig, parse_url

__all__ = ["Cursor", "Database", "DatabaseErrors", "OperationalErrors"]

#: Errors that mean "the connection or the database went away": reconnect and retry.
OperationalErrors: tuple[type[Exception], ...] = (
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


#: Any error the database reports about a statement (a missing table, a permission, …).
DatabaseErrors: tuple[type[Exception], ...] = (sqlite3.DatabaseError, psycopg.Error)


class Cursor:
    """A cursor that speaks `%s` on both backends."""

    def __init__(self, raw: Any, sqlite: bool):
        self._raw = raw
        self._sqlite = sqlite

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self._sqlite else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if params:
            self._raw.execute(self._sql(sql), tuple(params))
        else:  # no parameters: a literal % (in DDL, say) must not be read as a placeholder
            self._raw.execute(sql)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._raw.executemany(self._sql(sql), [tuple(r) for r in rows])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._raw.fetchall()]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._raw.fetchone()
        return None if row is None else tuple(row)

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)


class Database:
    """One connection to the views' store, reopened after it is lost."""

    def __init__(self, url: str | None = None):
        self.config: StoreConfig = parse_url(url)
        self.sqlite = self.config.backend == "sqlite"
        self._local = threading.local()  # one connection per thread (web servers use many)
        self._opened: list[Any] = []  # every thread's, so close() closes them all
        self._opened_lock = threading.Lock()

    def _connect(self) -> Any:
        if self.sqlite:
            lite = sqlite3.connect(
                self.config.sqlite_path, timeout=30, isolation_level=None, check_same_thread=False
            )
            lite.execute("PRAGMA journal_mode=WAL")
            lite.execute("PRAGMA busy_timeout=30000")
            return lite
        conn = psycopg.connect(self.config.psycopg_conninfo(), autocommit=True)
        if self.config.schema:
            conn.execute(f'SET search_path TO "{self.config.schema}"')
        return conn

    @property
    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def reset(self) -> None:
        """Drops this thread's connection (after an error); the next use opens a new one."""
        conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: closing is best effort
                conn.close()

    def close(self) -> None:
        """Closes every connection this object opened, in any thread."""
        self.reset()
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(Exception):
                conn.close()
        listener = getattr(self, "_listen_conn", None)
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[Cursor]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        conn = self.connection
        if self.sqlite:
            raw = conn.cursor()
            raw.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield Cursor(raw, sqlite=True)
            except BaseException:
                conn.rollback() if conn.in_transaction else None
                raise
            conn.commit()
            return
        with conn.transaction(), conn.cursor() as raw:
            yield Cursor(raw, sqlite=False)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read outside any explicit transaction."""
        with self.transaction(immediate=False) as cursor:
            return cursor.execute(sql, params).fetchall()

    def wait_for_notify(self, channel: str, timeout: float) -> None:
        """Blocks until the log's NOTIFY (PostgreSQL) or the timeout; SQLite just sleeps."""
        if self.sqlite:
            time.sleep(timeout)
            return
        listener = self._listener(channel)
        for _ in listener.notifies(timeout=timeout, stop_after=1):
            break

    def _listener(self, channel: str) -> Any:
        listener = getattr(self, "_listen_conn", None)
        if listener is None or listener.closed:
            listener = psycopg.connect(self.config.psycopg_conninfo(), autocommit=True)
            listener.execute(f'LISTEN "{channel}"')
            self._listen_conn = listener
        return listener
