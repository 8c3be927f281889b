"""Driver Hours of Service: per driver, the state at the latest duty change (event time),
recomputed from the driver's last eight days of duty changes whenever one arrives — a late
change re-derives the clocks exactly as if it had come in order (`timeline.fold_driver`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ledger.drivers import DutyLog
from ledger.hos import HosRules
from ledger.log import LogRecord
from ledger.timeline import duty_changes, fold_driver
from projections.view import Batch, View, iso

__all__ = ["DriverHos", "driver_records"]

_UPSERT = """
INSERT INTO driver_hos (driver_code, status, status_since, as_of, drive_remaining_minutes,
    window_remaining_minutes, until_break_minutes, cycle_remaining_minutes, violations,
    violation_kinds, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (driver_code) DO UPDATE SET status = excluded.status,
    status_since = excluded.status_since, as_of = excluded.as_of,
    drive_remaining_minutes = excluded.drive_remaining_minutes,
    window_remaining_minutes = excluded.window_remaining_minutes,
    until_break_minutes = excluded.until_break_minutes,
    cycle_remaining_minutes = excluded.cycle_remaining_minutes,
    violations = excluded.violations, violation_kinds = excluded.violation_kinds,
    position = excluded.position
"""


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def driver_records(batch: Batch, driver: str, latest: datetime) -> list[LogRecord]:
    """The driver's duty streams for the eight days up to `latest` (the 70-h cycle)."""
    records: list[LogRecord] = []
    day = (latest - timedelta(days=8)).astimezone(UTC).date()
    while day <= latest.astimezone(UTC).date():
        records.extend(batch.stream(DutyLog.create_id(driver, day)))
        day += timedelta(days=1)
    return records


class DriverHos(View):
    name = "driver_hos"
    tables = ("driver_hos",)

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        touched: dict[str, datetime] = {}
        for record in records:
            if isinstance(record.event, DutyLog.DutyStatusChanged) and record.meta:
                code = record.event.driver_code
                at = record.meta.occurred_at
                if code not in touched or at > touched[code]:
                    touched[code] = at
        rows = []
        for driver, hint in touched.items():
            # the latest change may be in a later day than this batch's: look a day ahead
            records_ = driver_records(batch, driver, hint + timedelta(days=1))
            changes = duty_changes(records_)
            latest = max(c.occurred_at for c in changes)
            state = fold_driver(records_, latest, HosRules())
            rows.append(
                (
                    driver,
                    state.status.value if state.status else None,
                    iso(state.status_since),
                    iso(latest),
                    _minutes(state.drive_remaining),
                    _minutes(state.window_remaining),
                    _minutes(state.until_break),
                    _minutes(state.cycle_remaining),
                    len(state.violations),
                    ",".join(sorted({v.kind.value for v in state.violations})),
                    max(r.position for r in records_),
                )
            )
        batch.cursor.executemany(_UPSERT, rows)
