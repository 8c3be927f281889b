"""The event-time folds: one pure function per stream kind, and bitemporal selection.

Arrival order is not event order. Every fold here takes the facts it is given in any order,
sorts them by (`occurred_at`, log position) — never by wall-clock equality — and derives
state. The live views, the as-of queries and the tests all call these same functions.

Bitemporal selection (`select`) keeps the facts that had happened by T (`occurred_at ≤ T`)
and that the ledger knew by position P (`position ≤ P`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from uuid import UUID

from ledger import hos
from ledger.drivers import DutyLog
from ledger.events import Meta, Source
from ledger.loads import ExceptionKind, Load, LoadStatus
from ledger.log import LogRecord
from ledger.orders import Order, OrderStatus
from ledger.stock import StockItem
from ledger.stops import Stop, StopFact, StopKind
from ledger.telematics import Ping, PingLog
from ledger.values import TimeWindow

__all__ = [
    "SOURCE_PRECEDENCE",
    "LoadState",
    "OrderState",
    "ResolvedFact",
    "StockState",
    "StopState",
    "VehiclePosition",
    "event_time_order",
    "fold_driver",
    "fold_load",
    "fold_order",
    "fold_stock",
    "fold_stop",
    "fold_vehicle",
    "load_conflicts",
    "select",
    "stock_delta",
]

#: When sources disagree on the same stop fact, the higher rank wins (PRODUCT §3);
#: ties go to the later-recorded fact.
SOURCE_PRECEDENCE: dict[Source, int] = {
    Source.OPERATOR: 6,
    Source.DRIVER_APP: 5,
    Source.API: 4,
    Source.ELD: 3,
    Source.GPS: 2,
    Source.EDI: 1,
}


def _meta(record: LogRecord) -> Meta:
    meta = record.meta
    if meta is None:
        raise ValueError(f"event at position {record.position} has no envelope")
    return meta


def event_time_order(records: Iterable[LogRecord]) -> list[LogRecord]:
    """Records sorted by when they happened, ties by when the ledger learned them."""
    return sorted(records, key=lambda r: (_meta(r).occurred_at, r.position))


def select(
    records: Iterable[LogRecord],
    *,
    as_of: datetime | None = None,
    known_at: int | None = None,
) -> list[LogRecord]:
    """Facts that had happened by `as_of` and that the ledger knew at position `known_at`."""
    return [
        r
        for r in records
        if (known_at is None or r.position <= known_at)
        and (as_of is None or _meta(r).occurred_at <= as_of)
    ]


# --- stops -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedFact:
    """The fact that won for one kind at a stop, and where it came from."""

    kind: StopFact
    occurred_at: datetime
    source: Source
    position: int
    fact_id: str
    reason: str | None = None
    derived_from: tuple[str, ...] = ()
    signer: str = ""


@dataclass(frozen=True)
class StopState:
    stop_id: UUID
    load_id: UUID
    sequence: int
    kind: StopKind
    location_id: UUID
    window: TimeWindow
    appointment: TimeWindow | None
    service_minutes: int
    facts: dict[StopFact, ResolvedFact]
    eta: datetime | None
    computed_from: tuple[int, ...]
    planned_arrival: datetime | None = None  # the latest re-plan's, when one re-timed the stop

    @property
    def arrival(self) -> ResolvedFact | None:
        return self.facts.get(StopFact.ARRIVED)

    @property
    def departure(self) -> ResolvedFact | None:
        departed = self.facts.get(StopFact.DEPARTED)
        arrived = self.arrival
        if (
            departed is not None
            and arrived is not None
            and departed.occurred_at < arrived.occurred_at
        ):
            return None  # a departure before the reconciled arrival belongs to no visit
        return departed

    @property
    def dwell(self) -> timedelta | None:
        if self.arrival is None or self.departure is None:
            return None
        return self.departure.occurred_at - self.arrival.occurred_at

    @property
    def on_time(self) -> bool | None:
        """Arrived within the appointment (or the window when there is none)."""
        if self.arrival is None:
            return None
        target = self.appointment or self.window
        return self.arrival.occurred_at <= target.end

    def detention_minutes(self, free_minutes: int, increment_minutes: int) -> int:
        """Departure − max(arrival, appointment start) − free time, rounded up to increments."""
        if self.arrival is None or self.departure is None:
            return 0
        start = self.arrival.occurred_at
        if self.appointment is not None and self.appointment.start > start:
            start = self.appointment.start
        over = self.departure.occurred_at - start - timedelta(minutes=free_minutes)
        if over <= timedelta(0):
            return 0
        seconds = int(over.total_seconds())
        steps = -(-seconds // (increment_minutes * 60))  # whole increments, rounded up
        return steps * increment_minutes


def fold_stop(records: Iterable[LogRecord]) -> StopState | None:
    """A stop's schedule and, per fact kind, the fact that wins by source precedence."""
    ordered = event_time_order(r for r in records if isinstance(r.event, Stop.Event))
    scheduled = next((r for r in ordered if isinstance(r.event, Stop.Scheduled)), None)
    if scheduled is None:
        return None
    head = scheduled.event
    assert isinstance(head, Stop.Scheduled)
    appointment = head.appointment
    sequence = head.sequence
    planned_arrival: datetime | None = None
    candidates: list[tuple[LogRecord, Stop.FactRecorded]] = []
    superseded: set[str] = set()
    for record in ordered:
        event = record.event
        if isinstance(event, Stop.AppointmentSet):
            appointment = event.appointment
        elif isinstance(event, Stop.Replanned):
            sequence, planned_arrival = event.sequence, event.planned_arrival
        elif isinstance(event, Stop.FactRecorded):
            candidates.append((record, event))
            if event.detail.supersedes:
                superseded.add(event.detail.supersedes)
    best: dict[StopFact, tuple[tuple[int, int], ResolvedFact]] = {}
    eta: tuple[int, datetime] | None = None
    for record, event in candidates:
        fact_id = f"{record.stream}:{record.version}"
        if fact_id in superseded:
            continue
        meta = _meta(record)
        if event.fact is StopFact.ETA_REPORTED:
            # the latest ETA given wins; its time is the prediction, or (older facts and
            # carriers' messages without one) the fact's own time
            if eta is None or record.position > eta[0]:
                eta = (record.position, event.detail.eta or meta.occurred_at)
            continue
        rank = (SOURCE_PRECEDENCE.get(meta.source, 0), record.position)
        current = best.get(event.fact)
        if current is None or rank > current[0]:
            best[event.fact] = (
                rank,
                ResolvedFact(
                    kind=event.fact,
                    occurred_at=meta.occurred_at,
                    source=meta.source,
                    position=record.position,
                    fact_id=fact_id,
                    reason=meta.reason,
                    derived_from=event.detail.derived_from,
                    signer=event.detail.signer,
                ),
            )
    return StopState(
        stop_id=head.originator_id,
        load_id=head.load_id,
        sequence=sequence,
        kind=head.kind,
        location_id=head.location_id,
        window=head.window,
        appointment=appointment,
        service_minutes=head.service_minutes,
        facts={kind: resolved for kind, (_, resolved) in best.items()},
        eta=eta[1] if eta else None,
        computed_from=tuple(sorted(r.position for r in ordered)),
        planned_arrival=planned_arrival,
    )


