"""Billing from worked examples with hand-computed amounts; invoices freeze, adjustments
follow; exports pinned to a position repeat byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from ledger.application import Ledger
from ledger.values import Rates
from projections.db import Database
from projections.invoicing import export_lines, invoice_run
from projections.migrations import migrate
from projections.reconciler import Reconciler
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN, plan_simple_load
from support.scenario import DAY, Day, plan_day

RATES = Rates(
    per_mile=Decimal("2.50"),
    minimum=Decimal("350.00"),
    fuel_surcharge_pct=Decimal("20"),
    stop_off=Decimal("75.00"),
    detention_free_minutes=120,
    detention_hourly=Decimal("60.00"),
    detention_increment_minutes=15,
    tonu=Decimal("200.00"),
    accessorials=(("LIFTGATE", Decimal("45.00")),),
)
KM_FOR_200_MILES = 321.8688


@pytest.fixture
def books(ledger: Ledger, store_url: str, clock: Clock) -> Iterator[tuple[Ledger, Database]]:
    db = Database(store_url)
    migrate(db)
    ledger.publish_rates(
        ADMIN, "RC-FAST", RATES, effective_from=DAY - timedelta(days=30), carrier_code="FAST"
    )
    yield ledger, db
    db.close()


def settle(ledger: Ledger, db: Database) -> Runner:
    Reconciler(ledger).catch_up()
    runner = Runner(ledger, db)
    runner.catch_up()
    return runner


def lines(db: Database, status: str | None = None) -> list[tuple[str, str, str]]:
    sql = "SELECT code, amount, status FROM billing_lines WHERE valid_to IS NULL"
    rows = db.query(sql + " ORDER BY line_id")
    return [(str(c), str(a), str(s)) for c, a, s in rows if status is None or s == status]


def deliver(ledger: Ledger, day: Day, clock: Clock) -> None:
    ledger.start_transit(ADMIN, day.load_id)
    ledger.deliver_load(ADMIN, day.load_id)
    ledger.receive_pod(
        ADMIN, day.stop_ids[-1], signer="M. Ortiz", document_hash="sha256:9f", occurred_at=clock.now
    )
    ledger.mark_ready_to_invoice(ADMIN, day.load_id)


def ingest(ledger: Ledger, pings: list[object] | tuple[object, ...]) -> None:
    items = list(pings)
    for i in range(0, len(items), 120):
        ledger.ingest_pings(ADMIN, items[i : i + 120])  # type: ignore[arg-type]


def test_load_charges_match_the_worked_example(
    books: tuple[Ledger, Database], clock: Clock
) -> None:
    ledger, db = books
    day = plan_day(ledger, rate_card="RC-FAST", planned_km=KM_FOR_200_MILES)
    clock.advance(days=1)
    ingest(ledger, day.pings)

    settle(ledger, db)

    # 200 mi × 2.50 = 500.00; fuel 20 % = 100.00; one stop beyond first pickup and final
    # delivery = 75.00; 3 h 20 min dwell − 2 h free = 80 min → 90 min in 15-min steps
    # = 1.5 h × 60.00 = 90.00. Total 765.00.
    assert lines(db) == [
        ("DETENTION", "90.00", "pending"),
        ("FUEL", "100.00", "pending"),
        ("LINEHAUL", "500.00", "pending"),
        ("STOP_OFF", "75.00", "pending"),
    ]
    rows = db.query(
        "SELECT rate_card, rate_version, quantity, unit, sources FROM billing_lines "
        "WHERE code = 'DETENTION'"
    )
    assert rows[0][:4] == ("RC-FAST", 1, "1.5", "hour")
    assert len(str(rows[0][4]).split(",")) == 3  # arrival, departure and the rate card


def test_tonu_is_the_only_charge_when_a_load_is_cancelled_after_dispatch(
    books: tuple[Ledger, Database], clock: Clock
) -> None:
    ledger, db = books
    day = plan_day(ledger, rate_card="RC-FAST", planned_km=KM_FOR_200_MILES)

    ledger.cancel_load(ADMIN, day.load_id, reason="shipper not ready")
    settle(ledger, db)

    assert lines(db) == [("TONU", "200.00", "pending")]


def test_minimum_and_accessorials_are_charged_when_recorded(
    books: tuple[Ledger, Database], clock: Clock
) -> None:
    ledger, db = books
    day = plan_day(ledger, rate_card="RC-FAST", planned_km=100.0)  # 62.1 mi → minimum

    ledger.record_accessorial(ADMIN, day.load_id, "LIFTGATE", stop_id=day.stop_ids[1])
    ledger.record_accessorial(
        ADMIN, day.load_id, "LUMPER", amount=Decimal("85.50"), receipt="lumper receipt #4471"
    )
    settle(ledger, db)

    assert lines(db) == [
        ("LIFTGATE", "45.00", "pending"),
        ("LUMPER", "85.50", "pending"),
        ("FUEL", "70.00", "pending"),
        ("LINEHAUL", "350.00", "pending"),
        ("STOP_OFF", "75.00", "pending"),
    ]


def test_a_late_ping_after_the_invoice_produces_exactly_one_adjustment(
    books: tuple[Ledger, Database], clock: Clock
) -> None:
    ledger, db = books
    day = plan_day(ledger, rate_card="RC-FAST", planned_km=KM_FOR_200_MILES)
    clock.advance(days=1)
    arrival = day.arrivals[1]
    late = [p for p in day.pings if arrival <= p.occurred_at < arrival + timedelta(minutes=25)]
    ingest(ledger, [p for p in day.pings if p not in late])
    settle(ledger, db)
    deliver(ledger, day, clock)

    first = invoice_run(ledger, db, ADMIN, on=clock.now.date())
    invoiced = lines(db, "invoiced")
    ingest(ledger, late)  # the arrival moves 25 min earlier: dwell 175 → 200 min
    settle(ledger, db)
    pending = lines(db, "adjustment_pending")
    second = invoice_run(ledger, db, ADMIN, on=clock.now.date())
    third = invoice_run(ledger, db, ADMIN, on=clock.now.date())

    assert len(first.invoices) == 1 and first.loads == 1
    assert ("DETENTION", "60.00", "invoiced") in invoiced  # 175 − 120 = 55 → 1 h
    assert pending == [("DETENTION", "30.00", "adjustment_pending")]
    assert second.adjustments == [(first.invoices[0], "L-DAY")] and second.invoices == []
    assert third.adjustments == [] and third.invoices == []
    assert lines(db, "adjustment") == [("DETENTION", "30.00", "adjustment")]
    assert lines(db, "adjustment_pending") == []
    invoice = ledger.invoice(first.invoices[0])
    (adjustment,) = [x for x in invoice.lines if x.adjusts]
    assert adjustment.amount == Decimal("30.00") and adjustment.quantity == Decimal("0.5")
    total = sum(x.amount for x in invoice.lines)
    assert total == Decimal("765.00")


def test_export_at_a_pinned_position_is_byte_identical_after_more_events(
    books: tuple[Ledger, Database], clock: Clock
) -> None:
    ledger, db = books
    day = plan_day(ledger, rate_card="RC-FAST", planned_km=KM_FOR_200_MILES)
    clock.advance(days=1)
    ingest(ledger, day.pings[:200])
    runner = settle(ledger, db)
    pinned, csv_before = export_lines(db, runner)
    _, json_before = export_lines(db, runner, at=pinned, fmt="json")

    ingest(ledger, day.pings[200:])  # the rest of the day: detention appears
    for n in range(1000):
        ledger.receive_stock(ADMIN, warehouse="W", sku=f"S{n % 7}", quantity=1)
    ledger.record_accessorial(ADMIN, day.load_id, "LIFTGATE")
    settle(ledger, db)
    _, csv_after = export_lines(db, runner, at=pinned)
    _, json_after = export_lines(db, runner, at=pinned, fmt="json")
    now, csv_now = export_lines(db, runner)

    assert ledger.position >= pinned + 1000
    assert csv_after == csv_before and json_after == json_before
    assert csv_before.splitlines()[0].startswith("as_of_position,line_id")
    assert now > pinned and csv_now != csv_before and "DETENTION" in csv_now
    assert "DETENTION" not in csv_before


def test_billing_is_rebuilt_identically(books: tuple[Ledger, Database], clock: Clock) -> None:
    ledger, db = books
    day = plan_day(ledger, rate_card="RC-FAST", planned_km=KM_FOR_200_MILES)
    clock.advance(days=1)
    ingest(ledger, day.pings)
    runner = settle(ledger, db)
    deliver(ledger, day, clock)
    invoice_run(ledger, db, ADMIN, on=clock.now.date())
    ledger.record_accessorial(ADMIN, day.load_id, "LIFTGATE")
    runner.catch_up()
    live = db.query("SELECT * FROM billing_lines ORDER BY line_id, valid_from")

    runner.rebuild(["billing_lines"])

    assert db.query("SELECT * FROM billing_lines ORDER BY line_id, valid_from") == live


def test_unpriced_load_waits_when_it_has_no_rate_card(
    books: tuple[Ledger, Database], clock: Clock
) -> None:
    ledger, db = books
    from support.factories import reference_data

    reference_data(ledger)
    plan_simple_load(ledger, "L-NOCARD", clock.now)
    settle(ledger, db)

    assert lines(db) == []
