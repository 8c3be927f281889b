"""A day on the road, generated: a load with three stops and the pings of the truck on it.

The truck leaves a yard, drives to each stop in turn at ~40 km/h, dwells, and leaves;
pings every 30 s (stationary while dwelling, with a few metres of GPS noise). Everything is
a function of its arguments, so a test can replay the same day in any arrival order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from ledger.application import Ledger, StopPlan
from ledger.drivers import DutyInput, DutyStatus
from ledger.stops import StopKind
from ledger.telematics import PingInput
from ledger.values import TimeWindow
from support.factories import ADMIN, reference_data

DAY = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # 07:00 in Chicago
YARD = (41.8000, -87.7500)
STOPS = [  # code, lat, lon, kind
    ("WH-1", 41.8500, -87.6500, StopKind.PICKUP),
    ("CUST-1", 41.9351, -87.6447, StopKind.DELIVERY),
    ("CUST-2", 41.8790, -87.6360, StopKind.DELIVERY),
]
DEVICE = "DEV-1"


@dataclass(frozen=True)
class Day:
    load_id: UUID
    stop_ids: tuple[UUID, ...]
    pings: tuple[PingInput, ...]
    duty: tuple[DutyInput, ...]
    arrivals: tuple[datetime, ...]  # when the truck really reached each stop
    departures: tuple[datetime, ...]


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (b[0] - a[0]) * 111.0
    dlon = (b[1] - a[1]) * 111.0 * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)


def drive(
    dwells: tuple[int, ...] = (20, 200, 25), seed: int = 1
) -> tuple[list[PingInput], list[datetime], list[datetime]]:
    """Pings of one truck visiting the stops with the given dwell minutes."""
    rng = random.Random(seed)
    pings: list[PingInput] = []
    arrivals: list[datetime] = []
    departures: list[datetime] = []
    at = DAY
    here = YARD
    seq = 0

    def ping(point: tuple[float, float], speed: float) -> None:
        nonlocal seq
        noise = 0.00003
        pings.append(
            PingInput(
                device_id=DEVICE,
                seq=seq,
                occurred_at=at,
                lat=point[0] + rng.uniform(-noise, noise),
                lon=point[1] + rng.uniform(-noise, noise),
                speed_kph=speed,
                heading=0.0,
            )
        )
        seq += 1

    for (_, lat, lon, _), dwell in zip(STOPS, dwells, strict=True):
        target = (lat, lon)
        steps = max(1, math.ceil(_km(here, target) / 40.0 * 120))  # 30 s steps at 40 km/h
        for i in range(steps):
            f = i / steps
            ping((here[0] + (target[0] - here[0]) * f, here[1] + (target[1] - here[1]) * f), 40.0)
            at += timedelta(seconds=30)
        arrivals.append(at)
        for _ in range(dwell * 2):
            ping(target, 0.0)
            at += timedelta(seconds=30)
        departures.append(at)
        here = target
        # leave: the first fix clearly outside the fence
        ping((here[0] + 0.01, here[1] + 0.01), 40.0)
        at += timedelta(seconds=30)
    return pings, arrivals, departures


def duty_day(driver: str = "DRV-1") -> list[DutyInput]:
    return [
        DutyInput(driver, DAY - timedelta(minutes=30), DutyStatus.ON_DUTY),
        DutyInput(driver, DAY, DutyStatus.DRIVING),
        DutyInput(driver, DAY + timedelta(hours=4), DutyStatus.ON_DUTY),
        DutyInput(driver, DAY + timedelta(hours=4, minutes=40), DutyStatus.DRIVING),
        DutyInput(driver, DAY + timedelta(hours=9), DutyStatus.OFF_DUTY),
    ]


def plan_day(
    ledger: Ledger,
    reference: str = "L-DAY",
    dwells: tuple[int, ...] = (20, 200, 25),
    *,
    rate_card: str | None = None,
    planned_km: float = 0.0,
) -> Day:
    """Reference data, a dispatched three-stop load, and the day's pings and duty changes."""
    reference_data(ledger)
    for code, lat, lon, _ in STOPS:
        ledger.register_location(ADMIN, code, name=code, address=f"{code} street", lat=lat, lon=lon)
    pings, arrivals, departures = drive(dwells)
    plans = [
        StopPlan(
            kind,
            code,
            TimeWindow(arrivals[i] - timedelta(hours=1), arrivals[i] + timedelta(hours=1)),
        )
        for i, (code, _, _, kind) in enumerate(STOPS)
    ]
    ledger.plan_load(
        ADMIN,
        reference,
        plans,
        occurred_at=DAY - timedelta(minutes=5),
        reason="scenario set-up",
        planned_km=planned_km,
        customer="ACME",
    )
    load = ledger.load_by_reference(reference)
    ledger.tender_load(ADMIN, load.id, "FAST", rate_card)
    ledger.accept_tender(ADMIN, load.id)
    ledger.dispatch_load(ADMIN, load.id, "DRV-1", "TRK-1")
    return Day(
        load.id, load.stop_ids, tuple(pings), tuple(duty_day()), tuple(arrivals), tuple(departures)
    )
