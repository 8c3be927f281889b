"""A day to re-plan: orders planned onto two trucks, one of them driven partway.

PO-0..PO-4 are planned by a previous plan (L-1 on TRK-1, dispatched; L-2 on TRK-2, only
planned); PO-5 is placed afterwards and stays open. TRK-1 leaves a yard, loads at WH-1, delivers
at C-0 and heads for C-2; its pings go through the GPS reconciler, its driver's duty changes
into the duty log. Everything is a function of its arguments.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from ledger.application import Ledger, OrderDraft, StopPlan
from ledger.drivers import DutyInput, DutyStatus
from ledger.history import load_history
from ledger.plans import PlanFigures, PlannedRoute
from ledger.stops import StopKind
from ledger.telematics import PingInput
from ledger.timeline import StopState
from ledger.values import GeoPoint, OrderLine, TimeWindow
from projections.db import Database
from projections.migrations import migrate
from projections.reconciler import Reconciler
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN, reference_data

DAY = date(2026, 11, 21)
WAREHOUSE = (41.85, -87.65)
YARD = (41.80, -87.75)
CUSTOMERS = {  # order -> ship-to code, where
    "PO-0": ("C-0", (41.9351, -87.6447)),  # Lakeview
    "PO-1": ("C-1", (41.7991, -87.5874)),  # Hyde Park
    "PO-2": ("C-2", (42.0471, -87.6826)),  # Evanston
    "PO-3": ("C-3", (41.8850, -87.7845)),  # Oak Park
    "PO-4": ("C-4", (41.8381, -87.6511)),  # Bridgeport
    "PO-5": ("C-5", (41.8556, -87.6597)),  # Pilsen
}
L1 = ("PO-0", "PO-2", "PO-3", "PO-1")  # TRK-1's load, in its planned order
L2 = ("PO-4",)  # TRK-2's load, planned only
PREVIOUS = "PLAN-20261121-WH-1-previous"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 21, hour, minute, tzinfo=UTC)


def minutes(moment: datetime) -> float:
    return (moment - at(0)).total_seconds() / 60


@dataclass
class World:
    ledger: Ledger
    db: Database
    runner: Runner
    reconciler: Reconciler
    clock: Clock
    arrivals: list[datetime]
    departures: list[datetime]
    pings: list[PingInput]

    def catch_up(self) -> None:
        self.reconciler.catch_up()
        self.runner.catch_up()

    def load(self, reference: str) -> UUID:
        return self.ledger.load_by_reference(reference).id

    def stops(self, reference: str) -> list[StopState]:
        history = load_history(self.ledger, self.load(reference))
        return sorted(history.stops, key=lambda s: s.sequence)


def drive(
    path: list[tuple[tuple[float, float], int]], start: datetime, until: datetime
) -> tuple[list[PingInput], list[datetime], list[datetime]]:
    """TRK-1's pings from the yard along `path` (point, dwell minutes) at ~40 km/h every 30 s,
    up to `until`; with when it reached and left each point."""
    rng = random.Random(7)
    pings: list[PingInput] = []
    arrivals: list[datetime] = []
    departures: list[datetime] = []
    now, here = start, YARD

    def ping(point: tuple[float, float], speed: float) -> None:
        if now <= until:
            noise = 0.00003
            lat, lon = point[0] + rng.uniform(-noise, noise), point[1] + rng.uniform(-noise, noise)
            pings.append(PingInput("DEV-1", len(pings), now, lat, lon, speed, 0.0))

    for target, dwell in path:
        dlat = (target[0] - here[0]) * 111.0
        dlon = (target[1] - here[1]) * 111.0 * math.cos(math.radians(here[0]))
        steps = max(1, math.ceil(math.hypot(dlat, dlon) / 40.0 * 120))
        for i in range(steps):
            f = i / steps
            ping((here[0] + (target[0] - here[0]) * f, here[1] + (target[1] - here[1]) * f), 40)
            now += timedelta(seconds=30)
        arrivals.append(now)
        for _ in range(dwell * 2):
            ping(target, 0.0)
            now += timedelta(seconds=30)
        departures.append(now)
        here = target
    return pings, arrivals, departures


def order(ledger: Ledger, reference: str) -> UUID:
    code, (lat, lon) = CUSTOMERS[reference]
    ledger.place_order(
        ADMIN,
        "ACME",
        OrderDraft(
            reference=reference,
            lines=(OrderLine(1, "SKU-1", 10, Decimal(300), Decimal("1.2")),),
            ship_to_code=code,
            ship_to_name=f"{code} store",
            ship_to_address=f"{code} street",
            ship_to=GeoPoint(lat, lon),
            window=TimeWindow(at(13), at(20)),
        ),
    )
    order_id = ledger.order_by_reference("ACME", reference).id
    ledger.allocate_order(ADMIN, order_id, "WH-1")
    return order_id


def planned_load(
    ledger: Ledger, vehicle: str, driver: str, reference: str, orders: tuple[str, ...]
) -> tuple[PlannedRoute, list[StopPlan], str]:
    stops = [StopPlan(StopKind.PICKUP, "WH-1", TimeWindow(at(12, 55), at(13, 40)), 30)]
    for ref in orders:
        order_id = ledger.order_by_reference("ACME", ref).id
        stops.append(
            StopPlan(
                StopKind.DELIVERY,
                CUSTOMERS[ref][0],
                TimeWindow(at(13), at(20)),
                15,
                None,
                (order_id,),
            )
        )
    route = PlannedRoute(vehicle, driver, reference, orders, 60.0, 90.0, at(13), at(17))
    return route, stops, "ACME"


def duty(driver: str, changes: list[tuple[datetime, DutyStatus]]) -> list[DutyInput]:
    return [DutyInput(driver, moment, status) for moment, status in changes]


def build_world(
    ledger: Ledger,
    clock: Clock,
    store_url: str,
    *,
    until: datetime,
    tired: bool = False,
    third_truck: bool = False,
    exhausted_second_driver: bool = False,
) -> World:
    """Orders PO-0..PO-4 planned (TRK-1 dispatched with L-1, TRK-2 with L-2 only planned), PO-5
    placed afterwards (open); TRK-1 driven from the yard through WH-1 and C-0 towards C-2 until
    `until`."""
    clock.now = at(12)
    reference_data(ledger)
    for n in (2, 3) if third_truck else (2,):
        ledger.register_vehicle(
            ADMIN,
            f"TRK-{n}",
            carrier_code="FAST",
            capacity_kg=Decimal(12000),
            capacity_m3=Decimal(60),
            pallets=24,
            device_id=f"DEV-{n}",
        )
        ledger.register_driver(
            ADMIN, f"DRV-{n}", first_name="Sam", last_name=f"Driver{n}", carrier_code="FAST"
        )
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=1000)
    for reference in ("PO-0", "PO-1", "PO-2", "PO-3", "PO-4"):
        order(ledger, reference)
    clock.now = at(12, 40)
    ledger.record_plan(
        ADMIN,
        plan_id=PREVIOUS,
        day=DAY,
        fingerprint="0" * 64,
        figures=PlanFigures("distance", 90.0, 300.0, 180.0, 2, 0.0, 0.0, "test", 1.0, 1.0),
        routes=[
            planned_load(ledger, "TRK-1", "DRV-1", "L-1", L1),
            planned_load(ledger, "TRK-2", "DRV-2", "L-2", L2),
        ],
        unplaced=[],
    )
    clock.now = at(12, 45)
    order(ledger, "PO-5")
    clock.now = at(12, 50)
    load = ledger.load_by_reference("L-1").id
    ledger.tender_load(ADMIN, load, "FAST")
    ledger.accept_tender(ADMIN, load)
    ledger.dispatch_load(ADMIN, load, "DRV-1", "TRK-1")
    path = [
        (WAREHOUSE, 30),
        (CUSTOMERS["PO-0"][1], 20),
        (CUSTOMERS["PO-2"][1], 15),
        (CUSTOMERS["PO-3"][1], 15),
    ]
    pings, arrivals, departures = drive(path, at(12, 55), until)
    changes = [(at(2) if tired else at(12, 30), DutyStatus.ON_DUTY)]
    if tired:  # 9 h 15 min driven before this trip, on duty since 02:00
        changes += [
            (at(2, 30), DutyStatus.DRIVING),
            (at(8, 30), DutyStatus.OFF_DUTY),
            (at(9), DutyStatus.DRIVING),
            (at(12, 15), DutyStatus.ON_DUTY),
        ]
    changes.append((at(12, 55), DutyStatus.DRIVING))
    for arrived, departed in zip(arrivals, departures, strict=True):
        changes += [(arrived, DutyStatus.ON_DUTY), (departed, DutyStatus.DRIVING)]
    changes = [(moment, status) for moment, status in changes if moment <= until]
    second: list[tuple[datetime, DutyStatus]] = []
    if exhausted_second_driver:
        second = [(at(1), DutyStatus.DRIVING), (at(12), DutyStatus.OFF_DUTY)]
    clock.now = until
    ledger.ingest_pings(ADMIN, pings)
    ledger.ingest_duty(ADMIN, duty("DRV-1", changes) + duty("DRV-2", second))
    db = Database(store_url)
    migrate(db)
    world = World(
        ledger, db, Runner(ledger, db), Reconciler(ledger), clock, arrivals, departures, pings
    )
    world.catch_up()
    return world
