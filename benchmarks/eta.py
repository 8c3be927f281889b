"""ETA accuracy: the share of arrivals within ±15 min of the ETA given 60 min earlier.

1. A seeded week is generated — city trucks doing a pickup and 5–7 deliveries a day around
   Chicago (in nearest-next order, as a planner would), regional trucks doing 3 deliveries
   150–300 km apart (long enough for Hours-of-Service breaks and, now and then, a 10-h
   reset) — with realistic speeds and noise: a detour per leg, door-to-door speeds that grow
   with the trip's length, morning and evening rush hours, minute-to-minute speed noise, a
   pre-trip inspection of 15–35 min, a dwell per site that differs from the plan (and varies
   visit to visit), drivers who sometimes take their 30-min break early and keep their 70 h /
   8 days, and devices that go offline for a while and then upload late. The week follows
   `--history` days (14 by default) of the same fleet's operation, as a ledger in service has
   them: the dwell, the pace and the drivers' habits it learns from. All of it is replayed
   into a real ledger in 5-min steps, with the GPS reconciler, the views and the ETA policy
   following the log as in the worker; the log position after each step is noted, so "as
   known at T" is a log position. The fleet's first week, from the empty ledger, is scored
   too (every site and leg then new): the cold start.
2. The demo's operating day (`api.demo`, when it is there), scored on its deliveries. In
   service the views and the ETA policy follow the log continuously (`api.serve`); here the
   demo's worker, the ETA policy with it, catches up after every round of pings (every 10
   simulated minutes), not in the demo's 30-min seeding rounds. The day has trouble injected
   that no ETA given an hour before could know of (a refused delivery, detentions of 110–170
   min, a device offline for an hour, a device whose clock runs ahead): the arrivals with none
   of it on the way (a refusal or detention at a stop not yet left, or the load's device) are
   scored on their own as well.

For every reconciled arrival A, the ETA given 60 min earlier is the stop's ETA as the ledger
knew it then (`ledger.history.stop_history(…, known_at=position at A − 60 min)`). Printed,
in the same run, against naive ETAs for the same arrivals:
- planned window start;
- planned time (the week: the plan's arrival, the middle of the window; the demo: the plan's
  service start);
- straight line at a fixed speed (the planner's speed over its detour factor) from the
  truck's true position 60 min earlier, planned service minutes at the stops on the way, no
  learning, no breaks.

Target: ≥ 85 % within ±15 min. Each truck-day of the week uses its own vehicle and device (the
driver is the same all week), so the reconciler's scan of a vehicle's past loads stays short.

With `--explain`, the misses are broken down: by truck (the demo: by its trouble), by stop, by
what the truck was really doing an hour before, by the stops still to reach, by whether its
device was silent then, by whether the driver rested or had the pre-trip inspection still to
do on the way, by the age of the ETA shown, by hour; and the error is split into its parts
(driving, dwell at the stops on the way, rests, waiting, the reconciled arrival against the
true one), the predicted ones read from the ETA fact's note, the true ones from the simulated
duty log.

Each share is printed with its 95 % (Wilson) interval: 150 arrivals tell it to ±6 points.

Usage: .venv/bin/python benchmarks/eta.py [--days 7] [--history 14] [--city 4] [--regional 2]
       [--seed 7]
       [--url URL] [--demo-url URL] [--no-week] [--no-demo] [--explain] [--misses]
       (default: new SQLite files)
"""
# ruff: noqa: E402  (the imports follow the sys.path fix below)

from __future__ import annotations

import sys
from pathlib import Path

# This folder holds scripts named after the packages (projections.py, planner.py): keep it
# off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import bisect
import io
import math
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.application import Caller, Ledger, StopPlan
from ledger.drivers import DutyInput, DutyStatus
from ledger.eta import Travel
from ledger.events import Source
from ledger.geofence import haversine_m
from ledger.history import stop_history, vehicle_history
from ledger.hos import DutyChange, hos_state
from ledger.log import iter_log
from ledger.stops import Stop, StopFact, StopKind
from ledger.telematics import PingInput
from ledger.values import GeoPoint, TimeWindow
from planner.eta_travel import model_travel
from planner.model import TravelModel
from projections.db import Database
from projections.eta_policy import EtaPolicy
from projections.migrations import migrate
from projections.reconciler import Reconciler
from projections.runner import Runner

ADMIN = Caller("bench:eta", Source.API, "bench-eta")
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday; Chicago is UTC−6
LOCAL = timedelta(hours=-6)
CHICAGO = (41.85, -87.70)
STEP = timedelta(minutes=5)
PING_EVERY = timedelta(seconds=60)
HORIZON = timedelta(minutes=60)
TOLERANCE = timedelta(minutes=15)
#: The planner's travel model as the fleet's planners set it: haversine × 1.3 at 35 km/h.
MODEL = TravelModel(kind="haversine", detour_factor=1.3, speed_kmh=35.0)
NAIVE_KMH = MODEL.speed_kmh / MODEL.detour_factor  # the same speed, on the straight line


def planner_travel(model: TravelModel) -> Travel:
    """The planner's travel model read leg by leg along a path (what the lead wires in)."""
    return model_travel(model)


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine_m(a[0], a[1], b[0], b[1]) / 1000.0


# --- the world ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    code: str
    point: tuple[float, float]
    dwell: float  # the site's real mean dwell, minutes
    service: int  # what the planners put in the plan


