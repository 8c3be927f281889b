"""The hash chain and its verification: tampering behind the ledger's back is named, exactly.

Each test builds a small log with the real ledger, chains it, then changes the events table
with plain SQL — as someone with database access would — and checks that `verify` names the
first bad position and the reason. Both backends unless a test says PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.store import parse_url
from ledger.telematics import PingInput
from projections.audit import (
    KEY_ENV,
    ForgedCheckpoint,
    checkpoint,
    checkpoint_key,
    verify,
)
from projections.chain import GENESIS, Chainer
from projections.db import Database
from projections.migrations import migrate, split_statements
from support.clock import Clock
from support.factories import ADMIN, order_draft, reference_data

KEY = b"test-checkpoint-key-0123456789"
DAY = datetime(2026, 11, 20, tzinfo=UTC)
NOW = DAY.replace(hour=14)


def add_pings(ledger: Ledger, batches: int, start: int = 0) -> None:
    """One event per batch: a device's upload of two fixes."""
    for n in range(start, start + batches):
        at = DAY.replace(hour=9) + timedelta(minutes=2 * n)
        ledger.ingest_pings(
            ADMIN,
            [
                PingInput("DEV-1", 2 * n, at, 41.85 + n / 1000, -87.65, 40.0, 90.0),
                PingInput("DEV-1", 2 * n + 1, at + timedelta(minutes=1), 41.85, -87.65),
            ],
        )


@dataclass
class Log:
    """A chained log and plain-SQL access to its events table."""

    url: str
    ledger: Ledger
    db: Database

    @property
    def table(self) -> str:
        return "stored_events" if self.db.sqlite else "shipledger_events"

    @property
    def pos(self) -> str:
        return "rowid" if self.db.sqlite else "notification_id"

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        statement = statement.format(table=self.table, pos=self.pos)
        with self.db.transaction() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if statement.lstrip().upper().startswith("SELECT") else []

    def positions(self) -> list[int]:
        return [int(r[0]) for r in self.sql("SELECT {pos} FROM {table} ORDER BY {pos}")]

    def chain(self) -> Chainer:
        return Chainer(self.ledger, self.db)

    def verify(self, document: dict[str, Any] | None = None) -> Any:
        return verify(self.ledger, self.db, document, key=KEY)

    # --- tampering ----------------------------------------------------------------------------

    def flip_byte(self, position: int, index: int = 10) -> None:
        (state,) = self.sql("SELECT state FROM {table} WHERE {pos} = %s", (position,))[0]
        changed = bytearray(bytes(state))
        changed[index] ^= 0x01
        self.sql("UPDATE {table} SET state = %s WHERE {pos} = %s", (bytes(changed), position))

    def delete(self, position: int) -> None:
        self.sql("DELETE FROM {table} WHERE {pos} = %s", (position,))

    def swap(self, a: int, b: int) -> None:
        """Each row's originator, version, topic and state move to the other's position."""
        for old, new in ((a, -999), (b, a), (-999, b)):
            self.sql("UPDATE {table} SET {pos} = %s WHERE {pos} = %s", (new, old))

    def forge(self, position: int, like: int) -> None:
        """A new row at `position`: a copy of the event at `like` under a new stream id."""
        topic, state = self.sql("SELECT topic, state FROM {table} WHERE {pos} = %s", (like,))[0]
        stream = uuid.uuid4()
        self.sql(
            "INSERT INTO {table} ({pos}, originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, 1, %s, %s)",
            (position, stream.hex if self.db.sqlite else stream, topic, bytes(state)),
        )


@pytest.fixture
def log(ledger: Ledger, store_url: str, clock: Clock) -> Iterator[Log]:
    """Reference data, an order, stock and ping uploads: ~20 events, all chained."""
    reference_data(ledger)
    ledger.place_order(ADMIN, "ACME", order_draft("PO-1", DAY + timedelta(days=1), ("SKU-1", 5)))
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=40)
    add_pings(ledger, 10)
    db = Database(store_url)
    migrate(db)
    chained = Log(store_url, ledger, db)
    chained.chain().catch_up()
    yield chained
    db.close()


# --- the untouched log ------------------------------------------------------------------------


def test_log_verifies_when_untouched(log: Log) -> None:
    result = log.verify()

    assert result.ok
    assert result.problem is None
    assert result.position == log.ledger.position == result.log_head
    assert result.checked == len(log.positions())
    assert result.hash == log.chain().head()[1] != GENESIS
    assert result.unchained == 0


def test_chain_has_one_link_per_event_when_caught_up(log: Log) -> None:
    links = log.db.query("SELECT position FROM ledger_chain ORDER BY position")

    assert [int(p) for (p,) in links] == log.positions()
    assert log.chain().run_once() == 0


