"""Orders and the fleet: what the planner and dispatch ask of the day (from `fold_order`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

from ledger.loads import Load
from ledger.log import LogRecord
from ledger.orders import Order
from ledger.reference import Driver, Vehicle
from ledger.timeline import fold_order
from projections.view import Batch, View, iso

__all__ = ["Fleet", "Orders"]

_ORDER = """
INSERT INTO orders (order_id, tenant, reference, status, on_hold, window_start, window_end, day,
    ship_to, warehouse, weight_kg, volume_m3, service_minutes, load_id, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, on_hold = excluded.on_hold,
    warehouse = excluded.warehouse, load_id = COALESCE(excluded.load_id, orders.load_id),
    position = excluded.position
"""


class Orders(View):
    name = "orders"
    tables = ("orders",)

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        touched: dict[UUID, None] = {}
        for record in records:
            if isinstance(record.event, Order.Event):
                touched[record.stream] = None
        self._upsert(batch, touched)
        for record in records:  # an order planned onto a load is not open for planning
            event = record.event
            if isinstance(event, Load.Planned | Load.Replanned) and event.order_ids:
                batch.cursor.executemany(
                    "UPDATE orders SET load_id = %s WHERE order_id = %s",
                    [(str(record.stream), str(o)) for o in event.order_ids],
                )
            elif isinstance(event, Load.Cancelled):
                batch.cursor.execute(
                    "UPDATE orders SET load_id = NULL WHERE load_id = %s AND status <> 'shipped'",
                    (str(record.stream),),
                )

    def _upsert(self, batch: Batch, touched: dict[UUID, None]) -> None:
        rows = []
        for order_id in touched:
            stream = batch.stream(order_id)
            state = fold_order(stream)
            placed = next((r.event for r in stream if isinstance(r.event, Order.Placed)), None)
            if state is None or placed is None:
                continue
            warehouse = None
            for record in stream:
                if isinstance(record.event, Order.LineAllocated):
                    warehouse = record.event.warehouse
            weight = sum((line.weight_kg for line in placed.lines), Decimal(0))
            volume = sum((line.volume_m3 for line in placed.lines), Decimal(0))
            rows.append(
                (
                    str(order_id),
                    state.tenant,
                    state.reference,
                    state.status.value,
                    int(state.on_hold),
                    iso(placed.window.start),
                    iso(placed.window.end),
                    placed.window.start.date().isoformat(),
                    str(placed.ship_to),
                    warehouse,
                    str(weight),
                    str(volume),
                    placed.service_minutes,
                    str(state.load_id) if state.load_id else None,
                    max(r.position for r in stream),
                )
            )
        batch.cursor.executemany(_ORDER, rows)


class Fleet(View):
    name = "fleet"
    tables = ("fleet_vehicles", "fleet_drivers")

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        for record in records:
            event = record.event
            if isinstance(event, Vehicle.Registered):
                batch.cursor.execute(
                    "INSERT INTO fleet_vehicles (vehicle_code, carrier_code, capacity_kg, "
                    "capacity_m3, pallets, device_id, position) VALUES (%s, %s, %s, %s, %s, %s, "
                    "%s) ON CONFLICT (vehicle_code) DO NOTHING",
                    (
                        event.code,
                        event.carrier_code,
                        str(event.capacity_kg),
                        str(event.capacity_m3),
                        event.pallets,
                        event.device_id,
                        record.position,
                    ),
                )
            elif isinstance(event, Driver.Registered):
                batch.cursor.execute(
                    "INSERT INTO fleet_drivers (driver_code, carrier_code, first_name, "
                    "cycle_hours, position) VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (driver_code) DO NOTHING",
                    (
                        event.code,
                        event.carrier_code,
                        event.first_name,
                        event.cycle_hours,
                        record.position,
                    ),
                )