@dataclass(frozen=True)
class Truck:
    code: str
    driver: str
    regional: bool
    yard: tuple[float, float]
    warehouse: Site
    pace: float  # this truck and driver against the fleet average (1 = average)
    days_off: frozenset[int]


def _around(rng: random.Random, center: tuple[float, float], low: float, high: float) -> tuple:
    distance = rng.uniform(low, high)
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance * math.cos(bearing) / 111.2
    dlon = distance * math.sin(bearing) / (111.2 * math.cos(math.radians(center[0])))
    return (center[0] + dlat, center[1] + dlon)


def build_world(rng: random.Random, city: int, regional: int) -> tuple[list[Site], list[Truck]]:
    warehouses = [
        Site(f"WH-{i}", _around(rng, CHICAGO, 5, 15), rng.uniform(25, 60), 45) for i in (1, 2)
    ]
    customers = [
        Site(f"C-{i:02d}", _around(rng, CHICAGO, 3, 28), rng.lognormvariate(math.log(28), 0.5), 30)
        for i in range(1, 31)
    ]
    distant = [
        Site(f"R-{i:02d}", _around(rng, CHICAGO, 150, 320), rng.uniform(30, 75), 45)
        for i in range(1, 9)
    ]
    trucks = []
    for n in range(city + regional):
        days_off = frozenset(rng.sample(range(7), 2))
        trucks.append(
            Truck(
                code=f"TRK-{n + 1}",
                driver=f"DRV-{n + 1}",
                regional=n >= city,
                yard=_around(rng, CHICAGO, 8, 14),
                warehouse=warehouses[n % 2],
                pace=rng.uniform(0.92, 1.08),
                days_off=days_off,
            )
        )
    return warehouses + customers + distant, trucks


# --- one truck's week, as it happens -------------------------------------------------------------


@dataclass
class LoadRun:
    reference: str
    truck: Truck
    vehicle: str
    device: str
    dispatch_at: datetime
    stops: list[Site]
    plans: list[StopPlan] = field(default_factory=list)
    arrivals: list[datetime] = field(default_factory=list)
    departures: list[datetime] = field(default_factory=list)
    track: list[tuple[datetime, tuple[float, float], str | None]] = field(default_factory=list)


@dataclass
class Feed:
    """What reaches the ledger, and when."""

    pings: list[tuple[datetime, PingInput]] = field(default_factory=list)  # (delivered, ping)
    duty: list[DutyInput] = field(default_factory=list)


def _traffic(at: datetime, highway: bool) -> float:
    """Speed against free flow: the morning and evening rush build up and ease off (about
    −30 % at 08:00 and 17:00 in town, −15 % on highways), nights are a little faster."""
    hour = (at + LOCAL).hour + (at + LOCAL).minute / 60
    rush = max(math.exp(-(((hour - 8.0) / 1.1) ** 2)), math.exp(-(((hour - 17.0) / 1.3) ** 2)))
    night = 0.05 if hour < 6 or hour > 20 else 0.0
    return (1.0 + night) - (0.15 if highway else 0.3) * rush