def test_new_events_are_unchained_not_tampering_when_the_chainer_lags(log: Log) -> None:
    add_pings(log.ledger, 3, start=100)

    result = log.verify()

    assert result.ok
    assert result.unchained == 3
    assert log.chain().catch_up() == 3
    assert log.verify().unchained == 0


def test_empty_log_verifies_when_nothing_was_recorded(store_url: str) -> None:
    ledger, db = Ledger(store_url), Database(store_url)
    migrate(db)
    try:
        assert Chainer(ledger, db).catch_up() == 0
        result = verify(ledger, db)
    finally:
        db.close()
        ledger.close()

    assert result.ok
    assert (result.position, result.hash, result.checked) == (0, GENESIS, 0)


# --- tampering: the first bad position and why ------------------------------------------------


def test_changed_is_named_when_one_byte_of_a_state_is_altered(log: Log) -> None:
    log.flip_byte(9)

    result = log.verify()

    assert not result.ok
    assert (result.problem.position, result.problem.reason) == (9, "changed")
    assert result.position == 8


def test_changed_is_named_when_a_topic_is_altered(log: Log) -> None:
    log.sql("UPDATE {table} SET topic = topic || 'x' WHERE {pos} = %s", (12,))

    result = log.verify()

    assert (result.problem.position, result.problem.reason) == (12, "changed")


def test_missing_is_named_when_an_event_is_deleted(log: Log) -> None:
    log.delete(7)

    result = log.verify()

    assert not result.ok
    assert (result.problem.position, result.problem.reason) == (7, "missing")
    assert result.position == 6


def test_reordered_is_named_when_two_adjacent_events_are_swapped(log: Log) -> None:
    log.swap(10, 11)

    result = log.verify()

    assert not result.ok
    assert (result.problem.position, result.problem.reason) == (10, "reordered")
    assert "11" in result.problem.detail


def test_reordered_is_named_when_two_nearby_events_are_swapped(log: Log) -> None:
    log.swap(5, 14)

    result = log.verify()

    assert (result.problem.position, result.problem.reason) == (5, "reordered")
    assert "14" in result.problem.detail


def test_reordered_is_named_when_an_event_is_moved_to_a_later_position(log: Log) -> None:
    head = log.ledger.position
    log.sql("UPDATE {table} SET {pos} = %s WHERE {pos} = %s", (head + 3, 6))

    result = log.verify()

    assert (result.problem.position, result.problem.reason) == (6, "reordered")
    assert f"now at {head + 3}" in result.problem.detail


def test_inserted_is_named_when_a_row_is_added_below_the_first_position(log: Log) -> None:
    log.forge(0, like=3)

    result = log.verify()

    assert not result.ok
    assert (result.problem.position, result.problem.reason) == (0, "inserted")


def test_inserted_is_named_when_a_row_fills_a_gap_inside_the_chain(postgres_url: str) -> None:
    ledger = Ledger(postgres_url, clock=Clock(NOW))
    db = Database(postgres_url)
    try:
        reference_data(ledger)
        # A rolled-back append (e.g. a concurrency retry) leaves a gap in the positions.
        db.query("SELECT nextval(pg_get_serial_sequence('shipledger_events', 'notification_id'))")
        add_pings(ledger, 3)
        migrate(db)
        log = Log(postgres_url, ledger, db)
        gap = next(p for p in range(1, ledger.position) if p not in log.positions())
        log.chain().catch_up()
        assert log.verify().ok
        log.forge(gap, like=gap - 1)

        result = log.verify()
    finally:
        db.close()
        ledger.close()

    assert (result.problem.position, result.problem.reason) == (gap, "inserted")


def test_missing_is_named_when_a_row_is_appended_behind_the_chainer_and_a_chained_one_deleted(
    log: Log,
) -> None:
    head = log.ledger.position
    log.forge(head + 1, like=head)  # appended behind the ledger's back: merely unchained …
    assert log.verify().unchained == 1
    log.delete(4)  # … until a chained row is taken out to make room for the story

    log.chain().catch_up()
    result = log.verify()

    assert (result.problem.position, result.problem.reason) == (4, "missing")


def test_first_bad_position_is_named_when_several_rows_are_tampered(log: Log) -> None:
    log.flip_byte(15)
    log.delete(13)
    log.swap(8, 9)

    result = log.verify()

    assert (result.problem.position, result.problem.reason) == (8, "reordered")


# --- checkpoints ------------------------------------------------------------------------------


