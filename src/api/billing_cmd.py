"""`shipledger billing run|export`: the invoice run and the finance export."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, date, datetime

from ledger.application import Caller, Ledger
from ledger.errors import InvalidInput
from ledger.events import Source
from projections.db import Database
from projections.invoicing import export_lines, invoice_run
from projections.migrations import migrate
from projections.runner import Runner

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    billing = commands.add_parser("billing", help="billable charges, invoices and the export")
    actions = billing.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="the invoice run: invoice ready loads, issue adjustments")
    run.add_argument("--on", metavar="DATE", default=None, help="invoice date (default today)")
    run.set_defaults(func=cmd_run)
    export = actions.add_parser("export", help="billing lines pinned to a log position")
    export.add_argument(
        "--at",
        type=int,
        metavar="POSITION",
        default=None,
        help="the log position (default: the billing view's position)",
    )
    export.add_argument(
        "--since",
        type=int,
        metavar="POSITION",
        default=None,
        help="only lines that appeared after this position",
    )
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.set_defaults(func=cmd_export)


def _open(args: argparse.Namespace) -> tuple[Ledger, Database, Runner]:
    ledger = Ledger(args.db)
    db = Database(args.db)
    migrate(db)
    return ledger, db, Runner(ledger, db)


def cmd_run(args: argparse.Namespace) -> int:
    on = date.today() if args.on is None else _date(args.on)
    ledger, db, _ = _open(args)
    caller = Caller("cli:admin", Source.SCHEDULER, f"invoice-run-{uuid.uuid4()}")
    report = invoice_run(ledger, db, caller, on=on)
    print(
        f"invoices issued: {len(report.invoices)} ({', '.join(report.invoices) or '-'}), "
        f"loads invoiced: {report.loads}, adjustments issued: {len(report.adjustments)}"
    )
    for number, reference in report.adjustments:
        print(f"  adjustment on {number} for load {reference}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    ledger, db, runner = _open(args)
    runner.catch_up()
    position, body = export_lines(db, runner, at=args.at, since=args.since, fmt=args.format)
    sys.stdout.write(body)
    print(
        f"billing export pinned at log position {position} (head {ledger.position}, "
        f"generated {datetime.now(UTC).isoformat(timespec='seconds')})",
        file=sys.stderr,
    )
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--on {text!r} is not a date (YYYY-MM-DD)", field="--on") from None