class Driving:
    """A truck on the road: moves minute by minute, keeps its driver's hours, pings."""

    def __init__(
        self, rng: random.Random, truck: Truck, feed: Feed, run: LoadRun, cycle_left: timedelta
    ):
        self.rng, self.truck, self.feed, self.run = rng, truck, feed, run
        self.cycle_left = cycle_left  # on-duty time left in the 70 h / 8 days
        self.seq = 0
        self.offline_until: datetime | None = None
        self.since_break = timedelta(0)
        self.driven = timedelta(0)
        self.window_start: datetime | None = None
        self.break_at = timedelta(hours=rng.uniform(5.0, 8.0) if rng.random() < 0.5 else 8.0)
        self.noise = 1.0

    def duty(self, at: datetime, status: DutyStatus) -> None:
        self.feed.duty.append(
            DutyInput(self.truck.driver, at, status, vehicle_code=self.run.vehicle)
        )

    def ping(self, at: datetime, point: tuple[float, float], speed: float) -> None:
        delivered = at
        if self.offline_until is not None and at < self.offline_until:
            delivered = self.offline_until
        elif self.rng.random() < 0.004:  # about once in four hours: offline for a while
            self.offline_until = at + timedelta(minutes=self.rng.uniform(5, 25))
            delivered = self.offline_until
        jitter = 0.00003
        self.feed.pings.append(
            (
                delivered,
                PingInput(
                    self.run.device,
                    self.seq,
                    at,
                    point[0] + self.rng.uniform(-jitter, jitter),
                    point[1] + self.rng.uniform(-jitter, jitter),
                    speed,
                    0.0,
                ),
            )
        )
        self.seq += 1

    def stay(self, t: datetime, point: tuple[float, float], minutes: float) -> datetime:
        end = t + timedelta(minutes=minutes)
        self.cycle_left -= end - t
        while t < end:
            self.ping(t, point, 0.0)
            t += PING_EVERY
        return end

    def rest(self, t: datetime, point: tuple[float, float], length: timedelta) -> datetime:
        self.duty(t, DutyStatus.OFF_DUTY)
        end = t + length
        while t < end:  # a parked truck's device reports every 10 min
            self.ping(t, point, 0.0)
            t += timedelta(minutes=10)
        self.since_break = timedelta(0)
        if length >= timedelta(hours=34):
            self.cycle_left = timedelta(hours=70)
        if length >= timedelta(hours=10):
            self.driven = timedelta(0)
            self.window_start = end
        self.duty(end, DutyStatus.DRIVING)
        return end

    def drive(self, t: datetime, origin: tuple, target: tuple) -> datetime:
        straight = km(origin, target)
        highway = straight > 80
        road = straight * self.rng.uniform(1.18, 1.42)
        # door to door, longer trips run more on expressways
        base = (72.0 if highway else 30.0 + 25.0 * (1 - math.exp(-road / 40.0))) / self.truck.pace
        done = 0.0
        self.duty(t, DutyStatus.DRIVING)
        while done < road:
            if self.cycle_left <= timedelta(0):
                t = self.rest(t, self._along(origin, target, done / road), timedelta(hours=34))
            if self.since_break >= self.break_at:
                t = self.rest(t, self._along(origin, target, done / road), timedelta(minutes=30))
                self.break_at = timedelta(hours=8)
            assert self.window_start is not None
            if self.driven >= timedelta(hours=11) or t - self.window_start >= timedelta(hours=14):
                t = self.rest(t, self._along(origin, target, done / road), timedelta(hours=10))
                self.break_at = timedelta(hours=self.rng.uniform(5.0, 8.0))
            self.noise = 0.8 * self.noise + 0.2 * self.rng.lognormvariate(0, 0.25)
            speed = base * _traffic(t, highway) * self.noise
            step = min(1.0, (road - done) / speed * 60.0)  # minutes this tick
            done += speed * step / 60.0
            self.ping(t, self._along(origin, target, (done - speed * step / 60.0) / road), speed)
            t += timedelta(minutes=step)
            self.since_break += timedelta(minutes=step)
            self.cycle_left -= timedelta(minutes=step)
            self.driven += timedelta(minutes=step)
        return t

    @staticmethod
    def _along(a: tuple, b: tuple, f: float) -> tuple[float, float]:
        f = min(1.0, max(0.0, f))
        return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)

    def load(self, start: datetime) -> datetime:
        """Does the whole load from `start` (leaving the yard); returns when the shift ends."""
        run, truck = self.run, self.truck
        pre_trip = self.rng.uniform(15, 35)  # the inspection before leaving the yard
        self.window_start = start - timedelta(minutes=pre_trip)
        self.duty(self.window_start, DutyStatus.ON_DUTY)
        here = truck.yard
        t = self.stay(self.window_start, here, pre_trip)
        for site in run.stops:
            t = self.drive(t, here, site.point)
            run.arrivals.append(t)
            self.duty(t, DutyStatus.ON_DUTY)
            dwell = max(5.0, site.dwell * self.rng.lognormvariate(0, 0.25))
            t = self.stay(t, site.point, dwell)
            run.departures.append(t)
            if dwell >= 30:
                self.since_break = timedelta(0)
            here = site.point
        leaving = self._along(here, truck.yard, 0.05)
        self.duty(t, DutyStatus.DRIVING)
        self.ping(t, leaving, 40.0)
        self.duty(t + timedelta(minutes=10), DutyStatus.OFF_DUTY)
        return t + timedelta(minutes=10)


def plan(run: LoadRun) -> None:
    """The plan the dispatcher works from: the travel model and planned service minutes,
    windows of ±1 h around the planned arrival."""
    travel = planner_travel(MODEL)
    path = [GeoPoint(*run.truck.yard), *(GeoPoint(*s.point) for s in run.stops)]
    t = run.dispatch_at + timedelta(minutes=30)
    for i, (site, leg) in enumerate(zip(run.stops, travel(path), strict=True)):
        t += timedelta(minutes=leg.minutes)
        run.plans.append(
            StopPlan(
                StopKind.PICKUP if i == 0 else StopKind.DELIVERY,
                site.code,
                TimeWindow(t - timedelta(hours=1), t + timedelta(hours=1)),
                service_minutes=site.service,
            )
        )
        t += timedelta(minutes=site.service)


def _in_order(start: Site, sites: list[Site]) -> list[Site]:
    """The start, then each next stop the nearest one left (the way a planner would go)."""
    route, left = [start], list(sites)
    while left:
        nearest = min(left, key=lambda s: km(route[-1].point, s.point))
        route.append(nearest)
        left.remove(nearest)
    return route


def _cycle_left(feed: Feed, driver: str, at: datetime) -> timedelta:
    """What the driver has left of the 70 h / 8 days at `at`, as the ledger's fold reads it."""
    changes = [
        DutyChange(d.occurred_at, i, d.status)
        for i, d in enumerate(feed.duty)
        if d.driver_code == driver and d.occurred_at <= at
    ]
    return hos_state(changes, at).cycle_remaining


