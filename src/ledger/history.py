"""Bitemporal reads: anything as it happened at T, as the ledger knew it at T′, or both.

Every answer reads the streams of the object asked about, keeps the records `select` keeps
(occurred by `as_of`, recorded at or before position `known_at`) and folds them with the one
fold of their kind in `ledger.timeline`: nothing here derives state a second way. A `known_at`
given as a time becomes the last log position whose record time is at or before it, found by
binary search over positions (the position is the authoritative order of learning; record
times are the library's wall-clock timestamps and are assumed to grow with the position).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.drivers import DutyLog
from ledger.errors import InvalidInput, NotFound
from ledger.events import Meta, Source, aware
from ledger.hos import Cycle, HosRules, HosState
from ledger.loads import Load
from ledger.log import LogRecord, iter_log, to_jsonable
from ledger.orders import Order
from ledger.stock import StockItem
from ledger.stops import Stop, StopFact
from ledger.telematics import PingLog
from ledger.timeline import (
    LoadState,
    OrderState,
    ResolvedFact,
    StockState,
    StopState,
    VehiclePosition,
    fold_driver,
    fold_load,
    fold_order,
    fold_stock,
    fold_stop,
    fold_vehicle,
    load_conflicts,
    select,
)

__all__ = [
    "DUTY_LOOKBACK_DAYS",
    "LoadHistory",
    "LoadTimeline",
    "TimelineEntry",
    "Viewpoint",
    "driver_history",
    "load_history",
    "load_timeline",
    "order_history",
    "position_at",
    "stock_history",
    "stop_history",
    "vehicle_history",
    "viewpoint",
]

#: Hours of Service look back over the 8 days before T (the longest cycle, 70 h / 8 days).
DUTY_LOOKBACK_DAYS = 8


# --- where a question looks from -------------------------------------------------------------


@dataclass(frozen=True)
class Viewpoint:
    """Facts that had happened by `as_of` and that the ledger knew at position `known_at`.

    `None` means "no limit" on that clock. `known_at_time` is the time the caller gave when
    `known_at` was asked for as a time rather than a position.
    """

    as_of: datetime | None = None
    known_at: int | None = None
    known_at_time: datetime | None = None

    def select(self, records: Iterable[LogRecord]) -> list[LogRecord]:
        return select(records, as_of=self.as_of, known_at=self.known_at)

    @property
    def moment(self) -> datetime | None:
        """The world time the question is about, when it names one."""
        return self.as_of or self.known_at_time


def viewpoint(
    app: Ledger, *, as_of: datetime | None = None, known_at: int | datetime | None = None
) -> Viewpoint:
    """Checks both clocks and maps a `known_at` time to its log position."""
    if as_of is not None:
        aware(as_of, "as_of")
    if known_at is None:
        return Viewpoint(as_of=as_of)
    if isinstance(known_at, datetime):
        return Viewpoint(as_of=as_of, known_at=position_at(app, known_at), known_at_time=known_at)
    if isinstance(known_at, bool) or known_at < 0:
        raise InvalidInput(
            f"known_at must be a log position (0 or more) or a time, got {known_at!r}",
            field="known_at",
            rule=">= 0",
        )
    return Viewpoint(as_of=as_of, known_at=known_at)


def position_at(app: Ledger, moment: datetime) -> int:
    """The last log position recorded at or before `moment` (0 when nothing was yet)."""
    aware(moment, "known_at")
    recorder = app.recorder
    low, high = 1, recorder.max_notification_id() or 0
    found = 0
    while low <= high:
        middle = (low + high) // 2
        # Positions may have gaps: take the first that exists at or after the middle.
        page = recorder.select_notifications(start=middle, limit=1, stop=high)
        if not page:
            high = middle - 1
            continue
        notification = page[0]
        timestamp = getattr(app.mapper.to_domain_event(notification), "timestamp", None)
        if not isinstance(timestamp, datetime):
            raise ValueError(f"event at position {notification.id} has no timestamp")
        if timestamp <= moment:
            found = notification.id
            low = notification.id + 1
        else:
            high = middle - 1
    return found


def _stream(app: Ledger, stream: UUID) -> list[LogRecord]:
    return list(iter_log(app, stream=stream))


def _existing(app: Ledger, stream: UUID, created: type[object], kind: str) -> list[LogRecord]:
    """Every record of a stream whose first event is `created`; otherwise it is not found."""
    records = _stream(app, stream)
    if not records or not isinstance(records[0].event, created):
        raise NotFound(kind, stream)
    return records


# --- one answer per kind of object -----------------------------------------------------------


@dataclass(frozen=True)
class LoadHistory:
    """A load and its stops folded at one viewpoint; `load` is None before it was planned."""

    viewpoint: Viewpoint
    load_id: UUID
    reference: str
    load: LoadState | None
    stops: tuple[StopState, ...]
    conflicts: tuple[tuple[UUID, UUID], ...]


def load_history(
    app: Ledger,
    load_id: UUID,
    *,
    as_of: datetime | None = None,
    known_at: int | datetime | None = None,
) -> LoadHistory:
    """A load with its stops as it happened at `as_of`, as the ledger knew it at `known_at`."""
    history, _ = _load_history(app, load_id, viewpoint(app, as_of=as_of, known_at=known_at))
    return history


def _load_history(
    app: Ledger, load_id: UUID, point: Viewpoint
) -> tuple[LoadHistory, dict[UUID, tuple[list[LogRecord], list[LogRecord]]]]:
    """The history, and per stream (load and stops) all its records and the selected ones."""
    load_records = _existing(app, load_id, Load.Planned, "load")
    planned = load_records[0].event
    assert isinstance(planned, Load.Planned)
    streams = {load_id: (load_records, point.select(load_records))}
    stop_ids = dict.fromkeys(planned.stop_ids)
    for record in streams[load_id][1]:  # stops a re-plan added to the load
        if isinstance(record.event, Load.Replanned):
            stop_ids.update(dict.fromkeys(record.event.stop_ids))
    stops = []
    for stop_id in stop_ids:
        records = _stream(app, stop_id)
        selected = point.select(records)
        streams[stop_id] = (records, selected)
        state = fold_stop(selected)
        if state is not None:
            stops.append(state)
    history = LoadHistory(
        viewpoint=point,
        load_id=load_id,
        reference=planned.reference,
        load=fold_load(streams[load_id][1]),
        stops=tuple(stops),
        conflicts=tuple(load_conflicts(stops)),
    )
    return history, streams


def stop_history(
    app: Ledger,
    stop_id: UUID,
    *,
    as_of: datetime | None = None,
    known_at: int | datetime | None = None,
) -> StopState | None:
    """A stop's reconciled facts at the viewpoint (None when it was not yet scheduled)."""
    point = viewpoint(app, as_of=as_of, known_at=known_at)
    return fold_stop(point.select(_existing(app, stop_id, Stop.Scheduled, "stop")))


