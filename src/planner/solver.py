"""The OR-Tools routing model: the only module that imports ortools.

Integer arithmetic: times and distances are scaled by ``SCALE`` ticks per minute / per km (or per
Euclidean unit). Travel times are rounded up, so a schedule feasible in ticks is feasible in
minutes; arc costs are rounded to the nearest tick, and reported distances are recomputed in
floats from the routes.

Hours of Service, per driver with an ``hos`` record:
- driving: a ``drive`` dimension (travel only) capped at the remaining drive minutes;
- the 14-hour window: the route must end by shift start + remaining duty minutes;
- 60/70-hour cycle: the route's span is capped at the remaining cycle minutes;
- the 30-minute break: break intervals on the time dimension with at most 8 h of elapsed time
  between breaks (elapsed time bounds driving time, so this is a safe reading of the rule); a
  driver who has already driven ``driven_since_break`` minutes gets a first break that must
  start within the remaining 8 h - driven minutes of the shift start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from planner.model import BREAK_AFTER_DRIVING, BREAK_MINUTES, Break, PlanRequest
from planner.schedule import RawRoute, RawSolution, stop_pairs
from planner.travel import TravelMatrix

__all__ = [
    "PLAIN",
    "SCALE",
    "ScaledModel",
    "SearchConfig",
    "drop_penalty",
    "solve_ortools",
]

SCALE = 1000
"""Integer ticks per minute and per distance unit."""

BIG = 10**12
"""Stands in for an impossible arc."""

IntArray = npt.NDArray[np.int64]
ProgressFn = Callable[[float, float, int], None]
"""Called with (elapsed seconds, best objective so far in user units, stops dropped)."""


@dataclass(frozen=True)
class SearchConfig:
    """How to search: a construction heuristic, then a metaheuristic until the time limit."""

    name: str = "plain"
    first_solution: str = "PATH_CHEAPEST_ARC"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    gls_lambda: float = 0.1
    """OR-Tools' default; 0.2, 0.3, 0.5 and 1.0 measured worse at 30 s on Solomon."""


PLAIN = SearchConfig(name="plain")
"""The textbook setup: PATH_CHEAPEST_ARC then guided local search."""


@dataclass(frozen=True, eq=False)
class ScaledModel:
    """The request in solver ticks: one node per stop, then one per depot location."""

    n_stops: int
    node_location: IntArray
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    arc_costs: tuple[IntArray, ...]
    """Per distinct vehicle cost class, the node-by-node arc cost."""
    vehicle_cost_class: tuple[int, ...]
    time: IntArray
    """Travel ticks plus the service ticks of the node left."""
    drive: IntArray
    service: IntArray
    span_cost: tuple[int, ...]
    fixed_cost: int
    penalty: int
    cost_scale: float
    """Internal cost units per user objective unit."""
    horizon: int


def _ticks_up(minutes: float) -> int:
    return math.ceil(minutes * SCALE - 1e-6)


def _ticks_down(minutes: float) -> int:
    return math.floor(minutes * SCALE + 1e-6)


def _scaled(matrix: npt.NDArray[np.float64], *, up: bool) -> IntArray:
    finite = np.isfinite(matrix)
    safe = np.where(finite, matrix, 0.0) * SCALE
    ticks = np.ceil(safe - 1e-6) if up else np.rint(safe)
    result: IntArray = np.where(finite, ticks, BIG).astype(np.int64)
    return result


def drop_penalty(model: ScaledModel) -> float:
    """What leaving a stop out costs, in the objective's unit."""
    return model.penalty / model.cost_scale


