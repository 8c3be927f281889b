"""REST end to end over real HTTP (TestClient): keys and roles, a dispatcher's day, a carrier
posting pings and EDI, a shipper seeing only its own, idempotent writes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import Settings, create_app
from api.keys import create_key
from ledger.application import Ledger
from ledger.log import iter_log
from ledger.telematics import PingLog
from support.clock import Clock
from support.factories import ADMIN, order_draft, reference_data
from support.scenario import plan_day


@pytest.fixture
def api(ledger: Ledger, store_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(Settings(database_url=store_url), ledger=ledger)
    db = app.state.services.db
    keys = {
        "admin": create_key(db, "admin"),
        "dispatcher": create_key(db, "dispatcher"),
        "finance": create_key(db, "finance"),
        "carrier": create_key(db, "carrier", "FAST"),
        "other_carrier": create_key(db, "carrier", "SLOW"),
        "shipper": create_key(db, "shipper", "ACME"),
        "other_shipper": create_key(db, "shipper", "GLOBEX"),
    }
    with TestClient(app) as client:
        yield client, keys


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def ping(seq: int, at: str, device: str = "DEV-1") -> dict[str, Any]:
    return {"device_id": device, "seq": seq, "occurred_at": at, "lat": 41.85, "lon": -87.65}


def test_writes_are_refused_without_a_key_or_with_the_wrong_role(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = api
    body = {"pings": [ping(1, "2026-11-20T08:00:00+00:00")]}

    anonymous = client.post("/api/v1/telematics/pings", json=body)
    forged = client.post("/api/v1/telematics/pings", json=body, headers=auth("sl_x_y"))
    finance = client.post("/api/v1/telematics/pings", json=body, headers=auth(keys["finance"]))

    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    assert forged.status_code == 401
    assert finance.status_code == 403


def test_dispatcher_runs_a_load_from_order_to_delivery(
    api: tuple[TestClient, dict[str, str]], ledger: Ledger, clock: Clock
) -> None:
    client, keys = api
    reference_data(ledger)
    h = auth(keys["dispatcher"])
    order = client.post(
        "/api/v1/orders",
        headers=h,
        json={
            "reference": "PO-9",
            "tenant": "ACME",
            "lines": [{"sku": "SKU-1", "quantity": 3}],
            "ship_to": {
                "name": "Lakeview Grocers",
                "address": "2900 N Broadway",
                "lat": 41.9351,
                "lon": -87.6447,
            },
            "window": {
                "start": clock.now.isoformat(),
                "end": (clock.now + timedelta(hours=4)).isoformat(),
            },
        },
    )
    assert order.status_code == 201, order.text
    window = {"start": clock.now.isoformat(), "end": (clock.now + timedelta(hours=6)).isoformat()}
    plan = client.post(
        "/api/v1/loads",
        headers=h,
        json={
            "reference": "L-9",
            "planned_km": 40,
            "stops": [
                {"kind": "pickup", "location_code": "WH-1", "window": window},
                {
                    "kind": "delivery",
                    "location_code": "CUST-1",
                    "window": window,
                    "order_ids": [order.json()["order_id"]],
                },
            ],
        },
    )
    assert plan.status_code == 201, plan.text
    for path, body in (
        ("tender", {"carrier_code": "FAST"}),
        ("accept", None),
        ("dispatch", {"driver_code": "DRV-1", "vehicle_code": "TRK-1"}),
        ("start-transit", None),
        ("deliver", None),
    ):
        response = client.post(f"/api/v1/loads/L-9/{path}", headers=h, json=body)
        assert response.status_code == 200, (path, response.text)
    position = response.json()["position"]

    board = client.get("/api/v1/loads", headers=h, params={"wait_for": position}).json()
    detail = client.get("/api/v1/loads/L-9", headers=h).json()
    refused = client.post(
        "/api/v1/loads/L-9/dispatch",
        headers=h,
        json={"driver_code": "DRV-1", "vehicle_code": "TRK-1"},
    )

    assert [(x["reference"], x["status"]) for x in board["loads"]] == [("L-9", "delivered")]
    assert board["position"] >= position
    assert [s["kind"] for s in detail["stops"]] == ["pickup", "delivery"]
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_transition"


def test_carrier_posts_pings_and_edi_for_its_own_loads_only(
    api: tuple[TestClient, dict[str, str]], ledger: Ledger, clock: Clock
) -> None:
    client, keys = api
    day = plan_day(ledger)  # tendered to FAST, device DEV-1 on TRK-1
    clock.advance(days=1)
    at = day.arrivals[0].isoformat()
    h = auth(keys["carrier"])

    pings = client.post(
        "/api/v1/telematics/pings",
        headers=h,
        json={"pings": [ping(1, at), ping(1, at), ping(2, at, device="NOT-MINE")]},
    )
    x12 = (
        "ST*214*0001~B10*PRO1*L-DAY*FSTF~LX*1~AT7*X3*NS***20261120*1315*UT~L11*1*QN~"
        "LX*2*~AT7*SD*AG***20261120*1600*CT~SE*8*0001~"
    )
    edi = client.post("/api/v1/edi/214", headers={**h, "Content-Type": "text/plain"}, content=x12)
    bad = client.post(
        "/api/v1/edi/214",
        headers={**h, "Content-Type": "text/plain"},
        content=x12.replace("X3", "ZZ"),
    )
    foreign = client.post(
        "/api/v1/edi/214",
        headers={**auth(keys["other_carrier"]), "Content-Type": "text/plain"},
        content=x12,
    )

    summary = pings.json()
    assert (summary["accepted"], summary["duplicates"]) == (1, 1)
    assert summary["refused"] == [
        {"index": 2, "reason": "device NOT-MINE is not on a vehicle of FAST"}
    ]
    assert edi.status_code == 201, edi.text
    assert bad.status_code == 422
    assert (
        bad.json()["problems"][0]["field"] == "AT7" and "ZZ" in bad.json()["problems"][0]["reason"]
    )
    assert foreign.status_code == 422 and "not found" in foreign.json()["problems"][0]["reason"]
    facts = client.get("/api/v1/loads/L-DAY/timeline", headers=auth(keys["dispatcher"])).json()
    sources = {(e["kind"], e["source"]) for e in facts["facts"]}
    assert ("stop.arrived", "edi") in sources


def test_shipper_sees_only_its_own_loads_and_orders(
    api: tuple[TestClient, dict[str, str]], ledger: Ledger, clock: Clock
) -> None:
    client, keys = api
    plan_day(ledger)  # ACME's load
    ledger.open_account(ADMIN, "GLOBEX", "Globex")
    ledger.place_order(ADMIN, "GLOBEX", order_draft("G-1", clock.now, ("SKU-1", 1)))
    runner = client.app.state.services.runner  # type: ignore[attr-defined]
    runner.catch_up()

    mine = client.get("/api/v1/loads", headers=auth(keys["shipper"])).json()
    theirs = client.get("/api/v1/loads", headers=auth(keys["other_shipper"])).json()
    detail = client.get("/api/v1/loads/L-DAY", headers=auth(keys["shipper"]))
    hidden = client.get("/api/v1/loads/L-DAY", headers=auth(keys["other_shipper"]))
    order = client.get("/api/v1/orders/G-1", headers=auth(keys["shipper"]))
    own_order = client.get("/api/v1/orders/G-1", headers=auth(keys["other_shipper"]))
    timeline = client.get("/api/v1/loads/L-DAY/timeline", headers=auth(keys["other_shipper"]))

    assert [x["reference"] for x in mine["loads"]] == ["L-DAY"]
    assert theirs["loads"] == []
    assert detail.status_code == 200 and "Lopez" not in detail.text and "FAST" not in detail.text
    assert hidden.status_code == 404 and timeline.status_code == 404
    assert order.status_code == 404 and own_order.status_code == 200


def test_idempotent_write_replays_refuses_a_new_body_and_a_concurrent_duplicate(
    api: tuple[TestClient, dict[str, str]], ledger: Ledger, clock: Clock
) -> None:
    client, keys = api
    at = (clock.now - timedelta(minutes=5)).isoformat()
    h = auth(keys["dispatcher"], **{"Idempotency-Key": "batch-1"})
    body = {"pings": [ping(1, at)]}

    first = client.post("/api/v1/telematics/pings", headers=h, json=body)
    replay = client.post("/api/v1/telematics/pings", headers=h, json=body)
    changed = client.post("/api/v1/telematics/pings", headers=h, json={"pings": [ping(2, at)]})

    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json() and replay.headers.get("idempotency-replayed") == "true"
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_mismatch"
    assert ledger.position == first.json()["position"]

    results: list[int] = []
    barrier = threading.Barrier(4)
    h2 = auth(keys["dispatcher"], **{"Idempotency-Key": "batch-2"})

    def send() -> None:
        barrier.wait()
        results.append(
            client.post(
                "/api/v1/telematics/pings", headers=h2, json={"pings": [ping(9, at)]}
            ).status_code
        )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results)[-1] in (200, 409) and results.count(200) >= 1
    assert set(results) <= {200, 409}
    stored = [
        p
        for r in iter_log(ledger)
        if isinstance(r.event, PingLog.PingsRecorded)
        for p in r.event.pings
        if p.seq == 9
    ]
    assert len(stored) == 1  # the duplicate requests recorded the ping once


def test_errors_name_the_field_and_the_row(
    api: tuple[TestClient, dict[str, str]], ledger: Ledger
) -> None:
    client, keys = api
    ledger.open_account(ADMIN, "ACME", "Acme")
    h = auth(keys["dispatcher"], **{"Content-Type": "text/csv"})
    csv = (
        "reference,sku,quantity,ship_to_name,ship_to_address,ship_to_lat,ship_to_lon,"
        "window_start,window_end\nPO-1,S,-2,A,B,41,-87,2026-11-25T08:00:00-06:00,"
        "2026-11-25T12:00:00-06:00\n"
    )

    refused = client.post("/api/v1/orders/csv", params={"tenant": "ACME"}, headers=h, content=csv)
    naive = client.post(
        "/api/v1/telematics/pings",
        headers=auth(keys["dispatcher"]),
        json={"pings": [ping(1, "2026-11-20T08:00:00")]},
    )

    assert refused.status_code == 422
    assert refused.json()["problems"] == [
        {"row": 2, "field": "quantity", "reason": "must be positive, got -2"}
    ]
    assert naive.status_code == 422 and naive.json()["field"] == "pings.0.occurred_at"
    assert ledger.position == 1  # only the account


def test_nul_characters_and_positions_beyond_64_bits_are_refused_naming_the_field(
    api: tuple[TestClient, dict[str, str]], ledger: Ledger
) -> None:
    client, keys = api
    ledger.open_account(ADMIN, "ACME", "Acme")
    head = ledger.position
    h = auth(keys["admin"])
    nul_device = {"pings": [ping(1, "2026-11-20T08:00:00+00:00", device="DEV\u0000")]}
    text_with_backslash = {"pings": [ping(1, "2026-11-20T08:00:00+00:00", device="DEV\\u0000")]}

    as_json = auth(keys["admin"], **{"Content-Type": "application/json"})
    in_body = client.post(
        "/api/v1/telematics/pings", headers=as_json, content=json.dumps(nul_device)
    )
    in_query = client.get("/api/v1/notifications/subscriptions?tenant=AC%00ME", headers=h)
    too_far = client.get("/api/v1/notifications?after=9223372036854775808", headers=h)
    written = ledger.position
    escaped = client.post(
        "/api/v1/telematics/pings", headers=as_json, content=json.dumps(text_with_backslash)
    )

    assert in_body.status_code == 422 and in_body.json()["field"] == "body"
    assert in_query.status_code == 422 and in_query.json()["field"] == "query.tenant"
    assert too_far.status_code == 422 and too_far.json()["field"] == "query.after"
    assert written == head
    assert escaped.status_code == 200, escaped.text  # a backslash and "u0000" is plain text


def test_health_and_readiness(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api

    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and {v["view"] for v in ready["views"]} >= {"load_board"}
    assert "paths" in client.get("/openapi.json").json()
