"""Verify the log against its hash chain, and sign checkpoints of it (PRODUCT §7).

`verify` recomputes every link from the rows as they are stored now, page by page in one
read snapshot, and compares them with `ledger_chain`. It stops at the first position that
does not match and says why:

    changed     a row's stored bytes differ from what was chained at its position
    missing     the chain has a position the log no longer has (a row was deleted)
    reordered   a row holds the bytes chained at another, nearby position (rows swapped/moved)
    inserted    a row at a position the chain never had, below the chain's head
    truncated   (with a checkpoint) the log now ends before the checkpoint's position
    diverged    (with a checkpoint) the link at the checkpoint's position is not the one signed

Events after the chain's head are counted as `unchained`: not yet linked, not tampering.
The chain is the reference; a checkpoint — the chain's position and link at a moment, the
time, and an HMAC-SHA256 signature over the canonical JSON of those fields with the key in
`SHIPLEDGER_CHECKPOINT_KEY` — is what proves that the log and its chain were not rewritten
together up to that position.

Running the application as `shipledger_app` (PostgreSQL)
--------------------------------------------------------
Migration 0004 creates the cluster-wide NOLOGIN role `shipledger_app` and grants it, on the
migrated schema, SELECT and INSERT only on the events, chain and checkpoint tables (never
UPDATE, DELETE or TRUNCATE), SELECT/INSERT/UPDATE on the library's tracking table, full DML
on the read-model tables of migrations 0001–0003 (later migrations grant on their own tables),
and EXECUTE on `shipledger_lock_events()`.

1. As the owner (the role that creates tables), start the ledger once — the library creates
   the events and tracking tables — and then migrate (the grants need those tables):
       shipledger --db 'postgresql://owner@host/db?schema=s' status
       shipledger --db 'postgresql://owner@host/db?schema=s' migrate
2. Make a login role that is a member of the application role (members inherit):
       CREATE ROLE shipledger_web LOGIN PASSWORD '…' IN ROLE shipledger_app;
3. Run the application as it, without table creation:
       SHIPLEDGER_DATABASE_URL='postgresql://shipledger_web:…@host/db?schema=s&create_tables=0'

Two limits remain, both outside this module. The library serialises appends with
`LOCK TABLE … IN EXCLUSIVE MODE`, which PostgreSQL 15 allows only with UPDATE, DELETE or
TRUNCATE on the table: for appends to work as the role, the recorder must take that same lock
through `shipledger_lock_events()` (a SECURITY DEFINER function from migration 0004) instead.
And `migrate()` issues `CREATE TABLE IF NOT EXISTS schema_migrations`, which needs CREATE on
the schema, so whatever migrates first (the worker, `verify`, `checkpoint`) runs as the owner.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.application import Ledger
from ledger.errors import InvalidInput
from projections.chain import GENESIS, Chainer, EventRow, EventsTable, link
from projections.chain import digest as link_of
from projections.db import Cursor, Database

__all__ = [
    "KEY_ENV",
    "REASONS",
    "ForgedCheckpoint",
    "Problem",
    "Signed",
    "VerifyResult",
    "check_checkpoint",
    "checkpoint",
    "checkpoint_key",
    "load_checkpoint",
    "sign",
    "verify",
]

#: The environment variable that holds the checkpoint signing key (never printed).
KEY_ENV = "SHIPLEDGER_CHECKPOINT_KEY"
MIN_KEY_BYTES = 16
REASONS = ("changed", "missing", "reordered", "inserted", "truncated", "diverged")
#: How many chain positions either side of a bad one are searched for where its row belongs.
NEARBY = 32


class ForgedCheckpoint(InvalidInput):
    """A checkpoint whose signature does not match its fields under our key."""

    code = "forged_checkpoint"


@dataclass(frozen=True)
class Problem:
    """The first position that does not match, and why."""

    position: int
    reason: str
    detail: str


@dataclass(frozen=True)
class Signed:
    """A checkpoint whose signature checked out."""

    position: int
    hash: str
    time: str


@dataclass(frozen=True)
class VerifyResult:
    """What a verification found. `position`/`hash`: the last position that matched."""

    ok: bool
    position: int
    hash: str
    checked: int
    unchained: int
    log_head: int
    problem: Problem | None = None
    checkpoint: Signed | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- verification -----------------------------------------------------------------------------


def verify(
    ledger: Ledger,
    db: Database,
    checkpoint: Mapping[str, Any] | None = None,
    *,
    key: bytes | str | None = None,
    page_size: int = 2000,
) -> VerifyResult:
    """Recomputes the chain from the stored rows and names the first position that differs.

    With a checkpoint (refused unless its signature matches under `key`, by default the key in
    SHIPLEDGER_CHECKPOINT_KEY), also checks that the log still extends it.
    """
    signed = None
    if checkpoint is not None:
        signed = check_checkpoint(checkpoint, checkpoint_key() if key is None else key)
    with _snapshot(db) as cursor:
        return _Walk(EventsTable(ledger, db), cursor, page_size).run(signed)


@contextmanager
def _snapshot(db: Database) -> Iterator[Cursor]:
    """One read snapshot for the whole walk, so a concurrent append or chainer is invisible."""
    with db.transaction(immediate=False) as cursor:
        if not db.sqlite:  # SQLite's read transaction is a snapshot already (WAL)
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield cursor


class _Walk:
    def __init__(self, events: EventsTable, cursor: Cursor, page_size: int):
        self.sqlite = events.db.sqlite
        self.events = events
        self.cursor = cursor
        self.page_size = page_size

    def _links(self, after: int | None, upto: int) -> list[tuple[int, str]]:
        """The chain's (position, link) rows in (after, upto], in order."""
        mark = "?" if self.sqlite else "%s"
        if after is None:
            sql = f"SELECT position, hash FROM ledger_chain WHERE position <= {mark}"
            params: tuple[int, ...] = (upto,)
        else:
            sql = (
                f"SELECT position, hash FROM ledger_chain WHERE position > {mark} "
                f"AND position <= {mark}"
            )
            params = (after, upto)
        return self.events.fetch(f"{sql} ORDER BY position", params)

    def run(self, signed: Signed | None) -> VerifyResult:
        row = self.cursor.execute("SELECT MAX(position) FROM ledger_chain").fetchone()
        chain_head = None if row is None or row[0] is None else int(row[0])
        target = None if signed is None else signed.position
        at_target = GENESIS if target == 0 else None
        previous, good, good_hash = bytes(32), None, GENESIS
        checked = 0
        bad: tuple[int, EventRow | None] | None = None  # the first bad position (and its row)
        after: int | None = None
        while bad is None:
            # A page of rows and the chain's links over the same range of positions: in an
            # untouched log they pair up one to one.
            rows = self.events.page(after, self.page_size)
            if not rows:
                break
            links = self._links(after, rows[-1][0])
            pairs = zip(rows, links, strict=False)
            for (position, identity, version, topic, state), (chained_at, chained) in pairs:
                if position != chained_at:  # a link without its row, or a row without a link
                    event = (position, identity, version, topic, state)
                    bad = (chained_at, None) if chained_at < position else (position, event)
                    break
                linked = link_of(previous, position, identity, version, topic, state)
                hexed = linked.hex()
                if hexed != chained:
                    bad = (position, (position, identity, version, topic, state))
                    break
                previous, good, good_hash = linked, position, hexed
                checked += 1
                if position == target:
                    at_target = hexed
            else:
                if len(rows) > len(links):  # rows past the last link of this range
                    first = rows[len(links)]
                    if chain_head is not None and first[0] < chain_head:
                        bad = (first[0], first)
                    break  # otherwise the unchained tail begins: not tampering
                if len(rows) < self.page_size:
                    break
                after = rows[-1][0]
        problem: Problem | None = None
        if bad is not None:
            problem = self._missing(bad[0]) if bad[1] is None else self._classify(bad[1])
        if problem is None and chain_head is not None:
            # Chained positions after the last row that matched: deleted from the log's end.
            problem = self._missing_before(good, chain_head + 1)
        if problem is None and target is not None and at_target is None:
            # The checkpoint is ahead of the chain: carry the links over unchained rows.
            for later in self.events.rows(good, self.page_size):
                if later[0] > target:
                    break
                previous = link(previous, later)
                if later[0] == target:
                    at_target = previous.hex()
        head = self.events.head()
        unchained = self.events.count_after(chain_head)
        if signed is not None:
            problem = _against_checkpoint(signed, problem, head, at_target)
        return VerifyResult(
            ok=problem is None,
            position=good or 0,
            hash=good_hash,
            checked=checked,
            unchained=unchained,
            log_head=head or 0,
            problem=problem,
            checkpoint=signed,
        )

    # --- the first bad position: what happened there ------------------------------------------

    def _missing_before(self, good: int | None, position: int) -> Problem | None:
        """`missing` (or `reordered`) at the first chained position between the last row that
        matched and `position`, if the chain has one there."""
        params: tuple[int, ...]
        if good is None:
            sql, params = "SELECT MIN(position) FROM ledger_chain WHERE position < %s", (position,)
        else:
            sql = "SELECT MIN(position) FROM ledger_chain WHERE position > %s AND position < %s"
            params = (good, position)
        row = self.cursor.execute(sql, params).fetchone()
        return None if row is None or row[0] is None else self._missing(int(row[0]))

    def _classify(self, row: EventRow) -> Problem:
        """The first bad row: chained here but different, or a position the chain lacks."""
        found = self.cursor.execute(
            "SELECT 1 FROM ledger_chain WHERE position = %s", (row[0],)
        ).fetchone()
        return self._mismatch(row) if found is not None else self._stray(row)

    def _mismatch(self, row: EventRow) -> Problem:
        elsewhere = self._fits_nearby(row)
        if elsewhere is not None:
            return Problem(row[0], "reordered", f"holds the event chained at position {elsewhere}")
        return Problem(
            row[0],
            "changed",
            "the stored bytes differ from what was chained here (or the chain link before it "
            "was removed with its event)",
        )

    def _stray(self, row: EventRow) -> Problem:
        elsewhere = self._fits_nearby(row)
        if elsewhere is not None:
            return Problem(
                row[0],
                "reordered",
                f"a position the chain never had holds the event chained at position "
                f"{elsewhere}",
            )
        return Problem(row[0], "inserted", "the chain never had this position")

    def _missing(self, position: int) -> Problem:
        links = self._links_near(position)
        mine = [(prev, digest) for prev, at, digest in links if at == position]
        if mine:
            prev, digest = mine[0]
            low, high = position - NEARBY, position + NEARBY
            for row in self.events.between(low, high):
                if _fits(row, prev, position, digest):
                    return Problem(
                        position, "reordered", f"the event chained here is now at {row[0]}"
                    )
        return Problem(position, "missing", "chained, but the log has no row here (deleted)")

    def _links_near(self, position: int) -> list[tuple[str, int, str]]:
        """(previous link, position, link) for the chain rows around `position`."""
        before = self.cursor.execute(
            "SELECT position, hash FROM ledger_chain WHERE position < %s "
            "ORDER BY position DESC LIMIT %s",
            (position, NEARBY + 1),
        ).fetchall()
        after = self.cursor.execute(
            "SELECT position, hash FROM ledger_chain WHERE position >= %s "
            "ORDER BY position LIMIT %s",
            (position, NEARBY + 1),
        ).fetchall()
        rows = [(int(p), str(h)) for p, h in [*reversed(before), *after]]
        links = []
        if len(before) <= NEARBY and rows:  # the window starts at the first chained event
            links.append((GENESIS, *rows[0]))
        links.extend((rows[i - 1][1], *rows[i]) for i in range(1, len(rows)))
        return links

    def _fits_nearby(self, row: EventRow) -> int | None:
        """The nearest other chained position whose link this row's bytes reproduce."""
        candidates = sorted(self._links_near(row[0]), key=lambda item: abs(item[1] - row[0]))
        for prev, position, digest in candidates:
            if position != row[0] and _fits(row, prev, position, digest):
                return position
        return None


