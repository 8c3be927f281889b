"""Small builders for test data: reference data, orders, loads (real ledger calls)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from ledger.application import Caller, Ledger, OrderDraft, StopPlan
from ledger.events import Source
from ledger.stops import StopKind
from ledger.values import GeoPoint, OrderLine, TimeWindow

ADMIN = Caller(actor="test:admin", source=Source.API, correlation_id="test")
OPERATOR = Caller(actor="test:operator", source=Source.OPERATOR, correlation_id="test")


def reference_data(ledger: Ledger) -> None:
    """A tenant, a carrier with a vehicle and a driver, a warehouse and a customer dock."""
    ledger.open_account(ADMIN, "ACME", "Acme Foods")
    ledger.register_carrier(ADMIN, "FAST", "Fast Freight", scac="FSTF")
    ledger.register_vehicle(
        ADMIN,
        "TRK-1",
        carrier_code="FAST",
        capacity_kg=Decimal(12000),
        capacity_m3=Decimal(60),
        pallets=24,
        device_id="DEV-1",
    )
    ledger.register_driver(ADMIN, "DRV-1", first_name="Ana", last_name="Lopez", carrier_code="FAST")
    ledger.register_location(
        ADMIN, "WH-1", name="Main warehouse", address="1 Dock Rd", lat=41.85, lon=-87.65
    )
    ledger.register_location(
        ADMIN,
        "CUST-1",
        name="Lakeview Grocers",
        address="2900 N Broadway",
        lat=41.9351,
        lon=-87.6447,
        owner_tenant="ACME",
    )


def window(start: datetime, hours: float = 4) -> TimeWindow:
    return TimeWindow(start, start + timedelta(hours=hours))


def order_draft(reference: str, start: datetime, *lines: tuple[str, int]) -> OrderDraft:
    return OrderDraft(
        reference=reference,
        lines=tuple(OrderLine(i, sku, qty, Decimal(qty)) for i, (sku, qty) in enumerate(lines, 1)),
        ship_to_code="CUST-1",
        ship_to_name="Lakeview Grocers",
        ship_to_address="2900 N Broadway",
        ship_to=GeoPoint(41.9351, -87.6447),
        window=window(start),
    )


def plan_simple_load(ledger: Ledger, reference: str, start: datetime) -> UUID:
    ledger.plan_load(
        ADMIN,
        reference,
        [
            StopPlan(StopKind.PICKUP, "WH-1", window(start, 2)),
            StopPlan(StopKind.DELIVERY, "CUST-1", window(start + timedelta(hours=2), 4)),
        ],
    )
    return ledger.load_by_reference(reference).id
