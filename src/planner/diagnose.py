"""Why a stop was left out: the first rule that rules it out for every vehicle.

Checked in order: skills, capacity, reachability, then the stop served alone (directly from each
vehicle's start) against windows, shifts and Hours of Service. A stop that some vehicle could
serve alone was squeezed out by the others; its reason is the rule that most often blocks
inserting it into the plan's routes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

from planner.model import PlanRequest, Reason, Unassigned, Vehicle
from planner.schedule import Pairing, RawRoute, check_route
from planner.travel import TravelMatrix

__all__ = ["explain_dropped"]


def _load(request: PlanRequest, unit: tuple[int, ...]) -> dict[str, int]:
    return {d: q for d, q in request.stops[unit[0]].demand.items() if q}


def _fmt(quantities: dict[str, int]) -> str:
    return ", ".join(f"{d}={q}" for d, q in sorted(quantities.items()))


def _static_reason(
    request: PlanRequest, travel: TravelMatrix, unit: tuple[int, ...], pairing: Pairing
) -> tuple[Reason | None, str, list[Vehicle]]:
    """A reason that holds for every vehicle, or ``None`` and the vehicles that could serve the
    unit on a route of its own."""
    stops = [request.stops[s] for s in unit]
    skills = frozenset().union(*(s.required_skills for s in stops))
    eligible = [v for v in request.vehicles if skills <= v.skills]
    if not eligible:
        return "skill", f"no vehicle has the skills {', '.join(sorted(skills))}", []
    load = _load(request, unit)
    fitting = [v for v in eligible if all(q <= v.capacity.get(d, 0) for d, q in load.items())]
    if not fitting:
        largest = {d: max(v.capacity.get(d, 0) for v in eligible) for d in load}
        return "capacity", f"needs {_fmt(load)}; the largest vehicle takes {_fmt(largest)}", []
    locations = [s.location for s in stops]
    reaching = []
    for v in fitting:
        path = [v.start_location, *locations, v.end_location]
        if all(travel.reachable(a, b) for a, b in pairwise(path)):
            reaching.append(v)
    if not reaching:
        return "unreachable", "no vehicle can drive there and back", []
    outcomes = [(v, check_route(request, travel, v, unit, pairing)) for v in reaching]
    able = [v for v, check in outcomes if check.reason is None]
    if able:
        return None, "", able
    hos = [check for _, check in outcomes if check.reason == "hos"]
    if hos:
        return (
            "hos",
            f"every driver who could make the window is out of hours ({hos[0].detail})",
            [],
        )
    first = outcomes[0][1]
    return first.reason or "window", first.detail or "window cannot be met", []


def _insertion_reason(
    request: PlanRequest,
    travel: TravelMatrix,
    unit: tuple[int, ...],
    routes: Sequence[RawRoute],
    able: list[Vehicle],
    deadline: float,
    pairing: Pairing,
) -> tuple[Reason, str]:
    able_ids = {v.id for v in able}
    used = {request.vehicles[r.vehicle].id for r in routes if r.stops}
    if able_ids - used:
        return "window", "could be served by an idle vehicle; the search ran out of time"
    counts: Counter[Reason] = Counter()
    for route in routes:
        vehicle = request.vehicles[route.vehicle]
        if vehicle.id not in able_ids or not route.stops:
            continue
        stops = list(route.stops)
        for i in range(len(stops) + 1):
            for j in range(i, len(stops) + 1) if len(unit) == 2 else (i,):
                if time.monotonic() > deadline:
                    break
                trial = stops[:i] + [unit[0]] + stops[i:j] + list(unit[1:]) + stops[j:]
                reason = check_route(request, travel, vehicle, trial, pairing).reason
                if reason is not None:
                    counts[reason] += 1
    if not counts:
        return "window", "no room left on the routes of the vehicles that could serve it"
    reason, _ = counts.most_common(1)[0]
    return reason, f"no room left on the routes that could serve it ({reason})"


def explain_dropped(
    request: PlanRequest,
    travel: TravelMatrix,
    dropped: Sequence[int],
    routes: Sequence[RawRoute],
    *,
    budget: float = 2.0,
) -> list[Unassigned]:
    """A reason for each dropped stop index, in the order given; trying insertions into the
    routes stops after ``budget`` seconds (the static checks always run)."""
    deadline = time.monotonic() + budget
    result: list[Unassigned] = []
    cache: dict[tuple[int, ...], tuple[Reason, str]] = {}
    pairing = Pairing.of(request)
    for stop in dropped:
        unit = pairing.unit(stop)
        if unit not in cache:
            reason, detail, able = _static_reason(request, travel, unit, pairing)
            if reason is None:
                reason, detail = _insertion_reason(
                    request, travel, unit, routes, able, deadline, pairing
                )
            cache[unit] = (reason, detail)
        reason, detail = cache[unit]
        result.append(Unassigned(request.stops[stop].id, reason, detail))
    return result
