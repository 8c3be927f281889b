"""Stock (WMS): one stream per warehouse × sku × lot; quantities come only from movements.

Invariant: available = on hand − reserved − picked − staged − quarantined ≥ 0, and every
bucket is ≥ 0. Expired or quarantined stock is never allocatable.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InsufficientStock, InvalidInput, NotAllocatable
from ledger.events import LedgerEvent, Meta
from ledger.ids import natural_id

__all__ = ["StockItem"]


#: No movement is larger than this (a typo, not a warehouse): 10^9 units.
MAX_QUANTITY = 1_000_000_000


def _positive(quantity: int, field: str = "quantity") -> int:
    if quantity <= 0:
        raise InvalidInput(f"{field} must be positive, got {quantity}", field=field, rule="> 0")
    if quantity > MAX_QUANTITY:
        raise InvalidInput(
            f"{field} {quantity} is more than {MAX_QUANTITY}", field=field, rule="<= 10^9"
        )
    return quantity


class StockItem(Aggregate):
    """Quantities of one lot of one sku in one warehouse."""

    class Event(LedgerEvent):
        pass

    class Registered(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        warehouse: str
        sku: str
        lot: str
        expiry: date | None

    class Received(Event):
        quantity: int

    class Reserved(Event):
        order_id: UUID
        quantity: int

    class ReservationReleased(Event):
        order_id: UUID
        quantity: int

    class Picked(Event):
        order_id: UUID
        quantity: int

    class Staged(Event):
        order_id: UUID
        quantity: int

    class Shipped(Event):
        order_id: UUID
        quantity: int

    class Restocked(Event):
        """An order's picked and staged units put back on the shelf (the order was cancelled)."""

        order_id: UUID
        picked: int
        staged: int

    class Adjusted(Event):
        delta: int

    class Quarantined(Event):
        quantity: int

    class QuarantineReleased(Event):
        quantity: int

    class Damaged(Event):
        quantity: int
        from_quarantine: bool

    @staticmethod
    def create_id(warehouse: str, sku: str, lot: str) -> UUID:
        return natural_id("stock", warehouse, sku, lot)

    @event(Registered)
    def __init__(self, meta: Meta, warehouse: str, sku: str, lot: str, expiry: date | None) -> None:
        self.warehouse = warehouse
        self.sku = sku
        self.lot = lot
        self.expiry = expiry
        self.on_hand = 0
        self.quarantined = 0
        self.reserved: dict[UUID, int] = {}
        self.picked: dict[UUID, int] = {}
        self.staged: dict[UUID, int] = {}

    # --- derived quantities ---------------------------------------------------------------

    @property
    def committed(self) -> int:
        return sum(self.reserved.values()) + sum(self.picked.values()) + sum(self.staged.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.committed - self.quarantined

    def is_expired_on(self, day: date) -> bool:
        return self.expiry is not None and day > self.expiry

    # --- commands -------------------------------------------------------------------------

    def receive(self, meta: Meta, quantity: int) -> None:
        self._received(meta, _positive(quantity))

    @event(Received)
    def _received(self, meta: Meta, quantity: int) -> None:
        self.on_hand += quantity

    def reserve(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        _positive(quantity)
        if self.is_expired_on(meta.occurred_at.date()):
            raise NotAllocatable(
                f"lot {self.lot or '(none)'} of {self.sku} expired on {self.expiry}",
                field="lot",
                rule="expired stock is not allocatable",
            )
        if quantity > self.available:
            raise InsufficientStock(
                f"cannot reserve {quantity} of {self.sku} in {self.warehouse}: "
                f"{self.available} available",
                field="quantity",
                rule="available >= quantity",
            )
        self._reserved(meta, order_id, quantity)

    @event(Reserved)
    def _reserved(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        self.reserved[order_id] = self.reserved.get(order_id, 0) + quantity

    def release(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        self._take(self.reserved, order_id, _positive(quantity), "reserved")
        self._reservation_released(meta, order_id, quantity)

    @event(ReservationReleased)
    def _reservation_released(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        _move(self.reserved, None, order_id, quantity)

    def pick(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        self._take(self.reserved, order_id, _positive(quantity), "reserved")
        self._picked(meta, order_id, quantity)

    @event(Picked)
    def _picked(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        _move(self.reserved, self.picked, order_id, quantity)

    def stage(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        self._take(self.picked, order_id, _positive(quantity), "picked")
        self._staged(meta, order_id, quantity)

    @event(Staged)
    def _staged(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        _move(self.picked, self.staged, order_id, quantity)

    def ship(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        self._take(self.staged, order_id, _positive(quantity), "staged")
        self._shipped(meta, order_id, quantity)

    @event(Shipped)
    def _shipped(self, meta: Meta, order_id: UUID, quantity: int) -> None:
        _move(self.staged, None, order_id, quantity)
        self.on_hand -= quantity

    def restock(self, meta: Meta, order_id: UUID) -> None:
        """Puts everything picked or staged for an order back to available stock."""
        picked, staged = self.picked.get(order_id, 0), self.staged.get(order_id, 0)
        if picked or staged:
            self._restocked(meta, order_id, picked, staged)

    @event(Restocked)
    def _restocked(self, meta: Meta, order_id: UUID, picked: int, staged: int) -> None:
        self.picked.pop(order_id, None)
        self.staged.pop(order_id, None)

    def adjust(self, meta: Meta, delta: int) -> None:
        """A cycle count: on hand moves by `delta`; it may not fall below what is committed."""
        meta.require_reason("a stock adjustment")
        if delta == 0:
            raise InvalidInput("delta must not be zero", field="delta", rule="!= 0")
        _positive(abs(delta), "delta")
        if delta < 0 and -delta > self.available:
            raise InsufficientStock(
                f"cannot adjust {self.sku} by {delta}: only {self.available} uncommitted",
                field="delta",
                rule="available >= -delta",
            )
        self._adjusted(meta, delta)

    @event(Adjusted)
    def _adjusted(self, meta: Meta, delta: int) -> None:
        self.on_hand += delta

    def quarantine(self, meta: Meta, quantity: int) -> None:
        meta.require_reason("a quarantine")
        if _positive(quantity) > self.available:
            raise InsufficientStock(
                f"cannot quarantine {quantity}: {self.available} available",
                field="quantity",
                rule="available >= quantity",
            )
        self._quarantined(meta, quantity)

    @event(Quarantined)
    def _quarantined(self, meta: Meta, quantity: int) -> None:
        self.quarantined += quantity

    def release_quarantine(self, meta: Meta, quantity: int) -> None:
        if _positive(quantity) > self.quarantined:
            raise InsufficientStock(
                f"cannot release {quantity} from quarantine: {self.quarantined} quarantined",
                field="quantity",
                rule="quarantined >= quantity",
            )
        self._quarantine_released(meta, quantity)

    @event(QuarantineReleased)
    def _quarantine_released(self, meta: Meta, quantity: int) -> None:
        self.quarantined -= quantity

    def damage(self, meta: Meta, quantity: int, *, from_quarantine: bool = False) -> None:
        meta.require_reason("a damage write-off")
        limit = self.quarantined if from_quarantine else self.available
        if _positive(quantity) > limit:
            raise InsufficientStock(
                f"cannot write off {quantity} as damaged: only {limit} "
                f"{'quarantined' if from_quarantine else 'available'}",
                field="quantity",
                rule="quantity <= limit",
            )
        self._damaged(meta, quantity, from_quarantine)

    @event(Damaged)
    def _damaged(self, meta: Meta, quantity: int, from_quarantine: bool) -> None:
        self.on_hand -= quantity
        if from_quarantine:
            self.quarantined -= quantity

    def _take(self, bucket: dict[UUID, int], order_id: UUID, quantity: int, name: str) -> None:
        held = bucket.get(order_id, 0)
        if quantity > held:
            raise InsufficientStock(
                f"order {order_id} has {held} {name} of {self.sku}, not {quantity}",
                field="quantity",
                rule=f"{name} >= quantity",
            )


def _move(
    source: dict[UUID, int], target: dict[UUID, int] | None, order_id: UUID, quantity: int
) -> None:
    left = source[order_id] - quantity
    if left:
        source[order_id] = left
    else:
        del source[order_id]
    if target is not None:
        target[order_id] = target.get(order_id, 0) + quantity
