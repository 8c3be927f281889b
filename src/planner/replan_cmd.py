"""The ``plan replan`` command: re-plan a day mid-route and record the re-plan.

``plan replan [--day D] [--at T] [--warehouse W] [--time-limit S] [--workers N] [--json]``
first catches the GPS reconciler and the views up, then re-plans each warehouse (default: every
warehouse with orders that day) from where each vehicle is at T (default: now; the day defaults
to T's UTC date) and records it through the ledger. A refusal (a time before facts already
recorded, say) names the field, writes nothing and exits 1; bad input exits 2.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from ledger.application import Caller, Ledger
from ledger.errors import InvalidInput
from ledger.events import Source, aware
from planner.replan import Replan, replan_day
from planner.vrplib_io import plan_to_json
from projections.db import Database
from projections.worker import Worker

__all__ = ["add_replan", "run_replan"]


def add_replan(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``plan replan``."""
    replan = commands.add_parser(
        "replan",
        help="re-plan a day mid-route from where each vehicle is, and record it",
        description=__doc__,
    )
    replan.add_argument("--day", default=None, metavar="YYYY-MM-DD", help="(T's date)")
    replan.add_argument(
        "--at", default=None, metavar="T", help="ISO 8601 with offset (now); what had happened"
    )
    replan.add_argument("--warehouse", default=None, metavar="CODE", help="(each of the day's)")
    replan.add_argument(
        "--time-limit", type=float, default=10.0, metavar="S", help="seconds to search (10)"
    )
    replan.add_argument("--workers", type=int, default=2, metavar="N", help="parallel searches (2)")
    replan.add_argument("--json", action="store_true", help="print the re-plans as JSON")
    replan.set_defaults(func=run_replan)


def _moment(text: str | None, ledger: Ledger) -> datetime:
    if text is None:
        return ledger.clock()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--at {text!r} is not an ISO 8601 time", field="at") from None
    return aware(moment, "at")


def _day(text: str | None, moment: datetime) -> date:
    if text is None:
        return moment.astimezone(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--day {text!r} is not a date (YYYY-MM-DD)", field="day") from None


def _document(replan: Replan) -> dict[str, Any]:
    assert replan.plan is not None
    return {
        "plan_id": replan.plan_id,
        "day": replan.day.isoformat(),
        "warehouse": replan.warehouse,
        "at": replan.at.isoformat(),
        "position": replan.position,
        "replaces": list(replan.replaces),
        "superseded_loads": list(replan.cancelled),
        "left_alone": list(replan.left_alone),
        "starts": {
            code: {"source": s.source, "lat": s.position[0], "lon": s.position[1], "ready": s.ready}
            for code, s in replan.starts.items()
        },
        "plan": plan_to_json(replan.plan),
    }


def _text(replan: Replan) -> str:
    from planner.cli import render_plan

    assert replan.plan is not None
    lines = [
        f"re-plan {replan.plan_id} of {replan.day} {replan.warehouse} as of "
        f"{replan.at.isoformat()}: log position {replan.position}",
        f"replaces: {', '.join(replan.replaces) or '-'}; superseded loads: "
        f"{', '.join(replan.cancelled) or '-'}; left alone: {', '.join(replan.left_alone) or '-'}",
    ]
    for code, start in replan.starts.items():
        lines.append(
            f"start {code}: {start.source} {start.position[0]:.5f},{start.position[1]:.5f}, "
            f"ready at minute {start.ready:.1f}"
            + (f" after {start.approach_km:.1f} km to load" if start.loads else "")
        )
    lines.append(
        render_plan(
            replan.plan,
            stops_total=len(replan.request.stops),
            vehicles_total=len(replan.request.vehicles),
            name=replan.request.name,
        )
    )
    return "\n".join(lines)


def run_replan(args: argparse.Namespace) -> int:
    """Catch up, re-plan and record each warehouse; print what was recorded."""
    url = getattr(args, "db", None)
    ledger = Ledger(url)
    db = Database(url)
    try:
        if args.time_limit <= 0:
            raise InvalidInput("--time-limit must be positive", field="time_limit")
        at = _moment(args.at, ledger)
        day = _day(args.day, at)
        Worker(ledger, db).catch_up()
        warehouses = (
            [args.warehouse]
            if args.warehouse
            else [
                str(row[0])
                for row in db.query(
                    "SELECT DISTINCT warehouse FROM orders WHERE day = %s "
                    "AND warehouse IS NOT NULL ORDER BY warehouse",
                    (day.isoformat(),),
                )
            ]
        )
        if args.warehouse:
            ledger.location(args.warehouse)
        caller = Caller(actor="cli:admin", source=Source.API, correlation_id=f"cli-{uuid.uuid4()}")
        replans = [
            replan_day(
                ledger,
                db,
                caller,
                day,
                warehouse,
                at=at,
                time_limit=args.time_limit,
                workers=max(1, args.workers),
            )
            for warehouse in warehouses
        ]
    finally:
        db.close()
        ledger.close()
    if args.json:
        print(json.dumps([_document(r) for r in replans], indent=2))
    elif not replans:
        print(f"nothing to re-plan on {day}")
    else:
        print("\n\n".join(_text(r) for r in replans))
    return 0
