"""The tracking page in a real browser: headless Debian Chromium (Playwright) opens the public
link of a real order served over HTTP, sees that order, and nothing internal.

Chromium comes from the folder's `browser` fixture (skipped loudly without it, failing
under CI=true)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from api import tracking
from api.app import Settings, create_app
from browser.live import serve_app
from ledger.application import Ledger, OrderDraft, StopPlan
from ledger.events import Source
from ledger.stops import StopFact, StopKind
from ledger.values import GeoPoint, OrderLine, Rates, TimeWindow
from projections.notifications import NotificationOutbox
from projections.notify_store import create_token
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN, reference_data

INTERNAL = (
    "Lopez",
    "DRV-1",
    "FAST",
    "Fast Freight",
    "FSTF",
    "TRK-1",
    "DEV-1",
    "3.17",
    "RC-WEB",
    "GLOBEX",
    "PO-G-9",
    "Globex Dock 7",
)


@pytest.fixture
def served(ledger: Ledger, store_url: str) -> Iterator[tuple[str, Any]]:
    """The app with the tracking page, served by uvicorn on a loopback port."""
    app = create_app(Settings(database_url=store_url), ledger=ledger)
    if "/track/{token}" not in {getattr(r, "path", "") for r in app.routes}:
        app.include_router(tracking.router)
    with serve_app(app) as base_url:
        yield base_url, app
    app.state.services.db.close()  # this thread's connection (the test projects through it)


def an_order_delivered(ledger: Ledger, clock: Clock) -> None:
    """PO-A-9 (ACME) and PO-G-9 (GLOBEX) on one priced, dispatched load; PO-A-9 delivered."""
    reference_data(ledger)
    ledger.open_account(ADMIN, "GLOBEX", "Globex Corp")
    ledger.register_location(
        ADMIN, "CUST-2", name="Globex Dock 7", address="-", lat=41.879, lon=-87.636
    )
    ledger.publish_rates(
        ADMIN,
        "RC-WEB",
        Rates(per_mile=Decimal("3.17")),
        effective_from=clock.now - timedelta(days=1),
    )
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=10)
    start = clock.now
    ids = []
    for tenant, reference, code in (("ACME", "PO-A-9", "CUST-1"), ("GLOBEX", "PO-G-9", "CUST-2")):
        ledger.place_order(
            ADMIN,
            tenant,
            OrderDraft(
                reference=reference,
                lines=(OrderLine(1, "SKU-1", 2),),
                ship_to_code=code,
                ship_to_name=code,
                ship_to_address="-",
                ship_to=GeoPoint(41.9, -87.64),
                window=TimeWindow(start, start + timedelta(hours=8)),
            ),
        )
        ids.append(ledger.order_by_reference(tenant, reference).id)
    window = TimeWindow(start, start + timedelta(hours=6))
    ledger.plan_load(
        ADMIN,
        "L-WEB",
        [
            StopPlan(StopKind.PICKUP, "WH-1", window, order_ids=tuple(ids)),
            StopPlan(StopKind.DELIVERY, "CUST-1", window, order_ids=(ids[0],)),
            StopPlan(StopKind.DELIVERY, "CUST-2", window, order_ids=(ids[1],)),
        ],
    )
    load = ledger.load_by_reference("L-WEB")
    ledger.tender_load(ADMIN, load.id, "FAST", "RC-WEB")
    ledger.accept_tender(ADMIN, load.id)
    ledger.dispatch_load(ADMIN, load.id, "DRV-1", "TRK-1")
    _, mine, theirs = load.stop_ids
    arrived = start + timedelta(hours=2)
    for stop in (mine, theirs):
        ledger.record_stop_fact(
            ADMIN, stop, StopFact.ARRIVED, occurred_at=arrived, source=Source.DRIVER_APP
        )
    ledger.receive_pod(
        ADMIN,
        mine,
        signer="Rita Receiver",
        document_hash="sha256:beef",
        occurred_at=arrived + timedelta(minutes=15),
    )


def test_the_browser_shows_the_right_order_and_nothing_internal(
    browser: Any, served: tuple[str, Any], ledger: Ledger, clock: Clock
) -> None:
    base, app = served
    an_order_delivered(ledger, clock)
    db = app.state.services.db
    Runner(ledger, db, [NotificationOutbox()]).catch_up()
    order = ledger.order_by_reference("ACME", "PO-A-9")
    token = create_token(
        db, order_id=order.id, tenant="ACME", reference="PO-A-9", actor="test", now=clock.now
    ).token

    page = browser.new_page()
    try:
        response = page.goto(f"{base}/track/{token}")
        shown = page.locator("#order").inner_text()
        status = page.locator("#status").inner_text()
        pod = page.locator("#pod").inner_text()
        text = page.locator("body").inner_text()
        html = page.content()
        gone = page.goto(f"{base}/track/{'x' * 32}")
    finally:
        page.close()

    assert response is not None and response.status == 200
    assert (shown, status) == ("PO-A-9", "Delivered")
    assert "Signed by Rita Receiver" in pod
    assert "Arrived at Lakeview Grocers" in text
    assert [word for word in INTERNAL if word in html] == []
    assert gone is not None and gone.status == 404