def order_history(
    app: Ledger,
    order_id: UUID,
    *,
    as_of: datetime | None = None,
    known_at: int | datetime | None = None,
) -> OrderState | None:
    """An order's status at the viewpoint (None when it was not yet placed)."""
    point = viewpoint(app, as_of=as_of, known_at=known_at)
    return fold_order(point.select(_existing(app, order_id, Order.Placed, "order")))


def stock_history(
    app: Ledger,
    stock_id: UUID,
    *,
    as_of: datetime | None = None,
    known_at: int | datetime | None = None,
) -> StockState | None:
    """A lot's quantities at the viewpoint (None when it was not yet registered)."""
    point = viewpoint(app, as_of=as_of, known_at=known_at)
    return fold_stock(point.select(_existing(app, stock_id, StockItem.Registered, "stock item")))


def vehicle_history(
    app: Ledger,
    vehicle_code: str,
    *,
    as_of: datetime | None = None,
    known_at: int | datetime | None = None,
    days: int = 2,
) -> VehiclePosition | None:
    """A vehicle's last position by event time at the viewpoint, from its device's ping
    streams of the `days` UTC days ending on the day asked about (`as_of`, else the
    `known_at` time, else today)."""
    if days < 1:
        raise InvalidInput("days must be at least 1", field="days", rule=">= 1")
    point = viewpoint(app, as_of=as_of, known_at=known_at)
    device_id = app.vehicle(vehicle_code).device_id
    last = (point.moment or app.clock()).astimezone(UTC).date()
    records: list[LogRecord] = []
    for back in range(days - 1, -1, -1):
        records += _stream(app, PingLog.create_id(device_id, last - timedelta(days=back)))
    return fold_vehicle(point.select(records), as_of=point.as_of)


def driver_history(
    app: Ledger,
    driver_code: str,
    *,
    as_of: datetime | None = None,
    known_at: int | datetime | None = None,
) -> HosState:
    """A driver's Hours of Service at T (`as_of`, else the `known_at` time, else now), from
    the duty streams of the 8 days before T that the ledger knew at `known_at`."""
    point = viewpoint(app, as_of=as_of, known_at=known_at)
    driver = app.driver(driver_code)
    at = point.moment or app.clock()
    rules = HosRules(cycle=Cycle.US_60_7 if driver.cycle_hours == 60 else Cycle.US_70_8)
    last = at.astimezone(UTC).date()
    records: list[LogRecord] = []
    for back in range(DUTY_LOOKBACK_DAYS, -1, -1):
        records += _stream(app, DutyLog.create_id(driver_code, last - timedelta(days=back)))
    return fold_driver(select(records, as_of=at, known_at=point.known_at), at, rules)


