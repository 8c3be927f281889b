"""The runner: exactly once, rebuildable, crash-safe, reconnecting, read-your-writes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg

from ledger.application import Ledger
from ledger.log import iter_log
from ledger.stops import Stop
from ledger.store import parse_url
from projections.db import Database
from projections.migrations import available, migrate
from projections.reconciler import ACTOR
from projections.runner import Runner, all_views
from projections.worker import Worker
from support.clock import Clock
from support.factories import ADMIN
from support.scenario import plan_day

TABLES = {
    "load_board": "load_id",
    "stop_times": "stop_id",
    "inventory_positions": "stock_id",
    "vehicle_positions": "device_id",
    "exceptions_queue": "exception_id",
    "exception_log": "exception_id",
    "driver_hos": "driver_code",
}


def dump(db: Database) -> dict[str, list[tuple[object, ...]]]:
    return {t: db.query(f"SELECT * FROM {t} ORDER BY {key}") for t, key in TABLES.items()}


def busy_day(ledger: Ledger, clock: Clock, ping_batch: int = 100) -> None:
    """A planned, dispatched day with stock movements, an exception and every ping."""
    day = plan_day(ledger)
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", lot="A", quantity=40)
    item = ledger.stock_item("WH-1", "SKU-1", "A")
    ledger.reserve_stock(ADMIN, item.id, item.id, 15)
    ledger.quarantine_stock(ADMIN, item.id, 5, reason="pallet wrap torn")
    from ledger.loads import ExceptionKind

    ledger.raise_exception(
        ADMIN, day.load_id, ExceptionKind.DELAYED, owner="carrier", note="traffic on I-90"
    )
    clock.advance(days=1)
    ledger.ingest_duty(ADMIN, list(day.duty))
    for i in range(0, len(day.pings), ping_batch):
        ledger.ingest_pings(ADMIN, day.pings[i : i + ping_batch])


def test_migrations_apply_once_when_run_twice(store_url: str) -> None:
    database = Database(store_url)

    first = migrate(database)
    second = migrate(database)

    assert [m.version for m in first] == [m.version for m in available()]
    assert second == []
    database.close()


def test_rebuild_is_identical_to_the_live_views(ledger: Ledger, clock: Clock, db: Database) -> None:
    busy_day(ledger, clock)
    worker = Worker(ledger, db, batch_size=37)  # odd batches: boundaries fall anywhere
    worker.catch_up()
    live = dump(db)

    covered = Runner(ledger, db).rebuild()
    rebuilt = dump(db)

    assert covered == ledger.position
    assert rebuilt == live
    assert all(
        live[t]
        for t in (
            "load_board",
            "stop_times",
            "inventory_positions",
            "vehicle_positions",
            "exceptions_queue",
        )
    )


def test_views_report_their_position_and_lag(ledger: Ledger, clock: Clock, db: Database) -> None:
    busy_day(ledger, clock)
    runner = Runner(ledger, db, batch_size=10)
    runner.run_once()

    statuses = {s.name: s for s in runner.status()}

    assert set(statuses) == {v.name for v in all_views()}
    assert ledger.position > 10
    assert all(s.position == 10 and s.lag_events == ledger.position - 10 for s in statuses.values())
    assert all(s.lag_seconds is not None and s.lag_seconds >= 0 for s in statuses.values())


def test_reads_wait_for_a_position_instead_of_sleeping(
    ledger: Ledger, clock: Clock, db: Database
) -> None:
    runner = Runner(ledger, db)
    position = ledger.receive_stock(ADMIN, warehouse="W", sku="S", quantity=7)

    reached = runner.wait_for(position, timeout=10)

    assert reached
    assert db.query("SELECT on_hand, available FROM inventory_positions") == [(7, 7)]


def test_a_second_runner_backs_off_when_the_first_moved_the_position(
    ledger: Ledger, db: Database, store_url: str
) -> None:
    for n in range(30):
        ledger.receive_stock(ADMIN, warehouse="W", sku=f"S{n}", quantity=n + 1)
    other_db = Database(store_url)
    first, second = Runner(ledger, db, batch_size=10), Runner(ledger, other_db, batch_size=10)

    while first.attempt() + second.attempt():
        pass

    rows = db.query("SELECT COUNT(*), SUM(on_hand) FROM inventory_positions")
    assert rows == [(30, sum(range(1, 31)))]  # each movement applied exactly once
    other_db.close()


def test_runner_reconnects_when_its_postgres_connection_is_killed(
    postgres_url: str, clock: Clock
) -> None:
    ledger = Ledger(postgres_url, clock=clock)
    database = Database(postgres_url)
    migrate(database)
    runner = Runner(ledger, database, batch_size=5)
    for n in range(12):
        ledger.receive_stock(ADMIN, warehouse="W", sku=f"S{n}", quantity=1)
    runner.attempt()
    pid = database.connection.info.backend_pid
    with psycopg.connect(parse_url(postgres_url).psycopg_conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    runner.catch_up()

    assert database.query("SELECT COUNT(*) FROM inventory_positions") == [(12,)]
    ledger.close()
    database.close()


def test_views_equal_a_clean_rebuild_and_no_fact_is_duplicated_when_the_worker_is_killed(
    ledger: Ledger, clock: Clock, db: Database, store_url: str, tmp_path: Path
) -> None:
    busy_day(ledger, clock, ping_batch=6)  # a few hundred events: kills land mid-batch
    exe = Path(sys.executable).with_name("shipledger")
    command = [str(exe), "--db", store_url, "projections", "run", "--batch-size", "4"]
    rng = random.Random(3)
    kills = 0
    for _ in range(6):
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.6, 1.6))
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            kills += 1
        worker.wait(timeout=30)
    done = subprocess.run(
        [*command, "--once"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    live = dump(db)

    Runner(ledger, db).rebuild()

    assert kills >= 1
    assert dump(db) == live
    derived = Counter(
        (r.stream, r.event.fact, r.meta.occurred_at)  # type: ignore[union-attr]
        for r in iter_log(ledger)
        if isinstance(r.event, Stop.FactRecorded) and r.meta and r.meta.actor == ACTOR
    )
    assert derived and max(derived.values()) == 1
    assert len(derived) == 6  # one arrival and one departure at each of three stops
