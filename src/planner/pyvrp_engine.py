"""Optional second engine: PyVRP's iterated local search for plain VRPTW requests.

Used only when PyVRP is importable and the request needs nothing beyond capacities, one time
window per stop, shifts and a distance objective (no pairs, skills or Hours of Service); the
rich model always goes to OR-Tools. PyVRP is imported lazily through importlib so this package
neither requires it nor type-checks against it.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from planner.model import PlanRequest
from planner.schedule import RawRoute, RawSolution
from planner.travel import TravelMatrix

__all__ = ["available", "eligible", "solve_pyvrp"]

SCALE = 1000
ProgressFn = Callable[[float, float, int], None]


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available() -> bool:
    """Whether PyVRP can be imported here."""
    return _module("pyvrp") is not None


def eligible(request: PlanRequest, travel: TravelMatrix) -> bool:
    """Whether the request is plain VRPTW that PyVRP models exactly."""
    if request.objective != "distance" or request.pairs or request.vehicles_first:
        return False
    if any(v.hos is not None for v in request.vehicles):
        return False
    if any(s.required_skills or len(s.windows) > 1 for s in request.stops):
        return False
    if not (np.isfinite(travel.distance).all() and np.isfinite(travel.time).all()):
        return False
    return bool(request.stops) and bool(request.vehicles)


def _data(request: PlanRequest, travel: TravelMatrix, pyvrp: Any) -> tuple[Any, list[list[int]]]:
    """ProblemData with depots first, then one client per stop; vehicles grouped by type."""
    depots = sorted(
        {v.start_location for v in request.vehicles} | {v.end_location for v in request.vehicles}
    )
    locs = depots + [s.location for s in request.stops]
    sub = np.ix_(locs, locs)
    distance = np.rint(travel.distance[sub] * SCALE).astype(np.int64)
    duration = np.ceil(travel.time[sub] * SCALE - 1e-6).astype(np.int64)
    dims = sorted({d for s in request.stops for d, q in s.demand.items() if q})
    horizon = max(
        [math.floor(v.shift_end * SCALE) for v in request.vehicles]
        + [math.floor(w.end * SCALE) for s in request.stops for w in s.windows]
    )
    locations = [pyvrp.Location(x=0.0, y=0.0) for _ in locs]
    depot_objs = [pyvrp.Depot(location=k, tw_early=0, tw_late=horizon) for k in range(len(depots))]
    clients = []
    for k, stop in enumerate(request.stops):
        window = stop.windows[0] if stop.windows else None
        clients.append(
            pyvrp.Client(
                location=len(depots) + k,
                delivery=[int(stop.demand.get(d, 0)) for d in dims],
                service_duration=math.ceil(stop.service_minutes * SCALE - 1e-6),
                tw_early=math.ceil(window.start * SCALE - 1e-6) if window else 0,
                tw_late=math.floor(window.end * SCALE + 1e-6) if window else horizon,
                name=stop.id,
            )
        )
    # Identical vehicles form one PyVRP vehicle type: capacities, depots, shift in ticks.
    types: dict[tuple[tuple[int, ...], int, int, int, int], list[int]] = {}
    for v, vehicle in enumerate(request.vehicles):
        key = (
            tuple(int(vehicle.capacity.get(d, 0)) for d in dims),
            depots.index(vehicle.start_location),
            depots.index(vehicle.end_location),
            math.ceil(vehicle.shift_start * SCALE - 1e-6),
            math.floor(vehicle.shift_end * SCALE + 1e-6),
        )
        types.setdefault(key, []).append(v)
    vehicle_types = [
        pyvrp.VehicleType(
            num_available=len(members),
            capacity=list(capacity),
            start_depot=start,
            end_depot=end,
            tw_early=early,
            tw_late=late,
        )
        for (capacity, start, end, early, late), members in types.items()
    ]
    data = pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=depot_objs,
        vehicle_types=vehicle_types,
        distance_matrices=[distance],
        duration_matrices=[duration],
    )
    return data, list(types.values())


def solve_pyvrp(
    request: PlanRequest,
    travel: TravelMatrix,
    *,
    time_limit: float,
    seed: int = 0,
    progress: ProgressFn | None = None,
    started: float | None = None,
) -> RawSolution | None:
    """Run PyVRP until ``time_limit`` seconds after ``started``; ``None`` if it is missing or
    found no feasible solution."""
    pyvrp = _module("pyvrp")
    if pyvrp is None:
        return None
    stop_mod, ils_mod = _module("pyvrp.stop"), _module("pyvrp.IteratedLocalSearch")
    t0 = time.monotonic() if started is None else started
    data, members = _data(request, travel, pyvrp)
    first: list[float | None] = [None]
    count = [0]

    def on_best(_self: Any, best: Any) -> None:
        count[0] += 1
        if best.is_feasible():
            if first[0] is None:
                first[0] = time.monotonic() - t0
            if progress is not None:
                progress(time.monotonic() - t0, best.distance() / SCALE, 0)

    watch = type("Watch", (ils_mod.IteratedLocalSearchCallbacks,), {"on_best": on_best})
    params = pyvrp.SolveParams(ils=ils_mod.IteratedLocalSearchParams(callbacks=watch()))
    remaining = max(0.05, t0 + time_limit - time.monotonic() - 0.05)
    result = pyvrp.solve(
        data, stop=stop_mod.MaxRuntime(remaining), seed=seed, collect_stats=False, params=params
    )
    best = result.best
    if not best.is_feasible():
        return None
    if first[0] is None:  # the first feasible solution was already the best one
        first[0] = time.monotonic() - t0
    used: dict[int, int] = {}
    routes: list[RawRoute] = []
    for route in best.routes():
        vtype = route.vehicle_type()
        k = used.get(vtype, 0)
        used[vtype] = k + 1
        vehicle = members[vtype][k]
        stops = tuple(int(a.idx) for a in route if a.is_client())
        routes.append(RawRoute(vehicle, stops))
    return RawSolution(
        engine="pyvrp",
        routes=tuple(routes),
        dropped=(),
        objective=best.distance() / SCALE,
        first_solution_seconds=first[0],
        solutions=count[0],
    )
