"""`shipledger demo`: simulate one realistic operating day end to end and print a report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from api.demo.report import build_report, render_text, verify_ledger
from api.demo.simulate import Options, SimClock, simulate
from api.demo.world import DAY, local
from ledger.application import Ledger
from ledger.errors import InvalidInput, LedgerError
from projections.db import Database

__all__ = ["MAX_ORDERS", "MAX_VEHICLES", "add_parser", "cmd_demo", "main", "run_demo"]

MAX_VEHICLES = 2000
MAX_ORDERS = 50_000
EXIT_NOT_EMPTY = 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="simulate a realistic operating day end to end and print a report",
        description=(
            f"Simulates {DAY:%A %Y-%m-%d} in Chicago on an empty store: reference data, stock, "
            "orders by CSV import, allocation and picking, planned routes, loads tendered and "
            "dispatched, trucks pinging every 30 s (with late, duplicate, backfilled and "
            "refused pings), ELD duty changes, a refusal, damage, detention, a late EDI 214, "
            "PODs, the reconciler and views, the hourly jobs, the invoice run and the audit "
            "verification — then prints what the views say. The same seed on an empty store "
            "records the same events and prints the same report."
        ),
    )
    demo.add_argument("--seed", type=int, default=7, metavar="N", help="default 7")
    demo.add_argument("--vehicles", type=int, default=12, metavar="N", help="default 12")
    demo.add_argument("--orders", type=int, default=80, metavar="N", help="default 80")
    demo.add_argument("--json", action="store_true", help="the report as one JSON document")
    demo.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing (and say so) when the ledger already holds events",
    )
    demo.set_defaults(func=cmd_demo)


def _options(args: argparse.Namespace) -> Options:
    if not 2 <= args.vehicles <= MAX_VEHICLES:
        raise InvalidInput(
            f"--vehicles must be between 2 and {MAX_VEHICLES}, got {args.vehicles}",
            field="--vehicles",
        )
    if not 1 <= args.orders <= MAX_ORDERS:
        raise InvalidInput(
            f"--orders must be between 1 and {MAX_ORDERS}, got {args.orders}", field="--orders"
        )
    return Options(seed=args.seed, vehicles=args.vehicles, orders=args.orders)


def run_demo(url: str | None, options: Options) -> dict[str, Any] | None:
    """Runs the day on the store at `url`; None when the ledger is not empty."""
    clock = SimClock(local((13, 0), DAY - timedelta(days=1)))
    ledger = Ledger(url, clock=clock)
    try:
        if ledger.position:
            return None
        db = Database(url)
        try:
            facts = simulate(ledger, db, clock, options)
            verified = verify_ledger(ledger, db)
            return build_report(ledger, db, facts, verified)
        finally:
            db.close()
    finally:
        ledger.close()


def cmd_demo(args: argparse.Namespace) -> int:
    options = _options(args)
    head = _head(args.db)
    if head:
        message = f"the ledger already holds events (head position {head}); " + (
            "nothing done" if args.if_empty else "the demo needs an empty store"
        )
        if args.json:
            print(json.dumps({"skipped": True, "reason": message, "head": head}))
        else:
            print(f"demo: {message}", file=sys.stdout if args.if_empty else sys.stderr)
        return 0 if args.if_empty else EXIT_NOT_EMPTY
    started = time.monotonic()
    report = run_demo(args.db, options)
    if report is None:  # something else wrote first
        print("demo: the ledger is no longer empty; nothing done", file=sys.stderr)
        return EXIT_NOT_EMPTY
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(render_text(report))
    print(f"demo: finished in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


def _head(url: str | None) -> int:
    ledger = Ledger(url)
    try:
        return ledger.position
    finally:
        ledger.close()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m api.demo [--db URL] …`: the command on its own (before it is wired in)."""
    parser = argparse.ArgumentParser(prog="shipledger")
    parser.add_argument("--db", default=None, help="database URL")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser(commands)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except LedgerError as error:
        where = f" [{error.field}]" if error.field else ""
        print(f"refused{where}: {error.message}", file=sys.stderr)
        return 2
    return code
