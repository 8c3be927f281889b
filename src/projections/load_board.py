"""Load board: every load with status, carrier, driver, vehicle, next stop, ETA, lateness
risk, open exceptions and the owner of the next action (from `fold_load` and `fold_stop`).
The last position comes from `vehicle_positions` at read time, so it is never stale here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from ledger.loads import Load, LoadStatus
from ledger.log import LogRecord
from ledger.stops import Stop
from ledger.timeline import LoadState, StopState, fold_load, load_conflicts
from projections.view import Batch, View, iso

__all__ = ["AT_RISK", "LoadBoard", "lateness_risk"]

#: An ETA this close to the end of the window is a risk.
AT_RISK = timedelta(minutes=30)

_UPSERT = """
INSERT INTO load_board (load_id, reference, tenants, status, status_since, carrier_code,
    driver_code, vehicle_code, stops_total, stops_done, next_stop_id, next_stop_sequence,
    next_window_end, next_eta, lateness_risk, open_exceptions, next_action_owner, conflicts,
    tenders, tenders_accepted, planned_day, computed_from, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
    %s)
ON CONFLICT (load_id) DO UPDATE SET status = excluded.status,
    status_since = excluded.status_since, carrier_code = excluded.carrier_code,
    driver_code = excluded.driver_code, vehicle_code = excluded.vehicle_code,
    stops_total = excluded.stops_total, stops_done = excluded.stops_done,
    next_stop_id = excluded.next_stop_id,
    next_stop_sequence = excluded.next_stop_sequence, next_window_end = excluded.next_window_end,
    next_eta = excluded.next_eta, lateness_risk = excluded.lateness_risk,
    open_exceptions = excluded.open_exceptions, next_action_owner = excluded.next_action_owner,
    conflicts = excluded.conflicts, tenders = excluded.tenders,
    tenders_accepted = excluded.tenders_accepted, computed_from = excluded.computed_from,
    position = excluded.position
"""

_CLOSED = {LoadStatus.CANCELLED, LoadStatus.INVOICED}


def lateness_risk(load: LoadState, next_stop: StopState | None) -> str:
    """late | at_risk | on_track | unknown | done, from the next stop's ETA and window."""
    if load.status in _CLOSED or next_stop is None:
        return "done"
    target = next_stop.appointment or next_stop.window
    if next_stop.eta is None:
        return "unknown"
    if next_stop.eta > target.end:
        return "late"
    if next_stop.eta > target.end - AT_RISK:
        return "at_risk"
    return "on_track"


def board_row(load: LoadState, stops: list[StopState]) -> tuple[object, ...]:
    done = [s for s in stops if s.departure is not None]
    upcoming = [s for s in sorted(stops, key=lambda s: s.sequence) if s.departure is None]
    next_stop = upcoming[0] if upcoming else None
    owner = load.exceptions[0].owner if load.exceptions else None
    positions = sorted({*load.computed_from, *(p for s in stops for p in s.computed_from)})
    target = (next_stop.appointment or next_stop.window) if next_stop else None
    return (
        str(load.load_id),
        load.reference,
        ",".join(load.tenants),
        load.status.value,
        iso(load.status_since),
        load.carrier_code,
        load.driver_code,
        load.vehicle_code,
        len(load.stop_ids),
        len(done),
        str(next_stop.stop_id) if next_stop else None,
        next_stop.sequence if next_stop else None,
        iso(target.end) if target else None,
        iso(next_stop.eta) if next_stop else None,
        lateness_risk(load, next_stop),
        len(load.exceptions),
        owner,
        len(load_conflicts(stops)),
        load.tendered,
        load.accepted,
        stops[0].window.start.date().isoformat() if stops else "",
        ",".join(str(p) for p in positions),
        positions[-1],
    )


class LoadBoard(View):
    name = "load_board"
    tables = ("load_board",)

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        touched: dict[UUID, None] = {}
        for record in records:
            event = record.event
            if isinstance(event, Load.Event):
                touched[record.stream] = None
            elif isinstance(event, Stop.Event):
                state = batch.stop_state(record.stream)
                if state is not None:
                    touched[state.load_id] = None
        rows = []
        for load_id in touched:
            load = fold_load(batch.stream(load_id))
            if load is None:
                continue
            stops = [s for s in map(batch.stop_state, load.stop_ids) if s is not None]
            rows.append(board_row(load, stops))
        batch.cursor.executemany(_UPSERT, rows)
