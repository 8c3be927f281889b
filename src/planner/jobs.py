"""Planning in the product: the day's open orders and available vehicles become a plan
request; a background job solves it with progress; the chosen plan is recorded as events (a
load per route, the inputs' fingerprint, the objective broken down, the orders left out and
why).

Times in the request are minutes after midnight UTC of the planned day. A warehouse's code is
the code of its location. Each vehicle is paired with a driver of its carrier (in code order)
and starts and ends at the warehouse whose orders are being planned; its driver's remaining
Hours of Service at the shift start come from the ledger's duty log.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from uuid import UUID

from ledger.application import Caller, Ledger, StopPlan
from ledger.history import driver_history
from ledger.plans import PlanFigures, PlannedRoute, UnplacedOrder
from ledger.stops import StopKind
from ledger.values import TimeWindow as LedgerWindow
from planner.model import (
    HoursOfService,
    Location,
    Plan,
    PlanRequest,
    Stop,
    TimeWindow,
    TravelModel,
    Vehicle,
)
from planner.portfolio import Progress, solve
from planner.vrplib_io import fingerprint
from projections.db import Database

__all__ = ["DayPlan", "PlanJob", "PlanJobs", "build_day_request", "plan_day"]

SHIFT = (6 * 60, 20 * 60)  # 06:00–20:00 UTC
SPEED_KMH = 45.0
#: How the plan job (and the re-plan, and the ETAs of what they plan) reckon the road.
TRAVEL = TravelModel(kind="haversine", speed_kmh=SPEED_KMH)
#: A truck's time loading at the warehouse: the planned service of every plan's pickup.
LOADING_MINUTES = 30


@dataclass
class DayPlan:
    """A request built from the ledger, and what each of its parts stands for."""

    day: date
    warehouse: str
    request: PlanRequest
    orders: dict[str, tuple[UUID, str, str]]  # stop id -> (order id, reference, tenant)
    drivers: dict[str, str | None]  # vehicle code -> driver code


def _minutes(day: date, moment: datetime) -> float:
    midnight = datetime.combine(day, clock_time(0), tzinfo=UTC)
    return (moment - midnight).total_seconds() / 60


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _spoken_for(ledger: Ledger, db: Database, day: date) -> tuple[set[str], set[str]]:
    """Trucks and drivers already taken: on a load under way (any day), or on a load of this
    day that is planned, tendered or accepted — its truck and driver are those of its route
    in the plan that made it (the board knows them only from dispatch)."""
    vehicles: set[str] = set()
    drivers: set[str] = set()
    for load_id, reference, vehicle, driver, planned_day in db.query(
        "SELECT load_id, reference, vehicle_code, driver_code, planned_day FROM load_board "
        "WHERE status IN ('planned', 'tendered', 'accepted', 'dispatched', 'in_transit') "
        "ORDER BY reference"
    ):
        if vehicle is None and planned_day == day.isoformat():
            plan_id = ledger.load(UUID(str(load_id))).plan_id
            record = ledger.find_plan(plan_id) if plan_id else None
            routes = record.routes if record else ()
            route = next((r for r in routes if r.load_reference == reference), None)
            if route is not None:
                vehicle, driver = route.vehicle_code, route.driver_code
        vehicles.update([str(vehicle)] if vehicle else [])
        drivers.update([str(driver)] if driver else [])
    return vehicles, drivers


def build_day_request(ledger: Ledger, db: Database, day: date, warehouse: str) -> DayPlan:
    """Open orders of `day` allocated from `warehouse`, and the vehicles free to serve them."""
    rows = db.query(
        "SELECT order_id, reference, tenant, ship_to, window_start, window_end, weight_kg, "
        "volume_m3, service_minutes FROM orders WHERE day = %s AND warehouse = %s "
        "AND status IN ('allocated', 'picked', 'packed') AND on_hold = 0 AND load_id IS NULL "
        "ORDER BY reference",
        (day.isoformat(), warehouse),
    )
    depot = ledger.location(warehouse)
    locations = [Location(warehouse, lat=depot.point.lat, lon=depot.point.lon)]
    index: dict[str, int] = {}
    stops: list[Stop] = []
    orders: dict[str, tuple[UUID, str, str]] = {}
    for order_id, reference, tenant, ship_to, start, end, weight, volume, service in rows:
        place = ledger.location_by_id(UUID(str(ship_to)))
        if place.code not in index:
            index[place.code] = len(locations)
            locations.append(Location(place.code, lat=place.point.lat, lon=place.point.lon))
        stop_id = f"{tenant}/{reference}"
        orders[stop_id] = (UUID(str(order_id)), str(reference), str(tenant))
        window = TimeWindow(
            max(0.0, _minutes(day, _parse(str(start)))), _minutes(day, _parse(str(end)))
        )
        stops.append(
            Stop(
                stop_id,
                index[place.code],
                demand={
                    "kg": int(Decimal(str(weight)).to_integral_value()),
                    "dm3": int((Decimal(str(volume)) * 1000).to_integral_value()),
                },
                windows=(window,),
                service_minutes=float(service),
            )
        )
    busy, busy_drivers = _spoken_for(ledger, db, day)
    fleet = db.query(
        "SELECT vehicle_code, carrier_code, capacity_kg, capacity_m3 FROM fleet_vehicles "
        "ORDER BY vehicle_code"
    )
    drivers_by_carrier: dict[str, list[str]] = {}
    for code, carrier in db.query(
        "SELECT driver_code, carrier_code FROM fleet_drivers ORDER BY driver_code"
    ):
        if str(code) not in busy_drivers:
            drivers_by_carrier.setdefault(str(carrier), []).append(str(code))
    vehicles: list[Vehicle] = []
    drivers: dict[str, str | None] = {}
    shift_start = datetime.combine(day, clock_time(0), tzinfo=UTC) + timedelta(minutes=SHIFT[0])
    for code, carrier, kg, m3 in fleet:
        if str(code) in busy:
            continue
        pool = drivers_by_carrier.get(str(carrier), [])
        driver = pool.pop(0) if pool else None
        hos = None
        if driver is not None:
            state = driver_history(ledger, driver, as_of=shift_start)
            hos = HoursOfService(
                drive_remaining=state.drive_remaining.total_seconds() / 60,
                duty_remaining=state.window_remaining.total_seconds() / 60,
                driven_since_break=max(0.0, 480 - state.until_break.total_seconds() / 60),
                cycle_remaining=state.cycle_remaining.total_seconds() / 60,
            )
        drivers[str(code)] = driver
        vehicles.append(
            Vehicle(
                str(code),
                {"kg": int(Decimal(str(kg))), "dm3": int(Decimal(str(m3)) * 1000)},
                0,
                0,
                shift_start=SHIFT[0],
                shift_end=SHIFT[1],
                hos=hos,
            )
        )
    request = PlanRequest(
        locations=tuple(locations),
        vehicles=tuple(vehicles),
        stops=tuple(stops),
        travel=TRAVEL,
        objective="distance",
        name=f"{day.isoformat()}/{warehouse}",
    )
    return DayPlan(day, warehouse, request, orders, drivers)


def record(ledger: Ledger, caller: Caller, day_plan: DayPlan, plan: Plan, time_limit: float) -> str:
    """Records `plan` (idempotently: its id is the inputs' fingerprint); returns the plan id."""
    digest = fingerprint(day_plan.request)
    plan_id = f"PLAN-{day_plan.day:%Y%m%d}-{day_plan.warehouse}-{digest[:10]}"
    midnight = datetime.combine(day_plan.day, clock_time(0), tzinfo=UTC)

    def at(minutes: float) -> datetime:
        return midnight + timedelta(minutes=minutes)

    routes = []
    for n, route in enumerate(sorted(plan.routes, key=lambda r: r.vehicle_id), start=1):
        if not route.visits:
            continue
        refs = [day_plan.orders[v.stop_id] for v in route.visits]
        first = route.visits[0]
        stops = [
            StopPlan(
                StopKind.PICKUP,
                day_plan.warehouse,
                LedgerWindow(at(route.start_time), at(first.arrival)),
                LOADING_MINUTES,
            )
        ]
        for visit, (order_id, _, _) in zip(route.visits, refs, strict=True):
            stop = next(s for s in day_plan.request.stops if s.id == visit.stop_id)
            window = stop.windows[0]
            stops.append(
                StopPlan(
                    StopKind.DELIVERY,
                    day_plan.request.locations[visit.location].id,
                    LedgerWindow(at(window.start), at(window.end)),
                    int(stop.service_minutes),
                    None,
                    (order_id,),
                )
            )
        tenants = {tenant for _, _, tenant in refs}
        summary = PlannedRoute(
            vehicle_code=route.vehicle_id,
            driver_code=day_plan.drivers.get(route.vehicle_id),
            load_reference=f"{plan_id}-{n:02d}",
            orders=tuple(ref for _, ref, _ in refs),
            distance_km=round(route.distance, 3),
            drive_minutes=round(route.drive_minutes, 1),
            starts_at=at(route.start_time),
            ends_at=at(route.end_time),
        )
        routes.append((summary, stops, next(iter(tenants)) if len(tenants) == 1 else None))
    unplaced = [
        UnplacedOrder(day_plan.orders[u.stop_id][1], u.reason, u.detail) for u in plan.unassigned
    ]
    b = plan.breakdown
    figures = PlanFigures(
        objective=plan.objective,
        distance_km=round(b.distance, 3),
        duty_minutes=round(b.time, 1),
        drive_minutes=round(b.drive, 1),
        vehicles=b.vehicles,
        cost=round(b.cost, 2),
        penalties=round(b.penalties, 2),
        engine=plan.engine,
        elapsed_seconds=round(plan.elapsed_seconds, 2),
        time_limit_seconds=time_limit,
    )
    ledger.record_plan(
        caller,
        plan_id=plan_id,
        day=day_plan.day,
        fingerprint=digest,
        figures=figures,
        routes=routes,
        unplaced=unplaced,
    )
    return plan_id


def plan_day(
    ledger: Ledger,
    db: Database,
    caller: Caller,
    day: date,
    warehouse: str,
    *,
    time_limit: float = 10.0,
    progress: Callable[[Progress], None] | None = None,
) -> str:
    """Builds, solves and records the plan of a day for one warehouse; returns its id."""
    day_plan = build_day_request(ledger, db, day, warehouse)
    plan = solve(day_plan.request, time_limit=time_limit, progress=progress)
    return record(ledger, caller, day_plan, plan, time_limit)


@dataclass
class PlanJob:
    """A plan being made in the background: best cost so far, elapsed time, the outcome."""

    job_id: str
    day: date
    warehouse: str
    state: str = "running"
    best_cost: float | None = None
    unassigned: int | None = None
    elapsed_seconds: float = 0.0
    plan_id: str | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)


