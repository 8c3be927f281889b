"""`shipledger`: the one command-line entry point (the CLI acts as the admin principal)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO
from uuid import UUID

from api import audit_cmd, billing_cmd, timeline_cmd
from api.demo import command as demo_command
from api.keys import Role, create_key, revoke_key
from ledger.application import Caller, Ledger
from ledger.errors import BatchRejected, LedgerError
from ledger.events import Source
from ledger.imports import parse_duty_jsonl, parse_orders_csv, parse_pings_jsonl
from ledger.log import iter_log
from ledger.store import parse_url
from projections.db import Database
from projections.jobs import JOBS, run_job
from projections.migrations import migrate
from projections.runner import Runner
from projections.worker import Worker

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


def _views(args: argparse.Namespace) -> tuple[Ledger, Database, Runner]:
    ledger = _open(args)
    db = Database(args.db)
    migrate(db)
    return ledger, db, Runner(ledger, db)


def cmd_migrate(args: argparse.Namespace) -> int:
    db = Database(args.db)
    applied = migrate(db)
    for migration in applied:
        print(f"applied {migration.version}_{migration.name}")
    print("up to date" if not applied else f"{len(applied)} migration(s) applied")
    return 0


def cmd_projections_status(args: argparse.Namespace) -> int:
    ledger, _, runner = _views(args)
    rows = runner.status()
    if args.json:
        print(json.dumps([vars(r) for r in rows]))
        return 0
    print(f"log head: {ledger.position}")
    print(f"{'view':<22}{'position':>10}{'lag (events)':>14}{'lag (s)':>10}")
    for r in rows:
        seconds = "-" if r.lag_seconds is None else f"{r.lag_seconds:.1f}"
        print(f"{r.name:<22}{r.position:>10}{r.lag_events:>14}{seconds:>10}")
    return 0


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    _, _, runner = _views(args)
    names = args.names or None
    try:
        covered = runner.rebuild(names)
    except KeyError as error:
        raise LedgerError(str(error.args[0]), field="NAME") from None
    print(f"rebuilt {', '.join(names or [v.name for v in runner.views])} from {covered} event(s)")
    return 0


def cmd_projections_run(args: argparse.Namespace) -> int:
    worker = Worker(_open(args), Database(args.db), batch_size=args.batch_size)
    if args.once:
        covered = worker.catch_up()
        print(f"applied {covered} event(s); views at {worker.runner.position()}")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        worker.follow(stop)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    db = Database(args.db)
    migrate(db)
    key = create_key(db, args.role, args.tenant, args.label)
    print(key)
    print(
        f"(a {args.role} key{' for ' + args.tenant if args.tenant else ''}; it is shown once "
        "and stored only as a hash)",
        file=sys.stderr,
    )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    db = Database(args.db)
    migrate(db)
    if not revoke_key(db, args.key_id):
        raise LedgerError(f"no active key {args.key_id}", field="KEY_ID")
    print(f"revoked {args.key_id}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from api.serve import serve  # uvicorn and the scheduler load only for this command

    return serve(args.db, args.host, args.port)


def cmd_jobs_run(args: argparse.Namespace) -> int:
    ledger, db = _open(args), Database(args.db)
    migrate(db)
    result = run_job(args.name, ledger, db)
    print(
        f"{result.name}: {'ran' if result.ran else 'did not run'}; "
        f"{result.emitted} emitted{'; ' + result.detail if result.detail else ''}"
    )
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

    migrate_cmd = commands.add_parser("migrate", help="create or update the read-model tables")
    migrate_cmd.set_defaults(func=cmd_migrate)

    projections = commands.add_parser("projections", help="the read models")
    projection_cmds = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    p_status = projection_cmds.add_parser("status", help="each view: position and lag")
    p_status.add_argument("--json", action="store_true")
    p_status.set_defaults(func=cmd_projections_status)
    p_rebuild = projection_cmds.add_parser("rebuild", help="drop views and replay the log")
    p_rebuild.add_argument("names", nargs="*", metavar="NAME")
    p_rebuild.set_defaults(func=cmd_projections_rebuild)
    p_run = projection_cmds.add_parser("run", help="keep the views up to date (until SIGTERM)")
    p_run.add_argument("--once", action="store_true", help="catch up once and exit")
    p_run.add_argument("--batch-size", type=int, default=1000, metavar="N")
    p_run.set_defaults(func=cmd_projections_run)

    serve = commands.add_parser("serve", help="REST + GraphQL + board + worker + scheduler")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    jobs = commands.add_parser("jobs", help="scheduled jobs, run once by hand")
    job_cmds = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    job_run = job_cmds.add_parser("run", help="run one job once")
    job_run.add_argument("name", choices=sorted(JOBS))
    job_run.set_defaults(func=cmd_jobs_run)

    keys = commands.add_parser("keys", help="API keys")
    key_cmds = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = key_cmds.add_parser("create", help="create a key (printed once)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--tenant", default=None, help="carrier code or shipper account")
    create.add_argument("--label", default="", help="who or what the key is for")
    create.set_defaults(func=cmd_keys_create)
    revoke = key_cmds.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(func=cmd_keys_revoke)

    timeline_cmd.add_parser(commands)
    billing_cmd.add_parser(commands)
    audit_cmd.add_parser(commands)
    demo_command.add_parser(commands)
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