def load_conflicts(stops: Sequence[StopState]) -> list[tuple[UUID, UUID]]:
    """Pairs (earlier stop, later stop) whose reconciled times contradict the sequence:
    arrival at a later stop before the departure from the one before it."""
    conflicts = []
    ordered = sorted(stops, key=lambda s: s.sequence)
    for before, after in pairwise(ordered):
        left = before.departure or before.arrival
        if (
            left is not None
            and after.arrival is not None
            and after.arrival.occurred_at < left.occurred_at
        ):
            conflicts.append((before.stop_id, after.stop_id))
    return conflicts


# --- loads -----------------------------------------------------------------------------------

_LOAD_STATUS: dict[type[object], LoadStatus] = {
    Load.Planned: LoadStatus.PLANNED,
    Load.Tendered: LoadStatus.TENDERED,
    Load.TenderAccepted: LoadStatus.ACCEPTED,
    Load.TenderRejected: LoadStatus.REJECTED,
    Load.TenderExpired: LoadStatus.EXPIRED,
    Load.Dispatched: LoadStatus.DISPATCHED,
    Load.TransitStarted: LoadStatus.IN_TRANSIT,
    Load.Delivered: LoadStatus.DELIVERED,
    Load.PodReceived: LoadStatus.POD_RECEIVED,
    Load.ReadyToInvoice: LoadStatus.READY_TO_INVOICE,
    Load.Invoiced: LoadStatus.INVOICED,
    Load.Cancelled: LoadStatus.CANCELLED,
}