def build_scaled(request: PlanRequest, travel: TravelMatrix) -> ScaledModel:
    """Scale the request to integer ticks and pick cost and penalty magnitudes."""
    depots = sorted(
        {v.start_location for v in request.vehicles} | {v.end_location for v in request.vehicles}
    )
    n_stops = len(request.stops)
    depot_node = {loc: n_stops + k for k, loc in enumerate(depots)}
    node_location = np.array([s.location for s in request.stops] + depots, dtype=np.int64)
    sub = np.ix_(node_location, node_location)
    distance = travel.distance[sub]
    drive = _scaled(travel.time[sub], up=True)
    service = np.array(
        [_ticks_up(s.service_minutes) for s in request.stops] + [0] * len(depots), dtype=np.int64
    )
    time_ticks: IntArray = np.where(drive >= BIG, BIG, drive + service[:, None]).astype(np.int64)
    np.fill_diagonal(time_ticks, 0)
    horizon = max(
        [_ticks_up(v.shift_end) for v in request.vehicles]
        + [_ticks_up(w.end) for s in request.stops for w in s.windows]
        + [1]
    )
    finite_drive = drive[drive < BIG]
    max_drive = int(finite_drive.max()) if finite_drive.size else 1
    classes: dict[float, int] = {}
    arc_costs: list[IntArray] = []
    vehicle_class: list[int] = []
    span_cost: list[int] = []
    if request.objective == "distance":
        arc_costs.append(_scaled(distance, up=False))
        vehicle_class = [0] * len(request.vehicles)
        span_cost = [0] * len(request.vehicles)
        cost_scale = float(SCALE)
    elif request.objective == "time":
        arc_costs.append(drive)
        vehicle_class = [0] * len(request.vehicles)
        span_cost = [1] * len(request.vehicles)
        cost_scale = float(SCALE)
    else:
        # Money in millionths; per-hour cost charged on the route's span.
        cost_scale = 1e6
        for v in request.vehicles:
            if v.cost_per_km not in classes:
                classes[v.cost_per_km] = len(arc_costs)
                arc_costs.append(_scaled(distance * v.cost_per_km * cost_scale / SCALE, up=False))
            vehicle_class.append(classes[v.cost_per_km])
            span_cost.append(round(v.cost_per_hour / 60.0 * cost_scale / SCALE))
    finite_costs = [int(c[c < BIG].max()) for c in arc_costs if (c < BIG).any()]
    max_arc = max([*finite_costs, 1])
    per_stop = 2 * max_arc + max(span_cost, default=0) * (horizon + 2 * max_drive)
    fixed = per_stop * max(n_stops, 1) + 1 if request.vehicles_first else 0
    return ScaledModel(
        n_stops=n_stops,
        node_location=node_location,
        starts=tuple(depot_node[v.start_location] for v in request.vehicles),
        ends=tuple(depot_node[v.end_location] for v in request.vehicles),
        arc_costs=tuple(arc_costs),
        vehicle_cost_class=tuple(vehicle_class),
        time=time_ticks,
        drive=drive,
        service=service,
        span_cost=tuple(span_cost),
        fixed_cost=fixed,
        penalty=100 * per_stop + fixed,
        cost_scale=cost_scale,
        horizon=horizon,
    )


