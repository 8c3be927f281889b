"""Scheduled jobs (PRODUCT §10): SLA monitor, detention watcher, HOS watcher, signed audit
checkpoints and the nightly invoice run.

Each job decides from the views what might need doing, checks it against the ledger, and
records each finding in its own transaction; before recording it asks the ledger whether
this job already said so (for this stop and this kind), so a restart, a kill in the middle
or a second run emits nothing twice. A lease (and on PostgreSQL an advisory lock) keeps two
servers from running the same job at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from ledger.application import Caller, Ledger
from ledger.events import Source
from ledger.history import driver_history
from ledger.loads import ExceptionKind, Load
from ledger.log import iter_log
from projections.db import Database
from projections.invoicing import invoice_run
from projections.runner import Runner

__all__ = ["JOBS", "JobResult", "job_lease", "run_job"]

log = logging.getLogger(__name__)
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
LEASE = timedelta(minutes=10)
FREE_MINUTES = 120
HOS_MARGIN = timedelta(minutes=60)


@dataclass
class JobResult:
    name: str
    ran: bool
    emitted: int = 0
    detail: str = ""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def job_lease(db: Database, name: str, now: datetime) -> Iterator[bool]:
    """Holds the job's lock while the block runs; yields whether this process got it.

    PostgreSQL: a session advisory lock (it dies with the process that held it). SQLite: a
    lease row; a lease whose holder process on this host is gone is taken over at once."""
    if not db.sqlite:
        import psycopg

        conn = psycopg.connect(db.config.psycopg_conninfo(), autocommit=True)
        try:
            scope = f"{db.config.dbname}:{db.config.schema}:{name}"
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (scope,)).fetchone()
            yield bool(row and row[0])
        finally:
            conn.close()
        return
    with db.transaction() as cursor:
        row = cursor.execute(
            "SELECT holder, expires_at FROM job_locks WHERE name = %s", (name,)
        ).fetchone()
        free = row is None or str(row[1]) < _iso(now) or _gone(str(row[0]))
        if free:
            cursor.execute(
                "INSERT INTO job_locks (name, holder, expires_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at",
                (name, HOLDER, _iso(now + LEASE)),
            )
    if not free:
        yield False
        return
    try:
        yield True
    finally:
        with db.transaction() as cursor:
            cursor.execute("DELETE FROM job_locks WHERE name = %s AND holder = %s", (name, HOLDER))


def _gone(holder: str) -> bool:
    """Whether a lease holder was a process on this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _said_before(ledger: Ledger, load_id: UUID, kind: ExceptionKind, stop_id: str | None) -> bool:
    """Whether a job already raised this kind of exception for this stop of this load."""
    for record in iter_log(ledger, stream=load_id):
        event = record.event
        if (
            isinstance(event, Load.ExceptionRaised)
            and event.kind is kind
            and str(event.stop_id) == str(stop_id)
            and record.meta is not None
            and record.meta.source is Source.SCHEDULER
        ):
            return True
    return False


def _raise(
    ledger: Ledger,
    caller: Caller,
    load_id: UUID,
    kind: ExceptionKind,
    stop_id: str | None,
    note: str,
) -> int:
    if _said_before(ledger, load_id, kind, stop_id):
        return 0
    ledger.raise_exception(
        caller,
        load_id,
        kind,
        owner="dispatch",
        note=note,
        stop_id=UUID(stop_id) if stop_id else None,
    )
    return 1


_ACTIVE = "('dispatched', 'in_transit')"


def sla_monitor(ledger: Ledger, db: Database, caller: Caller, now: datetime) -> JobResult:
    """A stop whose ETA passes its window, or whose window closed without an arrival, gets a
    `delayed` exception."""
    rows = db.query(
        "SELECT s.load_id, s.stop_id, s.sequence, s.window_end, s.appointment_end, s.eta "
        f"FROM stop_times s JOIN load_board b ON b.load_id = s.load_id WHERE b.status IN {_ACTIVE} "
        "AND s.arrived_at IS NULL ORDER BY s.load_id, s.sequence"
    )
    emitted = 0
    for load_id, stop_id, sequence, window_end, appointment_end, eta in rows:
        closes = str(appointment_end or window_end)
        if closes < _iso(now):
            note = f"stop {sequence}: the window closed at {closes} without an arrival"
        elif eta is not None and str(eta) > closes:
            note = f"stop {sequence}: ETA {eta} is past the window end {closes}"
        else:
            continue
        emitted += _raise(
            ledger, caller, UUID(str(load_id)), ExceptionKind.DELAYED, str(stop_id), note
        )
    return JobResult("sla_monitor", True, emitted)


