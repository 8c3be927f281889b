"""Engine-neutral routes, their timing, and turning them into a ``Plan``.

Solver engines hand back ``RawSolution`` (stop indices per vehicle, optionally with the times
the engine settled on); this module recomputes distances in floats from the travel matrix, fills
in arrival times (driving as soon as the vehicle leaves, breaks interrupting the drive), and
checks a route against a vehicle in plain Python (used to explain dropped stops).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from planner.model import (
    BREAK_AFTER_DRIVING,
    BREAK_MINUTES,
    Break,
    ObjectiveBreakdown,
    Plan,
    PlanRequest,
    Reason,
    Route,
    Stop,
    Unassigned,
    Vehicle,
    Visit,
)
from planner.travel import TravelMatrix

__all__ = [
    "Pairing",
    "RawRoute",
    "RawSolution",
    "RouteCheck",
    "assemble_plan",
    "check_route",
    "load_profile_ok",
    "stop_pairs",
]

EPS = 1e-6


@dataclass(frozen=True)
class RawRoute:
    """A vehicle's stop sequence; ``starts`` (service start per stop), ``start_time``,
    ``end_time`` and ``breaks`` are the engine's schedule, or empty to compute one."""

    vehicle: int
    stops: tuple[int, ...]
    starts: tuple[float, ...] = ()
    start_time: float | None = None
    end_time: float | None = None
    breaks: tuple[Break, ...] = ()


@dataclass(frozen=True)
class RawSolution:
    """What one engine found: routes, dropped stop indices and its own search figures."""

    engine: str
    routes: tuple[RawRoute, ...]
    dropped: tuple[int, ...]
    objective: float
    first_solution_seconds: float | None = None
    solutions: int = 0


@dataclass(frozen=True)
class RouteCheck:
    """Outcome of timing a route in Python: ``reason`` is ``None`` when it is feasible."""

    reason: Reason | None
    detail: str = ""
    start_time: float = 0.0
    end_time: float = 0.0
    starts: tuple[float, ...] = ()
    breaks: tuple[Break, ...] = field(default=())


@dataclass(frozen=True)
class Pairing:
    """Stop indices of the pickup-and-delivery pairs: each one's partner, and the pickups."""

    partner: dict[int, int]
    pickups: frozenset[int]

    @classmethod
    def of(cls, request: PlanRequest) -> Pairing:
        index = {stop.id: i for i, stop in enumerate(request.stops)}
        partner: dict[int, int] = {}
        for pair in request.pairs:
            p, d = index[pair.pickup], index[pair.delivery]
            partner[p], partner[d] = d, p
        return cls(partner, frozenset(index[pair.pickup] for pair in request.pairs))

    def unit(self, stop: int) -> tuple[int, ...]:
        """The stop with its partner, pickup first."""
        other = self.partner.get(stop)
        if other is None:
            return (stop,)
        return (stop, other) if stop in self.pickups else (other, stop)


def stop_pairs(request: PlanRequest) -> dict[int, int]:
    """Map each paired stop index to its partner's index."""
    return Pairing.of(request).partner


def load_profile_ok(
    request: PlanRequest, vehicle: Vehicle, stops: Sequence[int], pairing: Pairing | None = None
) -> str | None:
    """``None`` when the load on board never exceeds the vehicle's capacity, else the first
    dimension that overflows. Depot deliveries are on board from the start; a pair's load is
    on board from its pickup to its delivery."""
    pairing = pairing or Pairing.of(request)
    partner, pickups = pairing.partner, pairing.pickups
    onboard: dict[str, int] = {}
    for s in stops:
        if s not in partner:
            for dim, qty in request.stops[s].demand.items():
                onboard[dim] = onboard.get(dim, 0) + qty
    for s in [-1, *stops]:
        if s >= 0:
            source = request.stops[partner.get(s, s)]
            sign = 1 if s in pickups else -1
            for dim, qty in source.demand.items():
                onboard[dim] = onboard.get(dim, 0) + sign * qty
        for dim, qty in onboard.items():
            if qty > vehicle.capacity.get(dim, 0):
                return dim
    return None


def _service_start(stop: Stop, arrival: float) -> float | None:
    if not stop.windows:
        return arrival
    for window in sorted(stop.windows, key=lambda w: w.start):
        if arrival <= window.end + EPS:
            return max(arrival, window.start)
    return None