class PlanJobs:
    """The plan jobs of one process."""

    def __init__(self, ledger: Ledger, db: Database):
        self.ledger = ledger
        self.db = db
        self.jobs: dict[str, PlanJob] = {}
        self._lock = threading.Lock()

    def start(self, caller: Caller, day: date, warehouse: str, time_limit: float) -> PlanJob:
        job = PlanJob(f"plan-{uuid.uuid4().hex[:12]}", day, warehouse)
        with self._lock:
            self.jobs[job.job_id] = job

        def on_progress(progress: Progress) -> None:
            job.best_cost = progress.best_cost
            job.unassigned = progress.unassigned
            job.elapsed_seconds = progress.elapsed_seconds

        def run() -> None:
            try:
                job.plan_id = plan_day(
                    self.ledger,
                    self.db,
                    caller,
                    day,
                    warehouse,
                    time_limit=time_limit,
                    progress=on_progress,
                )
                job.state = "done"
            except Exception as error:
                job.state, job.error = "failed", f"{type(error).__name__}: {error}"
            job.elapsed_seconds = time.monotonic() - job.started

        threading.Thread(target=run, name=job.job_id, daemon=True).start()
        return job

    def get(self, job_id: str) -> PlanJob | None:
        with self._lock:
            return self.jobs.get(job_id)