@dataclass(frozen=True)
class OpenExceptionState:
    exception_id: str
    kind: ExceptionKind
    stop_id: UUID | None
    owner: str
    note: str
    raised_at: datetime
    position: int


@dataclass(frozen=True)
class AccessorialState:
    accessorial_id: str
    code: str
    quantity: Decimal
    amount: Decimal | None
    stop_id: UUID | None
    positions: tuple[int, ...]


@dataclass(frozen=True)
class LoadState:
    load_id: UUID
    reference: str
    tenants: tuple[str, ...]
    stop_ids: tuple[UUID, ...]
    order_ids: tuple[UUID, ...]
    status: LoadStatus
    status_since: datetime
    carrier_code: str | None
    rate_card: str | None
    driver_code: str | None
    vehicle_code: str | None
    dispatched_at: datetime | None
    tonu: bool
    invoice_number: str | None
    exceptions: tuple[OpenExceptionState, ...]
    tendered: int
    accepted: int
    computed_from: tuple[int, ...]
    planned_km: float = 0.0
    tendered_at: datetime | None = None
    cancelled_at: datetime | None = None
    accessorials: tuple[AccessorialState, ...] = ()


def fold_load(records: Iterable[LogRecord]) -> LoadState | None:
    """A load's status and assignments folded in event time; exceptions as overlays."""
    ordered = event_time_order(r for r in records if isinstance(r.event, Load.Event))
    planned = next((r for r in ordered if isinstance(r.event, Load.Planned)), None)
    if planned is None:
        return None
    head = planned.event
    assert isinstance(head, Load.Planned)
    status, since = LoadStatus.PLANNED, _meta(planned).occurred_at
    stop_ids, order_ids = head.stop_ids, head.order_ids
    carrier = rate_card = driver = vehicle = invoice = None
    dispatched_at: datetime | None = None
    tonu = False
    tendered = accepted = 0
    tendered_at: datetime | None = None
    cancelled_at: datetime | None = None
    exceptions: dict[str, OpenExceptionState] = {}
    accessorials: dict[str, AccessorialState] = {}
    for record in ordered:
        event = record.event
        meta = _meta(record)
        target = _LOAD_STATUS.get(type(event))
        if target is not None and not isinstance(event, Load.Planned):
            status, since = target, meta.occurred_at
        if isinstance(event, Load.Tendered):
            carrier, rate_card = event.carrier_code, event.rate_card
            tendered += 1
            tendered_at = meta.occurred_at
        elif isinstance(event, Load.TenderAccepted):
            accepted += 1
        elif isinstance(event, Load.Dispatched):
            driver, vehicle, dispatched_at = event.driver_code, event.vehicle_code, meta.occurred_at
        elif isinstance(event, Load.Cancelled):
            tonu = event.tonu
            cancelled_at = meta.occurred_at
        elif isinstance(event, Load.AccessorialRecorded):
            accessorials[event.accessorial_id] = AccessorialState(
                event.accessorial_id,
                event.code,
                event.quantity,
                event.amount,
                event.stop_id,
                (record.position,),
            )
        elif isinstance(event, Load.AccessorialCorrected):
            was = accessorials[event.accessorial_id]
            accessorials[event.accessorial_id] = AccessorialState(
                was.accessorial_id,
                was.code,
                event.quantity,
                event.amount,
                was.stop_id,
                (*was.positions, record.position),
            )
        elif isinstance(event, Load.Invoiced):
            invoice = event.invoice_number
        elif isinstance(event, Load.ExceptionRaised):
            exceptions[event.exception_id] = OpenExceptionState(
                event.exception_id,
                event.kind,
                event.stop_id,
                event.owner,
                event.note,
                meta.occurred_at,
                record.position,
            )
        elif isinstance(event, Load.ExceptionResolved):
            exceptions.pop(event.exception_id, None)
        elif isinstance(event, Load.Replanned):
            stop_ids, order_ids = event.stop_ids, event.order_ids
    return LoadState(
        load_id=head.originator_id,
        reference=head.reference,
        tenants=head.tenants,
        stop_ids=stop_ids,
        order_ids=order_ids,
        status=status,
        status_since=since,
        carrier_code=carrier,
        rate_card=rate_card,
        driver_code=driver,
        vehicle_code=vehicle,
        dispatched_at=dispatched_at,
        tonu=tonu,
        invoice_number=invoice,
        exceptions=tuple(sorted(exceptions.values(), key=lambda x: x.exception_id)),
        tendered=tendered,
        accepted=accepted,
        computed_from=tuple(sorted(r.position for r in ordered)),
        planned_km=head.planned_km,
        tendered_at=tendered_at,
        cancelled_at=cancelled_at,
        accessorials=tuple(accessorials[k] for k in sorted(accessorials)),
    )


