"""`shipledger timeline LOAD`: a load's facts with both clocks, for support and audit.

`--as-of T` keeps the facts that had happened by T; `--as-known-at T′|POSITION` keeps the
facts the ledger had recorded by then; together they answer "what did we believe at T′
about T". Times are ISO 8601 with an offset; a naive time is refused, naming the option.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TextIO
from uuid import UUID

from ledger.application import Ledger
from ledger.errors import InvalidInput, NotFound
from ledger.events import aware
from ledger.history import LoadTimeline, customer_view, load_timeline
from ledger.timeline import ResolvedFact

__all__ = ["add_parser", "cmd_timeline"]

#: An unknown load is bad input to this command (the main CLI's "bad input" code).
EXIT_UNKNOWN_LOAD = 2

_COLUMNS = (
    "OCCURRED_AT (UTC)",
    "POS",
    "RECORDED_AT (UTC)",
    "TYPE",
    "STOP",
    "ACTOR",
    "SOURCE",
    "REASON",
)
_RIGHT = {"POS", "STOP"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    timeline = commands.add_parser(
        "timeline",
        help="a load's facts with both clocks, as it happened at T and as known at T′",
        description=(
            "Every fact about a load and its stops with when it happened (occurred_at), when "
            "the ledger learned it (log position and recorded_at), who, through which source "
            "and why, then the state those facts derive."
        ),
    )
    timeline.add_argument("load", metavar="LOAD", help="the load id (UUID) or its reference")
    timeline.add_argument(
        "--as-of",
        metavar="T",
        default=None,
        help="only facts that had happened by T (ISO 8601 with offset)",
    )
    timeline.add_argument(
        "--as-known-at",
        metavar="T|POSITION",
        default=None,
        help="only facts the ledger had recorded by a time (ISO 8601 with offset) "
        "or a log position",
    )
    timeline.add_argument("--format", choices=("table", "json"), default="table")
    timeline.add_argument(
        "--customer-view",
        action="store_true",
        help="what the customer was shown: the customer-safe view as known at --as-known-at",
    )
    timeline.set_defaults(func=cmd_timeline)


def cmd_timeline(args: argparse.Namespace) -> int:
    as_of = None if args.as_of is None else _moment(args.as_of, "--as-of")
    known_at = None if args.as_known_at is None else _known_at(args.as_known_at)
    ledger = Ledger(args.db)
    try:
        try:
            if args.customer_view:
                shown = customer_view(ledger, _load_id(ledger, args.load), known_at=known_at)
                print(json.dumps(shown, indent=2, ensure_ascii=False))
                return 0
            timeline = load_timeline(ledger, _load_id(ledger, args.load), as_of, known_at)
        except NotFound as error:
            # Main maps not_found to "refused" (1); to this command it is bad input.
            print(f"refused [LOAD]: {error.message}", file=sys.stderr)
            return EXIT_UNKNOWN_LOAD
    finally:
        ledger.close()
    if args.format == "json":
        print(json.dumps(timeline.as_dict(), indent=2, ensure_ascii=False))
    else:
        write_table(timeline, sys.stdout)
    return 0


def _moment(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{option} {text!r} is not an ISO 8601 time (e.g. 2026-11-20T10:00:00+00:00)",
            field=option,
            rule="iso8601",
        ) from None
    return aware(value, option)


def _known_at(text: str) -> int | datetime:
    try:
        position = int(text)
    except ValueError:
        return _moment(text, "--as-known-at")
    if position < 0:
        raise InvalidInput(
            f"--as-known-at position must be 0 or more, got {position}",
            field="--as-known-at",
            rule=">= 0",
        )
    return position


def _load_id(ledger: Ledger, text: str) -> UUID:
    """A load id when it names a load, else a load reference."""
    try:
        return ledger.load(UUID(text)).id
    except (ValueError, NotFound):
        return ledger.load_by_reference(text).id


# --- the table --------------------------------------------------------------------------------


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(value: timedelta) -> str:
    minutes = round(value / timedelta(minutes=1))
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}h{rest:02d}m"


def _fact(label: str, fact: ResolvedFact | None) -> str:
    if fact is None:
        return f"    {label:<9} -"
    why = f', "{fact.reason}"' if fact.reason else ""
    return (
        f"    {label:<9} {_utc(fact.occurred_at)} UTC  {fact.source.value:<10} "
        f"(position {fact.position}{why})"
    )


def write_table(timeline: LoadTimeline, out: TextIO) -> None:
    """A fixed-width listing for people: facts in event time, then the derived state."""
    history = timeline.history
    point = history.viewpoint
    out.write(f"Load {history.reference} ({history.load_id})\n")
    as_of = f"as of {_utc(point.as_of)} UTC" if point.as_of else "as of now"
    if point.known_at is None:
        known = f"as known now (head position {timeline.head})"
    else:
        when = f"{_utc(point.known_at_time)} UTC = " if point.known_at_time else ""
        known = f"as known at {when}position {point.known_at} (head {timeline.head})"
    out.write(f"{as_of}, {known}\n\n")

    rows = [
        (
            _utc(e.occurred_at),
            str(e.position),
            _utc(e.recorded_at),
            e.kind,
            "-" if e.stop_sequence is None else str(e.stop_sequence),
            e.actor,
            e.source.value,
            e.reason or "-",
        )
        for e in timeline.entries
    ]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]

    def line(cells: tuple[str, ...]) -> str:
        padded = [
            cell.rjust(width) if name in _RIGHT else cell.ljust(width)
            for name, cell, width in zip(_COLUMNS, cells, widths, strict=True)
        ]
        return "  ".join(padded).rstrip() + "\n"

    out.write(line(_COLUMNS))
    out.write(line(tuple("-" * w for w in widths)))
    for row in rows:
        out.write(line(row))
    if not rows:
        out.write("(no facts known at this point)\n")

    out.write("\nDerived state\n")
    load = timeline.load
    if load is None:
        out.write("  load: not yet planned (or not yet known) at this point\n")
    else:
        assigned = ", ".join(
            f"{name} {value}"
            for name, value in (
                ("carrier", load.carrier_code),
                ("driver", load.driver_code),
                ("vehicle", load.vehicle_code),
            )
            if value
        )
        out.write(
            f"  load: {load.status.value} since {_utc(load.status_since)} UTC"
            + (f"; {assigned}" if assigned else "")
            + ("; TONU owed" if load.tonu else "")
            + "\n"
        )
        if load.exceptions:
            for x in load.exceptions:
                out.write(
                    f"  open exception {x.exception_id}: {x.kind.value}, owner {x.owner}"
                    + (f" ({x.note})" if x.note else "")
                    + "\n"
                )
        else:
            out.write("  open exceptions: none\n")
    for stop in timeline.stops:
        location = timeline.locations.get(stop.location_id, str(stop.location_id))
        window = f"{_utc(stop.window.start)}–{_utc(stop.window.end)} UTC"
        out.write(f"  stop {stop.sequence} {stop.kind.value} at {location}, window {window}\n")
        if stop.appointment is not None:
            appointment = stop.appointment
            out.write(f"    appointment {_utc(appointment.start)}–{_utc(appointment.end)} UTC\n")
        out.write(_fact("arrived", stop.arrival) + "\n")
        out.write(_fact("departed", stop.departure) + "\n")
        dwell = "-" if stop.dwell is None else _duration(stop.dwell)
        on_time = {None: "-", True: "yes", False: "no"}[stop.on_time]
        out.write(f"    dwell {dwell}, on time: {on_time}\n")
    if timeline.conflicts:
        for before, after in timeline.conflicts:
            first, second = timeline.sequence_of(before), timeline.sequence_of(after)
            out.write(f"  conflict: arrival at stop {second} is before leaving stop {first}\n")
    else:
        out.write("  conflicts: none\n")
