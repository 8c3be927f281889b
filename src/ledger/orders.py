"""Orders (OMS): the customer's intent, from placement to delivery or return."""

from __future__ import annotations

import enum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidInput, InvalidTransition
from ledger.events import LedgerEvent, Meta, register_value_type
from ledger.ids import natural_id
from ledger.values import OrderLine, ServiceLevel, TimeWindow

__all__ = ["Order", "OrderStatus"]


@register_value_type
class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    ALLOCATED = "allocated"
    BACKORDERED = "backordered"
    PICKED = "picked"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURNED = "returned"
    CANCELLED = "cancelled"


_OPEN = {OrderStatus.PLACED, OrderStatus.ALLOCATED, OrderStatus.BACKORDERED}


class Order(Aggregate):
    """A shipper's order: lines of sku × quantity to a ship-to location within a window."""

    class Event(LedgerEvent):
        pass

    class Placed(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        tenant: str
        reference: str
        lines: tuple[OrderLine, ...]
        ship_to: UUID
        window: TimeWindow
        service_level: ServiceLevel
        service_minutes: int
        notes: str

    class LineAllocated(Event):
        line_no: int
        warehouse: str
        lots: tuple[tuple[UUID, int], ...]  # (stock item id, quantity)

    class LineBackordered(Event):
        line_no: int
        short_by: int

    class Picked(Event):
        pass

    class Packed(Event):
        pass

    class Shipped(Event):
        load_id: UUID

    class Delivered(Event):
        short: tuple[tuple[int, int], ...]  # (line_no, quantity not delivered)

    class Returned(Event):
        pass

    class Held(Event):
        pass

    class Released(Event):
        pass

    class Cancelled(Event):
        pass

    @staticmethod
    def create_id(tenant: str, reference: str) -> UUID:
        return natural_id("order", tenant, reference)

    @classmethod
    def place(
        cls,
        meta: Meta,
        *,
        tenant: str,
        reference: str,
        lines: tuple[OrderLine, ...],
        ship_to: UUID,
        window: TimeWindow,
        service_level: ServiceLevel = ServiceLevel.STANDARD,
        service_minutes: int = 15,
        notes: str = "",
    ) -> Order:
        if not reference.strip():
            raise InvalidInput("reference must not be empty", field="reference", rule="required")
        if not lines:
            raise InvalidInput("an order needs at least one line", field="lines", rule="required")
        numbers = [line.line_no for line in lines]
        if len(set(numbers)) != len(numbers):
            raise InvalidInput("line numbers must be unique", field="line_no", rule="unique")
        if service_minutes < 0:
            raise InvalidInput("service_minutes must not be negative", field="service_minutes")
        created: Order = cls(
            meta=meta,
            tenant=tenant,
            reference=reference,
            lines=lines,
            ship_to=ship_to,
            window=window,
            service_level=service_level,
            service_minutes=service_minutes,
            notes=notes,
        )
        return created

    @event(Placed)
    def __init__(
        self,
        meta: Meta,
        tenant: str,
        reference: str,
        lines: tuple[OrderLine, ...],
        ship_to: UUID,
        window: TimeWindow,
        service_level: ServiceLevel,
        service_minutes: int,
        notes: str,
    ) -> None:
        self.tenant = tenant
        self.reference = reference
        self.lines = lines
        self.ship_to = ship_to
        self.window = window
        self.service_level = service_level
        self.service_minutes = service_minutes
        self.notes = notes
        self.status = OrderStatus.PLACED
        self.on_hold = False
        self.allocations: dict[int, tuple[str, tuple[tuple[UUID, int], ...]]] = {}
        self.backordered: dict[int, int] = {}
        self.load_id: UUID | None = None

    # --- commands -----------------------------------------------------------------------

    def line(self, line_no: int) -> OrderLine:
        for line in self.lines:
            if line.line_no == line_no:
                return line
        raise InvalidInput(f"order has no line {line_no}", field="line_no", rule="must_exist")

    def _require(self, command: str, allowed: set[OrderStatus], *, not_held: bool = True) -> None:
        if self.status not in allowed:
            raise InvalidTransition("order", self.status.value, command)
        if not_held and self.on_hold:
            raise InvalidTransition("order", "on hold", command)

    def allocate_line(
        self, meta: Meta, line_no: int, warehouse: str, lots: tuple[tuple[UUID, int], ...]
    ) -> None:
        self._require("allocate", _OPEN)
        line = self.line(line_no)
        if line_no in self.allocations:
            raise InvalidTransition("order line", "allocated", "allocate")
        if sum(q for _, q in lots) != line.quantity:
            raise InvalidInput(
                f"allocation of line {line_no} must cover its quantity {line.quantity}",
                field="lots",
                rule="sum == quantity",
            )
        self._line_allocated(meta, line_no, warehouse, lots)

    @event(LineAllocated)
    def _line_allocated(
        self, meta: Meta, line_no: int, warehouse: str, lots: tuple[tuple[UUID, int], ...]
    ) -> None:
        self.allocations[line_no] = (warehouse, lots)
        self.backordered.pop(line_no, None)
        self._settle_allocation()

    def backorder_line(self, meta: Meta, line_no: int, short_by: int) -> None:
        self._require("backorder", _OPEN)
        self.line(line_no)
        if short_by <= 0:
            raise InvalidInput("short_by must be positive", field="short_by", rule="> 0")
        self._line_backordered(meta, line_no, short_by)

    @event(LineBackordered)
    def _line_backordered(self, meta: Meta, line_no: int, short_by: int) -> None:
        self.backordered[line_no] = short_by
        self._settle_allocation()

    def _settle_allocation(self) -> None:
        if len(self.allocations) == len(self.lines):
            self.status = OrderStatus.ALLOCATED
        elif self.backordered:
            self.status = OrderStatus.BACKORDERED

    def pick(self, meta: Meta) -> None:
        self._require("pick", {OrderStatus.ALLOCATED})
        self._picked(meta)

    @event(Picked)
    def _picked(self, meta: Meta) -> None:
        self.status = OrderStatus.PICKED

    def pack(self, meta: Meta) -> None:
        self._require("pack", {OrderStatus.PICKED})
        self._packed(meta)

    @event(Packed)
    def _packed(self, meta: Meta) -> None:
        self.status = OrderStatus.PACKED

    def ship(self, meta: Meta, load_id: UUID) -> None:
        self._require("ship", {OrderStatus.PACKED})
        self._shipped(meta, load_id)

    @event(Shipped)
    def _shipped(self, meta: Meta, load_id: UUID) -> None:
        self.status = OrderStatus.SHIPPED
        self.load_id = load_id

    def deliver(self, meta: Meta, short: tuple[tuple[int, int], ...] = ()) -> None:
        self._require("deliver", {OrderStatus.SHIPPED}, not_held=False)
        for line_no, quantity in short:
            if not 0 < quantity <= self.line(line_no).quantity:
                raise InvalidInput(
                    f"short quantity {quantity} for line {line_no} is out of range",
                    field="short",
                    rule="0 < short <= quantity",
                )
        self._delivered(meta, short)

    @event(Delivered)
    def _delivered(self, meta: Meta, short: tuple[tuple[int, int], ...]) -> None:
        self.status = OrderStatus.DELIVERED
        self.short = short

    def return_(self, meta: Meta) -> None:
        self._require("return", {OrderStatus.DELIVERED}, not_held=False)
        meta.require_reason("a return")
        self._returned(meta)

    @event(Returned)
    def _returned(self, meta: Meta) -> None:
        self.status = OrderStatus.RETURNED

    def hold(self, meta: Meta) -> None:
        self._require("hold", _OPEN | {OrderStatus.PICKED, OrderStatus.PACKED})
        meta.require_reason("a hold")
        self._held(meta)

    @event(Held)
    def _held(self, meta: Meta) -> None:
        self.on_hold = True

    def release(self, meta: Meta) -> None:
        if not self.on_hold:
            raise InvalidTransition("order", "not on hold", "release")
        self._released(meta)

    @event(Released)
    def _released(self, meta: Meta) -> None:
        self.on_hold = False

    def cancel(self, meta: Meta) -> None:
        self._require("cancel", _OPEN | {OrderStatus.PICKED, OrderStatus.PACKED}, not_held=False)
        meta.require_reason("a cancellation")
        self._cancelled(meta)

    @event(Cancelled)
    def _cancelled(self, meta: Meta) -> None:
        self.status = OrderStatus.CANCELLED
