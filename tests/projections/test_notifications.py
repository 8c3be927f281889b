"""Customer notifications: the outbox projection enqueues each milestone once (stable ids,
corrections that name what they correct), and the sender gets every one to a real webhook
receiver on loopback, signed, through 500s, timeouts, a dead server and a killed sender."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from ledger.application import Ledger, OrderDraft, StopPlan
from ledger.events import Source
from ledger.loads import ExceptionKind
from ledger.stops import StopFact, StopKind
from ledger.telematics import PingInput
from ledger.values import GeoPoint, OrderLine, Rates, TimeWindow
from projections import notify_store as store
from projections.db import Database
from projections.migrations import migrate
from projections.notifications import NotificationOutbox
from projections.notify_sender import (
    ALLOW_PRIVATE_ENV,
    ID_HEADER,
    SIGNATURE_HEADER,
    NotificationSender,
    RetryPolicy,
    sign,
    verify_signature,
)
from projections.reconciler import Reconciler
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN, reference_data
from support.scenario import DAY, STOPS, drive

SRC = Path(__file__).resolve().parents[2] / "src"
#: What no customer may ever read: the driver's surname and code, carrier, vehicle and
#: device codes, rates, internal notes and owners, the other customer's order and dock.
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
    "RC-NOTE",
    "gate code 4411",
    "ops-desk-7",
)
OTHER_CUSTOMER = ("GLOBEX", "PO-G-1", "Globex Dock 7", "CUST-2")


# --- a webhook receiver on loopback ----------------------------------------------------------


@dataclass
class Delivery:
    notification_id: str
    body: bytes
    signature: str
    answered: int | None  # None: the receiver did not answer (it was too slow)
    host: str = ""  # the Host header it came with


@dataclass
class Receiver:
    """An HTTP server in a thread that records every webhook and answers as told:
    `mode` is "ok", "fail" (500) or "slow" (answers after `slow_seconds`)."""

    port: int = 0
    mode: str = "ok"
    slow_seconds: float = 0.5
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    signal_after: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mode = receiver.mode
                answered: int | None = 500 if mode == "fail" else 200
                if mode == "slow":
                    answered = None
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery(
                            self.headers[ID_HEADER],
                            body,
                            self.headers[SIGNATURE_HEADER],
                            answered,
                            self.headers["Host"],
                        )
                    )
                    if len(receiver.deliveries) >= receiver.signal_after > 0:
                        receiver.arrived.set()
                if mode in ("slow", "slow-ok"):
                    time.sleep(receiver.slow_seconds)
                self.send_response(answered or 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a sender that gave up closes the socket under a slow answer

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def acknowledged(self) -> set[str]:
        return {d.notification_id for d in self.deliveries if d.answered == 200}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


# --- the world -------------------------------------------------------------------------------


@dataclass
class World:
    ledger: Ledger
    db: Database
    url: str
    runner: Runner
    reconciler: Reconciler
    secrets: dict[str, str] = field(default_factory=dict)  # tenant -> secret

    def project(self) -> None:
        self.reconciler.catch_up()
        self.runner.catch_up()
        self.reconciler.catch_up()
        self.runner.catch_up()

    def outbox(self, tenant: str | None = None) -> list[dict[str, Any]]:
        found = []
        for note in store.list_notifications(self.db, tenant=tenant, limit=1000):
            detail = store.get_notification(self.db, note["notification_id"])
            assert detail is not None
            found.append(detail)
        return found


@pytest.fixture
def world(ledger: Ledger, store_url: str, receiver: Receiver) -> Iterator[World]:
    db = Database(store_url)
    migrate(db)
    made = World(
        ledger, db, store_url, Runner(ledger, db, [NotificationOutbox()]), Reconciler(ledger)
    )
    for tenant in ("ACME", "GLOBEX"):
        _, secret = store.create_subscription(
            db,
            tenant=tenant,
            url=receiver.url,
            since_position=ledger.position,
            actor="test",
            now=ledger.clock(),
        )
        made.secrets[tenant] = secret
    yield made
    db.close()


def sender(world: World, **options: Any) -> NotificationSender:
    policy = options.pop(
        "policy",
        RetryPolicy(
            max_attempts=50, base_delay=timedelta(seconds=0.01), cap=timedelta(seconds=0.05)
        ),
    )
    options.setdefault("timeout", 0.25)
    options.setdefault("lease", timedelta(seconds=5))
    options.setdefault("allow_private", True)  # the receiver is on loopback
    return NotificationSender(world.db, policy=policy, **options)


def deliver_everything(world: World) -> None:
    """A sender of its own delivers until nothing is pending, then closes."""
    sending = sender(world)
    drain(world, sending)
    sending.close()


def drain(world: World, sending: NotificationSender, deadline: float = 15.0) -> None:
    """Sends until nothing is pending (waiting out backoffs and leases)."""
    end = time.monotonic() + deadline
    while store.list_notifications(world.db, status="pending", limit=1):
        assert time.monotonic() < end, "notifications still pending"
        if not sending.run_once():
            time.sleep(0.02)


@dataclass(frozen=True)
class Plan:
    load_id: UUID
    stop_ids: tuple[UUID, ...]
    pings: tuple[PingInput, ...]
    arrivals: tuple[datetime, ...]
    departures: tuple[datetime, ...]


def plan_with_orders(ledger: Ledger, dwells: tuple[int, ...] = (10, 40, 10)) -> Plan:
    """A three-stop load carrying an ACME order to CUST-1 and a GLOBEX order to CUST-2,
    priced on a rate card, dispatched; and the day's pings of its truck."""
    reference_data(ledger)
    ledger.open_account(ADMIN, "GLOBEX", "Globex Corp")
    for code, lat, lon, _ in STOPS[1:]:
        owner = "ACME" if code == "CUST-1" else "GLOBEX"
        name = "Lakeview Grocers" if code == "CUST-1" else "Globex Dock 7"
        ledger.register_location(
            ADMIN,
            code,
            name=name,
            address=f"{code} street",
            lat=lat,
            lon=lon,
            owner_tenant=owner,
            dock_notes="gate code 4411",
        )
    rates = Rates(per_mile=Decimal("3.17"), minimum=Decimal("987.65"))
    ledger.publish_rates(ADMIN, "RC-NOTE", rates, effective_from=DAY - timedelta(days=1))
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=50)
    pings, arrivals, departures = drive(dwells)
    orders = []
    for tenant, reference, code in (("ACME", "PO-A-1", "CUST-1"), ("GLOBEX", "PO-G-1", "CUST-2")):
        stop = next(s for s in STOPS if s[0] == code)
        ledger.place_order(
            ADMIN,
            tenant,
            OrderDraft(
                reference=reference,
                lines=(OrderLine(1, "SKU-1", 3, Decimal(3)),),
                ship_to_code=code,
                ship_to_name=code,
                ship_to_address=f"{code} street",
                ship_to=GeoPoint(stop[1], stop[2]),
                window=TimeWindow(DAY, DAY + timedelta(hours=10)),
            ),
        )
        orders.append(ledger.order_by_reference(tenant, reference).id)
    ledger.allocate_order(ADMIN, orders[0], "WH-1")
    plans = [
        StopPlan(
            kind,
            code,
            TimeWindow(arrivals[i] - timedelta(hours=1), arrivals[i] + timedelta(hours=1)),
            order_ids=(tuple(orders) if kind is StopKind.PICKUP else (orders[0 if i == 1 else 1],)),
        )
        for i, (code, _, _, kind) in enumerate(STOPS)
    ]
    ledger.plan_load(
        ADMIN, "L-NOTE", plans, occurred_at=DAY - timedelta(minutes=5), reason="test set-up"
    )
    load = ledger.load_by_reference("L-NOTE")
    ledger.tender_load(ADMIN, load.id, "FAST", "RC-NOTE")
    ledger.accept_tender(ADMIN, load.id)
    ledger.dispatch_load(ADMIN, load.id, "DRV-1", "TRK-1")
    return Plan(load.id, load.stop_ids, tuple(pings), tuple(arrivals), tuple(departures))