def check_route(
    request: PlanRequest,
    travel: TravelMatrix,
    vehicle: Vehicle,
    stops: Sequence[int],
    pairing: Pairing | None = None,
) -> RouteCheck:
    """Time a stop sequence for one vehicle, earliest start everywhere, and report the first
    rule it breaks (skills and pairing are the caller's business).

    Breaks follow the conservative rule the solver uses: at most 8 h of elapsed time between
    30-minute breaks (or from the shift start, counting the minutes already driven).
    """
    dim = load_profile_ok(request, vehicle, stops, pairing)
    if dim is not None:
        return RouteCheck("capacity", f"{dim} exceeds vehicle {vehicle.id}'s capacity")
    path = [vehicle.start_location, *(request.stops[s].location for s in stops)]
    path.append(vehicle.end_location)
    for a, b in pairwise(path):
        if not travel.reachable(a, b):
            return RouteCheck("unreachable", f"no way from location {a} to location {b}")
    hos = vehicle.hos
    limit_end = vehicle.shift_end
    if hos is not None:
        limit_end = min(limit_end, vehicle.shift_start + hos.duty_remaining)
    # Leave just in time for the first stop's earliest window, so little is spent waiting.
    t = vehicle.shift_start
    if stops:
        first = request.stops[stops[0]]
        lead = float(travel.time[vehicle.start_location, first.location])
        if first.windows:
            t = max(t, min(w.start for w in first.windows) - lead)
    start_time = t
    seg_start = t - (hos.driven_since_break if hos else 0.0)
    if hos is not None and t - vehicle.shift_start >= BREAK_MINUTES:
        seg_start = t
    drive = 0.0
    where = vehicle.start_location
    starts: list[float] = []
    breaks: list[Break] = []
    legs: list[tuple[int, Stop | None]] = [
        (request.stops[s].location, request.stops[s]) for s in stops
    ]
    legs.append((vehicle.end_location, None))
    for target, stop in legs:
        leg = float(travel.time[where, target])
        drive += leg
        arrival = t + leg
        service = stop.service_minutes if stop else 0.0
        begin = _service_start(stop, arrival) if stop else arrival
        if begin is None:
            return RouteCheck("window", f"stop {stop.id if stop else '?'} reached too late")
        if hos is not None and begin + service - seg_start > BREAK_AFTER_DRIVING + EPS:
            # Rest while waiting if the wait is long enough, else on the road (adds 30 min).
            latest = seg_start + BREAK_AFTER_DRIVING
            if begin - BREAK_MINUTES >= arrival - EPS and begin - BREAK_MINUTES <= latest + EPS:
                pause = max(arrival, min(latest, begin - BREAK_MINUTES))
            else:
                pause = min(latest, arrival)
                if pause < t - EPS:
                    return RouteCheck("hos", "no room for the 30-minute break")
                arrival += BREAK_MINUTES
                begin = _service_start(stop, arrival) if stop else arrival
                if begin is None:
                    return RouteCheck("window", "the 30-minute break makes it late")
            breaks.append(Break(pause, BREAK_MINUTES))
            seg_start = pause + BREAK_MINUTES
            if begin + service - seg_start > BREAK_AFTER_DRIVING + EPS:
                return RouteCheck("hos", "a single leg is longer than 8 h without a break")
        if stop is not None:
            starts.append(begin)
        t = begin + service
        where = target
    end_time = t
    if hos is not None:
        if drive > hos.drive_remaining + EPS:
            return RouteCheck(
                "hos",
                f"needs {drive:.0f} min of driving, driver {vehicle.id} has "
                f"{hos.drive_remaining:.0f} left",
            )
        if end_time > vehicle.shift_start + hos.duty_remaining + EPS:
            return RouteCheck("hos", "ends after the driver's 14-hour duty window")
        if end_time - start_time > hos.cycle_remaining + EPS:
            return RouteCheck("hos", "exceeds the driver's remaining 60/70-hour cycle")
    if end_time > limit_end + EPS:
        return RouteCheck("window", f"returns after vehicle {vehicle.id}'s shift ends")
    return RouteCheck(None, "", start_time, end_time, tuple(starts), tuple(breaks))


def _arrival(departure: float, leg: float, breaks: Sequence[Break]) -> float:
    """Drive as soon as possible; a break that starts before the drive is done pauses it."""
    t, remaining = departure, leg
    for brk in sorted(breaks, key=lambda b: b.start):
        if brk.start + brk.minutes <= departure + EPS:
            continue
        if brk.start >= t + remaining - EPS:
            break
        remaining -= max(0.0, brk.start - t)
        t = max(t, brk.start + brk.minutes)
    return t + remaining


