"""`shipledger`: the one command-line entry point (the CLI acts as the admin principal)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO
from uuid import UUID

from ledger.application import Caller, Ledger
from ledger.errors import BatchRejected, LedgerError
from ledger.events import Source
from ledger.imports import parse_duty_jsonl, parse_orders_csv, parse_pings_jsonl
from ledger.log import iter_log
from ledger.store import parse_url

__all__ = ["build_parser", "main"]

EXIT_BAD_INPUT = 2
EXIT_REFUSED = 1


def _caller(source: Source) -> Caller:
    return Caller(actor="cli:admin", source=source, correlation_id=f"cli-{uuid.uuid4()}")


def _open(args: argparse.Namespace) -> Ledger:
    return Ledger(args.db)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LedgerError(f"file not found: {path}", field="FILE") from None
    except UnicodeDecodeError:
        raise LedgerError(f"{path} is not UTF-8 text", field="FILE") from None


def _print_problems(error: BatchRejected, unit: str, out: TextIO) -> None:
    print(f"refused: {error.message}", file=out)
    for number, column, reason in error.problems:
        where = f"{unit} {number}" + (f", column {column}" if column else "")
        print(f"  {where}: {reason}", file=out)


def cmd_import_orders(args: argparse.Namespace) -> int:
    text = _read(args.file)
    drafts = parse_orders_csv(text, args.tenant)
    ledger = _open(args)
    caller = _caller(Source.CSV)
    ledger.open_account(caller, args.tenant, args.tenant)
    report = ledger.import_orders(caller, args.tenant, drafts)
    if report.recorded == 0:
        print(
            f"nothing new: all {report.unchanged} order(s) already recorded "
            f"(log position {report.position})"
        )
    else:
        print(
            f"recorded {report.recorded} order(s), {report.unchanged} already known; "
            f"last log position {report.position}"
        )
    return 0


def cmd_ingest_pings(args: argparse.Namespace) -> int:
    with open(args.file, encoding="utf-8") as handle:
        parsed = parse_pings_jsonl(handle)
    ledger = _open(args)
    report = ledger.ingest_pings(_caller(Source.GPS), [ping for _, ping in parsed])
    summary = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "refused": [{"line": parsed[i][0], "reason": reason} for i, reason in report.refused],
        "flagged": report.flagged,
        "position": report.position,
    }
    print(json.dumps(summary))
    return 0


def cmd_ingest_duty(args: argparse.Namespace) -> int:
    with open(args.file, encoding="utf-8") as handle:
        parsed = parse_duty_jsonl(handle)
    ledger = _open(args)
    report = ledger.ingest_duty(_caller(Source.ELD), [change for _, change in parsed])
    summary = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "refused": [{"line": parsed[i][0], "reason": reason} for i, reason in report.refused],
        "position": report.position,
    }
    print(json.dumps(summary))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    ledger = _open(args)
    stream: UUID | None = None
    if args.stream:
        try:
            stream = UUID(args.stream)
        except ValueError:
            raise LedgerError(f"--stream {args.stream!r} is not a UUID", field="stream") from None
    out = sys.stdout
    for record in iter_log(ledger, after=args.after, stream=stream, limit=args.limit):
        out.write(json.dumps(record.as_dict(), sort_keys=False) + "\n")
    out.flush()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    ledger = _open(args)
    print(f"store: {parse_url(args.db).redacted()}")
    print(f"log head position: {ledger.position}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shipledger", description="An event-sourced shipment ledger."
    )
    parser.add_argument(
        "--db",
        default=None,
        help="database URL (sqlite:///path or postgresql://…); "
        "default $SHIPLEDGER_DATABASE_URL or sqlite:///shipledger.db",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="where the ledger is and its head position")
    status.set_defaults(func=cmd_status)

    imports = commands.add_parser("import", help="import a file of business records")
    import_kinds = imports.add_subparsers(dest="kind", required=True, metavar="KIND")
    orders = import_kinds.add_parser("orders", help="orders CSV (all or nothing)")
    orders.add_argument("file", metavar="FILE.csv")
    orders.add_argument("--tenant", default="default", help="the shipper account")
    orders.set_defaults(func=cmd_import_orders)

    ingest = commands.add_parser("ingest", help="ingest telematics facts")
    ingest_kinds = ingest.add_subparsers(dest="kind", required=True, metavar="KIND")
    pings = ingest_kinds.add_parser("pings", help="GPS/ELD pings, one JSON object per line")
    pings.add_argument("file", metavar="FILE.jsonl")
    pings.set_defaults(func=cmd_ingest_pings)
    duty = ingest_kinds.add_parser("duty", help="ELD duty-status changes, JSON lines")
    duty.add_argument("file", metavar="FILE.jsonl")
    duty.set_defaults(func=cmd_ingest_duty)

    events = commands.add_parser("events", help="the raw ledger as JSON lines")
    events.add_argument("--after", type=int, default=0, metavar="POSITION")
    events.add_argument("--stream", default=None, metavar="ID")
    events.add_argument("--limit", type=int, default=None, metavar="N")
    events.set_defaults(func=cmd_events)

    _add_planner(commands)
    return parser


def _add_planner(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    try:
        from planner.cli import add_parser
    except ImportError:  # the planner package is optional until it lands
        return
    add_parser(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BatchRejected as error:
        unit = "line" if args.command == "ingest" else "row"
        _print_problems(error, unit, sys.stderr)
        return EXIT_BAD_INPUT
    except LedgerError as error:
        where = f" [{error.field}]" if error.field else ""
        print(f"refused{where}: {error.message}", file=sys.stderr)
        return EXIT_BAD_INPUT if error.code in ("invalid_input", "ledger_error") else EXIT_REFUSED
    except FileNotFoundError as error:
        print(f"refused [FILE]: file not found: {error.filename}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