class _Routing:
    """One OR-Tools routing model for a request (build a fresh one per search)."""

    def __init__(self, request: PlanRequest, model: ScaledModel) -> None:
        self.request, self.model = request, model
        n_nodes = len(model.node_location)
        self.manager = pywrapcp.RoutingIndexManager(
            n_nodes, len(request.vehicles), list(model.starts), list(model.ends)
        )
        self.routing = pywrapcp.RoutingModel(self.manager)
        self.breaks: dict[int, list[Any]] = {}
        self._arc_costs()
        self._capacities()
        self._time()
        self._hours_of_service()
        self._skills_and_pairs()
        self._disjunctions()

    def index(self, node: int) -> int:
        return int(self.manager.NodeToIndex(node))

    def _arc_costs(self) -> None:
        routing, model = self.routing, self.model
        callbacks = [routing.RegisterTransitMatrix(c.tolist()) for c in model.arc_costs]
        if len(callbacks) == 1:
            routing.SetArcCostEvaluatorOfAllVehicles(callbacks[0])
        else:
            for v, cls in enumerate(model.vehicle_cost_class):
                routing.SetArcCostEvaluatorOfVehicle(callbacks[cls], v)
        if model.fixed_cost:
            routing.SetFixedCostOfAllVehicles(model.fixed_cost)
        # Arcs nobody can drive are removed outright.
        if (model.drive >= BIG).any():
            for a, b in zip(*np.nonzero(model.drive >= BIG), strict=True):
                if a == b:
                    continue
                if a < model.n_stops and b < model.n_stops:
                    routing.NextVar(self.index(int(a))).RemoveValue(self.index(int(b)))

    def _capacities(self) -> None:
        request, model = self.request, self.model
        dims = sorted({d for s in request.stops for d, q in s.demand.items() if q})
        partner = stop_pairs(request)
        index = {s.id: i for i, s in enumerate(request.stops)}
        deliveries = {index[p.delivery] for p in request.pairs}
        with_pairs = bool(request.pairs)
        for dim in dims:
            demand = [0] * len(model.node_location)
            for i, stop in enumerate(request.stops):
                if i in deliveries:
                    demand[i] = -request.stops[partner[i]].demand.get(dim, 0)
                elif with_pairs and i not in partner:
                    # Loaded at the depot, unloaded here: the load on board falls.
                    demand[i] = -stop.demand.get(dim, 0)
                else:
                    demand[i] = stop.demand.get(dim, 0)
            callback = self.routing.RegisterUnaryTransitVector(demand)
            caps = [int(v.capacity.get(dim, 0)) for v in request.vehicles]
            self.routing.AddDimensionWithVehicleCapacity(
                callback, 0, caps, not with_pairs, f"load:{dim}"
            )

    def _time(self) -> None:
        request, model, routing = self.request, self.model, self.routing
        callback = routing.RegisterTransitMatrix(model.time.tolist())
        routing.AddDimension(callback, model.horizon, model.horizon, False, "time")
        self.time_dim = routing.GetDimensionOrDie("time")
        for i, stop in enumerate(request.stops):
            if not stop.windows:
                continue
            windows = sorted(stop.windows, key=lambda w: w.start)
            cumul = self.time_dim.CumulVar(self.index(i))
            lo, hi = _ticks_up(windows[0].start), _ticks_down(windows[-1].end)
            cumul.SetRange(lo, max(lo, hi))
            for a, b in pairwise(windows):
                gap_lo, gap_hi = _ticks_down(a.end) + 1, _ticks_up(b.start) - 1
                if gap_lo <= gap_hi:
                    cumul.RemoveInterval(gap_lo, gap_hi)
        for v, vehicle in enumerate(request.vehicles):
            end_limit = vehicle.shift_end
            if vehicle.hos is not None:
                end_limit = min(end_limit, vehicle.shift_start + vehicle.hos.duty_remaining)
                self.time_dim.SetSpanUpperBoundForVehicle(
                    max(0, _ticks_down(vehicle.hos.cycle_remaining)), v
                )
            start = _ticks_up(vehicle.shift_start)
            self.time_dim.CumulVar(routing.Start(v)).SetRange(start, _ticks_down(vehicle.shift_end))
            self.time_dim.CumulVar(routing.End(v)).SetRange(
                start, max(start, _ticks_down(end_limit))
            )
            if model.span_cost[v]:
                self.time_dim.SetSpanCostCoefficientForVehicle(model.span_cost[v], v)

    def _hours_of_service(self) -> None:
        request, model, routing = self.request, self.model, self.routing
        if all(v.hos is None for v in request.vehicles):
            return
        callback = routing.RegisterTransitMatrix(model.drive.tolist())
        caps = [
            _ticks_down(v.hos.drive_remaining) if v.hos is not None else model.horizon * 1000
            for v in request.vehicles
        ]
        routing.AddDimensionWithVehicleCapacity(callback, 0, caps, True, "drive")
        solver = routing.solver()
        visit = [int(model.service[self.manager.IndexToNode(i)]) for i in range(routing.Size())]
        visit += [0] * len(request.vehicles)
        limit, rest = _ticks_down(BREAK_AFTER_DRIVING), _ticks_up(BREAK_MINUTES)
        for v, vehicle in enumerate(request.vehicles):
            hos = vehicle.hos
            if hos is None:
                continue
            shift_start = _ticks_up(vehicle.shift_start)
            end_max = min(
                _ticks_down(vehicle.shift_end),
                _ticks_down(vehicle.shift_start + hos.duty_remaining),
            )
            first_limit = max(0, limit - _ticks_up(hos.driven_since_break))
            if end_max - shift_start <= first_limit:
                continue  # the shift ends before any break falls due
            intervals = []
            if hos.driven_since_break > 0:
                intervals.append(
                    solver.FixedDurationIntervalVar(
                        shift_start, shift_start + first_limit, rest, False, f"break:{v}:0"
                    )
                )
            # Breaks taken as late as allowed cover the longest possible day with this many:
            # the first segment, then 30 min of rest and up to 8 h more per break.
            span = end_max - shift_start
            count = -(-(span - first_limit) // (limit + rest))
            if hos.driven_since_break > 0:
                count -= 1  # the first break is the mandatory one above
            for k in range(count):
                intervals.append(
                    solver.FixedDurationIntervalVar(
                        shift_start, max(shift_start, end_max), rest, True, f"break:{v}:{k + 1}"
                    )
                )
            self.time_dim.SetBreakIntervalsOfVehicle(intervals, v, visit)
            self.time_dim.SetBreakDistanceDurationOfVehicle(limit, rest, v)
            self.breaks[v] = intervals

    def _skills_and_pairs(self) -> None:
        request, routing = self.request, self.routing
        for i, stop in enumerate(request.stops):
            if stop.required_skills:
                allowed = [
                    v
                    for v, veh in enumerate(request.vehicles)
                    if stop.required_skills <= veh.skills
                ]
                # SetAllowedVehiclesForIndex rejects Python lists in this binding; the vehicle
                # variable's domain says the same (-1 stands for "not served").
                if allowed:
                    routing.VehicleVar(self.index(i)).SetValues([-1, *allowed])
                else:
                    routing.ActiveVar(self.index(i)).SetValue(0)
        index = {s.id: i for i, s in enumerate(request.stops)}
        solver = routing.solver()
        for pair in request.pairs:
            p, d = self.index(index[pair.pickup]), self.index(index[pair.delivery])
            routing.AddPickupAndDelivery(p, d)
            solver.Add(routing.VehicleVar(p) == routing.VehicleVar(d))
            solver.Add(self.time_dim.CumulVar(p) <= self.time_dim.CumulVar(d))

    def _disjunctions(self) -> None:
        for i in range(self.model.n_stops):
            self.routing.AddDisjunction([self.index(i)], self.model.penalty)

    def extract(self, assignment: Any) -> tuple[list[RawRoute], list[int]]:
        """Routes and schedule from an OR-Tools assignment (times back in minutes)."""
        routing, time_dim = self.routing, self.time_dim
        value: Callable[[Any], int] = assignment.Value
        served: set[int] = set()
        routes: list[RawRoute] = []
        break_values = self._break_values(assignment)
        for v in range(len(self.request.vehicles)):
            index = routing.Start(v)
            start_time = value(time_dim.CumulVar(index)) / SCALE
            stops: list[int] = []
            starts: list[float] = []
            index = value(routing.NextVar(index))
            while not routing.IsEnd(index):
                node = self.manager.IndexToNode(index)
                stops.append(node)
                starts.append(value(time_dim.CumulVar(index)) / SCALE)
                served.add(node)
                index = value(routing.NextVar(index))
            end_time = value(time_dim.CumulVar(index)) / SCALE
            routes.append(
                RawRoute(
                    v,
                    tuple(stops),
                    tuple(starts),
                    start_time,
                    end_time,
                    tuple(b for b in break_values.get(v, []) if start_time <= b.start < end_time),
                )
            )
        dropped = [i for i in range(self.model.n_stops) if i not in served]
        return routes, dropped

    def _break_values(self, assignment: Any) -> dict[int, list[Break]]:
        if not self.breaks:
            return {}
        result: dict[int, list[Break]] = {}
        container = assignment.IntervalVarContainer()
        for k in range(container.Size()):
            element = container.Element(k)
            name = element.Var().Name()
            if not name.startswith("break:") or not element.PerformedValue():
                continue
            v = int(name.split(":")[1])
            result.setdefault(v, []).append(
                Break(element.StartValue() / SCALE, element.DurationValue() / SCALE)
            )
        return result


def _parameters(config: SearchConfig, seconds: float) -> Any:
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, config.first_solution
    )
    params.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, config.metaheuristic
    )
    params.guided_local_search_lambda_coefficient = config.gls_lambda
    params.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
    return params