def feed(world: World, pings: Sequence[PingInput], batch: int = 120) -> None:
    for i in range(0, len(pings), batch):
        world.ledger.ingest_pings(ADMIN, pings[i : i + batch])
        world.project()


def eventful_day(world: World, clock: Clock) -> Plan:
    """The ETA moves (by less, then more, than the threshold), an exception is raised and
    resolved (and an internal one raised), the truck drives the day, POD at CUST-1."""
    plan = plan_with_orders(world.ledger)
    clock.advance(days=1)
    ledger, stop = world.ledger, plan.stop_ids[1]
    for minutes in (0, 10, 45):
        ledger.record_stop_fact(
            ADMIN,
            stop,
            StopFact.ETA_REPORTED,
            occurred_at=plan.arrivals[1] + timedelta(minutes=minutes),
            source=Source.ELD,
        )
    ledger.raise_exception(
        ADMIN,
        plan.load_id,
        ExceptionKind.DELAYED,
        owner="ops-desk-7",
        note="Lopez stuck at the FAST yard",
        stop_id=stop,
    )
    ledger.raise_exception(ADMIN, plan.load_id, ExceptionKind.HOS_RISK, owner="ops-desk-7")
    ledger.resolve_exception(ADMIN, plan.load_id, "L-NOTE-X1", "called the driver Lopez")
    world.project()
    feed(world, plan.pings)
    ledger.receive_pod(
        ADMIN,
        stop,
        signer="Rita Receiver",
        document_hash="sha256:feed",
        occurred_at=plan.departures[1] - timedelta(minutes=2),
    )
    world.project()
    return plan