def generate(
    seed: int, days: int, city: int, regional: int, *, start: datetime = START
) -> tuple[list[Site], list[Truck], list[LoadRun], Feed]:
    """`days` of the fleet's operation from `start` (a Monday, 00:00 UTC)."""
    rng = random.Random(seed)
    sites, trucks = build_world(rng, city, regional)
    customers = [s for s in sites if s.code.startswith("C-")]
    distant = [s for s in sites if s.code.startswith("R-")]
    feed = Feed()
    runs: list[LoadRun] = []
    for truck in trucks:
        free = start
        for day in range(days):
            if day % 7 in truck.days_off:
                continue
            leave = start + timedelta(days=day, hours=12 + rng.uniform(0, 2))  # 06:00–08:00
            # after a 10-h rest, counted to the start of the shift (up to 35 min of pre-trip
            # inspection before `leave`)
            leave = max(leave, free + timedelta(hours=10, minutes=40))
            if truck.regional:
                stops = _in_order(truck.warehouse, rng.sample(distant, 3))
            else:
                stops = _in_order(truck.warehouse, rng.sample(customers, rng.randint(5, 7)))
            reference = f"L-{truck.code}-{day + 1}"
            run = LoadRun(
                reference,
                truck,
                vehicle=f"{truck.code}/{day + 1}",
                device=f"DEV-{truck.code}-{day + 1}",
                dispatch_at=leave - timedelta(minutes=30),
                stops=stops,
            )
            cycle_left = _cycle_left(feed, truck.driver, leave - timedelta(minutes=30))
            if cycle_left < timedelta(hours=16):  # not enough for a day: a 34-h restart first
                leave = max(leave, free + timedelta(hours=34, minutes=40))
                run.dispatch_at = leave - timedelta(minutes=30)
                cycle_left = timedelta(hours=70)
            plan(run)
            free = Driving(rng, truck, feed, run, cycle_left).load(leave)
            runs.append(run)
    return sites, trucks, runs, feed


# --- replaying the week into the ledger ------------------------------------------------------


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def set_up(ledger: Ledger, sites: list[Site], trucks: list[Truck], runs: list[LoadRun]) -> None:
    ledger.open_account(ADMIN, "ACME", "Acme Foods")
    ledger.register_carrier(ADMIN, "FAST", "Fast Freight")
    for site in sites:
        ledger.register_location(
            ADMIN, site.code, name=site.code, address=site.code, lat=site.point[0],
            lon=site.point[1],
        )  # fmt: skip
    for truck in trucks:
        ledger.register_driver(
            ADMIN, truck.driver, first_name=truck.driver, last_name="Driver", carrier_code="FAST"
        )
    for run in runs:
        ledger.register_vehicle(
            ADMIN,
            run.vehicle,
            carrier_code="FAST",
            capacity_kg=Decimal(12000),
            capacity_m3=Decimal(60),
            pallets=24,
            device_id=run.device,
        )


def dispatch(ledger: Ledger, run: LoadRun) -> None:
    ledger.plan_load(ADMIN, run.reference, run.plans, customer="ACME")
    load = ledger.load_by_reference(run.reference)
    ledger.tender_load(ADMIN, load.id, "FAST", None)
    ledger.accept_tender(ADMIN, load.id)
    ledger.dispatch_load(ADMIN, load.id, run.truck.driver, run.vehicle)


@dataclass(frozen=True)
class Replay:
    ledger: Ledger
    steps: list[tuple[datetime, int]]  # (simulated time, log position after the step)
    seconds: float

    def position_at(self, moment: datetime) -> int:
        return self.step_at(moment)[1]

    def step_at(self, moment: datetime) -> tuple[datetime, int]:
        """The last step at or before `moment`: its time and the log position after it."""
        i = bisect.bisect_right(self.steps, moment, key=lambda step: step[0])
        return self.steps[i - 1] if i else (moment, 0)


def replay(
    url: str,
    sites: list[Site],
    trucks: list[Truck],
    runs: list[LoadRun],
    feed: Feed,
    *,
    start: datetime = START,
) -> Replay:
    clock = Clock(start)
    ledger = Ledger(url, clock=clock)
    db = Database(url)
    migrate(db)
    set_up(ledger, sites, trucks, runs)
    reconciler, runner = Reconciler(ledger), Runner(ledger, db)
    policy = EtaPolicy(ledger, planner_travel(MODEL), db=db)
    pings = sorted(feed.pings, key=lambda x: (x[0], x[1].device_id, x[1].occurred_at))
    duty = sorted(feed.duty, key=lambda d: d.occurred_at)
    to_dispatch = sorted(runs, key=lambda r: r.dispatch_at)
    end = max(p.occurred_at for _, p in pings) + STEP
    t = start
    steps: list[tuple[datetime, int]] = []
    began = time.perf_counter()
    pi = di = ri = 0
    while t <= end:
        t += STEP
        clock.now = t
        while ri < len(to_dispatch) and to_dispatch[ri].dispatch_at <= t:
            dispatch(ledger, to_dispatch[ri])
            ri += 1
        batch = []
        while pi < len(pings) and pings[pi][0] <= t:
            batch.append(pings[pi][1])
            pi += 1
        changes = []
        while di < len(duty) and duty[di].occurred_at <= t:
            changes.append(duty[di])
            di += 1
        if batch:
            ledger.ingest_pings(ADMIN, batch)
        if changes:
            ledger.ingest_duty(ADMIN, changes)
        if batch or changes:
            for _ in range(3):
                if not reconciler.catch_up() + runner.catch_up() + policy.catch_up():
                    break
        steps.append((t, ledger.position))
    db.close()
    return Replay(ledger, steps, time.perf_counter() - began)


# --- scoring ----------------------------------------------------------------------------------