# --- orders ----------------------------------------------------------------------------------

_ORDER_STATUS: dict[type[object], OrderStatus] = {
    Order.Placed: OrderStatus.PLACED,
    Order.Picked: OrderStatus.PICKED,
    Order.Packed: OrderStatus.PACKED,
    Order.Shipped: OrderStatus.SHIPPED,
    Order.Delivered: OrderStatus.DELIVERED,
    Order.Returned: OrderStatus.RETURNED,
    Order.Cancelled: OrderStatus.CANCELLED,
}


@dataclass(frozen=True)
class OrderState:
    order_id: UUID
    tenant: str
    reference: str
    status: OrderStatus
    on_hold: bool
    allocated_lines: tuple[int, ...]
    backordered: tuple[tuple[int, int], ...]
    load_id: UUID | None
    computed_from: tuple[int, ...]


def fold_order(records: Iterable[LogRecord]) -> OrderState | None:
    ordered = event_time_order(r for r in records if isinstance(r.event, Order.Event))
    placed = next((r for r in ordered if isinstance(r.event, Order.Placed)), None)
    if placed is None:
        return None
    head = placed.event
    assert isinstance(head, Order.Placed)
    status = OrderStatus.PLACED
    on_hold = False
    allocated: set[int] = set()
    backordered: dict[int, int] = {}
    load_id: UUID | None = None
    for record in ordered:
        event = record.event
        target = _ORDER_STATUS.get(type(event))
        if target is not None:
            status = target
        if isinstance(event, Order.LineAllocated):
            allocated.add(event.line_no)
            backordered.pop(event.line_no, None)
            if len(allocated) == len(head.lines):
                status = OrderStatus.ALLOCATED
        elif isinstance(event, Order.LineBackordered):
            backordered[event.line_no] = event.short_by
            status = OrderStatus.BACKORDERED
        elif isinstance(event, Order.Held):
            on_hold = True
        elif isinstance(event, Order.Released):
            on_hold = False
        elif isinstance(event, Order.Shipped):
            load_id = event.load_id
    return OrderState(
        order_id=head.originator_id,
        tenant=head.tenant,
        reference=head.reference,
        status=status,
        on_hold=on_hold,
        allocated_lines=tuple(sorted(allocated)),
        backordered=tuple(sorted(backordered.items())),
        load_id=load_id,
        computed_from=tuple(sorted(r.position for r in ordered)),
    )


# --- stock -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockState:
    stock_id: UUID
    warehouse: str
    sku: str
    lot: str
    on_hand: int
    reserved: int
    picked: int
    staged: int
    quarantined: int
    computed_from: tuple[int, ...]

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved - self.picked - self.staged - self.quarantined


_BUCKETS = ("on_hand", "reserved", "picked", "staged", "quarantined")


