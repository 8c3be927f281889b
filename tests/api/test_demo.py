"""`shipledger demo`: a simulated day that is the same every time and agrees with the views."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from api.cli import build_parser
from api.cli import main as cli_main
from api.demo import command
from api.demo.documents import EdiStatus, edi_214, orders_csv
from api.demo.report import render_text
from api.demo.simulate import PING_ROUND
from api.demo.world import build_world
from ledger.application import Ledger
from ledger.edi import parse_214
from ledger.history import stop_history
from ledger.imports import parse_orders_csv
from ledger.log import iter_log
from ledger.stops import Stop, StopFact
from projections.db import Database
from support.factories import ADMIN

SMALL = ("--seed", "7", "--vehicles", "4", "--orders", "20")


def _wired() -> bool:
    """Whether `shipledger` itself knows the command yet (the lead wires it into the CLI)."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return "demo" in action.choices
    return False


def demo(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    argv = ["--db", url, "demo", *args]
    code = cli_main(argv) if _wired() else command.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def events(capsys: pytest.CaptureFixture[str], url: str) -> list[dict[str, Any]]:
    """`shipledger events`, without the wall-clock `recorded_at`."""
    assert cli_main(["--db", url, "events"]) == 0
    dump = []
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line)
        record.pop("recorded_at")
        dump.append(record)
    return dump