def test_checkpoint_is_signed_and_stored_when_taken(log: Log) -> None:
    document = checkpoint(log.ledger, log.db, KEY)

    assert document["position"] == log.ledger.position
    assert document["hash"] == log.chain().head()[1]
    assert document["time"] == "2026-11-20T14:00:00Z"
    assert len(document["signature"]) == 64
    stored = log.db.query("SELECT position, hash FROM ledger_checkpoints")
    assert stored == [(document["position"], document["hash"])]
    assert log.verify(document).ok


def test_forged_checkpoint_is_refused_when_its_fields_were_edited(log: Log) -> None:
    document = checkpoint(log.ledger, log.db, KEY)
    forged = {**document, "position": document["position"] - 5}

    with pytest.raises(ForgedCheckpoint):
        log.verify(forged)


def test_forged_checkpoint_is_refused_when_signed_with_another_key(log: Log) -> None:
    document = checkpoint(log.ledger, log.db, b"another-key-of-some-length")

    with pytest.raises(ForgedCheckpoint):
        log.verify(document)


def test_truncated_is_named_when_the_tail_is_cut_after_a_checkpoint(log: Log) -> None:
    document = checkpoint(log.ledger, log.db, KEY)
    keep = document["position"] - 4
    # A careful forger removes the tail from the log *and* from the chain: invisible …
    log.sql("DELETE FROM {table} WHERE {pos} > %s", (keep,))
    log.sql("DELETE FROM ledger_chain WHERE position > %s", (keep,))
    assert log.verify().ok

    result = log.verify(document)  # … except against the signed checkpoint

    assert not result.ok
    assert (result.problem.position, result.problem.reason) == (keep + 1, "truncated")


def test_truncated_is_named_when_only_the_events_tail_is_cut_after_a_checkpoint(
    log: Log,
) -> None:
    document = checkpoint(log.ledger, log.db, KEY)
    keep = document["position"] - 2
    log.sql("DELETE FROM {table} WHERE {pos} > %s", (keep,))

    result = log.verify(document)

    assert (result.problem.position, result.problem.reason) == (keep + 1, "truncated")


def test_diverged_is_named_when_the_log_and_chain_are_rewritten_after_a_checkpoint(
    log: Log,
) -> None:
    document = checkpoint(log.ledger, log.db, KEY)
    log.flip_byte(6)
    log.sql("DELETE FROM ledger_chain WHERE position >= %s", (6,))
    log.chain().catch_up()  # the chain now agrees with the rewritten log
    assert log.verify().ok

    result = log.verify(document)

    assert (result.problem.position, result.problem.reason) == (document["position"], "diverged")


def test_log_extends_the_checkpoint_when_events_were_appended_since(log: Log) -> None:
    document = checkpoint(log.ledger, log.db, KEY)
    add_pings(log.ledger, 4, start=50)
    log.chain().catch_up()

    result = log.verify(document)

    assert result.ok
    assert result.checkpoint is not None
    assert result.checkpoint.position == document["position"] < result.position


def test_log_extends_the_checkpoint_when_the_chain_lags_behind_it(log: Log) -> None:
    document = checkpoint(log.ledger, log.db, KEY)
    log.sql("DELETE FROM ledger_chain WHERE position > %s", (3,))

    result = log.verify(document)

    assert result.ok
    assert result.unchained == len(log.positions()) - 3


@pytest.mark.parametrize(
    ("environ", "refusal"), [({}, "is not set"), ({KEY_ENV: "short"}, "too short")]
)
def test_checkpoint_key_is_refused_when_unset_or_short(
    environ: dict[str, str], refusal: str
) -> None:
    with pytest.raises(InvalidInput, match=refusal) as raised:
        checkpoint_key(environ)

    assert raised.value.field == KEY_ENV
    assert "short" not in raised.value.message.replace("too short", "")


# --- exactly once -----------------------------------------------------------------------------


def test_no_position_is_written_twice_when_two_chainers_run_concurrently(
    ledger: Ledger, store_url: str
) -> None:
    reference_data(ledger)
    add_pings(ledger, 60)
    first, second = Database(store_url), Database(store_url)
    migrate(first)
    chainers = [Chainer(ledger, first, batch_size=3), Chainer(ledger, second, batch_size=5)]
    errors: list[BaseException] = []

    def run(chainer: Chainer) -> None:
        try:
            chainer.catch_up()
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(c,)) for c in chainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    rows = first.query("SELECT COUNT(*), COUNT(DISTINCT position) FROM ledger_chain")
    assert rows == [(ledger.position, ledger.position)]
    assert verify(ledger, first).ok
    first.close()
    second.close()


