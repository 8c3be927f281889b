"""The customer-safe view of an order and its stops: what a shipper is told, in its words.

Shared by the notification outbox (webhook payloads) and the public tracking page, so both
say the same thing. Never here: rates or charges, carrier, vehicle or device codes, internal
notes and owners, another customer's stops or orders, a driver beyond the first name.

A stop is a tenant's when it serves one of the tenant's orders; a stop that serves no order
(a pickup at a warehouse, say) is shown when its location belongs to no customer or to this
one. Every state comes from the folds in `ledger.timeline`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from ledger.application import Ledger
from ledger.errors import NotFound
from ledger.loads import ExceptionKind, Load, LoadStatus
from ledger.log import LogRecord, iter_log
from ledger.orders import Order, OrderStatus
from ledger.stops import Stop, StopFact, StopKind
from ledger.timeline import (
    LoadState,
    OrderState,
    StopState,
    event_time_order,
    fold_load,
    fold_order,
    fold_stop,
)

__all__ = [
    "CUSTOMER_EXCEPTIONS",
    "ETA_HALF_WINDOW",
    "STATUS_TEXT",
    "LogStreams",
    "StopView",
    "Streams",
    "at_or_before",
    "customer_time",
    "first_name",
    "order_tracking",
    "place_name",
    "stop_public",
    "stop_view",
    "stop_views",
    "tenant_orders",
]

#: An ETA is shown as a window this wide on either side of it.
ETA_HALF_WINDOW = timedelta(minutes=30)

#: Exception kinds a customer is told about, in its words; the others (conflicting facts,
#: detention, hours-of-service risk) are internal.
CUSTOMER_EXCEPTIONS: dict[ExceptionKind, str] = {
    ExceptionKind.DELAYED: "Running late",
    ExceptionKind.SHORT: "Delivered short",
    ExceptionKind.OVER: "Delivered over",
    ExceptionKind.DAMAGED: "Damage reported",
    ExceptionKind.REFUSED: "Delivery refused",
    ExceptionKind.ATTEMPTED: "Delivery attempted",
    ExceptionKind.HELD: "Shipment on hold",
    ExceptionKind.CLAIM: "Claim opened",
}

#: The statuses a tracking page shows, in the customer's words.
STATUS_TEXT = {
    "received": "Order received",
    "processing": "Being prepared",
    "backordered": "Waiting for stock",
    "scheduled": "Scheduled",
    "dispatched": "Driver dispatched",
    "in_transit": "In transit",
    "arrived": "Arrived at the delivery location",
    "delivered": "Delivered",
    "returned": "Returned",
    "cancelled": "Cancelled",
}


class Streams(Protocol):
    """Reads of the log by stream (a projection `Batch` is one; `LogStreams` another)."""

    @property
    def ledger(self) -> Ledger: ...

    def stream(self, stream_id: UUID) -> list[LogRecord]: ...


class LogStreams:
    """Memoised stream reads of the whole log (for a page that is built once)."""

    def __init__(self, ledger: Ledger):
        self._ledger = ledger
        self._streams: dict[UUID, list[LogRecord]] = {}

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def stream(self, stream_id: UUID) -> list[LogRecord]:
        if stream_id not in self._streams:
            self._streams[stream_id] = list(iter_log(self._ledger, stream=stream_id))
        return self._streams[stream_id]


def customer_time(moment: datetime | None) -> str | None:
    """Times shown to customers: UTC, to the second."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at_or_before(records: Iterable[LogRecord], position: int) -> list[LogRecord]:
    """The records the ledger knew at `position` (what a fold said then)."""
    return [r for r in records if r.position <= position]


def place_name(ledger: Ledger, location_id: UUID) -> str:
    try:
        return ledger.location_by_id(location_id).name
    except NotFound:
        return "a location"


def _location_owner(ledger: Ledger, location_id: UUID) -> str | None:
    try:
        owner = ledger.location_by_id(location_id).owner_tenant
    except NotFound:
        return None
    return None if owner is None else str(owner)


def first_name(ledger: Ledger, driver_code: str | None) -> str | None:
    """The driver as a customer may know them: the first name, nothing else."""
    if not driver_code:
        return None
    try:
        return str(ledger.driver(driver_code).first_name)
    except NotFound:
        return None


def tenant_orders(streams: Streams, order_ids: Iterable[UUID]) -> dict[UUID, OrderState]:
    """The orders among `order_ids` that exist, by id."""
    found = {}
    for order_id in order_ids:
        state = fold_order(streams.stream(order_id))
        if state is not None:
            found[order_id] = state
    return found


@dataclass(frozen=True)
class StopView:
    """A stop's schedule (with the orders it serves) and its reconciled state."""

    head: Stop.Scheduled
    state: StopState
    orders: tuple[OrderState, ...]
    owner: str | None

    def visible_to(self, tenant: str) -> bool:
        if self.head.order_ids:
            return any(order.tenant == tenant for order in self.orders)
        return self.owner is None or self.owner == tenant

    def references(self, tenant: str) -> list[str]:
        """The tenant's order references served here."""
        return sorted(order.reference for order in self.orders if order.tenant == tenant)