def detention_watcher(ledger: Ledger, db: Database, caller: Caller, now: datetime) -> JobResult:
    """A notice when a stop's dwell passes its free time while the vehicle is still there."""
    rows = db.query(
        "SELECT s.load_id, s.stop_id, s.sequence, s.arrived_at, s.appointment_start "
        f"FROM stop_times s JOIN load_board b ON b.load_id = s.load_id WHERE b.status IN {_ACTIVE} "
        "AND s.arrived_at IS NOT NULL AND s.departed_at IS NULL ORDER BY s.load_id, s.sequence"
    )
    emitted = 0
    for load_id, stop_id, sequence, arrived_at, appointment_start in rows:
        start = max(str(arrived_at), str(appointment_start or ""))
        free_until = datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        free_until += timedelta(minutes=FREE_MINUTES)
        if now > free_until:
            note = f"stop {sequence}: free time ended at {_iso(free_until)}; detention accrues"
            emitted += _raise(
                ledger, caller, UUID(str(load_id)), ExceptionKind.DETENTION, str(stop_id), note
            )
    return JobResult("detention_watcher", True, emitted)


def hos_watcher(ledger: Ledger, db: Database, caller: Caller, now: datetime) -> JobResult:
    """A driver about to run out of drive or duty time with stops still to serve."""
    rows = db.query(
        "SELECT load_id, driver_code, next_stop_id FROM load_board "
        f"WHERE status IN {_ACTIVE} AND driver_code IS NOT NULL AND next_stop_id IS NOT NULL "
        "ORDER BY reference"
    )
    emitted = 0
    for load_id, driver, next_stop in rows:
        state = driver_history(ledger, str(driver), as_of=now)
        left = min(state.drive_remaining, state.window_remaining, state.cycle_remaining)
        if left < HOS_MARGIN:
            note = (
                f"driver {driver} has {int(left.total_seconds() // 60)} min of Hours of "
                "Service left with stops to serve"
            )
            emitted += _raise(
                ledger, caller, UUID(str(load_id)), ExceptionKind.HOS_RISK, str(next_stop), note
            )
    return JobResult("hos_watcher", True, emitted)


def audit_checkpoint(ledger: Ledger, db: Database, caller: Caller, now: datetime) -> JobResult:
    """Writes a signed checkpoint of the hash chain (needs SHIPLEDGER_CHECKPOINT_KEY)."""
    key = os.environ.get("SHIPLEDGER_CHECKPOINT_KEY")
    if not key:
        return JobResult("audit_checkpoint", False, 0, "SHIPLEDGER_CHECKPOINT_KEY is not set")
    try:
        from projections.audit import checkpoint
        from projections.chain import Chainer
    except ImportError:
        return JobResult("audit_checkpoint", False, 0, "audit module not available")
    Chainer(ledger, db).catch_up()
    written = checkpoint(ledger, db, key)
    return JobResult("audit_checkpoint", True, 1, f"position {written.get('position')}")


def nightly_invoices(ledger: Ledger, db: Database, caller: Caller, now: datetime) -> JobResult:
    """Invoices every load ready to invoice; issues pending adjustments."""
    report = invoice_run(ledger, db, caller, on=now.date())
    return JobResult(
        "nightly_invoices",
        True,
        len(report.invoices) + len(report.adjustments),
        f"{len(report.invoices)} invoice(s), {len(report.adjustments)} adjustment(s)",
    )


Job = Callable[[Ledger, Database, Caller, datetime], JobResult]
JOBS: dict[str, Job] = {
    "sla_monitor": sla_monitor,
    "detention_watcher": detention_watcher,
    "hos_watcher": hos_watcher,
    "audit_checkpoint": audit_checkpoint,
    "nightly_invoices": nightly_invoices,
}


def run_job(name: str, ledger: Ledger, db: Database, now: datetime | None = None) -> JobResult:
    """Runs one job once under its lease, after bringing the views up to date."""
    job = JOBS[name]
    moment = now or ledger.clock()
    with job_lease(db, name, moment) as mine:
        if not mine:
            return JobResult(name, False, 0, "another process holds the lease")
        Runner(ledger, db).catch_up()
        caller = Caller(
            actor=f"job:{name}", source=Source.SCHEDULER, correlation_id=f"{name}-{_iso(moment)}"
        )
        result = job(ledger, db, caller, moment)
        log.info("job %s: %s emitted, %s", name, result.emitted, result.detail)
        return result
