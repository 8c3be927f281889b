"""Scheduled jobs: what each finds, and that a second run, a second server or a kill in the
middle never emits anything twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from ledger.application import Ledger
from ledger.loads import ExceptionKind, Load
from ledger.log import iter_log
from projections.db import Database
from projections.jobs import job_lease, run_job
from projections.reconciler import Reconciler
from support.clock import Clock
from support.factories import ADMIN
from support.scenario import DAY, plan_day


def raised(ledger: Ledger, kind: ExceptionKind) -> Counter[tuple[object, object]]:
    return Counter(
        (r.stream, r.event.stop_id)
        for r in iter_log(ledger)
        if isinstance(r.event, Load.ExceptionRaised) and r.event.kind is kind
    )


def test_sla_monitor_flags_each_missed_window_once(
    ledger: Ledger, clock: Clock, db: Database
) -> None:
    day = plan_day(ledger)
    ledger.start_transit(ADMIN, day.load_id)
    clock.now = day.arrivals[1] + timedelta(hours=1, minutes=5)  # past stops 1 and 2 windows
    ledger.ingest_pings(ADMIN, [p for p in day.pings if p.occurred_at < day.arrivals[0]])

    first = run_job("sla_monitor", ledger, db, clock.now)
    second = run_job("sla_monitor", ledger, db, clock.now)

    assert (first.emitted, second.emitted) == (2, 0)
    assert sorted(raised(ledger, ExceptionKind.DELAYED).values()) == [1, 1]


def test_detention_watcher_gives_notice_while_the_truck_is_still_there(
    ledger: Ledger, clock: Clock, db: Database
) -> None:
    day = plan_day(ledger)
    clock.now = day.arrivals[1] + timedelta(hours=2, minutes=30)
    ledger.ingest_pings(ADMIN, [p for p in day.pings if p.occurred_at <= clock.now])
    Reconciler(ledger).catch_up()

    first = run_job("detention_watcher", ledger, db, clock.now)
    again = run_job("detention_watcher", ledger, db, clock.now + timedelta(minutes=10))

    assert (first.emitted, again.emitted) == (1, 0)
    assert list(raised(ledger, ExceptionKind.DETENTION).values()) == [1]


def test_hos_watcher_warns_when_the_driver_is_about_to_run_out(
    ledger: Ledger, clock: Clock, db: Database
) -> None:
    plan_day(ledger)
    clock.now = DAY + timedelta(hours=10, minutes=30)
    from ledger.drivers import DutyInput, DutyStatus

    ledger.ingest_duty(ADMIN, [DutyInput("DRV-1", DAY, DutyStatus.DRIVING)])  # 10.5 h driving

    result = run_job("hos_watcher", ledger, db, clock.now)

    assert result.emitted == 1
    assert len(raised(ledger, ExceptionKind.HOS_RISK)) == 1


def test_a_second_holder_cannot_take_a_held_lease(
    ledger: Ledger, clock: Clock, db: Database, store_url: str
) -> None:
    other = Database(store_url)
    with (
        job_lease(db, "sla_monitor", clock.now) as mine,
        job_lease(other, "sla_monitor", clock.now) as theirs,
    ):
        assert mine and not theirs
    with job_lease(other, "sla_monitor", clock.now) as later:
        assert later
    other.close()


def test_jobs_killed_mid_run_or_run_by_two_servers_emit_nothing_twice(
    ledger: Ledger, clock: Clock, store_url: str, db: Database, tmp_path: Path
) -> None:
    late = 0
    for n in range(30):
        day = plan_day(ledger, reference=f"L-{n}")
        ledger.start_transit(ADMIN, day.load_id)
        late += 3
    clock.now = DAY + timedelta(days=2)
    exe = str(Path(sys.executable).with_name("shipledger"))
    env = {**os.environ, "SHIPLEDGER_DATABASE_URL": store_url}
    command = [exe, "jobs", "run", "sla_monitor"]

    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not raised(ledger, ExceptionKind.DELAYED) and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)  # as soon as the job has begun to emit
    killed.wait(timeout=30)
    mid_run = sum(raised(ledger, ExceptionKind.DELAYED).values())
    racers = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=300) for r in racers]
    final = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=True
    )

    counts = raised(ledger, ExceptionKind.DELAYED)
    assert 0 < mid_run < late  # the kill landed in the middle of the run
    assert sum(counts.values()) == late == len(counts)  # every late stop once, none twice
    assert all(r.returncode == 0 for r in racers), outputs
    assert "0 emitted" in final.stdout
