"""Stop times: per stop, window, appointment, reconciled arrival and departure with their
sources, dwell, detention minutes and on-time (from `timeline.fold_stop`)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from ledger.log import LogRecord
from ledger.stops import Stop
from ledger.timeline import StopState
from projections.view import Batch, View, iso

__all__ = ["DETENTION_FREE_MINUTES", "DETENTION_INCREMENT_MINUTES", "StopTimes"]

#: Defaults until a load's rate card says otherwise (billing recomputes with the card).
DETENTION_FREE_MINUTES = 120
DETENTION_INCREMENT_MINUTES = 15

_UPSERT = """
INSERT INTO stop_times (stop_id, load_id, sequence, kind, location_id, window_start, window_end,
    appointment_start, appointment_end, arrived_at, arrival_source, arrival_fact, departed_at,
    departure_source, departure_fact, dwell_minutes, detention_minutes, on_time, eta, day,
    computed_from, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (stop_id) DO UPDATE SET sequence = excluded.sequence,
    appointment_start = excluded.appointment_start, appointment_end = excluded.appointment_end,
    arrived_at = excluded.arrived_at, arrival_source = excluded.arrival_source,
    arrival_fact = excluded.arrival_fact, departed_at = excluded.departed_at,
    departure_source = excluded.departure_source, departure_fact = excluded.departure_fact,
    dwell_minutes = excluded.dwell_minutes, detention_minutes = excluded.detention_minutes,
    on_time = excluded.on_time, eta = excluded.eta, computed_from = excluded.computed_from,
    position = excluded.position
"""


def stop_row(state: StopState) -> tuple[object, ...]:
    arrival, departure, dwell = state.arrival, state.departure, state.dwell
    return (
        str(state.stop_id),
        str(state.load_id),
        state.sequence,
        state.kind.value,
        str(state.location_id),
        iso(state.window.start),
        iso(state.window.end),
        iso(state.appointment.start) if state.appointment else None,
        iso(state.appointment.end) if state.appointment else None,
        iso(arrival.occurred_at) if arrival else None,
        arrival.source.value if arrival else None,
        arrival.fact_id if arrival else None,
        iso(departure.occurred_at) if departure else None,
        departure.source.value if departure else None,
        departure.fact_id if departure else None,
        None if dwell is None else int(dwell.total_seconds() // 60),
        state.detention_minutes(DETENTION_FREE_MINUTES, DETENTION_INCREMENT_MINUTES),
        None if state.on_time is None else int(state.on_time),
        iso(state.eta),
        state.window.start.date().isoformat(),
        ",".join(str(p) for p in state.computed_from),
        max(state.computed_from),
    )


class StopTimes(View):
    name = "stop_times"
    tables = ("stop_times",)

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        touched: dict[UUID, None] = {}
        for record in records:
            if isinstance(record.event, Stop.Event):
                touched[record.stream] = None
        rows = []
        for stop_id in touched:
            state = batch.stop_state(stop_id)
            if state is not None:
                rows.append(stop_row(state))
        batch.cursor.executemany(_UPSERT, rows)
