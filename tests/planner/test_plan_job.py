"""The planner in the product: the day's open orders become loads recorded with the plan's
fingerprint and objective; orders it cannot place come back with a reason."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ledger.application import Ledger, OrderDraft
from ledger.values import GeoPoint, OrderLine, TimeWindow
from planner.jobs import PlanJobs, plan_day
from projections.db import Database
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN, reference_data

DAY = date(2026, 11, 21)
CUSTOMERS = [
    ("Lakeview", 41.9351, -87.6447),
    ("Hyde Park", 41.7991, -87.5874),
    ("Evanston", 42.0471, -87.6826),
    ("Oak Park", 41.8850, -87.7845),
]


def open_orders(ledger: Ledger, heavy: bool = False) -> None:
    reference_data(ledger)
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=10_000)
    start = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
    for n, (name, lat, lon) in enumerate(CUSTOMERS):
        weight = Decimal(50_000) if heavy and n == 0 else Decimal(300)
        draft = OrderDraft(
            reference=f"PO-{n}",
            lines=(OrderLine(1, "SKU-1", 10, weight, Decimal("1.2")),),
            ship_to_code=f"C-{n}",
            ship_to_name=name,
            ship_to_address=f"{name} Ave",
            ship_to=GeoPoint(lat, lon),
            window=TimeWindow(start, start + timedelta(hours=6)),
        )
        ledger.place_order(ADMIN, "ACME", draft)
        order = ledger.order_by_reference("ACME", f"PO-{n}")
        ledger.allocate_order(ADMIN, order.id, "WH-1")


def test_a_day_is_planned_into_loads_with_its_fingerprint_and_objective(
    ledger: Ledger, clock: Clock, db: Database
) -> None:
    open_orders(ledger)
    Runner(ledger, db).catch_up()

    plan_id = plan_day(ledger, db, ADMIN, DAY, "WH-1", time_limit=2)
    again = plan_day(ledger, db, ADMIN, DAY, "WH-1", time_limit=2)
    Runner(ledger, db).catch_up()

    record = ledger.find_plan(plan_id)
    assert record is not None and len(record.fingerprint) == 64
    assert record.figures.vehicles == len(record.routes) >= 1
    assert record.unplaced == ()
    served = sorted(ref for route in record.routes for ref in route.orders)
    assert served == ["PO-0", "PO-1", "PO-2", "PO-3"]
    loads = db.query("SELECT reference, status, stops_total FROM load_board ORDER BY reference")
    assert [r[1] for r in loads] == ["planned"] * len(record.routes)
    assert sum(int(r[2]) for r in loads) == 4 + len(record.routes)  # a pickup per route
    assert again == plan_id  # the same inputs: the same plan, recorded once
    later = plan_day(ledger, db, ADMIN, DAY, "WH-1", time_limit=2)
    leftover = ledger.find_plan(later)
    assert later != plan_id and leftover is not None and leftover.routes == ()  # nothing open


def test_an_order_no_truck_can_carry_comes_back_with_the_reason(
    ledger: Ledger, clock: Clock, db: Database
) -> None:
    open_orders(ledger, heavy=True)
    jobs = PlanJobs(ledger, db)
    Runner(ledger, db).catch_up()

    job = jobs.start(ADMIN, DAY, "WH-1", time_limit=2)
    deadline = time.monotonic() + 60
    while job.state == "running" and time.monotonic() < deadline:
        time.sleep(0.1)

    assert job.state == "done", job.error
    record = ledger.find_plan(job.plan_id or "")
    assert record is not None
    assert [(u.order_reference, u.reason) for u in record.unplaced] == [("PO-0", "capacity")]
    assert job.elapsed_seconds > 0


def test_a_second_plan_of_the_day_leaves_the_trucks_and_drivers_of_the_first_alone(
    ledger: Ledger, clock: Clock, db: Database
) -> None:
    open_orders(ledger)
    Runner(ledger, db).catch_up()
    first = ledger.find_plan(plan_day(ledger, db, ADMIN, DAY, "WH-1", time_limit=2))
    assert first is not None and first.routes
    start = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
    late = OrderDraft(
        reference="PO-LATE",
        lines=(OrderLine(1, "SKU-1", 10, Decimal(300), Decimal("1.2")),),
        ship_to_code="C-0",
        ship_to_name="Lakeview",
        ship_to_address="Lakeview Ave",
        ship_to=GeoPoint(41.9351, -87.6447),
        window=TimeWindow(start, start + timedelta(hours=6)),
    )
    ledger.place_order(ADMIN, "ACME", late)
    ledger.allocate_order(ADMIN, ledger.order_by_reference("ACME", "PO-LATE").id, "WH-1")
    Runner(ledger, db).catch_up()

    second = ledger.find_plan(plan_day(ledger, db, ADMIN, DAY, "WH-1", time_limit=2))

    assert second is not None
    taken = {(r.vehicle_code, r.driver_code) for r in first.routes}
    assert not {r.vehicle_code for r in second.routes} & {v for v, _ in taken}
    assert not {r.driver_code for r in second.routes} & {d for _, d in taken if d}
    placed = {ref for r in second.routes for ref in r.orders}
    unplaced = {u.order_reference for u in second.unplaced}
    assert placed | unplaced == {"PO-LATE"}