# --- the tests -------------------------------------------------------------------------------


def test_every_milestone_arrives_once_by_id_when_the_receiver_fails_for_a_while(
    world: World, receiver: Receiver, clock: Clock
) -> None:
    eventful_day(world, clock)
    acme = world.outbox("ACME")
    sending = sender(world, batch_size=3)

    receiver.mode = "fail"
    sending.run_once()
    receiver.mode = "slow"
    sending.run_once()
    receiver.stop()
    for _ in range(3):
        sending.run_once()
        time.sleep(0.05)
    receiver.start()
    receiver.mode = "ok"
    drain(world, sending)
    sending.close()

    assert sorted(n["milestone"] for n in acme) == sorted(
        [
            "order.allocated",
            "load.dispatched",
            "stop.eta_changed",
            "stop.eta_changed",
            "exception.raised",
            "exception.resolved",
            "stop.arrived",
            "stop.arrived",
            "stop.delivered",
        ]
    )
    everything = world.outbox()
    assert receiver.acknowledged() == {n["notification_id"] for n in everything}
    assert {n["status"] for n in everything} == {"delivered"}
    bodies: dict[str, set[bytes]] = {}
    for delivery in receiver.deliveries:
        bodies.setdefault(delivery.notification_id, set()).add(delivery.body)
        assert json.loads(delivery.body)["id"] == delivery.notification_id
    assert all(len(seen) == 1 for seen in bodies.values()), "a notification's body changed"
    failures = [d for n in everything for d in n["deliveries"] if d["status_code"] != 200]
    assert {d["error"].split(" ")[0] for d in failures} >= {"HTTP", "timeout", "ConnectError:"}


def test_signatures_verify_and_a_tampered_or_stale_one_does_not(
    world: World, receiver: Receiver
) -> None:
    plan_with_orders(world.ledger)
    world.project()
    deliver_everything(world)

    assert receiver.deliveries
    for delivery in receiver.deliveries:
        tenant = json.loads(delivery.body)["tenant"]
        secret, other = (
            world.secrets[tenant],
            world.secrets["GLOBEX" if tenant == "ACME" else "ACME"],
        )
        assert verify_signature(secret, delivery.signature, delivery.body)
        tampered = delivery.body.replace(tenant.encode(), b"ACNE")
        assert not verify_signature(secret, delivery.signature, tampered)
        assert not verify_signature(other, delivery.signature, delivery.body)
    body = receiver.deliveries[0].body
    secret = world.secrets[json.loads(body)["tenant"]]
    assert not verify_signature(secret, sign(secret, body, int(time.time()) - 3600), body)
    assert verify_signature(secret, sign(secret, body, int(time.time())), body)


def test_customers_read_nothing_internal_and_nothing_of_the_other_customer(
    world: World, clock: Clock
) -> None:
    eventful_day(world, clock)

    acme = world.outbox("ACME")
    globex = world.outbox("GLOBEX")

    assert acme and globex
    for note in acme:
        text = json.dumps(note["payload"])
        assert [word for word in INTERNAL + OTHER_CUSTOMER if word in text] == []
    for note in globex:
        text = json.dumps(note["payload"])
        assert [w for w in (*INTERNAL, "PO-A-1", "Lakeview") if w in text] == []
    dispatched = next(n for n in acme if n["milestone"] == "load.dispatched")
    assert dispatched["payload"]["data"]["driver"] == {"first_name": "Ana"}
    assert [s["place"] for s in dispatched["payload"]["data"]["stops"]] == [
        "Main warehouse",
        "Lakeview Grocers",
    ]
    kinds = [
        n["payload"]["data"]["exception"]["kind"] for n in acme if "exception" in n["milestone"]
    ]
    assert kinds == ["delayed", "delayed"]  # raised and resolved; the HOS risk is internal