def solve_ortools(
    request: PlanRequest,
    travel: TravelMatrix,
    *,
    time_limit: float,
    config: SearchConfig = PLAIN,
    progress: ProgressFn | None = None,
    started: float | None = None,
) -> RawSolution:
    """Search for the cheapest routes within ``time_limit`` seconds (counted from ``started``)."""
    t0 = time.monotonic() if started is None else started
    deadline = t0 + time_limit
    model = build_scaled(request, travel)
    best: list[float] = [math.inf]
    first_seen: list[float | None] = [None]
    count = [0]

    def watch(routing_model: _Routing) -> Callable[[], None]:
        def on_solution() -> None:
            count[0] += 1
            cost = routing_model.routing.CostVar().Value()
            if first_seen[0] is None:
                first_seen[0] = time.monotonic() - t0
            if cost < best[0]:
                best[0] = cost
                if progress is not None:
                    dropped = sum(
                        1
                        for i in range(model.n_stops)
                        if routing_model.routing.NextVar(routing_model.index(i)).Value()
                        == routing_model.index(i)
                    )
                    progress(time.monotonic() - t0, cost / model.cost_scale, dropped)

        return on_solution

    main = _Routing(request, model)
    main.routing.AddAtSolutionCallback(watch(main))
    remaining = max(0.05, deadline - time.monotonic() - 0.05)
    solution = main.routing.SolveWithParameters(_parameters(config, remaining))
    if solution is None:  # nothing found in time (or the model is infeasible as posed)
        return RawSolution(
            f"ortools:{config.name}",
            (),
            tuple(range(model.n_stops)),
            math.inf,
            first_seen[0],
            count[0],
        )
    routes, dropped = main.extract(solution)
    return RawSolution(
        engine=f"ortools:{config.name}",
        routes=tuple(routes),
        dropped=tuple(dropped),
        objective=solution.ObjectiveValue() / model.cost_scale,
        first_solution_seconds=first_seen[0],
        solutions=count[0],
    )
