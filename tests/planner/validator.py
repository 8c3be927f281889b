"""An independent check of a plan against its request.

Shares no code with the solver: travel is recomputed here from the request's own description,
and every rule is re-derived from the request (capacity per dimension, windows, service times,
shifts, pairing, skills, Hours of Service).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from planner.model import Plan, PlanRequest, Route, Vehicle

TOL = 1e-6
DRIVE_BEFORE_BREAK = 480.0
REST = 30.0


@dataclass(frozen=True)
class Travel:
    distance: list[list[float]]
    time: list[list[float]]


def travel_of(request: PlanRequest) -> Travel:
    """Distances and times computed afresh from the request's travel description."""
    model, locs = request.travel, request.locations
    n = len(locs)
    if model.kind == "matrix":
        assert model.distance_km is not None and model.time_minutes is not None
        dist = [[math.inf if v is None else float(v) for v in row] for row in model.distance_km]
        time = [[math.inf if v is None else float(v) for v in row] for row in model.time_minutes]
        for i in range(n):
            dist[i][i] = time[i][i] = 0.0
        return Travel(dist, time)
    if model.kind == "euclidean":
        dist = [
            [
                math.hypot(float(a.x or 0) - float(b.x or 0), float(a.y or 0) - float(b.y or 0))
                for b in locs
            ]
            for a in locs
        ]
        return Travel(dist, [[d * model.minutes_per_unit for d in row] for row in dist])
    radius = 6371.0088

    def gc(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
        p1, p2 = math.radians(a_lat), math.radians(b_lat)
        dp, dl = p2 - p1, math.radians(b_lon - a_lon)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * radius * math.asin(math.sqrt(min(1.0, h)))

    dist = [
        [gc(a.lat or 0, a.lon or 0, b.lat or 0, b.lon or 0) * model.detour_factor for b in locs]
        for a in locs
    ]
    return Travel(dist, [[d / model.speed_kmh * 60.0 for d in row] for row in dist])


def _driving_intervals(
    route: Route, vehicle: Vehicle, request: PlanRequest, travel: Travel
) -> list[tuple[float, float]]:
    """Driving as soon as the vehicle leaves, paused by the plan's breaks."""
    stops = {s.id: s for s in request.stops}
    legs: list[tuple[float, int, int]] = []
    where, departure = vehicle.start_location, route.start_time
    for visit in route.visits:
        legs.append((departure, where, stops[visit.stop_id].location))
        where, departure = stops[visit.stop_id].location, visit.departure
    legs.append((departure, where, vehicle.end_location))
    breaks = sorted(route.breaks, key=lambda b: b.start)
    intervals: list[tuple[float, float]] = []
    for leave, a, b in legs:
        t, remaining = leave, travel.time[a][b]
        for brk in breaks:
            if brk.start + brk.minutes <= t + TOL or remaining <= TOL:
                continue
            if brk.start >= t + remaining - TOL:
                break
            if brk.start > t:
                intervals.append((t, brk.start))
                remaining -= brk.start - t
            t = max(t, brk.start + brk.minutes)
        if remaining > TOL:
            intervals.append((t, t + remaining))
    return intervals


def validate(request: PlanRequest, plan: Plan) -> list[str]:
    """Every rule the plan breaks, as readable lines (empty when the plan is valid)."""
    travel = travel_of(request)
    errors: list[str] = []
    stops = {s.id: s for s in request.stops}
    vehicles = {v.id: v for v in request.vehicles}
    seen: dict[str, str] = {}
    for route in plan.routes:
        for visit in route.visits:
            if visit.stop_id in seen:
                errors.append(f"stop {visit.stop_id} served twice")
            seen[visit.stop_id] = route.vehicle_id
    left_out = {u.stop_id for u in plan.unassigned}
    for stop_id in stops:
        if (stop_id in seen) == (stop_id in left_out):
            state = "both served and" if stop_id in seen else "neither served nor"
            errors.append(f"stop {stop_id} is {state} unassigned")
    for u in plan.unassigned:
        if u.reason not in ("window", "capacity", "hos", "unreachable", "skill"):
            errors.append(f"stop {u.stop_id} has an unknown reason {u.reason!r}")
    used = [r.vehicle_id for r in plan.routes]
    if len(used) != len(set(used)):
        errors.append("a vehicle drives two routes")
    for pair in request.pairs:
        a, b = seen.get(pair.pickup), seen.get(pair.delivery)
        if (a is None) != (b is None):
            errors.append(f"pair {pair.pickup}->{pair.delivery} half served")
        elif a is not None and a != b:
            errors.append(f"pair {pair.pickup}->{pair.delivery} on two vehicles")
    for route in plan.routes:
        if route.vehicle_id not in vehicles:
            errors.append(f"unknown vehicle {route.vehicle_id}")
            continue
        errors.extend(_check_route(request, travel, route, vehicles[route.vehicle_id]))
    total = sum(r.distance for r in plan.routes)
    if abs(total - plan.breakdown.distance) > 1e-6 * max(1.0, total):
        errors.append("breakdown distance differs from the routes' sum")
    if plan.breakdown.vehicles != len(plan.routes):
        errors.append("breakdown vehicle count differs from the routes")
    if plan.feasible != (not plan.unassigned):
        errors.append("feasible flag disagrees with the unassigned list")
    return errors


def _check_route(request: PlanRequest, travel: Travel, route: Route, vehicle: Vehicle) -> list[str]:
    errors: list[str] = []
    tag = f"route {vehicle.id}"
    stops = {s.id: s for s in request.stops}
    order = {v.stop_id: k for k, v in enumerate(route.visits)}
    pickups = {p.pickup: p.delivery for p in request.pairs}
    deliveries = {p.delivery: p.pickup for p in request.pairs}
    # Pairing order.
    for pickup, delivery in pickups.items():
        if pickup in order and delivery in order and order[pickup] > order[delivery]:
            errors.append(f"{tag}: delivery {delivery} before its pickup {pickup}")
    # Skills.
    for visit in route.visits:
        missing = stops[visit.stop_id].required_skills - vehicle.skills
        if missing:
            errors.append(f"{tag}: stop {visit.stop_id} needs skills {sorted(missing)}")
    # Load on board, per dimension: depot deliveries leave with the vehicle.
    load: dict[str, int] = {}
    for visit in route.visits:
        if visit.stop_id not in pickups and visit.stop_id not in deliveries:
            for dim, q in stops[visit.stop_id].demand.items():
                load[dim] = load.get(dim, 0) + q
    peak = dict(load)
    for visit in route.visits:
        sid = visit.stop_id
        if sid in pickups:
            change = dict(stops[sid].demand)
        elif sid in deliveries:
            change = {d: -q for d, q in stops[deliveries[sid]].demand.items()}
        else:
            change = {d: -q for d, q in stops[sid].demand.items()}
        for dim, q in change.items():
            load[dim] = load.get(dim, 0) + q
            peak[dim] = max(peak.get(dim, 0), load[dim])
    for dim, q in peak.items():
        if q > vehicle.capacity.get(dim, 0):
            errors.append(f"{tag}: {dim} load {q} over capacity {vehicle.capacity.get(dim, 0)}")
    # Time: travel, breaks, windows, service, shift.
    breaks = sorted(route.breaks, key=lambda b: b.start)
    for brk in breaks:
        if brk.minutes < REST - TOL:
            errors.append(f"{tag}: break at {brk.start} shorter than 30 min")
        for visit in route.visits:
            if brk.start < visit.departure - TOL and brk.start + brk.minutes > visit.start + TOL:
                errors.append(f"{tag}: break at {brk.start} overlaps service at {visit.stop_id}")
    if route.start_time < vehicle.shift_start - TOL:
        errors.append(f"{tag}: leaves at {route.start_time} before its shift starts")
    where, departure = vehicle.start_location, route.start_time
    drive = 0.0
    for visit in route.visits:
        stop = stops[visit.stop_id]
        leg = travel.time[where][stop.location]
        if not math.isfinite(leg):
            errors.append(f"{tag}: no way to reach stop {stop.id}")
            break
        drive += leg
        resting = sum(b.minutes for b in breaks if departure - TOL <= b.start < visit.start)
        if visit.start < departure + leg + resting - TOL:
            earliest = departure + leg + resting
            errors.append(f"{tag}: stop {stop.id} served at {visit.start}, not before {earliest}")
        if visit.arrival > visit.start + TOL:
            errors.append(f"{tag}: stop {stop.id} served before arrival")
        if stop.windows and not any(
            w.start - TOL <= visit.start <= w.end + TOL for w in stop.windows
        ):
            errors.append(f"{tag}: stop {stop.id} served at {visit.start}, outside its windows")
        if abs(visit.departure - (visit.start + stop.service_minutes)) > TOL:
            errors.append(f"{tag}: stop {stop.id} left before its service is done")
        where, departure = stop.location, visit.departure
    leg = travel.time[where][vehicle.end_location]
    drive += leg
    resting = sum(b.minutes for b in breaks if departure - TOL <= b.start < route.end_time)
    if route.end_time < departure + leg + resting - TOL:
        errors.append(
            f"{tag}: back at {route.end_time}, cannot be before {departure + leg + resting}"
        )
    if route.end_time > vehicle.shift_end + TOL:
        errors.append(
            f"{tag}: back at {route.end_time}, after its shift ends at {vehicle.shift_end}"
        )
    distance = 0.0
    path = [
        vehicle.start_location,
        *(stops[v.stop_id].location for v in route.visits),
        vehicle.end_location,
    ]
    for a, b in itertools.pairwise(path):
        distance += travel.distance[a][b]
    if abs(distance - route.distance) > 1e-6 * max(1.0, distance):
        errors.append(f"{tag}: reports distance {route.distance}, recomputed {distance}")
    hos = vehicle.hos
    if hos is None:
        return errors
    if drive > hos.drive_remaining + TOL:
        errors.append(f"{tag}: drives {drive:.1f} min, driver has {hos.drive_remaining} left")
    if route.end_time > vehicle.shift_start + hos.duty_remaining + TOL:
        errors.append(f"{tag}: ends at {route.end_time}, after the 14-hour window")
    if route.end_time - route.start_time > hos.cycle_remaining + TOL:
        errors.append(f"{tag}: on duty longer than the remaining cycle")
    # Driving since the last rest of 30 consecutive minutes must stay within 8 h.
    since, last_end = hos.driven_since_break, vehicle.shift_start
    for start, end in _driving_intervals(route, vehicle, request, travel):
        if start - last_end >= REST - TOL:
            since = 0.0
        since += end - start
        last_end = end
        if since > DRIVE_BEFORE_BREAK + TOL:
            errors.append(f"{tag}: {since:.1f} min of driving without a 30-minute break")
            break
    return errors