def test_eta_is_told_first_then_only_when_it_moves_beyond_the_threshold(
    world: World, clock: Clock
) -> None:
    plan = eventful_day(world, clock)

    etas = [
        n["payload"]["data"] for n in world.outbox("ACME") if n["milestone"] == "stop.eta_changed"
    ]

    first, moved = (plan.arrivals[1], plan.arrivals[1] + timedelta(minutes=45))
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    assert [(e["previous_eta"], e["eta"]) for e in etas] == [
        (None, first.strftime(fmt)),
        (first.strftime(fmt), moved.strftime(fmt)),
    ]


def test_a_late_ping_that_moves_an_arrival_sends_a_correction_naming_what_it_corrects(
    world: World, receiver: Receiver, clock: Clock
) -> None:
    plan = plan_with_orders(world.ledger)
    clock.advance(days=1)
    arrival = plan.arrivals[1]
    offline = [p for p in plan.pings if arrival <= p.occurred_at < arrival + timedelta(minutes=20)]
    feed(world, [p for p in plan.pings if p not in offline])
    sending = sender(world)
    drain(world, sending)

    feed(world, offline)
    drain(world, sending)
    sending.close()

    told = [
        n
        for n in world.outbox("ACME")
        if n["milestone"] == "stop.arrived"
        and n["payload"]["data"]["stop"]["stop_id"] == str(plan.stop_ids[1])
    ]
    assert len(told) == 2
    first, correction = told
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    assert first["payload"]["data"]["arrived_at"] == (arrival + timedelta(minutes=20)).strftime(fmt)
    assert correction["corrects"] == first["notification_id"]
    assert correction["payload"]["correction"] is True
    assert correction["payload"]["corrects"] == first["notification_id"]
    assert correction["payload"]["data"]["arrived_at"] == arrival.strftime(fmt)
    assert correction["payload"]["data"]["previous_arrived_at"] == (
        arrival + timedelta(minutes=20)
    ).strftime(fmt)
    assert receiver.acknowledged() >= {first["notification_id"], correction["notification_id"]}


def test_a_rebuild_enqueues_nothing_twice_and_keeps_what_was_sent(
    world: World, receiver: Receiver, clock: Clock
) -> None:
    plan_with_orders(world.ledger)
    world.project()
    deliver_everything(world)
    before = world.outbox()
    tokens = world.db.query("SELECT token, order_id FROM tracking_tokens ORDER BY token")

    world.runner.rebuild(["notification_outbox"])

    assert world.outbox() == before
    assert world.db.query("SELECT token, order_id FROM tracking_tokens ORDER BY token") == tokens
    assert len(tokens) == 2  # one link per order placed


def test_a_notification_is_dead_lettered_after_the_last_retry_and_support_redelivers_it(
    world: World, receiver: Receiver
) -> None:
    plan_with_orders(world.ledger)
    world.project()
    receiver.mode = "fail"
    policy = RetryPolicy(
        max_attempts=3, base_delay=timedelta(seconds=0.01), cap=timedelta(seconds=0.02)
    )
    sending = sender(world, policy=policy)
    drain(world, sending)
    dead = store.list_notifications(world.db, status="dead")
    assert len(dead) == len(world.outbox())

    receiver.mode = "ok"
    chosen = dead[0]["notification_id"]
    assert store.redeliver(world.db, chosen, actor="support", now=world.ledger.clock())
    assert store.redeliver(world.db, chosen, actor="support", now=world.ledger.clock()) is False
    drain(world, sending)
    sending.close()

    detail = store.get_notification(world.db, chosen)
    assert detail is not None and detail["status"] == "delivered"
    assert [d["status_code"] for d in detail["deliveries"]] == [500, 500, 500, 200]
    assert all(d["latency_ms"] is not None for d in detail["deliveries"])
    assert receiver.acknowledged() == {chosen}


