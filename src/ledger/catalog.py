"""Write-side indexes keyed by natural keys: which lots exist for a warehouse × sku."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.events import LedgerEvent, Meta
from ledger.ids import natural_id

__all__ = ["SkuLots"]


class SkuLots(Aggregate):
    """The stock items (lots) of one sku in one warehouse, in the order they were registered."""

    class Event(LedgerEvent):
        pass

    class Opened(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        warehouse: str
        sku: str

    class LotAdded(Event):
        stock_id: UUID
        lot: str

    @staticmethod
    def create_id(warehouse: str, sku: str) -> UUID:
        return natural_id("sku-lots", warehouse, sku)

    @event(Opened)
    def __init__(self, meta: Meta, warehouse: str, sku: str) -> None:
        self.warehouse = warehouse
        self.sku = sku
        self.lots: dict[str, UUID] = {}

    def add(self, meta: Meta, stock_id: UUID, lot: str) -> None:
        if lot not in self.lots:
            self._lot_added(meta, stock_id, lot)

    @event(LotAdded)
    def _lot_added(self, meta: Meta, stock_id: UUID, lot: str) -> None:
        self.lots[lot] = stock_id
