"""Planner benchmark: Solomon VRPTW gaps against best-known distances, and a scale curve.

Prints, per time limit, for each instance: our portfolio (``planner.solve``: two processes,
OR-Tools next to PyVRP when PyVRP is installed and the request is plain VRPTW, else two OR-Tools
setups) and, in the same run, the plain OR-Tools baseline (PATH_CHEAPEST_ARC + guided local
search, one process, same limit): vehicles, distance, gap to BKS ``distonly_distance``,
feasibility (all 100 customers served within the file's fleet). Then the mean gaps.

The scale curve solves seeded random instances (100x100 square, windows, capacities) of 100,
200, 400 and 1,000 stops and prints the time to the first plan that serves every stop, and
the best cost after 10 s and 60 s (``--quick``: 10 s only), ours and plain.

Run from the repository root: ``.venv/bin/python benchmarks/planner.py [--all] [--quick]``.
Instances are one at a time; the load average is printed because this machine may be shared.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# This file is named after the package it measures; keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import numpy as np  # noqa: E402  (after the sys.path fix above)

from planner import pyvrp_engine  # noqa: E402  (after the sys.path fix above)
from planner.model import (  # noqa: E402  (after the sys.path fix above)
    Location,
    Plan,
    PlanRequest,
    Stop,
    TimeWindow,
    TravelModel,
    Vehicle,
)
from planner.portfolio import ENGINE_SETUPS, Progress, solve  # noqa: E402  (after the sys.path fix)
from planner.schedule import RawSolution, route_distance  # noqa: E402  (after the sys.path fix)
from planner.solver import PLAIN, solve_ortools  # noqa: E402  (after the sys.path fix above)
from planner.travel import build_travel  # noqa: E402  (after the sys.path fix above)
from planner.vrplib_io import read_solomon  # noqa: E402  (after the sys.path fix above)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "vrptw"
EIGHT = ("C101", "C201", "R101", "R201", "RC101", "RC201", "R112", "RC208")


@dataclass(frozen=True)
class Outcome:
    vehicles: int
    distance: float
    feasible: bool
    engine: str

    def gap(self, bks: float) -> float:
        return (self.distance / bks - 1.0) * 100.0


def read_bks(path: Path) -> dict[str, float]:
    bks: dict[str, float] = {}
    header: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if not header:
            header = fields
            continue
        row = dict(zip(header, fields, strict=False))
        if row.get("class") == "solomon" and row.get("distonly_distance"):
            bks[row["instance"]] = float(row["distonly_distance"])
    return bks


def ours(request: PlanRequest, limit: float, setups: str | None) -> Outcome:
    plan = solve(
        request,
        time_limit=limit,
        workers=2,
        setups=ENGINE_SETUPS[setups] if setups else None,
    )
    return Outcome(len(plan.routes), plan.breakdown.distance, plan.feasible, plan.engine)


def plain(request: PlanRequest, limit: float) -> Outcome:
    travel = build_travel(request)
    raw = solve_ortools(request, travel, time_limit=limit, config=PLAIN)
    return _outcome(request, raw)


def _outcome(request: PlanRequest, raw: RawSolution) -> Outcome:
    travel = build_travel(request)
    distance = sum(
        route_distance(
            travel, request.vehicles[r.vehicle], [request.stops[s].location for s in r.stops]
        )
        for r in raw.routes
        if r.stops
    )
    used = sum(1 for r in raw.routes if r.stops)
    return Outcome(used, distance, not raw.dropped and used <= len(request.vehicles), raw.engine)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):6.2f} %" if values else "   n/a"


def table(instances: list[str], limits: list[float], extra: str | None) -> None:
    bks = read_bks(DATA / "BKS.tsv")
    print(f"PyVRP available: {pyvrp_engine.available()}")
    for limit in limits:
        print(f"\n== {limit:g} s per instance (distance objective) -- {_load()}")
        head = f"{'instance':8s} {'BKS':>8s} | {'ours':>28s} {'engine':>18s} | {'plain':>28s}"
        if extra:
            head += f" | {extra + ' only':>28s}"
        print(head)
        gaps: dict[str, list[float]] = {"ours": [], "plain": [], "extra": []}
        infeasible: dict[str, int] = {"ours": 0, "plain": 0, "extra": 0}
        for name in instances:
            request = read_solomon(DATA / "solomon" / f"{name}.txt")
            results = {"ours": ours(request, limit, None), "plain": plain(request, limit)}
            if extra:
                results["extra"] = ours(request, limit, extra)
            cells = []
            for key, outcome in results.items():
                gap = outcome.gap(bks[name])
                if outcome.feasible:
                    gaps[key].append(gap)
                else:
                    infeasible[key] += 1
                cell = (
                    f"{outcome.vehicles:3d} veh {outcome.distance:9.2f} {gap:6.2f} % "
                    f"{'ok' if outcome.feasible else 'NO'}"
                )
                if key == "ours":
                    cell += f" {outcome.engine:>18s}"
                cells.append(cell)
            print(f"{name:8s} {bks[name]:8.2f} | " + " | ".join(cells), flush=True)
        summary = (
            f"mean gap at {limit:g} s: ours {_mean(gaps['ours'])} "
            f"({infeasible['ours']} infeasible), plain {_mean(gaps['plain'])} "
            f"({infeasible['plain']} infeasible)"
        )
        if extra:
            summary += f", {extra} only {_mean(gaps['extra'])} ({infeasible['extra']} infeasible)"
        print(summary)
        print(f"   ({_load()})")


def generated(n: int, seed: int) -> PlanRequest:
    """Random VRPTW: depot in the middle of a 100x100 square, horizon 1000, service 10,
    windows 30-200 wide that a direct trip can make, demand 1-20, capacity 200."""
    rng = np.random.default_rng(seed)
    horizon, service = 1000.0, 10.0
    xy = rng.uniform(0, 100, size=(n, 2))
    customers = [Location(f"c{i}", float(x), float(y)) for i, (x, y) in enumerate(xy)]
    locations = (Location("depot", 50.0, 50.0), *customers)
    stops = []
    for i, (x, y) in enumerate(xy):
        d = math.hypot(x - 50.0, y - 50.0)
        lo, hi = math.ceil(d), math.floor(horizon - service - d)
        center = float(rng.uniform(lo, hi))
        half = float(rng.uniform(15, 100))
        window = TimeWindow(max(float(lo), center - half), min(float(hi), center + half))
        demand = {"weight": int(rng.integers(1, 21))}
        stops.append(Stop(f"c{i}", i + 1, demand, (window,), service))
    fleet = n // 5 + 5
    vehicles = tuple(Vehicle(f"v{k}", {"weight": 200}, 0, 0, 0.0, horizon) for k in range(fleet))
    return PlanRequest(
        locations, vehicles, tuple(stops), travel=TravelModel("euclidean"), name=f"gen-{n}"
    )


@dataclass
class Trace:
    first_feasible: float | None = None
    points: list[tuple[float, float]] | None = None

    def record(self, elapsed: float, cost: float, unassigned: int) -> None:
        if unassigned:
            return
        if self.first_feasible is None:
            self.first_feasible = elapsed
        if self.points is None:
            self.points = []
        self.points.append((elapsed, cost))

    def best_at(self, t: float) -> float | None:
        costs = [c for e, c in self.points or [] if e <= t]
        return min(costs) if costs else None


def _fmt(value: float | None, unit: str = "") -> str:
    return f"{value:9.2f}{unit}" if value is not None else "      n/a"


def scale_curve(sizes: list[int], quick: bool, seed: int) -> None:
    horizon = 10.0 if quick else 60.0
    print(f"\n== scale curve (seed {seed}, limit {horizon:g} s) -- {_load()}")
    print(
        f"{'stops':>6s} | {'ours: first ok':>14s} {'cost@10s':>9s} {'cost@60s':>9s} "
        f"{'served':>7s} {'engine':>18s} | {'plain: first ok':>15s} {'cost@10s':>9s} "
        f"{'cost@60s':>9s} {'served':>7s}"
    )
    for n in sizes:
        request = generated(n, seed)
        ours_trace = Trace()

        def on_progress(p: Progress, trace: Trace = ours_trace) -> None:
            trace.record(p.elapsed_seconds, p.best_cost, p.unassigned)

        plan: Plan = solve(request, time_limit=horizon, workers=2, progress=on_progress)
        plain_trace = Trace()
        raw = solve_ortools(
            request,
            build_travel(request),
            time_limit=horizon,
            config=PLAIN,
            progress=plain_trace.record,
        )
        served = len(request.stops) - len(plan.unassigned)
        print(
            f"{n:6d} | {_fmt(ours_trace.first_feasible, ' s'):>14s} "
            f"{_fmt(ours_trace.best_at(10.0))} "
            f"{_fmt(None if quick else plan.breakdown.distance if plan.feasible else None)} "
            f"{served:7d} {plan.engine:>18s} | {_fmt(plain_trace.first_feasible, ' s'):>15s} "
            f"{_fmt(plain_trace.best_at(10.0))} "
            f"{_fmt(None if quick else plain_trace.best_at(horizon + 1))} "
            f"{n - len(raw.dropped):7d}",
            flush=True,
        )
    print(f"   ({_load()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="all 56 Solomon instances")
    parser.add_argument("--instances", help="comma-separated instance names")
    parser.add_argument("--limits", default="5,30", help="seconds per instance (5,30)")
    parser.add_argument("--quick", action="store_true", help="scale curve at 10 s only")
    parser.add_argument("--no-table", action="store_true", help="skip the Solomon table")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale curve")
    parser.add_argument("--sizes", default="100,200,400,1000", help="scale curve sizes")
    parser.add_argument("--seed", type=int, default=1, help="scale curve seed (1)")
    parser.add_argument(
        "--ortools-column",
        action="store_true",
        help="also run our portfolio restricted to OR-Tools (when PyVRP is installed)",
    )
    args = parser.parse_args(argv)
    if not (DATA / "BKS.tsv").is_file():
        print(f"benchmark data not found at {DATA}", file=sys.stderr)
        return 2
    if args.all:
        instances = sorted(p.stem for p in (DATA / "solomon").glob("*.txt"))
    elif args.instances:
        instances = args.instances.split(",")
    else:
        instances = list(EIGHT)
    started = time.monotonic()
    if not args.no_table:
        limits = [float(x) for x in args.limits.split(",")]
        table(instances, limits, "ortools" if args.ortools_column else None)
    if not args.no_scale:
        scale_curve([int(x) for x in args.sizes.split(",")], args.quick, args.seed)
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