def test_two_senders_never_send_the_same_notification_at_once(
    world: World, receiver: Receiver
) -> None:
    plan_with_orders(world.ledger)
    world.project()
    receiver.mode = "slow-ok"
    receiver.slow_seconds = 0.02
    senders = [sender(world, batch_size=1), sender(world, batch_size=1)]

    threads = [threading.Thread(target=drain, args=(world, s)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for one in senders:
        one.close()

    ids = [d.notification_id for d in receiver.deliveries]
    assert sorted(ids) == sorted({n["notification_id"] for n in world.outbox()})
    assert (
        len({name for n in world.outbox() for name in [d["sender"] for d in n["deliveries"]]}) == 2
    )


def test_a_killed_sender_loses_nothing_when_another_resumes(
    world: World, receiver: Receiver
) -> None:
    plan_with_orders(world.ledger)
    world.project()
    receiver.mode = "slow-ok"
    receiver.slow_seconds = 0.3
    receiver.signal_after = 3
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        ALLOW_PRIVATE_ENV: "1",  # the receiver is on loopback
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "projections.notify_sender",
            "--db",
            world.url,
            "--timeout",
            "0.6",
            "--lease",
            "0.8",
            "--batch-size",
            "1",
            "--poll",
            "0.05",
            "--base-delay",
            "0.01",
            "--cap",
            "0.05",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert receiver.arrived.wait(30), "the sender process sent nothing"
        process.send_signal(signal.SIGKILL)  # mid-request: the third answer is still coming
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    sent_before = len(receiver.deliveries)
    receiver.mode = "ok"
    resumed = sender(world)
    drain(world, resumed)
    resumed.close()

    everything = world.outbox()
    assert 3 <= sent_before < len(everything) + 1
    assert receiver.acknowledged() == {n["notification_id"] for n in everything}
    interrupted = [d for n in everything for d in n["deliveries"] if d["finished_at"] is None]
    assert len(interrupted) == 1 and interrupted[0]["error"].startswith("interrupted")


def test_a_deleted_subscription_is_sent_nothing_more(world: World, receiver: Receiver) -> None:
    plan_with_orders(world.ledger)
    world.project()
    acme = store.list_subscriptions(world.db, "ACME")[0]

    unsubscribe(world, acme.subscription_id)
    world.ledger.record_stop_fact(
        ADMIN,
        world.ledger.load_by_reference("L-NOTE").stop_ids[1],
        StopFact.ARRIVED,
        occurred_at=world.ledger.clock(),
        source=Source.DRIVER_APP,
    )
    world.project()
    deliver_everything(world)

    mine = world.outbox("ACME")
    assert mine and {n["status"] for n in mine} == {"cancelled"}
    assert not any(json.loads(d.body)["tenant"] == "ACME" for d in receiver.deliveries)


def unsubscribe(world: World, subscription_id: str) -> None:
    """Ends a subscription as of the ledger's head."""
    store.delete_subscription(
        world.db,
        subscription_id,
        until_position=world.ledger.position,
        actor="test",
        now=world.ledger.clock(),
    )


def subscribe_by_name(world: World, receiver: Receiver) -> None:
    """ACME subscribes the receiver by a host name (localhost), not by its address."""
    store.create_subscription(
        world.db,
        tenant="ACME",
        url=f"http://localhost:{receiver.port}/hooks",
        since_position=world.ledger.position,
        actor="test",
        now=world.ledger.clock(),
    )


def test_a_webhook_host_that_resolves_into_our_network_is_refused_at_every_send(
    world: World, receiver: Receiver
) -> None:
    subscribe_by_name(world, receiver)  # passed the API's check; resolves to loopback now
    plan_with_orders(world.ledger)
    world.project()
    guarded = sender(world, allow_private=False)

    while guarded.run_once():
        pass
    guarded.close()

    attempts = [d for n in world.outbox() for d in n["deliveries"]]
    assert receiver.deliveries == []
    assert attempts and all(d["error"].startswith("refused: ") for d in attempts)
    assert any("localhost resolves to a non-public address" in d["error"] for d in attempts)
    assert any("(127.0.0.1)" in d["error"] for d in attempts)  # the literal address too


def test_a_webhook_goes_to_the_address_its_host_resolved_to_with_the_host_name_kept(
    world: World, receiver: Receiver
) -> None:
    for tenant in ("ACME", "GLOBEX"):  # only the named subscription
        for subscription in store.list_subscriptions(world.db, tenant=tenant):
            unsubscribe(world, subscription.subscription_id)
    subscribe_by_name(world, receiver)
    plan_with_orders(world.ledger)
    world.project()

    deliver_everything(world)

    assert receiver.deliveries
    assert {d.host for d in receiver.deliveries} == {f"localhost:{receiver.port}"}
