"""The hash chain beside the log: each stored event linked to the one before it (PRODUCT §7).

    link(p) = SHA-256( "SLC1" ‖ link(previous position) ‖ int64(p)
                       ‖ kind, uint64 length of: originator_id, originator_version, topic, state
                       ‖ their bytes )

The genesis link is 32 zero bytes (64 zeros in hex). Each field is encoded by its kind —
`b` bytes, `t` UTF-8 text, `i` a big-endian int64 (8 bytes), `n` NULL (no bytes), and for
whatever a tampered SQLite row may hold, `f` a float64 and `r` its repr — and its length,
all in a fixed-size header, so two different rows never encode alike. The rows are
read with SQL from the library's events table, not decoded by the library, so what is hashed
is exactly what is stored: on PostgreSQL the uuid's 16 bytes (`uuid_send`) and the
`notification_id` as the position, on SQLite the id's stored text and the `rowid`.

`Chainer` writes `ledger_chain` (migration 0004), one row per event, exactly once: each batch
reads the chain's head and the events after it and inserts their links in one transaction.
The chain's own head is its tracking, so a crash loses only the batch, and a second chainer
that raced this one fails on the primary key, rolls back and redoes its batch from the new
head — no position is ever written twice.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

import psycopg

from ledger.application import Ledger
from projections.db import Cursor, Database

__all__ = [
    "GENESIS",
    "Chainer",
    "EventRow",
    "EventsTable",
    "chain_head",
    "digest",
    "link",
]

#: The link before the first event (hex).
GENESIS = "0" * 64
_TAG = b"SLC1"
_HEADER = struct.Struct(">4s32sq" + "cQ" * 4)
_INT = struct.Struct(">q")
#: Errors a chainer sees when another one wrote the same positions first.
_CONFLICTS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.errors.UniqueViolation)
#: Each conflict means another chainer moved on; this many in a row means something else.
_MAX_CONFLICTS = 100

#: One stored event as the table holds it: position, originator_id, version, topic, state.
EventRow = tuple[int, Any, Any, Any, Any]


def _field(value: Any) -> tuple[bytes, bytes]:
    """(kind, bytes) of one stored value, whatever type a tampered row may hold."""
    if value is None:
        return b"n", b""
    if isinstance(value, bool):
        return b"i", _INT.pack(int(value))
    if isinstance(value, int):
        return b"i", _INT.pack(value)
    if isinstance(value, str):
        return b"t", value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes | bytearray | memoryview):
        return b"b", bytes(value)
    if isinstance(value, UUID):
        return b"b", value.bytes
    if isinstance(value, float):
        return b"f", struct.pack(">d", value)
    return b"r", repr(value).encode("utf-8")


def link(previous: bytes, row: EventRow) -> bytes:
    """The chain link (32-byte digest) of `row` after the link `previous`."""
    return digest(previous, *row)


def digest(
    previous: bytes, position: int, originator_id: Any, version: Any, topic: Any, state: Any
) -> bytes:
    """`link` with the row's columns as arguments (the verifier's inner loop)."""
    if type(version) is int and type(topic) is str and type(state) is bytes:
        # The shapes the library writes (uuid bytes or hex text, int, text, bytes): inline.
        try:
            name = topic.encode()
            if type(originator_id) is bytes:
                kind, identity = b"b", originator_id
            elif type(originator_id) is str:
                kind, identity = b"t", originator_id.encode()
            else:
                kind, identity = b"", b""
        except UnicodeEncodeError:  # lone surrogates in a tampered SQLite text
            kind = b""
        if kind:
            header = _HEADER.pack(
                _TAG,
                previous,
                position,
                kind,
                len(identity),
                b"i",
                8,
                b"t",
                len(name),
                b"b",
                len(state),
            )
            return hashlib.sha256(header + identity + _INT.pack(version) + name + state).digest()
    fields = [_field(value) for value in (originator_id, version, topic, state)]
    lengths = (part for kind, data in fields for part in (kind, len(data)))
    header = _HEADER.pack(_TAG, previous, position, *lengths)
    return hashlib.sha256(header + b"".join(data for _, data in fields)).digest()


class EventsTable:
    """Plain SQL over the library's events table, through the views' connection."""

    def __init__(self, ledger: Ledger, db: Database):
        recorder: Any = ledger.recorder
        table = recorder.events_table_name
        self.db = db
        if db.sqlite:
            self.source, self.position, identity = table, "rowid", "originator_id"
        else:
            self.source = f'"{recorder.datastore.schema}"."{table}"'
            self.position = "notification_id"
            identity = "uuid_send(originator_id)"  # the uuid's stored 16 bytes
        columns = f"{self.position}, {identity}, originator_version, topic, state"
        mark = "?" if db.sqlite else "%s"
        select, order = f"SELECT {columns} FROM {self.source}", f"ORDER BY {self.position}"
        self._first = f"{select} {order} LIMIT {mark}"
        self._after = f"{select} WHERE {self.position} > {mark} {order} LIMIT {mark}"
        self._between = f"{select} WHERE {self.position} BETWEEN {mark} AND {mark} {order}"
        self._head = f"SELECT MAX({self.position}) FROM {self.source}"
        self._count = f"SELECT COUNT(*) FROM {self.source}"
        self._count_after = f"{self._count} WHERE {self.position} > {mark}"

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Plain rows (`?` placeholders on SQLite, `%s` on PostgreSQL, read in binary)."""
        conn = self.db.connection
        if self.db.sqlite:
            return list(conn.execute(sql, tuple(params)).fetchall())
        with conn.cursor(binary=True) as cursor:  # bytea and uuid without text decoding
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())

    def page(self, after: int | None, limit: int) -> list[EventRow]:
        """Up to `limit` rows after position `after` (from the very first row when None:
        a row slipped in below position 1 is still a row)."""
        if after is None:
            return self.fetch(self._first, (limit,))
        return self.fetch(self._after, (after, limit))

    def between(self, low: int, high: int) -> list[EventRow]:
        """The rows from position `low` to `high`, both included."""
        return self.fetch(self._between, (low, high))

    def rows(self, after: int | None = None, page_size: int = 2000) -> Iterator[EventRow]:
        """Every row after `after`, page by page (bounded memory)."""
        while True:
            page = self.page(after, page_size)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1][0]

    def head(self) -> int | None:
        """The highest position stored (None when the table is empty)."""
        value = self.fetch(self._head)[0][0]
        return None if value is None else int(value)

    def count_after(self, after: int | None) -> int:
        if after is None:
            return int(self.fetch(self._count)[0][0])
        return int(self.fetch(self._count_after, (after,))[0][0])