def _head(records: Sequence[LogRecord]) -> Stop.Scheduled | None:
    for record in records:
        if isinstance(record.event, Stop.Scheduled):
            return record.event
    return None


def stop_view(streams: Streams, stop_id: UUID, position: int | None = None) -> StopView | None:
    """A stop as the ledger knew it at `position` (all of the stream when None)."""
    records = streams.stream(stop_id)
    if position is not None:
        records = at_or_before(records, position)
    head = _head(records)
    state = fold_stop(records)
    if head is None or state is None:
        return None
    orders = tenant_orders(streams, head.order_ids)
    return StopView(
        head=head,
        state=state,
        orders=tuple(orders[o] for o in head.order_ids if o in orders),
        owner=_location_owner(streams.ledger, head.location_id),
    )


def stop_views(streams: Streams, load: LoadState) -> list[StopView]:
    views = [stop_view(streams, stop_id) for stop_id in load.stop_ids]
    return sorted((v for v in views if v is not None), key=lambda v: v.state.sequence)


def stop_public(ledger: Ledger, view: StopView, tenant: str) -> dict[str, Any]:
    """A stop as the customer sees it (no sequence among other customers' stops)."""
    state = view.state
    target = state.appointment or state.window
    departure = state.departure
    return {
        "stop_id": str(state.stop_id),
        "kind": state.kind.value,
        "place": place_name(ledger, state.location_id),
        "orders": view.references(tenant),
        "window": {"start": customer_time(target.start), "end": customer_time(target.end)},
        "arrived_at": customer_time(state.arrival.occurred_at) if state.arrival else None,
        "departed_at": customer_time(departure.occurred_at) if departure else None,
    }


# --- the tracking page of one order ------------------------------------------------------------


def _pick_load(streams: Streams, order: OrderState, candidates: Sequence[UUID]) -> LoadState | None:
    """The load carrying the order: the one it shipped on, else the latest planned one that
    is not cancelled."""
    if order.load_id is not None:
        return fold_load(streams.stream(order.load_id))
    chosen: LoadState | None = None
    for load_id in candidates:
        load = fold_load(streams.stream(load_id))
        if load is None or order.order_id not in load.order_ids:
            continue
        if (
            chosen is None
            or chosen.status is LoadStatus.CANCELLED
            or load.status is not LoadStatus.CANCELLED
        ):
            chosen = load  # later planned loads win, a live one over a cancelled one
    return chosen


def _status(
    order: OrderState, load: LoadState | None, stops: Sequence[StopView], delivery: StopView | None
) -> str:
    if order.status is OrderStatus.CANCELLED or (load and load.status is LoadStatus.CANCELLED):
        return "cancelled"
    if order.status is OrderStatus.RETURNED:
        return "returned"
    if order.status is OrderStatus.DELIVERED:
        return "delivered"
    if delivery is not None:
        state = delivery.state
        if state.facts.get(StopFact.POD_RECEIVED) is not None or state.departure is not None:
            return "delivered"
        if state.arrival is not None:
            return "arrived"
    if load is not None:
        if load.status in (LoadStatus.DELIVERED, LoadStatus.POD_RECEIVED):
            return "delivered"
        picked_up = any(
            v.state.kind is StopKind.PICKUP and v.state.departure is not None for v in stops
        )
        if load.status is LoadStatus.IN_TRANSIT or picked_up:
            return "in_transit"
        if load.status is LoadStatus.DISPATCHED:
            return "dispatched"
        return "scheduled"
    if order.status is OrderStatus.SHIPPED:
        return "in_transit"
    if order.status is OrderStatus.BACKORDERED:
        return "backordered"
    if order.status is OrderStatus.PLACED:
        return "received"
    return "processing"


def _order_milestones(records: Sequence[LogRecord], head: Order.Placed) -> list[dict[str, Any]]:
    said: list[dict[str, Any]] = []
    allocated: set[int] = set()
    words: dict[type[object], str] = {
        Order.Picked: "Order picked",
        Order.Packed: "Order packed",
        Order.Shipped: "Loaded for delivery",
        Order.Delivered: "Order delivered",
        Order.Returned: "Order returned",
        Order.Held: "Order on hold",
        Order.Released: "Order released",
        Order.Cancelled: "Order cancelled",
    }
    for record in event_time_order(records):
        event, meta = record.event, record.meta
        if meta is None:
            continue
        text: str | None = None
        if isinstance(event, Order.Placed):
            text = "Order received"
        elif isinstance(event, Order.LineAllocated):
            allocated.add(event.line_no)
            if len(allocated) == len(head.lines):
                text = "Order confirmed: all items reserved"
        elif isinstance(event, Order.LineBackordered):
            text = "Some items are waiting for stock"
        else:
            text = words.get(type(event))
        if text is not None:
            said.append({"at": customer_time(meta.occurred_at), "text": text})
    return said


