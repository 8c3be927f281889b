"""`shipledger timeline LOAD`: both formats, both clocks, refusals with exit code 2."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from api import cli, timeline_cmd
from ledger.application import Caller, Ledger, StopPlan
from ledger.events import Source
from ledger.stops import StopFact, StopKind
from support.clock import Clock
from support.factories import ADMIN, reference_data, window

DAY = datetime(2026, 11, 20, tzinfo=UTC)
Run = Callable[..., tuple[int, str, str]]


def _with_timeline(
    build: Callable[[], argparse.ArgumentParser],
) -> Callable[[], argparse.ArgumentParser]:
    """The main parser with `timeline` registered (a no-op once cli.py registers it)."""

    def build_parser() -> argparse.ArgumentParser:
        parser = build()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "timeline" not in commands.choices:
            timeline_cmd.add_parser(commands)
        return parser

    return build_parser


@pytest.fixture
def run(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Run]:
    monkeypatch.setattr(cli, "build_parser", _with_timeline(cli.build_parser))

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["--db", store_url, "timeline", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run


@pytest.fixture
def disputed(store_url: str) -> Iterator[dict[str, int | UUID]]:
    """A dispatched load whose second stop has a gps, a late edi and an operator arrival."""
    ledger = Ledger(store_url, clock=Clock(DAY.replace(hour=14)))
    try:
        reference_data(ledger)
        ledger.plan_load(
            ADMIN,
            "L-77",
            [
                StopPlan(StopKind.PICKUP, "WH-1", window(DAY.replace(hour=7), 3)),
                StopPlan(StopKind.DELIVERY, "CUST-1", window(DAY.replace(hour=10), 3)),
            ],
            occurred_at=DAY.replace(hour=6),
            reason="planned at the start of the shift",
        )
        load = ledger.load_by_reference("L-77")
        ledger.tender_load(ADMIN, load.id, "FAST")
        ledger.accept_tender(ADMIN, load.id)
        ledger.dispatch_load(ADMIN, load.id, "DRV-1", "TRK-1")
        stop = load.stop_ids[1]
        arrived = DAY.replace(hour=10)
        gps = ledger.record_stop_fact(
            Caller("device:DEV-1", Source.GPS, "batch-1"),
            stop,
            StopFact.ARRIVED,
            occurred_at=arrived + timedelta(minutes=40),
        )
        edi = ledger.record_stop_fact(
            Caller("edi:FAST", Source.EDI, "edi-214-9"),
            stop,
            StopFact.ARRIVED,
            occurred_at=arrived + timedelta(minutes=5),
        )
        override = ledger.override_stop_fact(
            Caller("ops:maria", Source.OPERATOR, "call-3"),
            stop,
            StopFact.ARRIVED,
            occurred_at=arrived + timedelta(minutes=15),
            reason="receiver confirmed by phone",
        )
        yield {"load_id": load.id, "gps": gps, "edi": edi, "override": override}
    finally:
        ledger.close()


def test_json_is_one_stable_document_with_both_clocks_when_asked_for_json(
    run: Run, disputed: dict[str, int | UUID]
) -> None:
    code, out, err = run("L-77", "--format", "json")
    again, out_again, _ = run(str(disputed["load_id"]), "--format", "json")

    document = json.loads(out)
    assert (code, again, err) == (0, 0, "")
    assert out == out_again
    assert list(document) == ["load_id", "reference", "as_of", "known_at", "head", "facts", "state"]
    facts = [f for f in document["facts"] if f["kind"] == "stop.arrived"]
    assert [(f["source"], f["position"], f["in_effect"]) for f in facts] == [
        ("edi", disputed["edi"], False),
        ("operator", disputed["override"], True),
        ("gps", disputed["gps"], False),
    ]
    assert facts[1]["reason"] == "receiver confirmed by phone"
    assert facts[1]["correlation_id"] == "call-3"
    assert facts[1]["actor"] == "ops:maria"
    assert facts[1]["recorded_at"] and facts[1]["occurred_at"] == "2026-11-20T10:15:00+00:00"
    state = document["state"]
    assert state["load"]["status"] == "dispatched"
    assert state["stops"][1]["arrival"]["source"] == "operator"
    assert [s["location"] for s in state["stops"]] == ["WH-1", "CUST-1"]
    assert state["conflicts"] == []


def test_json_shows_what_was_believed_then_when_asked_as_known_at_a_position(
    run: Run, disputed: dict[str, int | UUID]
) -> None:
    code, out, _ = run("L-77", "--format", "json", "--as-known-at", str(disputed["edi"]))
    _, about, _ = run(
        "L-77",
        "--format",
        "json",
        "--as-known-at",
        str(disputed["edi"]),
        "--as-of",
        "2026-11-20T04:30:00-06:00",
    )

    document = json.loads(out)
    assert code == 0
    assert document["known_at"] == {"position": disputed["edi"], "time": None}
    assert document["state"]["stops"][1]["arrival"]["source"] == "gps"
    assert json.loads(about)["state"]["stops"][1]["arrival"]["occurred_at"] == (
        "2026-11-20T10:05:00+00:00"
    )


def test_table_lists_facts_in_event_time_then_the_state_when_no_format_is_given(
    run: Run, disputed: dict[str, int | UUID]
) -> None:
    code, out, _ = run("L-77")

    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("OCCURRED_AT"))
    assert code == 0
    assert lines[0].startswith("Load L-77 (")
    for column in ("POS", "RECORDED_AT (UTC)", "TYPE", "STOP", "ACTOR", "SOURCE", "REASON"):
        assert column in lines[header]
    rows = lines[header + 2 : lines.index("Derived state") - 1]
    assert [row.split()[0:2] for row in rows] == sorted(row.split()[0:2] for row in rows)
    arrivals = [row for row in rows if "stop.arrived" in row]
    assert [row.split()[1] for row in arrivals] == ["10:05:00", "10:15:00", "10:40:00"]
    assert "receiver confirmed by phone" in arrivals[1]
    assert "load: dispatched" in out
    assert "arrived   2026-11-20 10:15:00 UTC  operator" in out
    assert "conflicts: none" in out


def test_naive_as_of_is_refused_naming_the_option(
    run: Run, disputed: dict[str, int | UUID]
) -> None:
    code, out, err = run("L-77", "--as-of", "2026-11-20T10:30:00")

    assert code == 2
    assert out == ""
    assert "--as-of" in err and "timezone" in err


def test_unknown_load_exits_2_with_a_clear_message_when_no_load_has_that_reference(
    run: Run, disputed: dict[str, int | UUID]
) -> None:
    code, out, err = run("L-404")
    by_id, _, err_id = run("00000000-0000-0000-0000-000000000000")

    assert (code, by_id) == (2, 2)
    assert out == ""
    assert "load L-404 not found" in err
    assert "not found" in err_id