def chain_head(cursor: Cursor) -> tuple[int | None, str]:
    """The chain's last (position, link); (None, GENESIS) before the first event is chained."""
    row = cursor.execute(
        "SELECT position, hash FROM ledger_chain ORDER BY position DESC LIMIT 1"
    ).fetchone()
    return (None, GENESIS) if row is None else (int(row[0]), str(row[1]))


class Chainer:
    """Follows the log and appends one chain link per event, exactly once."""

    def __init__(self, ledger: Ledger, db: Database, *, batch_size: int = 1000):
        self.ledger = ledger
        self.db = db
        self.batch_size = batch_size
        self.events = EventsTable(ledger, db)
        #: How many batches were redone because another chainer got there first.
        self.conflicts = 0

    def head(self) -> tuple[int, str]:
        """The position and link of the last chained event ((0, GENESIS) when none)."""
        with self.db.transaction(immediate=False) as cursor:
            position, digest = chain_head(cursor)
        return (position or 0), digest

    def run_once(self) -> int:
        """Chains one batch; returns how many events it linked (0 when caught up)."""
        in_a_row = 0
        while True:
            try:
                return self._batch()
            except _CONFLICTS:
                # Another chainer inserted these positions first; its rows stand, ours were
                # rolled back. Start again from the head it left.
                self.conflicts += 1
                in_a_row += 1
                if in_a_row >= _MAX_CONFLICTS:
                    raise

    def catch_up(self) -> int:
        """Chains batches until the chain reaches the head of the log; returns events linked."""
        total = 0
        while done := self.run_once():
            total += done
        return total

    def _batch(self) -> int:
        with self.db.transaction() as cursor:
            after, previous_hex = chain_head(cursor)
            rows = self.events.page(after, self.batch_size)
            if not rows:
                return 0
            previous = bytes.fromhex(previous_hex)
            links = []
            for row in rows:
                previous = link(previous, row)
                links.append((row[0], previous.hex()))
            cursor.executemany("INSERT INTO ledger_chain (position, hash) VALUES (%s, %s)", links)
        return len(links)
