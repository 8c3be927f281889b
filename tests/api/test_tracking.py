"""The public tracking page through HTTP (TestClient): the right order, the customer-safe view
only, revoked and unknown links alike 404, a rate limit; and the notifications REST API
(subscriptions, dead letters, redelivery, delivery log)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import tracking
from api.app import Settings, create_app
from api.keys import create_key
from api.routes import notifications
from ledger.application import Ledger, OrderDraft, StopPlan
from ledger.events import Source
from ledger.loads import ExceptionKind
from ledger.stops import StopFact, StopKind
from ledger.values import GeoPoint, OrderLine, Rates, TimeWindow
from projections.notifications import NotificationOutbox
from projections.notify_sender import NotificationSender, RetryPolicy
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN, reference_data

#: Never on a customer's page: the driver's surname and code, carrier, vehicle and device
#: codes, rates and rate card, dock notes, internal notes and owners, the other customer.
INTERNAL = (
    "Lopez",
    "DRV-1",
    "FAST",
    "Fast Freight",
    "FSTF",
    "TRK-1",
    "DEV-1",
    "3.17",
    "987.65",
    "RC-TRACK",
    "gate code 4411",
    "ops-desk-7",
    "stuck at the yard",
    "GLOBEX",
    "PO-G-1",
    "Globex Dock 7",
    "CUST-2",
    "sha256:",
)


def with_notifications(app: FastAPI) -> FastAPI:
    """Mounts the routers under test unless the app already does."""
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/track/{token}" not in paths:
        app.include_router(tracking.router)
    if "/api/v1/notifications/subscriptions" not in paths:
        app.include_router(notifications.router, prefix="/api/v1")
    return app


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    keys: dict[str, str]

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture
def api(ledger: Ledger, store_url: str) -> Iterator[Api]:
    app = with_notifications(create_app(Settings(database_url=store_url), ledger=ledger))
    db = app.state.services.db
    keys = {
        "admin": create_key(db, "admin"),
        "support": create_key(db, "support"),
        "dispatcher": create_key(db, "dispatcher"),
        "shipper": create_key(db, "shipper", "ACME"),
        "other_shipper": create_key(db, "shipper", "GLOBEX"),
    }
    with TestClient(app) as client:
        yield Api(client, app, keys)
    db.close()  # this thread's connection (the tests project and sign through it)


def a_day(ledger: Ledger, clock: Clock, *, delivered: bool = True) -> None:
    """An ACME order and a GLOBEX order on one load (rate card, dispatched); picked up, the
    ETA reported, a delay raised with an internal note; arrived and signed for at CUST-1."""
    reference_data(ledger)
    ledger.open_account(ADMIN, "GLOBEX", "Globex Corp")
    ledger.register_location(
        ADMIN,
        "CUST-2",
        name="Globex Dock 7",
        address="7 Globex Way",
        lat=41.879,
        lon=-87.636,
        owner_tenant="GLOBEX",
        dock_notes="gate code 4411",
    )
    rates = Rates(per_mile=Decimal("3.17"), minimum=Decimal("987.65"))
    ledger.publish_rates(ADMIN, "RC-TRACK", rates, effective_from=clock.now - timedelta(days=1))
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=20)
    start = clock.now
    ids = []
    for tenant, reference, code, point in (
        ("ACME", "PO-A-1", "CUST-1", GeoPoint(41.9351, -87.6447)),
        ("GLOBEX", "PO-G-1", "CUST-2", GeoPoint(41.879, -87.636)),
    ):
        draft = OrderDraft(
            reference=reference,
            lines=(OrderLine(1, "SKU-1", 2, Decimal(2)),),
            ship_to_code=code,
            ship_to_name=code,
            ship_to_address="-",
            ship_to=point,
            window=TimeWindow(start, start + timedelta(hours=8)),
        )
        ledger.place_order(ADMIN, tenant, draft)
        ids.append(ledger.order_by_reference(tenant, reference).id)
    ledger.allocate_order(ADMIN, ids[0], "WH-1")
    window = TimeWindow(start + timedelta(hours=2), start + timedelta(hours=4))
    ledger.plan_load(
        ADMIN,
        "L-TRACK",
        [
            StopPlan(
                StopKind.PICKUP,
                "WH-1",
                TimeWindow(start, start + timedelta(hours=1)),
                30,
                None,
                tuple(ids),
            ),
            StopPlan(StopKind.DELIVERY, "CUST-1", window, 30, None, (ids[0],)),
            StopPlan(StopKind.DELIVERY, "CUST-2", window, 30, None, (ids[1],)),
        ],
    )
    load = ledger.load_by_reference("L-TRACK")
    pickup, mine, theirs = load.stop_ids
    ledger.tender_load(ADMIN, load.id, "FAST", "RC-TRACK")
    ledger.accept_tender(ADMIN, load.id)
    ledger.dispatch_load(ADMIN, load.id, "DRV-1", "TRK-1")
    app_scan = {"source": Source.DRIVER_APP}
    ledger.record_stop_fact(ADMIN, pickup, StopFact.ARRIVED, occurred_at=start, **app_scan)
    ledger.record_stop_fact(
        ADMIN, pickup, StopFact.DEPARTED, occurred_at=start + timedelta(minutes=30), **app_scan
    )
    ledger.record_stop_fact(
        ADMIN, mine, StopFact.ETA_REPORTED, occurred_at=start + timedelta(hours=3), **app_scan
    )
    ledger.record_stop_fact(
        ADMIN, theirs, StopFact.ARRIVED, occurred_at=start + timedelta(hours=1), **app_scan
    )
    ledger.raise_exception(
        ADMIN,
        load.id,
        ExceptionKind.DELAYED,
        owner="ops-desk-7",
        note="Lopez stuck at the yard of FAST",
        stop_id=mine,
    )
    ledger.raise_exception(ADMIN, load.id, ExceptionKind.DAMAGED, owner="x", stop_id=theirs)
    if delivered:
        arrived = start + timedelta(hours=3, minutes=10)
        ledger.record_stop_fact(ADMIN, mine, StopFact.ARRIVED, occurred_at=arrived, **app_scan)
        ledger.receive_pod(
            ADMIN,
            mine,
            signer="Rita Receiver",
            document_hash="sha256:beef",
            occurred_at=arrived + timedelta(minutes=20),
        )


def project(api: Api, ledger: Ledger) -> None:
    """Runs the outbox projection (it indexes which loads carry an order, for the page)."""
    Runner(ledger, api.app.state.services.db, [NotificationOutbox()]).catch_up()


def link(api: Api, reference: str = "PO-A-1") -> str:
    made = api.client.post(f"/api/v1/orders/{reference}/tracking", headers=api.h("shipper"))
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


# --- the page --------------------------------------------------------------------------------


def test_the_page_shows_the_order_delivered_with_its_pod_and_nothing_internal(
    api: Api, ledger: Ledger, clock: Clock
) -> None:
    a_day(ledger, clock)
    project(api, ledger)
    token = link(api)

    page = api.client.get(f"/track/{token}")
    as_json = api.client.get(f"/track/{token}.json")
    negotiated = api.client.get(f"/track/{token}", headers={"Accept": "application/json"})

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<span id="order">PO-A-1</span>' in html
    assert "Delivered" in html and "Signed by Rita Receiver" in html
    assert "Arrived at Lakeview Grocers" in html and "Running late" in html
    assert "Picked up at Main warehouse" in html and "Driver Ana dispatched" in html
    assert [word for word in INTERNAL if word in html] == []
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in html
    document = as_json.json()
    assert negotiated.json() == document
    assert document["order"] == "PO-A-1" and document["status"] == "delivered"
    assert document["proof_of_delivery"]["signed_by"] == "Rita Receiver"
    assert [word for word in INTERNAL if word in as_json.text] == []
    texts = [m["text"] for m in document["milestones"]]
    assert "Damage reported" not in texts  # raised on the other customer's stop


def test_the_page_shows_the_eta_window_while_the_order_is_on_its_way(
    api: Api, ledger: Ledger, clock: Clock
) -> None:
    a_day(ledger, clock, delivered=False)
    project(api, ledger)
    token = link(api)

    document = api.client.get(f"/track/{token}.json").json()
    html = api.client.get(f"/track/{token}").text

    eta = clock.now + timedelta(hours=3)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    assert document["status"] == "in_transit" and document["driver"] == "Ana"
    assert document["expected"] == {
        "basis": "eta",
        "eta": eta.strftime(fmt),
        "start": (eta - timedelta(minutes=30)).strftime(fmt),
        "end": (eta + timedelta(minutes=30)).strftime(fmt),
    }
    assert document["proof_of_delivery"] is None
    assert "estimated arrival" in html and "Your driver: Ana" in html


def test_revoked_and_unknown_links_answer_the_same_404(
    api: Api, ledger: Ledger, clock: Clock
) -> None:
    a_day(ledger, clock)
    project(api, ledger)
    token = link(api)
    assert api.client.get(f"/track/{token}").status_code == 200

    revoked = api.client.delete(f"/api/v1/orders/PO-A-1/tracking/{token}", headers=api.h("shipper"))
    after = api.client.get(f"/track/{token}")
    unknown = api.client.get("/track/" + "A" * 32)
    garbage = api.client.get("/track/<script>")

    assert revoked.status_code == 204
    assert after.status_code == unknown.status_code == garbage.status_code == 404
    assert after.text == unknown.text == garbage.text
    assert "PO-A-1" not in after.text
    assert api.client.get(f"/track/{token}.json").status_code == 404


def test_a_client_that_asks_too_often_gets_429(api: Api) -> None:
    api.app.state.tracking_limiter = tracking.RateLimiter(rate=3, per=60)
    guesses = [f"/track/{n}-guessing-a-token-xxxxxxxxxxx" for n in range(4)]

    answers = [api.client.get(path) for path in guesses]
    as_json = api.client.get("/track/guessing-a-token-xxxxxxxxxxx.json")

    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert as_json.status_code == 429 and as_json.json()["code"] == "rate_limited"


def test_the_rate_limit_refills_over_time() -> None:
    now = [0.0]
    limiter = tracking.RateLimiter(rate=60, per=60, clock=lambda: now[0])

    burst = [limiter.take("10.0.0.1") for _ in range(61)]
    other = limiter.take("10.0.0.2")
    now[0] += 2.0
    later = limiter.take("10.0.0.1")

    assert burst[:60] == [0.0] * 60 and burst[60] > 0
    assert other == 0.0 and later == 0.0


def test_the_page_escapes_everything_it_prints() -> None:
    evil = '<script>alert("x")</script>'
    document = {
        "order": evil,
        "status": "delivered",
        "status_text": evil,
        "deliver_to": evil,
        "expected": {"basis": evil, "eta": None, "start": evil, "end": evil},
        "driver": evil,
        "milestones": [{"at": evil, "text": evil}],
        "proof_of_delivery": {"signed_by": evil, "signed_at": evil},
    }

    html = tracking.render(document)

    assert "<script" not in html and '"x"' not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 9


def test_the_link_handed_out_when_the_order_was_placed_opens_its_page(
    api: Api, ledger: Ledger, clock: Clock
) -> None:
    a_day(ledger, clock)
    project(api, ledger)

    listed = api.client.get("/api/v1/orders/PO-A-1/tracking", headers=api.h("shipper")).json()
    placed = [x for x in listed["links"] if x["origin"] == "placed"]
    page = api.client.get(f"/track/{placed[0]['token']}")

    assert len(placed) == 1 and len(placed[0]["token"]) >= 32
    assert page.status_code == 200 and "PO-A-1" in page.text


def test_a_shipper_cannot_reach_the_links_of_another_customers_order(
    api: Api, ledger: Ledger, clock: Clock
) -> None:
    a_day(ledger, clock)

    made = api.client.post("/api/v1/orders/PO-G-1/tracking", headers=api.h("shipper"))
    listed = api.client.get("/api/v1/orders/PO-G-1/tracking", headers=api.h("shipper"))
    staff = api.client.post(
        "/api/v1/orders/PO-G-1/tracking", params={"tenant": "GLOBEX"}, headers=api.h("dispatcher")
    )

    assert made.status_code == listed.status_code == 404
    assert staff.status_code == 201 and staff.json()["url"].endswith(staff.json()["token"])


# --- the notifications API -------------------------------------------------------------------


def subscribe(api: Api, role: str = "shipper", **body: Any) -> Any:
    payload = {"url": "https://hooks.example.com/acme", **body}
    return api.client.post("/api/v1/notifications/subscriptions", json=payload, headers=api.h(role))


def test_a_subscription_shows_its_secret_once_and_is_the_shippers_own(
    api: Api, ledger: Ledger
) -> None:
    reference_data(ledger)
    ledger.open_account(ADMIN, "GLOBEX", "Globex Corp")

    made = subscribe(api, milestones=["stop.arrived", "stop.delivered"], eta_threshold_minutes=15)
    listed = api.client.get("/api/v1/notifications/subscriptions", headers=api.h("shipper"))
    theirs = api.client.get("/api/v1/notifications/subscriptions", headers=api.h("other_shipper"))
    sid = made.json()["subscription_id"]
    stolen = api.client.delete(
        f"/api/v1/notifications/subscriptions/{sid}", headers=api.h("other_shipper")
    )
    deleted = api.client.delete(
        f"/api/v1/notifications/subscriptions/{sid}", headers=api.h("shipper")
    )

    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    assert made.json()["tenant"] == "ACME"
    assert made.json()["milestones"] == ["stop.arrived", "stop.delivered"]
    assert [s["subscription_id"] for s in listed.json()["subscriptions"]] == [sid]
    assert "secret" not in listed.text and made.json()["secret"] not in listed.text
    assert theirs.json()["subscriptions"] == []
    assert stolen.status_code == 404 and deleted.status_code == 204
    assert api.client.get(
        "/api/v1/notifications/subscriptions", headers=api.h("shipper")
    ).json() == {"subscriptions": []}


def test_a_subscription_is_refused_a_bad_or_internal_url_and_staff_must_name_the_tenant(
    api: Api, ledger: Ledger
) -> None:
    reference_data(ledger)

    ftp = subscribe(api, url="ftp://hooks.example.com/x")
    loopback = subscribe(api, url="http://127.0.0.1:9000/x")
    metadata = subscribe(api, url="http://169.254.169.254/latest")
    short_form = subscribe(api, url="http://127.1:9000/x")
    nameless = subscribe(api, "dispatcher")
    unknown = subscribe(api, milestones=["stop.teleported"])
    api.app.state.webhook_allow_private = True
    allowed = subscribe(api, url="http://127.0.0.1:9000/x")
    for_tenant = subscribe(api, "support", tenant="ACME")

    refused = (ftp, loopback, metadata, short_form, nameless, unknown)
    assert [r.status_code for r in refused] == [422] * 6
    assert loopback.json()["field"] == "url" and nameless.json()["field"] == "tenant"
    assert allowed.status_code == 201 and for_tenant.status_code == 201
    assert for_tenant.json()["tenant"] == "ACME"


def test_support_sees_dead_letters_with_their_delivery_log_and_redelivers_them(
    api: Api, ledger: Ledger, clock: Clock
) -> None:
    api.app.state.webhook_allow_private = True
    reference_data(ledger)
    subscribe(api, url="http://127.0.0.1:9/nothing-listens")  # the discard port: refused
    a_day(ledger, clock)
    project(api, ledger)
    services = api.app.state.services
    sender = NotificationSender(
        services.db,
        policy=RetryPolicy(1, timedelta(seconds=0.01), timedelta(seconds=0.01)),
        timeout=0.5,
        allow_private=True,
    )
    while sender.run_once():
        pass
    sender.close()

    dead = api.client.get("/api/v1/notifications/dead-letters", headers=api.h("support"))
    forbidden = api.client.get("/api/v1/notifications/dead-letters", headers=api.h("shipper"))
    first = dead.json()["notifications"][0]["notification_id"]
    log = api.client.get(f"/api/v1/notifications/{first}/deliveries", headers=api.h("shipper"))
    detail = api.client.get(f"/api/v1/notifications/{first}", headers=api.h("shipper"))
    again = api.client.post(f"/api/v1/notifications/{first}/redeliver", headers=api.h("support"))
    twice = api.client.post(f"/api/v1/notifications/{first}/redeliver", headers=api.h("support"))
    hidden = api.client.get(f"/api/v1/notifications/{first}", headers=api.h("other_shipper"))

    assert dead.status_code == 200 and len(dead.json()["notifications"]) >= 5
    assert forbidden.status_code == 403
    assert [(d["attempt"], d["status_code"]) for d in log.json()] == [(1, None)]
    assert log.json()[0]["error"].startswith("ConnectError") and log.json()[0]["latency_ms"] >= 0
    assert detail.json()["payload"]["id"] == first and detail.json()["status"] == "dead"
    assert again.json() == {"notification_id": first, "status": "pending"}
    assert twice.status_code == 409
    assert hidden.status_code == 404