def test_batch_is_redone_when_another_chainer_wrote_its_positions_first(
    postgres_url: str,
) -> None:
    ledger = Ledger(postgres_url, clock=Clock(NOW))
    slow_db, fast_db = Database(postgres_url), Database(postgres_url)
    try:
        reference_data(ledger)
        migrate(slow_db)
        slow, fast = Chainer(ledger, slow_db), Chainer(ledger, fast_db)
        read = slow.events.page

        def page_then_let_the_other_win(after: int | None, limit: int) -> list[Any]:
            rows = read(after, limit)
            if slow.conflicts == 0:
                fast.catch_up()  # commits the same positions while `slow` is mid-batch
            return rows

        slow.events.page = page_then_let_the_other_win
        add_pings(ledger, 2)

        assert slow.run_once() == 0  # its batch conflicted, was redone, found nothing left
        assert slow.conflicts == 1
        assert verify(ledger, slow_db).ok
        assert slow_db.query("SELECT COUNT(*) FROM ledger_chain") == [(ledger.position,)]
    finally:
        slow_db.close()
        fast_db.close()
        ledger.close()


# --- PostgreSQL: the application role ---------------------------------------------------------


def _as_app_role(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(parse_url(url).psycopg_conninfo(), autocommit=True)
    conn.execute(f'SET search_path TO "{parse_url(url).schema}"')
    conn.execute("SET ROLE shipledger_app")
    return conn


def test_app_role_may_insert_and_select_but_not_update_or_delete_when_migrated(
    postgres_url: str,
) -> None:
    ledger = Ledger(postgres_url, clock=Clock(NOW))  # the library creates the log's tables …
    db = Database(postgres_url)
    try:
        reference_data(ledger)
        migrate(db)  # … and then the grants can name them
        before = ledger.position
        with _as_app_role(postgres_url) as conn:
            conn.execute(
                "INSERT INTO shipledger_events (originator_id, originator_version, topic, state) "
                "VALUES (%s, 1, 'x:Y', '\\x00')",
                (uuid.uuid4(),),
            )
            count = conn.execute("SELECT COUNT(*) FROM shipledger_events").fetchone()
            conn.execute("INSERT INTO ledger_chain (position, hash) VALUES (1, 'h')")
            conn.execute("SELECT position, hash FROM ledger_chain").fetchall()
            for statement in (
                "UPDATE shipledger_events SET topic = 'changed'",
                "DELETE FROM shipledger_events",
                "TRUNCATE shipledger_events",
                "UPDATE ledger_chain SET hash = 'changed'",
                "DELETE FROM ledger_chain",
                "DELETE FROM ledger_checkpoints",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
            with conn.transaction():  # appends can still take the log's insert lock
                conn.execute("SELECT shipledger_lock_events()")
            conn.execute("UPDATE load_board SET status = status")  # read models: full DML
    finally:
        db.close()
        ledger.close()
    assert count == (before + 1,)


def test_app_role_may_only_insert_and_select_events_when_the_ledger_started_after_migrating(
    postgres_url: str,
) -> None:
    db = Database(postgres_url)
    migrate(db)  # the wrong order: no events table yet, the default privileges stand in
    db.close()
    ledger = Ledger(postgres_url, clock=Clock(NOW))
    ledger.close()
    schema = parse_url(postgres_url).schema

    with psycopg.connect(parse_url(postgres_url).psycopg_conninfo()) as conn:
        granted = conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = 'shipledger_app' AND table_schema = %s "
            "AND table_name = 'shipledger_events' ORDER BY 1",
            (schema,),
        ).fetchall()

    assert granted == [("INSERT",), ("SELECT",)]


def test_ledger_creates_no_tables_when_the_url_says_create_tables_0(postgres_url: str) -> None:
    ledger = Ledger(f"{postgres_url}&create_tables=0")
    ledger.close()
    schema = parse_url(postgres_url).schema

    with psycopg.connect(parse_url(postgres_url).psycopg_conninfo()) as conn:
        tables = conn.execute(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()

    assert tables == (0,)
    assert parse_url(f"{postgres_url}&create_tables=0").library_env()["CREATE_TABLE"] == "n"
    assert "CREATE_TABLE" not in parse_url(postgres_url).library_env()


def test_dollar_quoted_blocks_stay_whole_when_migrations_are_split() -> None:
    text = "CREATE TABLE a (x INT);\nDO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\n" + (
        "DO $$ BEGIN EXECUTE 'x' || $fn$ a; b $fn$; END $$;SELECT 1"
    )

    assert split_statements(text) == [
        "CREATE TABLE a (x INT)",
        "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$",
        "DO $$ BEGIN EXECUTE 'x' || $fn$ a; b $fn$; END $$",
        "SELECT 1",
    ]
