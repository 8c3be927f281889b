"""GraphQL at /graphql, through real HTTP and a real WebSocket (graphql-transport-ws), on both
backends: a dispatcher's session, typed refusals, pagination, tenant isolation on every read
path, bitemporal loads, live board changes, and the query limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api.app import Settings, create_app
from api.deps import Services
from api.graphql.types import global_id
from api.keys import create_key
from ledger.history import load_timeline
from ledger.values import Rates
from support.factories import ADMIN, plan_simple_load, reference_data
from support.scenario import DAY, plan_day

START = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
RESULT = "__typename ... on Recorded { position loadId } ... on Refusal { code message }"


@dataclass
class Api:
    client: TestClient
    services: Services

    def key(self, role: str, tenant: str | None = None) -> str:
        return create_key(self.services.db, role, tenant)

    def post(self, key: str | None, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, key: str, query: str, **variables: Any) -> dict[str, Any]:
        body = self.post(key, query, **variables)
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    def command(self, key: str, mutation: str, **variables: Any) -> dict[str, Any]:
        """Runs a one-field mutation and returns its result."""
        data = self.data(key, mutation, **variables)
        (result,) = data.values()
        assert isinstance(result, dict)
        return result

    def recorded(self, key: str, mutation: str, **variables: Any) -> int:
        result = self.command(key, mutation, **variables)
        assert result["__typename"] == "Recorded", result
        return int(result["position"])


def _api(store_url: str, **settings: bool) -> Iterator[Api]:
    app = create_app(Settings(database_url=store_url, **settings))
    services: Services = app.state.services
    try:
        with TestClient(app) as client:
            yield Api(client, services)
    finally:
        services.ledger.close()


@pytest.fixture
def api(store_url: str) -> Iterator[Api]:
    yield from _api(store_url)


def world(api: Api) -> None:
    """Two shippers (ACME, BETA), two carriers (FAST with TRK-1 and DRV-1, SLOW), two places."""
    ledger = api.services.ledger
    reference_data(ledger)
    ledger.open_account(ADMIN, "BETA", "Beta Retail")
    ledger.register_carrier(ADMIN, "SLOW", "Slow Haulage")


def plan_input(reference: str, customer: str | None = "ACME") -> dict[str, Any]:
    def window(hours: float) -> dict[str, str]:
        start = START + timedelta(hours=hours)
        return {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}

    return {
        "reference": reference,
        "customer": customer,
        "plannedKm": 42.0,
        "stops": [
            {"kind": "PICKUP", "locationCode": "WH-1", "window": window(0)},
            {"kind": "DELIVERY", "locationCode": "CUST-1", "window": window(3)},
        ],
    }


PLAN = f"mutation($input: PlanLoadInput!) {{ planLoad(input: $input) {{ {RESULT} }} }}"
TENDER = f"""mutation($load: ID!, $carrier: String!) {{
  tenderLoad(load: $load, carrierCode: $carrier) {{ {RESULT} }} }}"""
ACCEPT = f"mutation($load: ID!) {{ acceptTender(load: $load) {{ {RESULT} }} }}"
DISPATCH = f"""mutation($load: ID!) {{
  dispatchLoad(load: $load, driverCode: "DRV-1", vehicleCode: "TRK-1") {{ {RESULT} }} }}"""
START_TRANSIT = f"mutation($load: ID!) {{ startTransit(load: $load) {{ {RESULT} }} }}"
DELIVER = f"mutation($load: ID!) {{ deliverLoad(load: $load) {{ {RESULT} }} }}"
LOAD = """query($id: ID!, $waitFor: LogPosition) {
  load(id: $id, waitFor: $waitFor) {
    id loadId reference status customerStatus carrier driverCode driverName customers
    openExceptionCount viewPosition
    stops { stopId sequence kind arrivedAt arrivalSource arrivalFactId location { name code } }
    exceptions { exceptionId kind owner note }
  }
}"""


def plan_tendered(api: Api, key: str, reference: str, customer: str, carrier: str) -> str:
    result = api.command(key, PLAN, input=plan_input(reference, customer))
    load_id = str(result["loadId"])
    api.recorded(key, TENDER, load=load_id, carrier=carrier)
    return load_id


# --- mutations -------------------------------------------------------------------------------


def test_load_is_delivered_when_a_dispatcher_runs_the_mutations_from_plan_on(api: Api) -> None:
    world(api)
    key = api.key("dispatcher")

    planned = api.command(key, PLAN, input=plan_input("L-100"))
    load = str(planned["loadId"])
    api.recorded(key, TENDER, load=load, carrier="FAST")
    api.recorded(key, ACCEPT, load=load)
    api.recorded(key, DISPATCH, load=load)
    api.recorded(key, START_TRANSIT, load=load)
    stops = api.data(key, LOAD, id=load, waitFor=api.services.ledger.position)["load"]["stops"]
    pickup = stops[0]["stopId"]
    api.recorded(
        key,
        f"""mutation($stop: ID!, $at: DateTime!) {{
          recordStopFact(stop: $stop, fact: ARRIVED, occurredAt: $at, source: DRIVER_APP)
          {{ {RESULT} }} }}""",
        stop=pickup,
        at=(START + timedelta(minutes=10)).isoformat(),
    )
    api.recorded(
        key,
        f"""mutation($stop: ID!, $at: DateTime!) {{
          overrideStopFact(stop: $stop, fact: ARRIVED, occurredAt: $at,
                           reason: "gate log shows 15:05") {{ {RESULT} }} }}""",
        stop=pickup,
        at=(START + timedelta(minutes=5)).isoformat(),
    )
    api.recorded(
        key,
        f"""mutation($load: ID!) {{
          raiseException(load: $load, kind: DELAYED, owner: "dispatch", note: "traffic")
          {{ {RESULT} }} }}""",
        load=load,
    )
    api.recorded(
        key,
        f"""mutation($load: ID!) {{
          resolveException(load: $load, exceptionId: "L-100-X1", resolution: "called consignee")
          {{ {RESULT} }} }}""",
        load=load,
    )
    delivered = api.recorded(key, DELIVER, load=load)

    shown = api.data(key, LOAD, id=load, waitFor=delivered)["load"]
    assert shown["status"] == "DELIVERED"
    assert shown["carrier"] == "FAST"
    assert shown["driverName"] == "Ana Lopez"
    assert shown["exceptions"] == [] and shown["openExceptionCount"] == 0
    assert shown["viewPosition"] <= delivered
    first = shown["stops"][0]
    assert first["arrivalSource"] == "operator"
    assert datetime.fromisoformat(first["arrivedAt"]) == START + timedelta(minutes=5)
    assert first["location"] == {"name": "Main warehouse", "code": "WH-1"}
    key_id = key.split("_", 2)[1]
    actors = {e.actor for e in load_timeline(api.services.ledger, UUID(load)).entries}
    assert actors == {f"key:{key_id}(dispatcher)"}


def test_typed_refusal_and_nothing_written_when_a_command_breaks_a_rule(api: Api) -> None:
    world(api)
    key = api.key("dispatcher")
    load = str(api.command(key, PLAN, input=plan_input("L-200"))["loadId"])
    head = api.services.ledger.position

    dispatch = api.command(
        key,
        """mutation($load: ID!) { dispatchLoad(load: $load, driverCode: "DRV-1",
             vehicleCode: "TRK-1") {
          __typename ... on InvalidTransition { code message entity state command } } }""",
        load=load,
    )
    cancel = api.command(
        key,
        """mutation($load: ID!) { cancelLoad(load: $load, reason: " ") {
          __typename ... on ReasonRequired { code field } } }""",
        load=load,
    )
    unknown = api.command(key, TENDER, load="L-NOPE", carrier="FAST")
    one_stop = plan_input("L-201")
    one_stop["stops"] = one_stop["stops"][:1]
    invalid = api.command(
        key,
        """mutation($input: PlanLoadInput!) { planLoad(input: $input) {
          __typename ... on InvalidInput { code field rule } } }""",
        input=one_stop,
    )

    assert dispatch == {
        "__typename": "InvalidTransition",
        "code": "invalid_transition",
        "message": "cannot dispatch a load that is planned",
        "entity": "load",
        "state": "planned",
        "command": "dispatch",
    }
    assert cancel == {"__typename": "ReasonRequired", "code": "reason_required", "field": "reason"}
    assert unknown["__typename"] == "NotFound"
    assert unknown["message"] == "load L-NOPE not found"
    assert invalid == {
        "__typename": "InvalidInput",
        "code": "invalid_input",
        "field": "stops",
        "rule": ">= 2",
    }
    assert api.services.ledger.position == head


def test_fields_refuse_when_the_key_is_missing_unknown_or_of_the_wrong_role(api: Api) -> None:
    world(api)
    shipper = api.key("shipper", "ACME")

    anonymous = api.post(None, "{ loads { edges { cursor } } }")
    unknown_key = api.post("sl_000000000000_nope", "{ loads { edges { cursor } } }")
    forbidden = api.post(shipper, PLAN, input=plan_input("L-300"))
    stock = api.post(shipper, "{ inventoryPositions { sku } }")

    assert anonymous["data"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert unknown_key["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert stock["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "Traceback" not in str([anonymous, unknown_key, forbidden, stock])


# --- queries ---------------------------------------------------------------------------------


PAGE = """query($first: Int!, $after: String, $status: LoadStatus) {
  loads(first: $first, after: $after, status: $status) {
    edges { cursor node { reference status } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""


def test_loads_page_by_reference_cursor_when_the_board_is_longer_than_a_page(api: Api) -> None:
    ledger = api.services.ledger
    reference_data(ledger)
    for n in (5, 3, 1, 4, 2):
        plan_simple_load(ledger, f"L-{n:03}", START)
    api.services.runner.catch_up()
    key = api.key("auditor")

    pages, after = [], None
    while True:
        page = api.data(key, PAGE, first=2, after=after)["loads"]
        pages.append([edge["node"]["reference"] for edge in page["edges"]])
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    filtered = api.data(key, PAGE, first=10, status="TENDERED")["loads"]["edges"]
    bad_cursor = api.post(key, PAGE, first=2, after="not-a-cursor")

    assert pages == [["L-001", "L-002"], ["L-003", "L-004"], ["L-005"]]
    assert filtered == []
    assert bad_cursor["errors"][0]["extensions"] == {
        "code": "invalid_input",
        "field": "after",
        "rule": None,
    }


def test_another_tenants_load_reads_as_absent_when_read_on_any_path(api: Api) -> None:
    world(api)
    dispatcher = api.key("dispatcher")
    acme_load = plan_tendered(api, dispatcher, "L-ACME", "ACME", "FAST")
    beta_load = plan_tendered(api, dispatcher, "L-BETA", "BETA", "SLOW")
    api.recorded(dispatcher, ACCEPT, load=acme_load)
    api.recorded(dispatcher, DISPATCH, load=acme_load)
    api.recorded(
        dispatcher,
        f"""mutation($load: ID!) {{ raiseException(load: $load, kind: HELD, owner: "dispatch",
            note: "internal: check credit") {{ {RESULT} }} }}""",
        load=beta_load,
    )
    api.services.runner.catch_up()
    shipper, carrier = api.key("shipper", "ACME"), api.key("carrier", "FAST")
    other_carrier = api.key("carrier", "SLOW")

    def references(key: str) -> list[str]:
        edges = api.data(key, "{ loads { edges { node { reference } } } }")["loads"]["edges"]
        return [edge["node"]["reference"] for edge in edges]

    node = "query($id: ID!) { node(id: $id) { id ... on Load { reference } } }"
    as_known = "query($id: ID!, $at: LogPosition!) { load(id: $id, asKnownAt: $at) { reference } }"
    queue = "{ exceptionsQueue { loadReference owner note load { reference } } }"
    own = api.data(shipper, LOAD, id=acme_load)["load"]

    assert references(shipper) == ["L-ACME"]
    assert references(carrier) == ["L-ACME"]
    assert references(other_carrier) == ["L-BETA"]
    assert references(dispatcher) == ["L-ACME", "L-BETA"]
    for key in (shipper, carrier):
        for ref in (beta_load, "L-BETA"):
            assert api.data(key, LOAD, id=ref) == {"load": None}
            assert api.data(key, as_known, id=ref, at=api.services.ledger.position) == {
                "load": None
            }
        assert api.data(key, node, id=global_id("Load", beta_load)) == {"node": None}
        assert api.data(key, queue) == {"exceptionsQueue": []}
    assert api.data(shipper, node, id=global_id("Load", acme_load))["node"]["reference"] == "L-ACME"
    assert api.data(dispatcher, queue)["exceptionsQueue"][0]["note"] == "internal: check credit"
    # the customer-safe view: no carrier, no driver surname, only its own account
    assert own["carrier"] is None and own["driverCode"] is None
    assert own["driverName"] == "Ana"
    assert own["customers"] == ["ACME"]
    assert all(stop["arrivalSource"] is None for stop in own["stops"])
    billing = api.post(
        shipper, "query($id: ID!) { load(id: $id) { billingLines { code } } }", id=acme_load
    )
    assert billing["data"] == {"load": {"billingLines": None}}
    assert billing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # a carrier cannot act on another carrier's load either: it is not found
    refused = api.command(carrier, ACCEPT, load=beta_load)
    assert refused["__typename"] == "NotFound"


def test_load_shows_the_older_state_when_asked_as_known_at_an_earlier_position(api: Api) -> None:
    world(api)
    key = api.key("auditor")
    dispatcher = api.key("dispatcher")
    load = str(api.command(dispatcher, PLAN, input=plan_input("L-400"))["loadId"])
    tendered = api.recorded(dispatcher, TENDER, load=load, carrier="FAST")
    api.recorded(dispatcher, ACCEPT, load=load)
    dispatched = api.recorded(dispatcher, DISPATCH, load=load)
    query = """query($id: ID!, $at: LogPosition, $asOf: DateTime, $wait: LogPosition) {
      load(id: $id, asKnownAt: $at, asOf: $asOf, waitFor: $wait) {
        status carrier driverCode knownAt asOf stops { sequence } billingLines { code } } }"""

    then = api.data(key, query, id=load, at=tendered)["load"]
    now = api.data(key, query, id=load, wait=dispatched)["load"]
    before = api.data(key, query, id=load, asOf=(datetime.now(UTC) - timedelta(days=1)).isoformat())

    assert then["status"] == "TENDERED" and then["knownAt"] == tendered
    assert then["carrier"] == "FAST" and then["driverCode"] is None
    assert [s["sequence"] for s in then["stops"]] == [1, 2]
    assert now["status"] == "DISPATCHED" and now["knownAt"] is None
    assert now["driverCode"] == "DRV-1"
    assert before == {"load": None}


# --- subscriptions ---------------------------------------------------------------------------


def receive(ws: WebSocketTestSession, timeout: float = 15.0) -> dict[str, Any]:
    """The next message, or a failure after `timeout` seconds (never a hung test)."""

    async def next_message() -> Any:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()  # the session's own queue, with a deadline

    message = ws.portal.call(next_message)
    assert message["type"] == "websocket.send", message
    body: dict[str, Any] = json.loads(message["text"])
    return body


def subscribe(ws: WebSocketTestSession, key: str, after: int) -> None:
    ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
    assert receive(ws)["type"] == "connection_ack"
    ws.send_json(
        {
            "id": "board",
            "type": "subscribe",
            "payload": {
                "query": """subscription($after: LogPosition) {
                    boardChanges(afterPosition: $after) {
                    position load { reference status carrier } } }""",
                "variables": {"after": after},
            },
        }
    )


def next_change(ws: WebSocketTestSession) -> dict[str, Any]:
    message = receive(ws)
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    change: dict[str, Any] = message["payload"]["data"]["boardChanges"]
    return change


def test_subscriber_receives_the_board_change_when_a_mutation_moves_a_load(api: Api) -> None:
    world(api)
    key = api.key("dispatcher")
    load = str(api.command(key, PLAN, input=plan_input("L-500"))["loadId"])
    api.services.runner.catch_up()

    with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        subscribe(ws, key, after=api.services.runner.position())  # from here on
        tendered = api.recorded(key, TENDER, load=load, carrier="FAST")
        api.services.runner.catch_up()
        change = next_change(ws)

    assert change["load"] == {"reference": "L-500", "status": "TENDERED", "carrier": "FAST"}
    assert change["position"] == tendered


def test_shipper_subscription_carries_only_its_loads_when_other_loads_change(api: Api) -> None:
    world(api)
    dispatcher = api.key("dispatcher")
    acme = plan_tendered(api, dispatcher, "L-ACME", "ACME", "FAST")
    beta = plan_tendered(api, dispatcher, "L-BETA", "BETA", "SLOW")
    api.services.runner.catch_up()
    shipper = api.key("shipper", "ACME")

    with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        subscribe(ws, shipper, after=0)  # replay from the start of the log
        replayed = next_change(ws)
        api.recorded(dispatcher, ACCEPT, load=beta)
        accepted = api.recorded(dispatcher, ACCEPT, load=acme)
        api.services.runner.catch_up()
        live = next_change(ws)

    assert replayed["load"] == {"reference": "L-ACME", "status": "TENDERED", "carrier": None}
    assert live["load"]["reference"] == "L-ACME" and live["position"] == accepted


def test_subscription_connection_is_closed_when_it_has_no_key(api: Api) -> None:
    with (
        api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.send_json({"type": "connection_init", "payload": {}})
        ws.receive_json()

    assert closed.value.code == 4403


# --- limits ----------------------------------------------------------------------------------


def test_query_is_refused_when_deeper_than_the_limit(api: Api) -> None:
    key = api.key("dispatcher")
    deep = "{ exceptionsQueue { load { exceptions { load { exceptions { load { exceptions {"
    deep += " load { exceptions { load { exceptions { kind } } } } } } } } } } } }"

    body = api.post(key, deep)

    assert body["data"] is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


def test_introspection_is_refused_when_switched_off(store_url: str) -> None:
    for api in _api(store_url, introspection=False):
        key = api.key("dispatcher")

        body = api.post(key, "{ __schema { queryType { name } } }")

        assert body["data"] is None
        assert "introspection" in body["errors"][0]["message"].lower()


# --- the other views -------------------------------------------------------------------------


def test_positions_kpis_stock_and_billing_are_served_when_the_views_hold_them(api: Api) -> None:
    ledger = api.services.ledger
    ledger.publish_rates(ADMIN, "RC", Rates(), effective_from=DAY - timedelta(days=1))
    day = plan_day(ledger, rate_card="RC", planned_km=120.0)
    ledger.register_carrier(ADMIN, "SLOW", "Slow Haulage")
    before_pings = ledger.position
    ledger.ingest_pings(ADMIN, day.pings, received_at=DAY + timedelta(days=1))
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=40)
    api.services.runner.catch_up()
    finance, dispatcher, shipper = (
        api.key("finance"),
        api.key("dispatcher"),
        api.key("shipper", "ACME"),
    )
    fast, slow = api.key("carrier", "FAST"), api.key("carrier", "SLOW")
    load = """query($id: ID!, $at: LogPosition) { load(id: $id, asKnownAt: $at) {
        billingLines { code amount } lastPosition { vehicleCode fixAt } } }"""
    vehicles = "{ vehiclePositions { vehicleCode fixAt } }"

    now = api.data(finance, load, id=str(day.load_id))["load"]
    earlier = api.data(finance, load, id=str(day.load_id), at=before_pings)["load"]
    scorecard = (
        '{ kpis(day: "2026-11-20") { carrier customer loads tenders tenderAcceptancePct stops } }'
    )
    kpis = api.data(dispatcher, scorecard)["kpis"]
    stock = api.data(dispatcher, '{ inventoryPositions(sku: "SKU-1") { warehouse available } }')

    assert "LINEHAUL" in {line["code"] for line in now["billingLines"]}
    last_fix = datetime.fromisoformat(now["lastPosition"]["fixAt"])
    assert last_fix == max(p.occurred_at for p in day.pings)
    assert earlier["lastPosition"] is None
    assert kpis == [
        {
            "carrier": "FAST",
            "customer": "ACME",
            "loads": 1,
            "tenders": 1,
            "tenderAcceptancePct": 100.0,
            "stops": 3,
        }
    ]
    assert stock == {"inventoryPositions": [{"warehouse": "WH-1", "available": 40}]}
    assert [v["vehicleCode"] for v in api.data(fast, vehicles)["vehiclePositions"]] == ["TRK-1"]
    assert api.data(slow, vehicles) == {"vehiclePositions": []}
    assert api.data(slow, "{ kpis { loads } }") == {"kpis": []}
    assert api.post(shipper, vehicles)["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_log_positions_beyond_32_bits_are_accepted_and_outside_64_bits_refused(api: Api) -> None:
    world(api)
    dispatcher = api.key("dispatcher")
    load = plan_tendered(api, dispatcher, "L-ACME", "ACME", "FAST")
    as_known = "query($id: ID!, $at: LogPosition!) { load(id: $id, asKnownAt: $at) { reference } }"

    far = api.data(dispatcher, as_known, id=load, at=2**40)

    assert far["load"]["reference"] == "L-ACME"
    for bad in (-1, 2**63, "12", 1.5, True):
        errors = api.post(dispatcher, as_known, id=load, at=bad).get("errors")
        assert errors and "a log position is an integer" in errors[0]["message"], (bad, errors)
