"""Write-side indexes keyed by natural keys: the lots of a warehouse × sku, the loads of a
vehicle."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.events import LedgerEvent, Meta
from ledger.ids import natural_id

__all__ = ["SkuLots", "VehicleLoads"]


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


class VehicleLoads(Aggregate):
    """The loads a vehicle was dispatched on, in order: how a ping finds the stops it serves."""

    class Event(LedgerEvent):
        pass

    class Opened(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        vehicle_code: str

    class LoadAssigned(Event):
        load_id: UUID

    @staticmethod
    def create_id(vehicle_code: str) -> UUID:
        return natural_id("vehicle-loads", vehicle_code)

    @event(Opened)
    def __init__(self, meta: Meta, vehicle_code: str) -> None:
        self.vehicle_code = vehicle_code
        self.loads: list[tuple[UUID, datetime]] = []

    def assign(self, meta: Meta, load_id: UUID) -> None:
        if all(existing != load_id for existing, _ in self.loads):
            self._assigned(meta, load_id)

    @event(LoadAssigned)
    def _assigned(self, meta: Meta, load_id: UUID) -> None:
        self.loads.append((load_id, meta.occurred_at))
