"""The ``plan`` command: ``plan solve FILE [--time-limit S] [--json] [--workers N]``.

FILE is the product's JSON plan request, a Solomon instance or a VRPLIB instance. Exit codes:
0 a plan was produced (stops it leaves out are listed with a reason), 2 bad input.
``plan replan`` re-plans a day mid-route and records it (``planner.replan_cmd``).
"""

from __future__ import annotations

import argparse
import json
import sys

from planner.model import Plan, PlanRequestError
from planner.portfolio import Progress, solve
from planner.replan_cmd import add_replan
from planner.vrplib_io import load_request, plan_to_json

__all__ = ["add_parser", "render_plan", "run_solve"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``plan`` and its ``solve`` subcommand."""
    plan = subparsers.add_parser("plan", help="plan vehicle routes", description=__doc__)
    commands = plan.add_subparsers(dest="plan_command", metavar="COMMAND")
    plan.set_defaults(func=lambda args: _usage(plan))
    solve_cmd = commands.add_parser(
        "solve", help="plan routes for a request file and print the plan"
    )
    solve_cmd.add_argument("file", help="JSON plan request, Solomon or VRPLIB file")
    solve_cmd.add_argument(
        "--time-limit", type=float, default=10.0, metavar="S", help="seconds to search (10)"
    )
    solve_cmd.add_argument("--json", action="store_true", help="print the plan as JSON")
    solve_cmd.add_argument(
        "--workers", type=int, default=2, metavar="N", help="parallel searches (2)"
    )
    solve_cmd.add_argument(
        "--progress", action="store_true", help="print each better plan found to stderr"
    )
    solve_cmd.set_defaults(func=run_solve)
    add_replan(commands)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _minutes(value: float) -> str:
    return f"{value:.1f}"


def render_plan(plan: Plan, *, stops_total: int, vehicles_total: int, name: str = "") -> str:
    """The plan as text: totals, one block per route, then the stops left out."""
    b = plan.breakdown
    served = stops_total - len(plan.unassigned)
    lines = [
        f"plan {name}".rstrip() + f": objective {plan.objective}, engine {plan.engine}, "
        f"{plan.elapsed_seconds:.1f} s",
        f"feasible: {'yes' if plan.feasible else 'no'} ({served} of {stops_total} stops served)",
        f"vehicles used: {b.vehicles} of {vehicles_total}",
        f"cost: {plan.cost:.2f}  (distance {b.distance:.2f}, time {b.time:.1f} min, "
        f"driving {b.drive:.1f} min, money {b.cost:.2f}, penalties {b.penalties:.2f})",
    ]
    for route in plan.routes:
        lines.append(
            f"route {route.vehicle_id}: {len(route.visits)} stops, distance {route.distance:.2f}, "
            f"leaves {_minutes(route.start_time)}, back {_minutes(route.end_time)}"
        )
        lines.append("  " + " ".join(f"{v.stop_id}@{_minutes(v.arrival)}" for v in route.visits))
        for brk in route.breaks:
            lines.append(f"  break {_minutes(brk.start)} for {brk.minutes:.0f} min")
    if plan.unassigned:
        lines.append(f"unassigned: {len(plan.unassigned)}")
        for u in plan.unassigned:
            lines.append(f"  {u.stop_id}: {u.reason} ({u.detail})")
    return "\n".join(lines)


def run_solve(args: argparse.Namespace) -> int:
    """Load, plan and print; bad input prints the file and field at fault and returns 2."""
    try:
        request = load_request(args.file)
    except PlanRequestError as err:
        print(f"error: {args.file}: {err.field}: {err.message}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as err:
        print(f"error: {args.file}: {err}", file=sys.stderr)
        return 2
    if args.time_limit <= 0:
        print("error: --time-limit must be positive", file=sys.stderr)
        return 2

    def show(p: Progress) -> None:
        print(
            f"[{p.elapsed_seconds:6.2f} s] {p.engine}: cost {p.best_cost:.2f}, "
            f"{p.unassigned} left out",
            file=sys.stderr,
        )

    try:
        plan = solve(
            request,
            time_limit=args.time_limit,
            workers=max(1, args.workers),
            progress=show if args.progress else None,
        )
    except PlanRequestError as err:  # e.g. a benchmark file that references no location
        print(f"error: {args.file}: {err.field}: {err.message}", file=sys.stderr)
        return 2
    if args.json:
        document = plan_to_json(plan)
        document["name"] = request.name
        print(json.dumps(document, indent=2))
    else:
        print(
            render_plan(
                plan,
                stops_total=len(request.stops),
                vehicles_total=len(request.vehicles),
                name=request.name,
            )
        )
    return 0