def head(url: str) -> int:
    ledger = Ledger(url)
    try:
        return ledger.position
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def small_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """One small day on SQLite, with its JSON report."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'ledger.db'}"
    report = command.run_demo(url, command.Options(seed=7, vehicles=4, orders=20))
    assert report is not None
    yield url, report


@pytest.mark.slow
def test_same_report_and_same_events_when_the_same_seed_runs_on_two_empty_stores(
    store_factory: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = store_factory(), store_factory()

    code_1, report_1, _ = demo(capsys, first, *SMALL, "--json")
    code_2, report_2, _ = demo(capsys, second, *SMALL, "--json")

    assert code_1 == code_2 == 0
    assert json.loads(report_1) == json.loads(report_2)
    dump_1, dump_2 = events(capsys, first), events(capsys, second)
    assert len(dump_1) == json.loads(report_1)["log"]["events"]
    assert dump_1 == dump_2


def test_report_numbers_are_the_views_numbers_when_the_day_is_over(
    small_day: tuple[str, dict[str, Any]],
) -> None:
    url, report = small_day
    db = Database(url)
    try:
        current = db.query("SELECT amount FROM billing_lines WHERE valid_to IS NULL")
        board = db.query("SELECT COUNT(*) FROM load_board")[0][0]
        stops = db.query("SELECT COUNT(*) FROM stop_times")[0][0]
        raised = db.query("SELECT kind, COUNT(*) FROM exception_log GROUP BY kind")
        detention = db.query("SELECT SUM(detention_minutes) FROM stop_times")[0][0]
    finally:
        db.close()

    assert Decimal(report["billing"]["total"]) == sum(Decimal(str(a)) for (a,) in current)
    assert report["billing"]["lines"] == len(current)
    assert report["loads"]["count"] == board > 0
    assert report["stops"]["count"] == stops
    assert report["exceptions"]["by_kind"] == {str(k): int(n) for k, n in raised}
    assert report["detention"]["minutes"] == detention
    invoiced = sum(Decimal(i["total"]) for i in report["billing"]["invoices"])
    assert invoiced == Decimal(report["billing"]["total"])
    assert report["log"]["events"] == head(url)


def test_the_day_has_its_trouble_and_verifies_when_simulated(
    small_day: tuple[str, dict[str, Any]],
) -> None:
    _, report = small_day
    pings, kinds = report["telematics"], report["exceptions"]["by_kind"]

    assert pings["accepted"] + pings["duplicates"] + pings["refused"] == pings["pings_sent"]
    assert pings["duplicates"] > 0 and pings["refused"] > 0 and pings["out_of_order"] > 0
    assert pings["backfilled"] > 0
    assert report["reconciliation"]["late_facts_reconciled"] >= 1
    assert report["reconciliation"]["late_edi_214"] is not None
    assert {"refused", "damaged", "detention"} <= set(kinds)
    assert Decimal(report["detention"]["charges"]) > 0
    assert report["orders"]["reimport_unchanged"] > 0 and report["orders"]["backordered"]
    assert set(report["loads"]["by_status"]) == {"invoiced"}
    assert report["verify"]["ok"] in (True, None)
    text = render_text(report)
    assert report["billing"]["total"] in text and "/board" in text and "graphql" in text


def test_the_day_ends_the_same_when_the_worker_catches_up_as_often_as_the_pings_come(
    small_day: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    _, every_half_hour = small_day
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    options = command.Options(seed=7, vehicles=4, orders=20, worker_every=PING_ROUND)

    report = command.run_demo(url, options)

    assert report is not None
    rounds = report["jobs"]["read_side_catch_ups"]
    assert rounds >= 2.5 * every_half_hour["jobs"]["read_side_catch_ups"]
    for part in ("billing", "detention", "exceptions", "stops", "loads"):
        assert report[part] == every_half_hour[part], part


def test_the_day_keeps_the_eta_it_gave_before_each_arrival_when_asked_as_known_then(
    small_day: tuple[str, dict[str, Any]],
) -> None:
    url, _ = small_day
    db, ledger = Database(url), Ledger(url)
    try:
        rows = db.query("SELECT stop_id FROM stop_times WHERE kind = 'delivery'")
        given = arrived = 0
        for (stop_id,) in rows:
            records = list(iter_log(ledger, stream=UUID(str(stop_id))))
            facts = [
                (r.position, r.event) for r in records if isinstance(r.event, Stop.FactRecorded)
            ]
            arrival = next((p for p, e in facts if e.fact is StopFact.ARRIVED), None)
            if arrival is None:
                continue
            arrived += 1
            etas = [
                e.detail.eta for p, e in facts if e.fact is StopFact.ETA_REPORTED and p < arrival
            ]
            then = stop_history(ledger, UUID(str(stop_id)), known_at=arrival - 1)
            assert then is not None and then.arrival is None
            if etas:
                given += 1
                assert then.eta == etas[-1]
    finally:
        ledger.close()
        db.close()

    assert arrived > 0 and given >= 0.75 * arrived


def test_if_empty_records_nothing_when_the_ledger_holds_events(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = Ledger(store_url)
    try:
        ledger.open_account(ADMIN, "ACME", "Acme Foods")
        before = ledger.position
    finally:
        ledger.close()

    skipped, out, _ = demo(capsys, store_url, "--if-empty")
    refused, _, err = demo(capsys, store_url)

    assert skipped == 0 and "already holds events" in out
    assert refused == 1 and "needs an empty store" in err
    assert head(store_url) == before


def test_partner_documents_parse_with_the_product_parsers_when_generated() -> None:
    world = build_world(seed=3, vehicles=4, orders=12)
    acme = [o for o in world.orders if o.tenant == "ACME"]
    at = world.stock[0].received
    statuses = [EdiStatus("X1", "NS", at, 2), EdiStatus("A7", "BG", at, 3)]

    drafts = parse_orders_csv(orders_csv(world, acme), "ACME")
    text = edi_214("LKSL", 101, at, [("L-1", statuses)])
    messages = parse_214(text)

    assert [d.reference for d in drafts] == [o.reference for o in acme]
    assert [d.ship_to_code for d in drafts] == [o.ship_to_code for o in acme]
    assert len(text.split("~")[0]) + 1 == 106  # the fixed-width ISA segment and its terminator
    assert [(m.code, m.stop_sequence, m.occurred_at) for m in messages] == [
        ("X1", 2, at.replace(second=0)),
        ("A7", 3, at.replace(second=0)),
    ]


def test_world_is_the_same_when_built_twice_from_one_seed() -> None:
    assert build_world(11, 6, 30) == build_world(11, 6, 30)
    assert build_world(11, 6, 30) != build_world(12, 6, 30)
