"""The board's live server for the browser tests: a morning of dispatch seeded into a store,
and the app served on loopback by uvicorn in a thread beside the projection worker (as
`shipledger serve` runs them)."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import uvicorn
from fastapi import FastAPI

from api.app import Settings, create_app
from api.board import board_router
from api.keys import create_key
from ledger.application import Ledger, StopPlan
from ledger.loads import ExceptionKind
from ledger.stops import StopFact, StopKind
from ledger.telematics import PingInput
from ledger.values import TimeWindow
from projections.db import Database
from projections.migrations import migrate
from projections.worker import Worker
from support.clock import Clock
from support.factories import ADMIN
from support.scenario import DAY, Day, plan_day

__all__ = ["NOW", "LiveBoard", "Morning", "seed_morning", "serve_board", "with_board"]

# --- the seeded store ------------------------------------------------------------------------

#: "Now" for the server: 08:10 in Chicago, the truck of L-DAY just short of its second stop.
NOW = DAY + timedelta(hours=1, minutes=10)


@dataclass(frozen=True)
class Morning:
    day: Day
    late_pings: tuple[PingInput, ...]  # L-DAY's truck reaching its second stop, not yet sent
    references: tuple[str, ...]


def _second_truck(ledger: Ledger) -> None:
    ledger.register_vehicle(
        ADMIN,
        "TRK-2",
        carrier_code="FAST",
        capacity_kg=Decimal(12000),
        capacity_m3=Decimal(60),
        pallets=24,
        device_id="DEV-2",
    )
    ledger.register_driver(
        ADMIN, "DRV-2", first_name="Ben", last_name="Okafor", carrier_code="FAST"
    )


def _window(start: datetime, hours: float) -> TimeWindow:
    return TimeWindow(start, start + timedelta(hours=hours))


def seed_morning(ledger: Ledger, clock: Clock) -> Morning:
    """Four loads, one per lateness risk: L-DAY on track (the scenario's truck, part of its
    day's pings recorded), L-DAY-2 late with an open exception, L-DAY-3 at risk, L-DAY-4
    tendered without an ETA."""
    clock.now = DAY - timedelta(minutes=5)
    day = plan_day(ledger)
    second_arrival = day.arrivals[1]
    sent = tuple(p for p in day.pings if p.occurred_at < second_arrival - timedelta(minutes=2))
    late = tuple(
        p
        for p in day.pings
        if second_arrival - timedelta(minutes=2) <= p.occurred_at
        and p.occurred_at <= second_arrival + timedelta(minutes=15)
    )
    ledger.record_stop_fact(
        ADMIN, day.stop_ids[1], StopFact.ETA_REPORTED, occurred_at=second_arrival
    )

    _second_truck(ledger)
    ledger.plan_load(
        ADMIN,
        "L-DAY-2",
        [
            StopPlan(StopKind.PICKUP, "WH-1", _window(DAY - timedelta(minutes=30), 1)),
            StopPlan(StopKind.DELIVERY, "CUST-2", _window(DAY, 1)),
        ],
        customer="ACME",
    )
    late_load = ledger.load_by_reference("L-DAY-2")
    ledger.tender_load(ADMIN, late_load.id, "FAST")
    ledger.accept_tender(ADMIN, late_load.id)
    ledger.dispatch_load(ADMIN, late_load.id, "DRV-2", "TRK-2")
    pickup, delivery = late_load.stop_ids
    for fact, at in ((StopFact.ARRIVED, 0), (StopFact.DEPARTED, 22)):
        ledger.record_stop_fact(
            ADMIN, pickup, fact, occurred_at=DAY - timedelta(minutes=2) + timedelta(minutes=at)
        )
    ledger.record_stop_fact(
        ADMIN, delivery, StopFact.ETA_REPORTED, occurred_at=DAY + timedelta(hours=1, minutes=45)
    )
    clock.now = DAY + timedelta(minutes=20)
    ledger.raise_exception(
        ADMIN,
        late_load.id,
        ExceptionKind.DELAYED,
        owner="carrier",
        note="lane closed on I-55; driver rerouting",
        stop_id=delivery,
    )
    stuck = [
        PingInput(
            device_id="DEV-2",
            seq=i,
            occurred_at=DAY + timedelta(minutes=25 + 4 * i),
            lat=41.800 + 0.0025 * min(i, 8),
            lon=-87.700 + 0.0030 * min(i, 8),
            speed_kph=8.0 if i >= 8 else 35.0,
            heading=45.0,
        )
        for i in range(11)
    ]

    ledger.plan_load(
        ADMIN,
        "L-DAY-3",
        [
            StopPlan(StopKind.PICKUP, "WH-1", _window(DAY + timedelta(minutes=30), 1)),
            StopPlan(StopKind.DELIVERY, "CUST-1", _window(DAY + timedelta(hours=2), 2)),
        ],
        customer="ACME",
    )
    at_risk = ledger.load_by_reference("L-DAY-3")
    ledger.tender_load(ADMIN, at_risk.id, "FAST")
    ledger.accept_tender(ADMIN, at_risk.id)
    ledger.record_stop_fact(
        ADMIN,
        at_risk.stop_ids[0],
        StopFact.ETA_REPORTED,
        occurred_at=DAY + timedelta(hours=1, minutes=15),
    )

    ledger.plan_load(
        ADMIN,
        "L-DAY-4",
        [
            StopPlan(StopKind.PICKUP, "WH-1", _window(DAY + timedelta(hours=3), 2)),
            StopPlan(StopKind.DELIVERY, "CUST-2", _window(DAY + timedelta(hours=5), 2)),
        ],
        customer="ACME",
    )
    ledger.tender_load(ADMIN, ledger.load_by_reference("L-DAY-4").id, "FAST")

    clock.now = NOW
    report = ledger.ingest_pings(ADMIN, [*sent, *stuck])
    assert not report.refused, report.refused
    return Morning(day, late, ("L-DAY", "L-DAY-2", "L-DAY-3", "L-DAY-4"))


# --- the live server -------------------------------------------------------------------------


def with_board(app: FastAPI) -> FastAPI:
    """The app with the board mounted (until `api.app` mounts it itself)."""
    if not any(getattr(route, "path", None) == "/board" for route in app.routes):
        app.include_router(board_router)
    return app


@dataclass
class LiveBoard:
    base_url: str
    key: str
    url: str
    ledger: Ledger
    morning: Morning

    def load_id(self, reference: str) -> UUID:
        return self.ledger.load_by_reference(reference).id

    def ping_json(self, pings: tuple[PingInput, ...]) -> dict[str, Any]:
        return {
            "pings": [
                {
                    "device_id": p.device_id,
                    "seq": p.seq,
                    "occurred_at": p.occurred_at.isoformat(),
                    "lat": p.lat,
                    "lon": p.lon,
                    "speed_kph": p.speed_kph,
                    "heading": p.heading,
                }
                for p in pings
            ]
        }


class _ThreadServer(uvicorn.Server):
    """uvicorn in a thread; it installs no signal handlers off the main thread."""


@contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port until the block ends; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = _ThreadServer(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn")
    serving.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert serving.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        serving.join(timeout=15)
        sock.close()


@contextmanager
def serve_board(folder: Path) -> Iterator[LiveBoard]:
    """A seeded SQLite store in `folder`, served on a free loopback port until the block ends."""
    if not any(importlib.util.find_spec(m) for m in ("websockets", "wsproto")):
        pytest.fail(
            "uvicorn has no WebSocket library, so `shipledger serve` cannot carry the board's "
            "subscription: add `websockets` to the project's dependencies"
        )
    url = f"sqlite:///{folder / 'board.db'}"
    clock = Clock(NOW)
    ledger = Ledger(url, clock=clock)
    morning = seed_morning(ledger, clock)
    db = Database(url)
    migrate(db)
    key = create_key(db, "dispatcher", label="browser test")
    db.close()

    worker = Worker(Ledger(url, clock=clock), Database(url))
    worker.catch_up()  # the board opens on views that are already fresh
    stop = threading.Event()
    following = threading.Thread(target=worker.follow, args=(stop,), name="projections")
    following.start()

    app = with_board(create_app(Settings(database_url=url), ledger=ledger))
    try:
        with serve_app(app) as base_url:
            yield LiveBoard(base_url, key, url, ledger, morning)
    finally:
        stop.set()
        following.join(timeout=15)
        worker.db.close()
        worker.ledger.close()
        ledger.close()