def stock_delta(event: object) -> dict[str, int]:
    """How one stock movement changes each bucket (movements add up in any order)."""
    e = event
    if isinstance(e, StockItem.Received):
        return {"on_hand": e.quantity}
    if isinstance(e, StockItem.Reserved):
        return {"reserved": e.quantity}
    if isinstance(e, StockItem.ReservationReleased):
        return {"reserved": -e.quantity}
    if isinstance(e, StockItem.Picked):
        return {"reserved": -e.quantity, "picked": e.quantity}
    if isinstance(e, StockItem.Staged):
        return {"picked": -e.quantity, "staged": e.quantity}
    if isinstance(e, StockItem.Shipped):
        return {"staged": -e.quantity, "on_hand": -e.quantity}
    if isinstance(e, StockItem.Restocked):
        return {"picked": -e.picked, "staged": -e.staged}
    if isinstance(e, StockItem.Adjusted):
        return {"on_hand": e.delta}
    if isinstance(e, StockItem.Quarantined):
        return {"quarantined": e.quantity}
    if isinstance(e, StockItem.QuarantineReleased):
        return {"quarantined": -e.quantity}
    if isinstance(e, StockItem.Damaged):
        return {"on_hand": -e.quantity, "quarantined": -e.quantity if e.from_quarantine else 0}
    return {}


def fold_stock(records: Iterable[LogRecord]) -> StockState | None:
    """Quantities of one lot from its movements, in event time."""
    ordered = event_time_order(r for r in records if isinstance(r.event, StockItem.Event))
    registered = next((r for r in ordered if isinstance(r.event, StockItem.Registered)), None)
    if registered is None:
        return None
    head = registered.event
    assert isinstance(head, StockItem.Registered)
    q = dict.fromkeys(_BUCKETS, 0)
    for record in ordered:
        for bucket, change in stock_delta(record.event).items():
            q[bucket] += change
    return StockState(
        stock_id=head.originator_id,
        warehouse=head.warehouse,
        sku=head.sku,
        lot=head.lot,
        computed_from=tuple(sorted(r.position for r in ordered)),
        **q,
    )


# --- vehicles and drivers --------------------------------------------------------------------


@dataclass(frozen=True)
class VehiclePosition:
    """The latest fix by event time (not by arrival), and the ping it came from."""

    device_id: str
    ping: Ping
    position: int

    @property
    def ping_id(self) -> str:
        return f"{self.device_id}:{self.ping.key}"

    def freshness(self, now: datetime) -> timedelta:
        return now - self.ping.occurred_at


def pings_of(records: Iterable[LogRecord]) -> list[tuple[Ping, int, str]]:
    """(ping, log position, device id) for every ping in the records."""
    found = []
    for record in records:
        if isinstance(record.event, PingLog.PingsRecorded):
            for ping in record.event.pings:
                found.append((ping, record.position, record.event.device_id))
    return found


def fold_vehicle(
    records: Iterable[LogRecord], *, as_of: datetime | None = None
) -> VehiclePosition | None:
    """The device's last known position by event time (as it happened at `as_of`)."""
    best: tuple[tuple[datetime, int, str], VehiclePosition] | None = None
    for ping, position, device_id in pings_of(records):
        if as_of is not None and ping.occurred_at > as_of:
            continue
        key = (ping.occurred_at, position, ping.key)
        if best is None or key > best[0]:
            best = (key, VehiclePosition(device_id, ping, position))
    return best[1] if best else None


def duty_changes(records: Iterable[LogRecord]) -> list[hos.DutyChange]:
    changes = []
    for record in records:
        event = record.event
        if isinstance(event, DutyLog.DutyStatusChanged):
            changes.append(
                hos.DutyChange(
                    occurred_at=_meta(record).occurred_at,
                    position=record.position,
                    status=event.status,
                    origin=event.origin.value,
                )
            )
    return changes


def fold_driver(
    records: Iterable[LogRecord], at: datetime, rules: hos.HosRules | None = None
) -> hos.HosState:
    """A driver's Hours-of-Service state at `at`, from duty changes in event time."""
    return hos.hos_state(duty_changes(records), at, rules or hos.HosRules())