def _fits(row: EventRow, previous: str, position: int, digest: str) -> bool:
    """Do this row's bytes, at `position` after link `previous`, give the link `digest`?"""
    moved = (position, row[1], row[2], row[3], row[4])
    return link(bytes.fromhex(previous), moved).hex() == digest


def _against_checkpoint(
    signed: Signed, problem: Problem | None, head: int | None, at_target: str | None
) -> Problem | None:
    """Does the log still extend the checkpoint? The earlier of the two problems wins."""
    found: Problem | None = None
    if signed.position > 0 and (head is None or head < signed.position):
        end = 0 if head is None else head
        first = end + 1
        if problem is not None and problem.reason == "missing" and problem.position > end:
            first = problem.position  # the chain still knows exactly which row went first
        found = Problem(
            first,
            "truncated",
            f"the log ends at position {end}, before the checkpoint's position "
            f"{signed.position} (signed {signed.time})",
        )
    elif problem is None or problem.position > signed.position:
        if at_target is None:
            found = Problem(
                signed.position,
                "diverged",
                f"the log has no event at the checkpoint's position (signed {signed.time})",
            )
        elif at_target != signed.hash:
            found = Problem(
                signed.position,
                "diverged",
                f"the link here is {at_target}, the checkpoint signed {signed.hash} "
                f"(signed {signed.time}): the log and its chain were rewritten up to here",
            )
    if found is None:
        return problem
    if problem is None or found.position <= problem.position:
        return found
    return problem


