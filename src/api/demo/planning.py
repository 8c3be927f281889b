"""The morning plan: the day's packed orders → planner requests → routes, the same every run.

Orders are planned per shipper and warehouse (each load bills one customer), one stop per
customer dock (its orders together). Large groups are cut into sweeps of about 40 stops
around the warehouse, each with its share of the trucks, so a 5,000-order day plans in
seconds per sweep.

Determinism: OR-Tools stopped by a wall-clock limit returns whatever it reached by then; here
each search is cheapest-arc construction followed by greedy descent, which stops by itself
at a local optimum — the same one every run. The time limit is only a safety net; a search
that reaches it is reported, because its plan could then differ between runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api.demo.world import DAY, Customer, OrderSpec, VehicleSpec, World, km_between, local
from planner import (
    HoursOfService,
    Location,
    Plan,
    PlanRequest,
    Stop,
    TimeWindow,
    TravelModel,
    Vehicle,
    fingerprint,
    solve,
)
from planner.portfolio import EngineSetup
from planner.solver import SearchConfig

__all__ = [
    "DETOUR",
    "PLANNER_SPEED_KMH",
    "ROUTE_LIMIT",
    "Route",
    "RouteStop",
    "Shift",
    "Sweep",
    "plan_routes",
]

DETOUR = 1.3
"""Road distance over straight-line distance in the city."""
PLANNER_SPEED_KMH = 32.0
"""Average road speed the plan assumes (Chicago streets, daytime)."""
SWEEP_STOPS = 40
ROUTE_LIMIT = timedelta(minutes=460)
"""The longest route planned from the dock. Every driver's remaining Hours of Service go into
the request (11 h driving, the 14 h window, the 70 h cycle); keeping routes under 8 h from the
dock means the 30-minute break never falls due inside one, so the solver needs no break
intervals — which are what made a 250-truck day take many minutes (and hit the time limit).
Drivers still take a lunch break on the road in the simulation."""
SAFETY_LIMIT_S = 120.0
DETERMINISTIC = EngineSetup(
    "ortools",
    SearchConfig(
        name="demo-greedy", first_solution="PATH_CHEAPEST_ARC", metaheuristic="GREEDY_DESCENT"
    ),
)
_MIDNIGHT = local((0, 0))


def minutes(moment: datetime) -> float:
    """Minutes since local midnight of the demo day (the planner's clock)."""
    return (moment - _MIDNIGHT).total_seconds() / 60.0


def at_minutes(value: float) -> datetime:
    return _MIDNIGHT + timedelta(minutes=value)


@dataclass(frozen=True)
class Shift:
    """When a truck can leave its warehouse loaded, and what its driver has left."""

    depart: datetime
    latest_return: datetime
    hos: HoursOfService


@dataclass(frozen=True)
class RouteStop:
    """One delivery: a customer's dock and the orders delivered there."""

    customer: Customer
    orders: tuple[OrderSpec, ...]
    weight_kg: int
    volume_l: int
    service_minutes: int
    window: tuple[datetime, datetime]
    planned_start: datetime | None = None


@dataclass(frozen=True)
class Route:
    """One truck's plan: deliveries in order, from its warehouse."""

    vehicle: VehicleSpec
    tenant: str
    warehouse: str
    stops: tuple[RouteStop, ...]
    start: datetime
    planned_km: float
    plan_id: str


@dataclass(frozen=True)
class Sweep:
    """One planner request and what came of it."""

    name: str
    stops: int
    vehicles: int
    routes: int
    unassigned: int
    hit_time_limit: bool
    fingerprint: str


@dataclass
class Outcome:
    routes: list[Route] = field(default_factory=list)
    unassigned: list[RouteStop] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)


def stops_of(
    world: World, orders: Sequence[tuple[OrderSpec, str]]
) -> dict[tuple[str, str], list[RouteStop]]:
    """Deliveries per (warehouse, shipper): one per customer dock, its orders together."""
    by_dock: dict[tuple[str, str, str], list[OrderSpec]] = {}
    for order, warehouse in orders:
        by_dock.setdefault((warehouse, order.tenant, order.ship_to_code), []).append(order)
    groups: dict[tuple[str, str], list[RouteStop]] = {}
    for (warehouse, tenant, _), docked in sorted(by_dock.items()):
        customer = docked[0].customer
        weight = volume = 0
        for order in docked:
            for sku_code, quantity in order.lines:
                sku = world.sku(sku_code)
                weight += math.ceil(sku.case_kg * quantity)
                volume += math.ceil(sku.case_m3 * quantity * 1000)
        (start_h, start_m), (end_h, end_m) = customer.window
        groups.setdefault((warehouse, tenant), []).append(
            RouteStop(
                customer=customer,
                orders=tuple(docked),
                weight_kg=weight,
                volume_l=volume,
                service_minutes=min(60, sum(o.service_minutes for o in docked)),
                window=(local((start_h, start_m)), local((end_h, end_m))),
            )
        )
    return groups


def share(total: int, weights: Sequence[int]) -> list[int]:
    """`total` shared by weight: one each to positive weights while they last, then the
    rest by largest remainder (ties to the earlier share)."""
    counts = [0] * len(weights)
    left = total
    for i, w in enumerate(weights):
        if w > 0 and left > 0:
            counts[i] = 1
            left -= 1
    whole = sum(weights)
    if left <= 0 or whole <= 0:
        return counts
    exact = [left * w / whole for w in weights]
    extra = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - extra[i]), i))
    for i in order[: left - sum(extra)]:
        extra[i] += 1
    return [c + e for c, e in zip(counts, extra, strict=True)]