# --- the support timeline of a load ----------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One fact about a load or one of its stops, with both clocks and its provenance."""

    occurred_at: datetime
    position: int
    recorded_at: datetime
    kind: str  # "load.dispatched", "stop.arrived", …
    event_type: str
    stream: UUID
    stop_id: UUID | None
    stop_sequence: int | None
    actor: str
    source: Source
    reason: str | None
    correlation_id: str | None
    causation_id: str | None
    fact_id: str | None = None
    supersedes: str | None = None
    #: For a stop fact: whether reconciliation chose it at this viewpoint (None: not a fact
    #: that competes, such as a schedule change or an ETA).
    in_effect: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "occurred_at": to_jsonable(self.occurred_at),
            "position": self.position,
            "recorded_at": to_jsonable(self.recorded_at),
            "kind": self.kind,
            "event_type": self.event_type,
            "stream": str(self.stream),
            "stop_id": None if self.stop_id is None else str(self.stop_id),
            "stop_sequence": self.stop_sequence,
            "actor": self.actor,
            "source": self.source.value,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "fact_id": self.fact_id,
            "supersedes": self.supersedes,
            "in_effect": self.in_effect,
            "data": to_jsonable(self.data),
        }


@dataclass(frozen=True)
class LoadTimeline:
    """Every fact of a load and its stops known at a viewpoint, and the state they derive."""

    history: LoadHistory
    entries: tuple[TimelineEntry, ...]
    head: int
    locations: dict[UUID, str]

    @property
    def load(self) -> LoadState | None:
        return self.history.load

    @property
    def stops(self) -> tuple[StopState, ...]:
        return self.history.stops

    @property
    def conflicts(self) -> tuple[tuple[UUID, UUID], ...]:
        return self.history.conflicts

    def sequence_of(self, stop_id: UUID) -> int | None:
        return next((s.sequence for s in self.stops if s.stop_id == stop_id), None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON document with a stable key order."""
        point = self.history.viewpoint
        return {
            "load_id": str(self.history.load_id),
            "reference": self.history.reference,
            "as_of": to_jsonable(point.as_of),
            "known_at": {
                "position": point.known_at,
                "time": to_jsonable(point.known_at_time),
            },
            "head": self.head,
            "facts": [entry.as_dict() for entry in self.entries],
            "state": {
                "load": _load_dict(self.load),
                "stops": [self._stop_dict(stop) for stop in self.stops],
                "conflicts": [
                    {
                        "before_stop": self.sequence_of(before),
                        "after_stop": self.sequence_of(after),
                        "before_stop_id": str(before),
                        "after_stop_id": str(after),
                    }
                    for before, after in self.conflicts
                ],
            },
        }

    def _stop_dict(self, stop: StopState) -> dict[str, Any]:
        dwell = stop.dwell
        return {
            "stop_id": str(stop.stop_id),
            "sequence": stop.sequence,
            "kind": stop.kind.value,
            "location": self.locations.get(stop.location_id, str(stop.location_id)),
            "window": to_jsonable(stop.window),
            "appointment": to_jsonable(stop.appointment),
            "arrival": _fact_dict(stop.arrival),
            "departure": _fact_dict(stop.departure),
            "dwell_minutes": None if dwell is None else dwell / timedelta(minutes=1),
            "on_time": stop.on_time,
            "eta": to_jsonable(stop.eta),
            "computed_from": list(stop.computed_from),
        }


def _fact_dict(fact: ResolvedFact | None) -> dict[str, Any] | None:
    if fact is None:
        return None
    return {
        "occurred_at": to_jsonable(fact.occurred_at),
        "source": fact.source.value,
        "position": fact.position,
        "fact_id": fact.fact_id,
        "reason": fact.reason,
    }


def _load_dict(load: LoadState | None) -> dict[str, Any] | None:
    if load is None:
        return None
    return {
        "status": load.status.value,
        "status_since": to_jsonable(load.status_since),
        "carrier": load.carrier_code,
        "driver": load.driver_code,
        "vehicle": load.vehicle_code,
        "dispatched_at": to_jsonable(load.dispatched_at),
        "tonu": load.tonu,
        "invoice_number": load.invoice_number,
        "open_exceptions": [
            {
                "exception_id": x.exception_id,
                "kind": x.kind.value,
                "stop_id": None if x.stop_id is None else str(x.stop_id),
                "owner": x.owner,
                "note": x.note,
                "raised_at": to_jsonable(x.raised_at),
                "position": x.position,
            }
            for x in load.exceptions
        ],
        "computed_from": list(load.computed_from),
    }


def load_timeline(
    app: Ledger,
    load_id: UUID,
    as_of: datetime | None = None,
    known_at: int | datetime | None = None,
) -> LoadTimeline:
    """Every load and stop fact known at the viewpoint, in event time, with both clocks,
    who/what/why, and the state they derive (status, reconciled stop times, conflicts)."""
    point = viewpoint(app, as_of=as_of, known_at=known_at)
    history, streams = _load_history(app, load_id, point)
    winners = {fact.fact_id for stop in history.stops for fact in _in_effect(stop)}
    sequences: dict[UUID, int] = {}
    locations: dict[UUID, str] = {}
    for stream, (records, _) in streams.items():
        head = records[0].event if records else None
        if isinstance(head, Stop.Scheduled):
            sequences[stream] = head.sequence
            locations.setdefault(head.location_id, _location_code(app, head.location_id))
    entries = [
        _entry(record, sequences, winners)
        for _, selected in streams.values()
        for record in selected
    ]
    entries.sort(key=lambda e: (e.occurred_at, e.position))
    return LoadTimeline(
        history=history, entries=tuple(entries), head=app.position, locations=locations
    )


def _in_effect(stop: StopState) -> list[ResolvedFact]:
    """The facts reconciliation uses (a departure before the arrival belongs to no visit)."""
    used = [fact for kind, fact in stop.facts.items() if kind is not StopFact.DEPARTED]
    return used if stop.departure is None else [*used, stop.departure]


def _location_code(app: Ledger, location_id: UUID) -> str:
    try:
        return app.location_by_id(location_id).code
    except NotFound:
        return str(location_id)


_WORD = re.compile(r"(?<!^)(?=[A-Z])")


def _entry(record: LogRecord, sequences: dict[UUID, int], winners: set[str]) -> TimelineEntry:
    event = record.event
    meta = record.meta
    assert isinstance(meta, Meta), "every load and stop event carries its envelope"
    is_stop = isinstance(event, Stop.Event)
    kind = ("stop." if is_stop else "load.") + _WORD.sub("_", type(event).__name__).lower()
    fact_id = supersedes = None
    in_effect = None
    if isinstance(event, Stop.FactRecorded):
        kind = f"stop.{event.fact.value}"
        fact_id = f"{record.stream}:{record.version}"
        supersedes = event.detail.supersedes
        if event.fact is not StopFact.ETA_REPORTED:
            in_effect = fact_id in winners
    return TimelineEntry(
        occurred_at=meta.occurred_at,
        position=record.position,
        recorded_at=record.recorded_at,
        kind=kind,
        event_type=record.type,
        stream=record.stream,
        stop_id=record.stream if is_stop else None,
        stop_sequence=sequences.get(record.stream) if is_stop else None,
        actor=meta.actor,
        source=meta.source,
        reason=meta.reason,
        correlation_id=meta.correlation_id,
        causation_id=meta.causation_id,
        fact_id=fact_id,
        supersedes=supersedes,
        in_effect=in_effect,
        data=record.data(),
    )


#: What a customer is told about a load's status (internal states collapse into these).
CUSTOMER_STATUS = {
    "planned": "scheduled",
    "tendered": "scheduled",
    "accepted": "scheduled",
    "rejected": "scheduled",
    "expired": "scheduled",
    "dispatched": "dispatched",
    "in_transit": "in transit",
    "delivered": "delivered",
    "pod_received": "delivered",
    "ready_to_invoice": "delivered",
    "invoiced": "delivered",
    "cancelled": "cancelled",
}


def customer_view(
    app: Ledger, load_id: UUID, *, known_at: int | datetime | None = None
) -> dict[str, Any]:
    """The customer-safe view of a load as the ledger knew it at `known_at`: what the
    customer was shown then. No rates, no internal notes or owners, no other customers'
    stops, the driver by first name only."""
    history = load_history(app, load_id, known_at=known_at)
    load = history.load
    driver = None
    if load is not None and load.driver_code:
        driver = app.driver(load.driver_code).first_name
    stops = []
    for stop in sorted(history.stops, key=lambda s: s.sequence):
        arrival, departure = stop.arrival, stop.departure
        stops.append(
            {
                "sequence": stop.sequence,
                "kind": stop.kind.value,
                "place": app.location_by_id(stop.location_id).name,
                "window": [stop.window.start.isoformat(), stop.window.end.isoformat()],
                "eta": stop.eta.isoformat() if stop.eta else None,
                "arrived_at": arrival.occurred_at.isoformat() if arrival else None,
                "departed_at": departure.occurred_at.isoformat() if departure else None,
            }
        )
    return {
        "reference": history.reference,
        "known_at_position": history.viewpoint.known_at,
        "status": CUSTOMER_STATUS[load.status.value] if load else None,
        "driver": driver,
        "stops": stops,
        "exceptions": sorted({x.kind.value for x in load.exceptions}) if load else [],
    }