def _load_milestones(
    records: Sequence[LogRecord], shown_stops: set[UUID], first: str | None
) -> list[dict[str, Any]]:
    said: list[dict[str, Any]] = []
    shown: dict[str, ExceptionKind] = {}  # the exceptions the customer was told of
    for record in event_time_order(records):
        event, meta = record.event, record.meta
        if meta is None:
            continue
        text: str | None = None
        if isinstance(event, Load.Dispatched):
            text = f"Driver {first} dispatched" if first else "Driver dispatched"
        elif isinstance(event, Load.Cancelled):
            text = "Delivery cancelled"
        elif isinstance(event, Load.ExceptionRaised):
            visible = event.stop_id is None or event.stop_id in shown_stops
            if visible and event.kind in CUSTOMER_EXCEPTIONS:
                shown[event.exception_id] = event.kind
                text = CUSTOMER_EXCEPTIONS[event.kind]
        elif isinstance(event, Load.ExceptionResolved):
            kind = shown.get(event.exception_id)
            if kind is not None:
                text = f"Resolved: {CUSTOMER_EXCEPTIONS[kind].lower()}"
        if text is not None:
            said.append({"at": customer_time(meta.occurred_at), "text": text})
    return said


def _stop_milestones(ledger: Ledger, view: StopView) -> list[dict[str, Any]]:
    state = view.state
    place = place_name(ledger, state.location_id)
    said: list[dict[str, Any]] = []
    arrival, departure = state.arrival, state.departure
    pod = state.facts.get(StopFact.POD_RECEIVED)
    if state.kind is StopKind.PICKUP:
        if arrival is not None:
            said.append({"at": arrival.occurred_at, "text": f"Driver arrived at pickup ({place})"})
        if departure is not None:
            said.append({"at": departure.occurred_at, "text": f"Picked up at {place}"})
    else:
        if arrival is not None:
            said.append({"at": arrival.occurred_at, "text": f"Arrived at {place}"})
        if pod is not None:
            said.append({"at": pod.occurred_at, "text": f"Delivered, signed by {pod.signer}"})
        if departure is not None:
            said.append({"at": departure.occurred_at, "text": f"Driver left {place}"})
    return [{"at": customer_time(m["at"]), "text": m["text"]} for m in said]


def _expected(order: Order.Placed, delivery: StopView | None, status: str) -> dict[str, Any] | None:
    """When the delivery is expected: around the stop's ETA, else its appointment or window,
    else the window the order asked for; nothing once it has arrived."""
    if status in ("arrived", "delivered", "returned", "cancelled"):
        return None
    if delivery is None:
        window = order.window
        basis = "requested window"
    elif delivery.state.eta is not None:
        eta = delivery.state.eta
        return {
            "basis": "eta",
            "eta": customer_time(eta),
            "start": customer_time(eta - ETA_HALF_WINDOW),
            "end": customer_time(eta + ETA_HALF_WINDOW),
        }
    else:
        window = delivery.state.appointment or delivery.state.window
        basis = "appointment" if delivery.state.appointment else "delivery window"
    return {
        "basis": basis,
        "eta": None,
        "start": customer_time(window.start),
        "end": customer_time(window.end),
    }


def order_tracking(
    streams: Streams, order_id: UUID, candidate_loads: Sequence[UUID] = ()
) -> dict[str, Any] | None:
    """The tracking page of an order as a JSON document (None when there is no such order).

    `candidate_loads` are the loads planned with the order (the order knows its load only
    once it has shipped)."""
    records = streams.stream(order_id)
    order = fold_order(records)
    placed = next((r.event for r in records if isinstance(r.event, Order.Placed)), None)
    if order is None or placed is None:
        return None
    ledger = streams.ledger
    load = _pick_load(streams, order, candidate_loads)
    stops: list[StopView] = []
    if load is not None:
        for view in stop_views(streams, load):
            # its own stops, and pickups that serve no order (a warehouse) when visible
            carries = order_id in view.head.order_ids
            shared_pickup = (
                not view.head.order_ids
                and view.state.kind is StopKind.PICKUP
                and view.visible_to(order.tenant)
            )
            if carries or shared_pickup:
                stops.append(view)
    deliveries = [
        v for v in stops if v.state.kind is StopKind.DELIVERY and order_id in v.head.order_ids
    ]
    delivery = deliveries[-1] if deliveries else None
    status = _status(order, load, stops, delivery)
    driver = first_name(ledger, load.driver_code) if load is not None else None
    milestones = _order_milestones(records, placed)
    if load is not None:
        shown = {v.state.stop_id for v in stops}
        milestones += _load_milestones(streams.stream(load.load_id), shown, driver)
    for view in stops:
        milestones += _stop_milestones(ledger, view)
    milestones.sort(key=lambda m: str(m["at"]))
    pod = delivery.state.facts.get(StopFact.POD_RECEIVED) if delivery is not None else None
    return {
        "order": order.reference,
        "status": status,
        "status_text": STATUS_TEXT[status],
        "deliver_to": place_name(ledger, placed.ship_to),
        "expected": _expected(placed, delivery, status),
        "driver": driver if status in ("dispatched", "in_transit", "arrived") else None,
        "milestones": milestones,
        "proof_of_delivery": (
            {"signed_by": pod.signer, "signed_at": customer_time(pod.occurred_at)} if pod else None
        ),
    }
