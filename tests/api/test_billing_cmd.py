"""`billing run|export` and the customer view of a dispute, through the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from api.cli import main
from ledger.application import Ledger
from ledger.values import Rates
from support.clock import Clock
from support.factories import ADMIN
from support.scenario import DAY, plan_day


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = main(["--db", url, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_repeats_byte_for_byte_at_a_pinned_position(
    ledger: Ledger, clock: Clock, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.publish_rates(ADMIN, "RC", Rates(), effective_from=DAY - timedelta(days=1))
    plan_day(ledger, rate_card="RC", planned_km=800.0)

    code, first, err = run(capsys, store_url, "billing", "export", "--format", "json")
    position = json.loads(first)["position"]
    ledger.receive_stock(ADMIN, warehouse="W", sku="S", quantity=1)
    again, second, _ = run(
        capsys, store_url, "billing", "export", "--at", str(position), "--format", "json"
    )

    assert code == again == 0
    assert first == second
    assert f"pinned at log position {position}" in err
    assert {line["code"] for line in json.loads(first)["lines"]} == {"LINEHAUL", "STOP_OFF"}


def test_export_is_refused_beyond_the_billing_view(
    ledger: Ledger, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, store_url, "billing", "export", "--at", "999")

    assert code == 2
    assert "[at]" in err


def test_invoice_run_reports_what_it_issued(
    ledger: Ledger, clock: Clock, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.publish_rates(ADMIN, "RC", Rates(per_mile=Decimal("3")), effective_from=DAY)
    day = plan_day(ledger, rate_card="RC", planned_km=800.0)
    ledger.start_transit(ADMIN, day.load_id)
    ledger.deliver_load(ADMIN, day.load_id)
    ledger.receive_pod(
        ADMIN, day.stop_ids[-1], signer="A", document_hash="h", occurred_at=clock.now
    )
    ledger.mark_ready_to_invoice(ADMIN, day.load_id)

    code, out, _ = run(capsys, store_url, "billing", "run", "--on", "2026-11-21")
    again, out_again, _ = run(capsys, store_url, "billing", "run", "--on", "2026-11-21")

    assert code == again == 0
    assert "invoices issued: 1 (INV-ACME-20261121-1), loads invoiced: 1" in out
    assert "invoices issued: 0" in out_again


def test_customer_view_shows_what_the_customer_was_shown_then(
    ledger: Ledger, clock: Clock, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.publish_rates(ADMIN, "RC", Rates(), effective_from=DAY - timedelta(days=1))
    day = plan_day(ledger, rate_card="RC", planned_km=800.0)
    before = ledger.position
    from ledger.stops import StopFact

    ledger.record_stop_fact(ADMIN, day.stop_ids[0], StopFact.ARRIVED, occurred_at=day.arrivals[0])

    code, then, _ = run(
        capsys, store_url, "timeline", "L-DAY", "--customer-view", "--as-known-at", str(before)
    )
    _, now, _ = run(capsys, store_url, "timeline", "L-DAY", "--customer-view")

    assert code == 0
    shown_then, shown_now = json.loads(then), json.loads(now)
    assert shown_then["stops"][0]["arrived_at"] is None
    assert shown_now["stops"][0]["arrived_at"] == day.arrivals[0].isoformat()
    assert shown_now["driver"] == "Ana" and "Lopez" not in now
    assert "rate" not in now.lower() and "FAST" not in now