def _sweeps(
    world: World, warehouse: str, stops: list[RouteStop], trucks: int
) -> list[list[RouteStop]]:
    """Cut a group into contiguous angular sectors around the warehouse."""
    count = min(trucks, max(1, math.ceil(len(stops) / SWEEP_STOPS)))
    site = world.warehouse(warehouse)
    lat_scale = math.cos(math.radians(site.lat))

    def angle(stop: RouteStop) -> tuple[float, str]:
        dy = stop.customer.site.lat - site.lat
        dx = (stop.customer.site.lon - site.lon) * lat_scale
        return (math.atan2(dy, dx), stop.customer.code)

    ordered = sorted(stops, key=angle)
    sizes = share(len(ordered), [1] * count)
    cut, at = [], 0
    for size in sizes:
        cut.append(ordered[at : at + size])
        at += size
    return [c for c in cut if c]


def plan_routes(
    world: World,
    orders: Sequence[tuple[OrderSpec, str]],
    shifts: Mapping[str, Shift],
) -> Outcome:
    """Routes for the day's packed orders (each with the warehouse it was allocated from)."""
    outcome = Outcome()
    groups = stops_of(world, orders)
    for warehouse in sorted({w for w, _ in groups}):
        trucks = sorted(
            (v for v in world.vehicles if v.warehouse == warehouse and v.code in shifts),
            key=lambda v: v.code,
        )
        tenants = sorted(t for w, t in groups if w == warehouse)
        counts = share(len(trucks), [len(groups[(warehouse, t)]) for t in tenants])
        at = 0
        for tenant, count in zip(tenants, counts, strict=True):
            mine, at = trucks[at : at + count], at + count
            stops = groups[(warehouse, tenant)]
            if not mine:
                outcome.unassigned += stops
                continue
            sweeps = _sweeps(world, warehouse, stops, len(mine))
            per_sweep = share(len(mine), [len(s) for s in sweeps])
            used = 0
            for k, (sweep, n) in enumerate(zip(sweeps, per_sweep, strict=True), start=1):
                fleet, used = mine[used : used + n], used + n
                _solve_sweep(world, warehouse, tenant, k, sweep, fleet, shifts, outcome)
    return outcome


def _solve_sweep(
    world: World,
    warehouse: str,
    tenant: str,
    k: int,
    stops: list[RouteStop],
    fleet: Sequence[VehicleSpec],
    shifts: Mapping[str, Shift],
    outcome: Outcome,
) -> None:
    site = world.warehouse(warehouse)
    locations = (
        Location(site.code, lat=site.lat, lon=site.lon),
        *(
            Location(s.customer.code, lat=s.customer.site.lat, lon=s.customer.site.lon)
            for s in stops
        ),
    )
    vehicles = tuple(
        Vehicle(
            id=v.code,
            capacity={"weight": v.capacity_kg, "volume": v.capacity_m3 * 1000},
            start_location=0,
            end_location=0,
            shift_start=minutes(shifts[v.code].depart),
            shift_end=minutes(shifts[v.code].latest_return),
            hos=shifts[v.code].hos,
        )
        for v in fleet
    )
    request = PlanRequest(
        locations=locations,
        vehicles=vehicles,
        stops=tuple(
            Stop(
                id=s.customer.code,
                location=i,
                demand={"weight": s.weight_kg, "volume": s.volume_l},
                windows=(TimeWindow(minutes(s.window[0]), minutes(s.window[1])),),
                service_minutes=float(s.service_minutes),
            )
            for i, s in enumerate(stops, start=1)
        ),
        travel=TravelModel(kind="haversine", detour_factor=DETOUR, speed_kmh=PLANNER_SPEED_KMH),
        objective="distance",
        name=f"{DAY:%Y%m%d}-{warehouse}-{tenant}-{k}",
    )
    plan: Plan = solve(request, time_limit=SAFETY_LIMIT_S, workers=1, setups=(DETERMINISTIC,))
    digest = fingerprint(request)
    plan_id = f"PLAN-{request.name}-{digest[:10]}"
    by_code = {s.customer.code: s for s in stops}
    by_vehicle = {v.code: v for v in fleet}
    for route in plan.routes:
        if not route.visits:
            continue
        chosen = tuple(
            _with_start(by_code[visit.stop_id], at_minutes(visit.start)) for visit in route.visits
        )
        outcome.routes.append(
            Route(
                vehicle=by_vehicle[route.vehicle_id],
                tenant=tenant,
                warehouse=warehouse,
                stops=chosen,
                start=at_minutes(route.start_time),
                planned_km=loaded_km(site.point, chosen),
                plan_id=plan_id,
            )
        )
    outcome.unassigned += [by_code[u.stop_id] for u in plan.unassigned]
    outcome.sweeps.append(
        Sweep(
            name=request.name,
            stops=len(stops),
            vehicles=len(fleet),
            routes=sum(1 for r in plan.routes if r.visits),
            unassigned=len(plan.unassigned),
            hit_time_limit=plan.elapsed_seconds >= 0.9 * SAFETY_LIMIT_S,
            fingerprint=digest,
        )
    )


def _with_start(stop: RouteStop, start: datetime) -> RouteStop:
    return RouteStop(
        stop.customer,
        stop.orders,
        stop.weight_kg,
        stop.volume_l,
        stop.service_minutes,
        stop.window,
        start,
    )


def loaded_km(origin: tuple[float, float], stops: Sequence[RouteStop]) -> float:
    """Road kilometres from the warehouse through the last delivery (what linehaul bills)."""
    total, here = 0.0, origin
    for stop in stops:
        total += km_between(here, stop.customer.site.point) * DETOUR
        here = stop.customer.site.point
    return round(total, 1)