@dataclass
class Score:
    name: str
    hits: int = 0
    total: int = 0
    errors: list[float] = field(default_factory=list)

    def add(self, predicted: datetime | None, actual: datetime) -> None:
        self.total += 1
        if predicted is None:
            return
        error = (predicted - actual).total_seconds() / 60
        self.errors.append(error)
        if abs(error) <= TOLERANCE.total_seconds() / 60:
            self.hits += 1

    def line(self) -> str:
        share = self.hits / self.total if self.total else 0.0
        mae = statistics.median(abs(e) for e in self.errors) if self.errors else float("nan")
        bias = statistics.median(self.errors) if self.errors else float("nan")
        low, high = wilson(self.hits, self.total)
        return (
            f"  {self.name:<44} {share:6.1%} within ±15 min  [95 %: {low:.0%}–{high:.0%}]  "
            f"(median |error| {mae:5.1f} min, median error {bias:+6.1f} min)"
        )


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share (95 % by default): a week's arrivals are a
    sample, and a hundred or so of them tell the share to within several points."""
    if not total:
        return 0.0, 1.0
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def true_position(run: LoadRun, at: datetime, index: int) -> tuple[tuple[float, float], int]:
    """Where the truck really was at `at` on its way to stop `index`, and how many stops it
    had left behind (straight-line baseline's view)."""
    for i in range(index + 1):
        if at < run.arrivals[i]:
            begin = run.departures[i - 1] if i else run.dispatch_at + timedelta(minutes=30)
            origin = run.stops[i - 1].point if i else run.truck.yard
            f = (at - begin) / (run.arrivals[i] - begin) if at > begin else 0.0
            target = run.stops[i].point
            return (
                origin[0] + (target[0] - origin[0]) * f,
                origin[1] + (target[1] - origin[1]) * f,
            ), i
        if at < run.departures[i]:
            return run.stops[i].point, i
    return run.stops[index].point, index


def straight_line(
    at: datetime,
    point: tuple[float, float],
    leave: datetime,
    ahead: Sequence[tuple[tuple[float, float], float]],
    kmh: float,
) -> datetime:
    """The naive ETA: leaving `point` at `leave` (not before `at`), straight lines at a fixed
    speed to each stop ahead, its planned service minutes at each but the last."""
    t = max(at, leave)
    for n, (target, service) in enumerate(ahead):
        t += timedelta(hours=km(point, target) / kmh)
        if n < len(ahead) - 1:
            t += timedelta(minutes=service)
        point = target
    return t


def naive_straight_line(run: LoadRun, at: datetime, index: int) -> datetime:
    point, i = true_position(run, at, index)
    leave = at
    if i < index and at >= run.arrivals[i]:  # at a stop: what is left of its planned service
        leave = run.arrivals[i] + timedelta(minutes=run.stops[i].service)
        i += 1
    ahead = [(s.point, float(s.service)) for s in run.stops[i : index + 1]]
    return straight_line(at, point, leave, ahead, NAIVE_KMH)


def score(
    result: Replay, runs: list[LoadRun], feed: Feed
) -> tuple[list[Score], dict[str, Score], int, int, list[Case]]:
    ledger = result.ledger
    spans = {
        t.driver: spans_of(
            [(d.occurred_at, d.status) for d in feed.duty if d.driver_code == t.driver]
        )
        for t in {r.truck for r in runs}
    }
    cases: list[Case] = []
    ours, window_start, planned, straight = (
        Score("ETA policy (as known 60 min before)"),
        Score("naive: planned window start"),
        Score("naive: planned time (middle of the window)"),
        Score(f"naive: straight line at {NAIVE_KMH:.0f} km/h, planned service"),
    )
    by_kind = {k: Score(f"ETA policy, {k}") for k in ("city", "regional")}
    missing = arrivals = 0
    for run in runs:
        load = ledger.load_by_reference(run.reference)
        for index, stop_id in enumerate(load.stop_ids):
            now = stop_history(ledger, stop_id)
            if now is None or now.arrival is None:
                continue
            arrivals += 1
            actual = now.arrival.occurred_at
            asked = actual - HORIZON
            then = stop_history(ledger, stop_id, known_at=result.position_at(asked))
            eta = then.eta if then is not None else None
            if eta is None:
                missing += 1
                continue
            ours.add(eta, actual)
            group = "regional" if run.truck.regional else "city"
            by_kind[group].add(eta, actual)
            cases.append(
                case(
                    ledger,
                    result,
                    group=group,
                    target="the first (pickup)" if index == 0 else "a later one (delivery)",
                    stop_id=stop_id,
                    vehicle=run.vehicle,
                    eta=eta,
                    actual=actual,
                    true_arrival=run.arrivals[index],
                    stops_before=list(zip(run.arrivals, run.departures, strict=True))[:index],
                    spans=spans[run.truck.driver],
                    label=f"{run.reference} stop {index}",
                )
            )
            window_start.add(now.window.start, actual)
            planned.add(now.window.start + (now.window.end - now.window.start) / 2, actual)
            straight.add(naive_straight_line(run, asked, index), actual)
    return [ours, window_start, planned, straight], by_kind, arrivals, missing, cases


# --- why the misses (--explain) -----------------------------------------------------------------

SILENT = timedelta(minutes=15)
_PARTS = ("drive", "stops", "rests", "waiting", "arrival fix")
_NOTE = re.compile(
    r"(?P<drive>-?\d+) min driving .*?(?P<stops>-?\d+) min at stops on the way, "
    r"(?P<rests>-?\d+) min resting, (?P<waiting>-?\d+) min waiting"
)


@dataclass(frozen=True)
class Span:
    """What the driver was really doing from `start` to `end` (from the true duty log)."""

    start: datetime
    end: datetime
    kind: str  # drive, stops, rests, waiting (the pre-trip inspection)


def spans_of(changes: Sequence[tuple[datetime, DutyStatus]]) -> list[Span]:
    """Driving, on duty at a stop, off duty (a rest), and on duty straight after being off
    (the pre-trip inspection), from a driver's true duty changes."""
    ordered = sorted(changes, key=lambda c: c[0])
    spans, before = [], None
    for (at, status), following in zip(ordered, [*ordered[1:], None], strict=True):
        end = following[0] if following is not None else at
        if status is DutyStatus.DRIVING:
            kind = "drive"
        elif status in (DutyStatus.OFF_DUTY, DutyStatus.SLEEPER_BERTH):
            kind = "rests"
        elif before in (None, DutyStatus.OFF_DUTY, DutyStatus.SLEEPER_BERTH):
            kind = "waiting"
        else:
            kind = "stops"
        if end > at:
            spans.append(Span(at, end, kind))
        before = status
    return spans


def _within(spans: Sequence[Span], start: datetime, end: datetime) -> dict[str, float]:
    minutes = dict.fromkeys(("drive", "stops", "rests", "waiting"), 0.0)
    for span in spans:
        overlap = min(span.end, end) - max(span.start, start)
        if overlap > timedelta(0):
            minutes[span.kind] += overlap.total_seconds() / 60
    return minutes


def _doing(spans: Sequence[Span], at: datetime) -> str:
    for span in spans:
        if span.start <= at < span.end:
            return {"drive": "driving", "stops": "at a stop", "rests": "resting"}.get(
                span.kind, "pre-trip"
            )
    return "off duty"


@dataclass(frozen=True)
class Case:
    """One scored arrival, and what the moment an hour before it looked like."""

    group: str  # city / regional / demo
    target: str  # the first stop of the load (the pickup), or a later one
    error: float  # minutes, the ETA given an hour before − the reconciled arrival
    doing: str  # what the truck was really doing an hour before
    ahead: int  # stops it still had to reach before this one then
    silent: bool  # the ledger's last fix then was more than SILENT old
    rest_on_way: bool  # the driver really rested between then and the arrival
    pre_trip_on_way: bool  # the pre-trip inspection was still to come then
    age: float  # minutes from the moment the ETA describes to the moment asked
    parts: dict[str, float] | None  # predicted − true minutes, per part of the time to go
    hour: int  # local hour of the arrival
    label: str = ""  # the load and stop, and the note of the ETA shown

    @property
    def hit(self) -> bool:
        return abs(self.error) <= TOLERANCE.total_seconds() / 60

    def cause(self) -> str:
        """The part that pushed the ETA furthest in the direction of its error."""
        if self.parts is None:
            return "unknown"
        sign = 1 if self.error > 0 else -1
        return max(self.parts, key=lambda k: sign * self.parts[k] if self.parts else 0.0)


def shown_eta(ledger: Ledger, stop_id: object, known_at: int) -> tuple[datetime, str] | None:
    """The moment the ETA shown at `known_at` describes, and its note."""
    shown = None
    for record in iter_log(ledger, stream=stop_id, stop=known_at):  # type: ignore[arg-type]
        event = record.event
        if isinstance(event, Stop.FactRecorded) and event.fact is StopFact.ETA_REPORTED:
            assert record.meta is not None
            shown = (record.meta.occurred_at, event.detail.note)
    return shown


def case(
    ledger: Ledger,
    result: Replay,
    *,
    group: str,
    target: str,
    stop_id: object,
    vehicle: str,
    eta: datetime,
    actual: datetime,
    true_arrival: datetime,
    stops_before: Sequence[tuple[datetime, datetime]],
    spans: Sequence[Span],
    label: str,
) -> Case:
    asked = actual - HORIZON
    step, position = result.step_at(asked)
    shown = shown_eta(ledger, stop_id, position)
    made_at, note = shown if shown else (asked, "")
    fix = vehicle_history(ledger, vehicle, as_of=step, known_at=position)
    silent = fix is None or step - fix.ping.occurred_at > SILENT
    error = (eta - actual).total_seconds() / 60
    found = _NOTE.search(note)
    parts = None
    if found:
        truth = _within(spans, made_at, true_arrival)
        parts = {k: float(found[k]) - truth[k] for k in ("drive", "stops", "rests", "waiting")}
        parts["arrival fix"] = error - sum(parts.values())
    local = actual.astimezone(UTC) + LOCAL
    return Case(
        group=group,
        target=target,
        error=error,
        doing=_doing(spans, asked),
        ahead=sum(1 for arrived, _ in stops_before if arrived > asked),
        silent=silent,
        rest_on_way=any(s.kind == "rests" and asked <= s.start < actual for s in spans),
        pre_trip_on_way=any(s.kind == "waiting" and asked < s.end <= actual for s in spans),
        age=(asked - made_at).total_seconds() / 60,
        parts=parts,
        hour=local.hour,
        label=f"{label}: {note}",
    )


def explain(
    title: str, cases: Sequence[Case], *, listing: bool = False, groups: str = "truck"
) -> None:
    """The misses broken down: where the truck was, what it was doing, what went wrong."""
    misses = [c for c in cases if not c.hit]
    early = sum(1 for c in misses if c.error < 0)
    print(
        f"why ({title}): {len(cases)} scored, {len(cases) - len(misses)} within ±15 min; "
        f"{len(misses)} misses: {early} early (the ETA before the arrival), "
        f"{len(misses) - early} late"
    )

    def table(name: str, key: object) -> None:
        groups: dict[str, list[Case]] = {}
        for c in cases:
            groups.setdefault(key(c), []).append(c)  # type: ignore[operator]
        print(f"  by {name}:")
        for label, members in sorted(groups.items()):
            hits = sum(1 for c in members if c.hit)
            out = [c for c in members if not c.hit]
            print(
                f"    {label:<34} {len(members):4d}  {hits / len(members):6.1%} within"
                f"  median error {statistics.median(c.error for c in members):+6.1f}"
                f"  misses {sum(1 for c in out if c.error < 0):3d} early"
                f" {sum(1 for c in out if c.error > 0):3d} late"
            )

    table(groups, lambda c: c.group)
    table("stop", lambda c: c.target)
    table("what the truck was doing an hour before", lambda c: c.doing)
    table(
        "stops still to reach before this one",
        lambda c: str(min(c.ahead, 3)) + "+" * (c.ahead >= 3),
    )
    table("device silent an hour before (last fix > 15 min old)", lambda c: str(c.silent))
    table("the driver rested on the way", lambda c: str(c.rest_on_way))
    table("the pre-trip inspection still to come", lambda c: str(c.pre_trip_on_way))
    table(
        "age of the ETA shown (min since the moment it describes)",
        lambda c: "≤ 15" if c.age <= 15 else "15–60" if c.age <= 60 else "> 60",
    )
    table("local hour of the arrival", lambda c: f"{c.hour:02d}")
    with_parts = [c for c in cases if c.parts is not None]
    if with_parts:
        print("  error by part of the time to go (predicted − true minutes):")
        for part in _PARTS:
            values = [c.parts[part] for c in with_parts if c.parts is not None]
            out = [c.parts[part] for c in with_parts if c.parts is not None and not c.hit]
            mean_out = statistics.fmean(out) if out else 0.0
            print(
                f"    {part:<12} all: median |error| {statistics.median(map(abs, values)):5.1f}"
                f"  mean {statistics.fmean(values):+6.1f};  misses: mean {mean_out:+6.1f}"
                f", the main cause of {sum(1 for c in misses if c.cause() == part)}"
            )
    if listing:
        print("  the misses (error; doing an hour before; stops ahead; parts; ETA shown):")
        for c in sorted(misses, key=lambda c: c.error):
            parts = ", ".join(f"{k} {v:+.0f}" for k, v in (c.parts or {}).items())
            print(f"    {c.error:+7.1f}  {c.doing:<9} {c.ahead}  [{parts}]  {c.group}; {c.label}")


def injected_trouble(scenario: Any, reference: str, trip: Any, index: int, asked: datetime) -> str:
    """What the demo's scenario did to the load that no ETA given at `asked` could know of,
    for its stop `index` (the pickup is 0): a refusal or a detention at a stop on the way not
    yet left, or the load's device offline or its clock skewed; "none" otherwise."""
    on_way = [
        (i, visit)
        for i, visit in enumerate(trip.deliveries[: index - 1])
        if visit.departure > asked
    ]
    if scenario.refused and any((reference, i) == scenario.refused for i, _ in on_way):
        return "a refusal on the way"
    if any((reference, i) in scenario.detention for i, _ in on_way):
        return "a detention on the way"
    if scenario.offline and scenario.offline[0] == reference:
        return "the load's device offline"
    if scenario.skewed and scenario.skewed[0] == reference:
        return "the load's device clock skewed"
    return "none"


def demo_day(url: str, seed: int, *, explaining: bool = False, listing: bool = False) -> None:
    """The demo's operating day (`api.demo`), with the ETA policy run after each of the demo's
    worker rounds, scored on its deliveries the same way."""
    try:
        from api.demo import simulate as demo
        from api.demo.planning import DETOUR, PLANNER_SPEED_KMH
        from api.demo.world import DAY as DEMO_DAY
        from api.demo.world import local
    except ImportError as error:
        print(f"demo day: not measured ({error})")
        return
    clock = demo.SimClock(local((13, 0), DEMO_DAY - timedelta(days=1)))
    ledger = Ledger(url, clock=clock)
    db = Database(url)
    began = time.perf_counter()
    # In service the views and the ETA policy run continuously (`api.serve`): here the demo's
    # read side (the ETA policy with it) catches up after every round of pings, not in its
    # 30-min seeding rounds.
    options = demo.Options(seed=seed, worker_every=demo.PING_ROUND)
    facts = demo.simulate(ledger, db, clock, options, log=io.StringIO())
    result = Replay(ledger, facts.catch_ups, time.perf_counter() - began)
    kmh = PLANNER_SPEED_KMH / DETOUR
    ours, window_start, planned, straight = (
        Score("ETA policy (as known 60 min before)"),
        Score("naive: planned window start"),
        Score("naive: the plan's service start"),
        Score(f"naive: straight line at {kmh:.0f} km/h, planned service"),
    )
    calm = Score("ETA policy, no injected trouble on the way")
    calm_straight = Score("naive: straight line, no trouble on the way")
    arrivals = missing = 0
    cases: list[Case] = []
    for reference, trip in facts.trips.items():
        spans = spans_of([(at, status) for at, status, _ in trip.duty])
        load = ledger.load_by_reference(reference)
        visits = [trip.pickup, *trip.deliveries]
        services = [40.0, *(float(s.service_minutes) for s in trip.route.stops)]
        points = [ledger.location_by_id(ledger.stop(s).location_id).point for s in load.stop_ids]
        places = [(p.lat, p.lon) for p in points]
        for index, stop_id in enumerate(load.stop_ids[1:], start=1):  # the deliveries
            now = stop_history(ledger, stop_id)
            if now is None or now.arrival is None:
                continue
            arrivals += 1
            actual = now.arrival.occurred_at
            asked = actual - HORIZON
            then = stop_history(ledger, stop_id, known_at=result.position_at(asked))
            if then is None or then.eta is None:
                missing += 1
                continue
            ours.add(then.eta, actual)
            trouble = injected_trouble(facts.scenario, reference, trip, index, asked)
            if trouble == "none":
                calm.add(then.eta, actual)
            if explaining:
                cases.append(
                    case(
                        ledger,
                        result,
                        group=trouble,
                        target="the first delivery" if index == 1 else "a later delivery",
                        stop_id=stop_id,
                        vehicle=trip.route.vehicle.code,
                        eta=then.eta,
                        actual=actual,
                        true_arrival=visits[index].arrival,
                        stops_before=[(v.arrival, v.departure) for v in visits[:index]],
                        spans=spans,
                        label=f"{reference} stop {index}",
                    )
                )
            window_start.add(now.window.start, actual)
            planned.add(trip.route.stops[index - 1].planned_start or now.window.start, actual)
            fixes = [f for f in trip.fixes if f.at <= asked]
            here = (fixes[-1].lat, fixes[-1].lon) if fixes else places[0]
            first, leave = index, asked
            for j, visit in enumerate(visits[: index + 1]):
                if asked < visit.arrival:
                    first = j
                    break
                if asked < visit.departure:  # there: what is left of its planned service
                    first, leave = j + 1, visit.arrival + timedelta(minutes=services[j])
                    break
            ahead = list(zip(places[first : index + 1], services[first : index + 1], strict=True))
            naive = straight_line(asked, here, leave, ahead, kmh)
            straight.add(naive, actual)
            if trouble == "none":
                calm_straight.add(naive, actual)
    print(
        f"demo day (api.demo, seed {seed}, {len(facts.trips)} trucks): replayed in "
        f"{result.seconds:.0f} s; {arrivals} reconciled deliveries, {missing} without an ETA "
        f"60 min before, {arrivals - missing} scored"
    )
    for s in (ours, window_start, planned, straight, calm, calm_straight):
        print(s.line())
    if explaining:
        explain("demo day", cases, listing=listing, groups="the day's trouble on the way")
    ledger.close()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument(
        "--history",
        type=int,
        default=14,
        help="days the fleet operated before the scored week (0: the week from an empty ledger)",
    )
    parser.add_argument("--city", type=int, default=4)
    parser.add_argument("--regional", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--url", default=None, help="a store URL (default: a new SQLite file)")
    parser.add_argument("--demo-url", default=None, help="a store URL for the demo day")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo day")
    parser.add_argument("--no-week", action="store_true", help="skip the generated week")
    parser.add_argument(
        "--explain", action="store_true", help="break the misses down (what went wrong, where)"
    )
    parser.add_argument("--misses", action="store_true", help="with --explain: list each miss")
    args = parser.parse_args()
    args.explain = args.explain or args.misses
    with tempfile.TemporaryDirectory() as folder:
        if not args.no_week:
            week(args.url or f"sqlite:///{folder}/week.db", args)
        if not args.no_demo:
            demo_day(
                args.demo_url or f"sqlite:///{folder}/demo.db",
                args.seed,
                explaining=args.explain,
                listing=args.misses,
            )


def week(url: str, args: argparse.Namespace) -> None:
    """The generated week, after `args.history` days of the same fleet's operation: scored
    on its own, and (with history) the first week from the empty ledger as well."""
    begin = START - timedelta(days=args.history)
    sites, trucks, runs, feed = generate(
        args.seed, args.history + args.days, args.city, args.regional, start=begin
    )
    print(
        f"generated: seed {args.seed}, {args.history} days of history, then the week of "
        f"{args.days} days; {len(trucks)} trucks ({args.city} city, {args.regional} regional), "
        f"{len(runs)} loads, {sum(len(r.stops) for r in runs)} stops, {len(feed.pings)} pings, "
        f"{sum(1 for d, p in feed.pings if d > p.occurred_at)} of them late"
    )
    result = replay(url, sites, trucks, runs, feed, start=begin)
    print(f"replayed in {result.seconds:.0f} s: {result.ledger.position} events")
    periods = [("generated week", START, START + timedelta(days=args.days))]
    if args.history:  # the same fleet's first days, from the empty ledger
        cold = begin + timedelta(days=min(args.days, args.history))
        periods.append(("its first days, from an empty ledger", begin, cold))
    for title, since, until in periods:
        scored_runs = [r for r in runs if since <= r.dispatch_at < until]
        scores, by_kind, arrivals, missing, cases = score(result, scored_runs, feed)
        print(
            f"{title} (loads dispatched {since:%d %b} to {until - timedelta(days=1):%d %b}): "
            f"{arrivals} reconciled "
            f"arrivals, {missing} without an ETA 60 min before (dispatched less than an hour "
            f"before), {arrivals - missing} scored"
        )
        for s in scores:
            print(s.line())
        for s in by_kind.values():
            print(s.line())
        if args.explain and since == START:
            explain(title, cases, listing=args.misses)
    result.ledger.close()


if __name__ == "__main__":
    main()