def _route_cost(request: PlanRequest, vehicle: Vehicle, distance: float, duration: float) -> float:
    return vehicle.cost_per_km * distance + vehicle.cost_per_hour * duration / 60.0


def assemble_plan(
    request: PlanRequest,
    travel: TravelMatrix,
    raw: RawSolution,
    unassigned: Sequence[Unassigned],
    penalty_per_stop: float,
    elapsed: float,
) -> Plan:
    """Build the user-facing plan, recomputing every distance and time in floats."""
    routes: list[Route] = []
    pairing = Pairing.of(request)
    for rr in raw.routes:
        if not rr.stops:
            continue
        vehicle = request.vehicles[rr.vehicle]
        # Engines with a span cost settle the times themselves; otherwise report the earliest
        # schedule (leaving just in time for the first stop) whenever it keeps every rule.
        check = check_route(request, travel, vehicle, rr.stops, pairing)
        use_engine = bool(rr.starts) and (
            check.reason is not None or request.objective in ("time", "cost")
        )
        if use_engine:
            starts, breaks = list(rr.starts), list(rr.breaks)
            start_time = rr.start_time if rr.start_time is not None else vehicle.shift_start
        elif check.reason is None:
            starts, breaks, start_time = list(check.starts), list(check.breaks), check.start_time
        else:  # should not happen: an engine without times found a route Python rejects
            starts = _earliest_starts(request, travel, vehicle, rr.stops)
            breaks, start_time = [], vehicle.shift_start
        visits: list[Visit] = []
        where, departure = vehicle.start_location, start_time
        distance = drive = 0.0
        for s, begin in zip(rr.stops, starts, strict=True):
            stop = request.stops[s]
            leg = float(travel.time[where, stop.location])
            distance += float(travel.distance[where, stop.location])
            drive += leg
            arrival = _arrival(departure, leg, breaks)
            begin = max(begin, arrival)
            departure = begin + stop.service_minutes
            visits.append(Visit(stop.id, stop.location, arrival, begin, departure))
            where = stop.location
        leg = float(travel.time[where, vehicle.end_location])
        distance += float(travel.distance[where, vehicle.end_location])
        drive += leg
        end_time = _arrival(departure, leg, breaks)
        if use_engine and rr.end_time is not None and rr.end_time > end_time:
            end_time = rr.end_time
        duration = end_time - start_time
        routes.append(
            Route(
                vehicle_id=vehicle.id,
                visits=tuple(visits),
                start_time=start_time,
                end_time=end_time,
                distance=distance,
                drive_minutes=drive,
                breaks=tuple(sorted(breaks, key=lambda b: b.start)),
                cost=_route_cost(request, vehicle, distance, duration),
            )
        )
    distance = sum(r.distance for r in routes)
    duration = sum(r.end_time - r.start_time for r in routes)
    money = sum(r.cost for r in routes)
    value = {"distance": distance, "time": duration, "cost": money}[request.objective]
    breakdown = ObjectiveBreakdown(
        distance=distance,
        time=duration,
        drive=sum(r.drive_minutes for r in routes),
        vehicles=len(routes),
        cost=money,
        penalties=penalty_per_stop * len(unassigned),
    )
    return Plan(
        routes=tuple(routes),
        objective=request.objective,
        cost=value,
        breakdown=breakdown,
        feasible=not unassigned,
        unassigned=tuple(unassigned),
        engine=raw.engine,
        elapsed_seconds=elapsed,
    )


def _earliest_starts(
    request: PlanRequest, travel: TravelMatrix, vehicle: Vehicle, stops: Sequence[int]
) -> list[float]:
    t, where, result = vehicle.shift_start, vehicle.start_location, []
    for s in stops:
        stop = request.stops[s]
        arrival = t + float(travel.time[where, stop.location])
        begin = _service_start(stop, arrival)
        begin = arrival if begin is None else begin
        result.append(begin)
        t, where = begin + stop.service_minutes, stop.location
    return result


def route_distance(travel: TravelMatrix, vehicle: Vehicle, locations: Sequence[int]) -> float:
    """Float distance of a path from the vehicle's start through ``locations`` to its end."""
    path = [vehicle.start_location, *locations, vehicle.end_location]
    total = 0.0
    for a, b in pairwise(path):
        total += float(travel.distance[a, b])
    return total if math.isfinite(total) else math.inf