# --- checkpoints ------------------------------------------------------------------------------


def checkpoint_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The signing key from SHIPLEDGER_CHECKPOINT_KEY; refuses when unset or too short."""
    value = (os.environ if environ is None else environ).get(KEY_ENV, "")
    if not value:
        raise InvalidInput(
            f"{KEY_ENV} is not set: checkpoints are signed and checked with that key",
            field=KEY_ENV,
            rule="required",
        )
    key = value.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise InvalidInput(
            f"{KEY_ENV} is too short: use at least {MIN_KEY_BYTES} bytes",
            field=KEY_ENV,
            rule=f">= {MIN_KEY_BYTES} bytes",
        )
    return key


def _canonical(fields: Mapping[str, Any]) -> bytes:
    text = json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def sign(fields: Mapping[str, Any], key: bytes | str) -> str:
    """HMAC-SHA256 (hex) over the canonical JSON of `fields` (sorted keys, no spaces)."""
    secret = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(secret, _canonical(fields), hashlib.sha256).hexdigest()


def checkpoint(ledger: Ledger, db: Database, key: bytes | str) -> dict[str, Any]:
    """Brings the chain up to the log's head and signs where it stands; keeps a copy."""
    chainer = Chainer(ledger, db)
    chainer.catch_up()
    position, digest = chainer.head()
    body = {"position": position, "hash": digest, "time": _utc(ledger.clock())}
    document = {**body, "signature": sign(body, key)}
    with db.transaction() as cursor:
        cursor.execute(
            "INSERT INTO ledger_checkpoints (signature, position, hash, created_at, document) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (signature) DO NOTHING",
            (
                document["signature"],
                position,
                digest,
                body["time"],
                json.dumps(document, sort_keys=True),
            ),
        )
    return document


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def load_checkpoint(text: str, *, source: str = "checkpoint") -> dict[str, Any]:
    """Parses a checkpoint file; refuses anything that is not a checkpoint's shape."""
    try:
        document = json.loads(text)
    except ValueError:
        raise InvalidInput(f"{source} is not JSON", field="checkpoint") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{source} is not a JSON object", field="checkpoint")
    return document


