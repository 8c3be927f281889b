"""Use cases on the real store: rules refuse with a specific error and write nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from ledger.application import Ledger, StopPlan
from ledger.errors import (
    BatchRejected,
    InsufficientStock,
    InvalidInput,
    InvalidTransition,
    NotAllocatable,
    NotFound,
    ReasonRequired,
)
from ledger.loads import ExceptionKind, LoadStatus
from ledger.orders import OrderStatus
from ledger.stops import StopFact, StopKind
from ledger.values import Rates
from support.clock import Clock
from support.factories import ADMIN, OPERATOR, order_draft, plan_simple_load, reference_data


def test_order_is_placed_once_when_the_same_reference_is_placed_twice(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    draft = order_draft("PO-1", clock.now, ("SKU-1", 5))

    first = ledger.place_order(ADMIN, "ACME", draft)
    second = ledger.place_order(ADMIN, "ACME", draft)

    assert first == second == ledger.position
    assert ledger.order_by_reference("ACME", "PO-1").version == 1


def test_reference_reuse_is_refused_when_the_content_differs(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    ledger.place_order(ADMIN, "ACME", order_draft("PO-1", clock.now, ("SKU-1", 5)))
    head = ledger.position

    with pytest.raises(InvalidInput) as refused:
        ledger.place_order(ADMIN, "ACME", order_draft("PO-1", clock.now, ("SKU-1", 6)))

    assert refused.value.field == "reference"
    assert ledger.position == head


def test_an_import_repeating_known_orders_records_only_the_new_ones(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    known = order_draft("PO-1", clock.now, ("SKU-1", 5))
    ledger.place_order(ADMIN, "ACME", known)

    report = ledger.import_orders(
        ADMIN, "ACME", [known, order_draft("PO-2", clock.now, ("SKU-1", 1))]
    )

    assert (report.recorded, report.unchanged) == (1, 1)
    assert ledger.order_by_reference("ACME", "PO-1").version == 1
    assert ledger.order_by_reference("ACME", "PO-2").version == 1


def test_an_import_naming_a_reference_twice_is_refused_with_the_row(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    head = ledger.position
    draft = order_draft("PO-1", clock.now, ("SKU-1", 5))

    with pytest.raises(BatchRejected) as refused:
        ledger.import_orders(ADMIN, "ACME", [draft, order_draft("PO-2", clock.now), draft])

    assert refused.value.problems == [(3, "reference", "reference PO-1 repeats order 1")]
    assert ledger.position == head


def test_same_reference_is_a_different_order_when_the_tenant_differs(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    ledger.open_account(ADMIN, "GLOBEX", "Globex")
    draft = order_draft("PO-1", clock.now, ("SKU-1", 5))

    ledger.place_order(ADMIN, "ACME", draft)
    ledger.place_order(ADMIN, "GLOBEX", draft)

    assert ledger.order_by_reference("ACME", "PO-1").id != (
        ledger.order_by_reference("GLOBEX", "PO-1").id
    )


def test_allocation_takes_the_first_expiring_lot_and_skips_expired_ones(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    today = clock.now.date()
    ledger.receive_stock(
        ADMIN,
        warehouse="WH-1",
        sku="SKU-1",
        lot="OLD",
        quantity=50,
        expiry=today - timedelta(days=1),
    )
    ledger.receive_stock(
        ADMIN,
        warehouse="WH-1",
        sku="SKU-1",
        lot="LATE",
        quantity=50,
        expiry=today + timedelta(days=90),
    )
    ledger.receive_stock(
        ADMIN,
        warehouse="WH-1",
        sku="SKU-1",
        lot="SOON",
        quantity=4,
        expiry=today + timedelta(days=10),
    )
    ledger.place_order(ADMIN, "ACME", order_draft("PO-1", clock.now, ("SKU-1", 10)))
    order = ledger.order_by_reference("ACME", "PO-1")

    ledger.allocate_order(ADMIN, order.id, "WH-1")

    assert ledger.order(order.id).status is OrderStatus.ALLOCATED
    assert ledger.stock_item("WH-1", "SKU-1", "SOON").reserved == {order.id: 4}
    assert ledger.stock_item("WH-1", "SKU-1", "LATE").reserved == {order.id: 6}
    assert ledger.stock_item("WH-1", "SKU-1", "OLD").reserved == {}


def test_line_is_backordered_when_stock_is_short(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=3)
    ledger.place_order(ADMIN, "ACME", order_draft("PO-1", clock.now, ("SKU-1", 10)))
    order = ledger.order_by_reference("ACME", "PO-1")

    ledger.allocate_order(ADMIN, order.id, "WH-1")

    placed = ledger.order(order.id)
    assert placed.status is OrderStatus.BACKORDERED
    assert placed.backordered == {1: 7}
    assert ledger.stock_item("WH-1", "SKU-1").available == 3


def test_order_moves_stock_through_pick_pack_ship_and_cancel_releases_it(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=20)
    ledger.place_order(ADMIN, "ACME", order_draft("PO-1", clock.now, ("SKU-1", 5)))
    ledger.place_order(ADMIN, "ACME", order_draft("PO-2", clock.now, ("SKU-1", 7)))
    po1 = ledger.order_by_reference("ACME", "PO-1").id
    po2 = ledger.order_by_reference("ACME", "PO-2").id
    ledger.allocate_order(ADMIN, po1, "WH-1")
    ledger.allocate_order(ADMIN, po2, "WH-1")
    ledger.plan_load(
        ADMIN,
        "L-1",
        [
            StopPlan(StopKind.PICKUP, "WH-1", order_draft("x", clock.now).window),
            StopPlan(
                StopKind.DELIVERY, "CUST-1", order_draft("x", clock.now).window, order_ids=(po1,)
            ),
        ],
    )

    ledger.pick_order(ADMIN, po1)
    ledger.pack_order(ADMIN, po1)
    ledger.ship_order(ADMIN, po1, ledger.load_by_reference("L-1").id)
    ledger.cancel_order(ADMIN, po2, reason="customer changed their mind")

    item = ledger.stock_item("WH-1", "SKU-1")
    assert (item.on_hand, item.committed, item.available) == (15, 0, 15)
    assert ledger.order(po1).status is OrderStatus.SHIPPED
    assert ledger.order(po2).status is OrderStatus.CANCELLED


def test_reservation_is_refused_and_nothing_written_when_it_would_oversell(
    ledger: Ledger,
) -> None:
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=5)
    item = ledger.stock_item("WH-1", "SKU-1")
    head = ledger.position

    with pytest.raises(InsufficientStock) as refused:
        ledger.reserve_stock(ADMIN, item.id, item.id, 6)

    assert "5 available" in refused.value.message
    assert ledger.position == head


def test_expired_lot_is_not_allocatable(ledger: Ledger, clock: Clock) -> None:
    ledger.receive_stock(
        ADMIN, warehouse="WH-1", sku="SKU-1", lot="L1", quantity=5, expiry=clock.now.date()
    )
    item = ledger.stock_item("WH-1", "SKU-1", "L1")
    clock.advance(days=1)

    with pytest.raises(NotAllocatable):
        ledger.reserve_stock(ADMIN, item.id, item.id, 1)


def test_quarantined_stock_is_not_available(ledger: Ledger) -> None:
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=5)
    item = ledger.stock_item("WH-1", "SKU-1")
    ledger.quarantine_stock(ADMIN, item.id, 4, reason="water damage suspected")

    with pytest.raises(InsufficientStock):
        ledger.reserve_stock(ADMIN, item.id, item.id, 2)

    assert ledger.stock_item("WH-1", "SKU-1").available == 1


def test_adjustment_is_refused_when_it_has_no_reason(ledger: Ledger) -> None:
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=5)
    item = ledger.stock_item("WH-1", "SKU-1")

    with pytest.raises(ReasonRequired):
        ledger.adjust_stock(ADMIN, item.id, -1, reason="")


def test_backdated_command_needs_a_reason(ledger: Ledger, clock: Clock) -> None:
    an_hour_ago = clock.now - timedelta(hours=1)

    with pytest.raises(ReasonRequired):
        ledger.receive_stock(
            ADMIN, warehouse="WH-1", sku="SKU-1", quantity=5, occurred_at=an_hour_ago
        )
    ledger.receive_stock(
        ADMIN,
        warehouse="WH-1",
        sku="SKU-1",
        quantity=5,
        occurred_at=an_hour_ago,
        reason="receipt keyed in late",
    )

    assert ledger.stock_item("WH-1", "SKU-1").on_hand == 5


def test_load_runs_from_plan_to_invoice(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    load_id = plan_simple_load(ledger, "L-1", clock.now)
    delivery = ledger.load(load_id).stop_ids[1]

    ledger.tender_load(ADMIN, load_id, "FAST")
    ledger.accept_tender(ADMIN, load_id)
    ledger.dispatch_load(ADMIN, load_id, "DRV-1", "TRK-1")
    ledger.start_transit(ADMIN, load_id)
    ledger.deliver_load(ADMIN, load_id)
    ledger.receive_pod(
        ADMIN, delivery, signer="J. Doe", document_hash="sha256:ab", occurred_at=clock.now
    )
    ledger.mark_ready_to_invoice(ADMIN, load_id)
    position = ledger.mark_invoiced(ADMIN, load_id, "INV-1")

    assert ledger.load(load_id).status is LoadStatus.INVOICED
    assert position == ledger.position


def test_dispatch_is_refused_when_the_load_is_cancelled(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    load_id = plan_simple_load(ledger, "L-1", clock.now)
    ledger.cancel_load(ADMIN, load_id, reason="customer cancelled")
    head = ledger.position

    with pytest.raises(InvalidTransition) as refused:
        ledger.dispatch_load(ADMIN, load_id, "DRV-1", "TRK-1")

    assert refused.value.state == "cancelled"
    assert ledger.position == head


def test_cancel_after_dispatch_owes_a_tonu(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    load_id = plan_simple_load(ledger, "L-1", clock.now)
    ledger.tender_load(ADMIN, load_id, "FAST")
    ledger.accept_tender(ADMIN, load_id)
    ledger.dispatch_load(ADMIN, load_id, "DRV-1", "TRK-1")

    ledger.cancel_load(ADMIN, load_id, reason="shipper not ready")

    assert ledger.load(load_id).tonu is True


def test_dispatch_is_refused_when_the_driver_is_unknown(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    load_id = plan_simple_load(ledger, "L-1", clock.now)
    ledger.tender_load(ADMIN, load_id, "FAST")
    ledger.accept_tender(ADMIN, load_id)

    with pytest.raises(NotFound) as refused:
        ledger.dispatch_load(ADMIN, load_id, "NOBODY", "TRK-1")

    assert refused.value.kind == "driver"


def test_plan_is_refused_when_a_location_is_unknown(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    window = order_draft("x", clock.now).window
    head = ledger.position

    with pytest.raises(NotFound):
        ledger.plan_load(
            ADMIN,
            "L-9",
            [
                StopPlan(StopKind.PICKUP, "WH-1", window),
                StopPlan(StopKind.DELIVERY, "NOWHERE", window),
            ],
        )

    assert ledger.position == head


def test_late_and_contradictory_stop_facts_are_recorded(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    load_id = plan_simple_load(ledger, "L-1", clock.now)
    stop_id = ledger.load(load_id).stop_ids[0]

    ledger.record_stop_fact(ADMIN, stop_id, StopFact.DEPARTED, occurred_at=clock.now)
    ledger.record_stop_fact(
        ADMIN, stop_id, StopFact.ARRIVED, occurred_at=clock.now - timedelta(days=2)
    )

    assert [f[1] for f in ledger.stop(stop_id).facts] == [StopFact.DEPARTED, StopFact.ARRIVED]


def test_override_is_refused_without_a_reason(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    stop_id = ledger.load(plan_simple_load(ledger, "L-1", clock.now)).stop_ids[0]

    with pytest.raises(ReasonRequired):
        ledger.record_stop_fact(OPERATOR, stop_id, StopFact.ARRIVED, occurred_at=clock.now)
    ledger.override_stop_fact(
        OPERATOR, stop_id, StopFact.ARRIVED, occurred_at=clock.now, reason="driver called in"
    )

    assert ledger.stop(stop_id).facts[0][2].reason == "driver called in"


def test_exceptions_are_overlays_with_an_owner(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)
    load_id = plan_simple_load(ledger, "L-1", clock.now)

    ledger.raise_exception(ADMIN, load_id, ExceptionKind.DELAYED, owner="dispatch", note="traffic")
    load = ledger.load(load_id)
    (exception_id,) = load.exceptions
    ledger.resolve_exception(ADMIN, load_id, exception_id, "customer informed")

    assert ledger.load(load_id).exceptions == {}
    assert ledger.load(load_id).status is LoadStatus.PLANNED


def test_rate_card_answers_the_version_in_force_at_a_moment(ledger: Ledger, clock: Clock) -> None:
    old = Rates(per_mile=Decimal("2.00"))
    new = Rates(per_mile=Decimal("2.40"))
    ledger.publish_rates(ADMIN, "RC-1", old, effective_from=clock.now - timedelta(days=30))
    ledger.publish_rates(ADMIN, "RC-1", new, effective_from=clock.now)
    ledger.publish_rates(ADMIN, "RC-1", new, effective_from=clock.now)  # no-op

    card = ledger.rate_card("RC-1")

    assert card.version == 3
    assert card.rates_at(clock.now - timedelta(days=1)) == (1, old)
    assert card.rates_at(clock.now) == (2, new)
    assert card.rates_at(clock.now - timedelta(days=31)) is None


def test_naive_datetime_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput) as refused:
        ledger.receive_stock(
            ADMIN, warehouse="W", sku="S", quantity=1, occurred_at=datetime(2026, 1, 1), reason="x"
        )

    assert refused.value.field == "occurred_at"