def check_checkpoint(document: Mapping[str, Any], key: bytes | str) -> Signed:
    """The checkpoint's position, link and time, once its signature matches under `key`."""
    for name in ("position", "hash", "time", "signature"):
        if name not in document:
            raise InvalidInput(f"checkpoint has no {name!r}", field=f"checkpoint.{name}")
    position, digest = document["position"], document["hash"]
    signature, time = document["signature"], document["time"]
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise InvalidInput("checkpoint position must be an integer ≥ 0", field="checkpoint")
    for name, value in (("hash", digest), ("signature", signature)):
        if not (isinstance(value, str) and len(value) == 64 and _is_hex(value)):
            raise InvalidInput(
                f"checkpoint {name} must be 64 hex digits", field=f"checkpoint.{name}"
            )
    if not isinstance(time, str):
        raise InvalidInput("checkpoint time must be text", field="checkpoint.time")
    fields = {name: value for name, value in document.items() if name != "signature"}
    if not hmac.compare_digest(sign(fields, key), signature.lower()):
        raise ForgedCheckpoint(
            "checkpoint signature does not match: the file was altered or signed with "
            f"another key than {KEY_ENV}",
            field="checkpoint.signature",
            rule="hmac-sha256",
        )
    return Signed(position=position, hash=digest.lower(), time=time)


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
