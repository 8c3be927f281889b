"""One operating day, end to end, on a real store, driven by a simulated clock.

Everything happens on an agenda: each action has a moment, a priority and a sequence number,
and runs with the ledger's clock set to its moment, so the ledger records the day as it would
have happened (occurred_at from the simulated world, positions in the order it learned).

The day (America/Chicago, Friday 2026-11-20; the afternoon before for the set-up):

- 14:00 reference data; from 15:00 stock received into both warehouses; 16:30 and 17:15 the
  shippers' orders CSVs (and at 17:40 ACME sends its file again: nothing new); 20:00 the
  drivers' ELD logs of the week;
- 03:00 allocation, picking, packing (a forklift damages a few cases); 04:40 the drivers'
  Hours of Service are read and the planner builds the routes; each route becomes a load:
  planned, tendered, accepted (one tender is rejected first), dispatched;
- from 05:00 the trucks drive; pings and duty changes arrive in rounds, with realistic
  disorder; the warehouse, the drivers' app and the carriers report what happens at the
  docks; every 30 min the reconciler, the views and the ETA policy catch up (so the day keeps
  the ETAs it gave, as the live service would); every hour the SLA, detention and HOS jobs
  run;
- evening: loads with a POD are marked ready to invoice; 23:30 the invoice run.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TextIO
from uuid import UUID

from api.demo.documents import EdiStatus, edi_214, orders_csv
from api.demo.drive import Trip, drive_day, pre_route
from api.demo.planning import (
    DETOUR,
    PLANNER_SPEED_KMH,
    ROUTE_LIMIT,
    Outcome,
    Route,
    RouteStop,
    Shift,
    plan_routes,
)
from api.demo.world import CHICAGO, DAY, OrderSpec, Site, World, build_world, km_between, local
from ledger.application import Caller, IngestReport, Ledger, StopPlan
from ledger.drivers import DutyInput
from ledger.edi import parse_214
from ledger.events import Source
from ledger.history import driver_history
from ledger.hos import DutyStatus
from ledger.imports import parse_orders_csv
from ledger.loads import ExceptionKind, Load
from ledger.orders import Order, OrderStatus
from ledger.stops import FactDetail, Stop, StopFact, StopKind
from ledger.telematics import PingInput
from ledger.values import TimeWindow
from planner import HoursOfService
from planner.eta_travel import model_travel
from planner.model import TravelModel
from projections.db import Database
from projections.eta_policy import EtaPolicy
from projections.invoicing import InvoiceRunReport, invoice_run
from projections.jobs import run_job
from projections.worker import Worker

__all__ = ["JOBS", "DayFacts", "Options", "SimClock", "simulate"]

JOBS = ("sla_monitor", "detention_watcher", "hos_watcher")
PING_ROUND = timedelta(minutes=10)
DUTY_ROUND = timedelta(minutes=15)
WORKER_EVERY = timedelta(minutes=30)
"""How often the reconciler and the views catch up during the day; hourly (with the jobs)
above `BIG_FLEET` trucks, where geofence detection over every load dominates the run."""
BIG_FLEET = 50
DEVICE_SKEW = timedelta(minutes=7)
OFFLINE = timedelta(hours=1)
WORKER_BATCH = 5000

_RESOLUTIONS = {
    "detention": "driver released; detention is billed per the carrier's rate card",
    "delayed": "delivered late; the customer was told",
    "hos_risk": "route finished within the driver's hours",
}

# Agenda priorities at the same moment: facts arrive, then people act, then the read side
# catches up, then the jobs look at it.
_FEED, _ACT, _VIEWS, _JOBS = 0, 1, 2, 3


@dataclass(frozen=True)
class Options:
    seed: int = 7
    vehicles: int = 12
    orders: int = 80
    worker_every: timedelta | None = None
    """How often the worker catches up; None: `WORKER_EVERY` (twice that above `BIG_FLEET`).
    In service it runs continuously; a measure of what it shows (the ETA benchmark) catches up
    as the feed arrives, every `PING_ROUND`."""


class SimClock:
    """The simulated wall clock the ledger reads; it only moves forward."""

    def __init__(self, start: datetime):
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, moment: datetime) -> None:
        moment = moment.astimezone(UTC)
        if moment < self.now:
            raise ValueError(f"the simulated clock cannot go back from {self.now} to {moment}")
        self.now = moment


class _Agenda:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, int, Callable[[], object]]] = []
        self._n = 0

    def at(self, moment: datetime, action: Callable[[], object], priority: int = _ACT) -> None:
        heapq.heappush(self._heap, (moment.astimezone(UTC), priority, self._n, action))
        self._n += 1

    def run(self, clock: SimClock) -> None:
        while self._heap:
            moment, _, _, action = heapq.heappop(self._heap)
            clock.advance_to(moment)
            action()


@dataclass
class Telemetry:
    pings_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    flagged: int = 0
    out_of_order: int = 0
    backfilled: int = 0
    duty_sent: int = 0
    duty_accepted: int = 0
    duty_duplicates: int = 0
    duty_refused: int = 0

    def add_pings(self, report: IngestReport) -> None:
        self.accepted += report.accepted
        self.duplicates += report.duplicates
        self.refused += len(report.refused)
        self.flagged += report.flagged

    def add_duty(self, report: IngestReport) -> None:
        self.duty_accepted += report.accepted
        self.duty_duplicates += report.duplicates
        self.duty_refused += len(report.refused)


@dataclass
class Scenario:
    """The day's special moments, by load reference."""

    offline: tuple[str, str, datetime, datetime, datetime] | None = None
    """(load, device, offline from, back online, backfill uploaded)."""
    skewed: tuple[str, str] | None = None
    """(load, device whose clock runs ahead)."""
    refused: tuple[str, int] | None = None
    damaged: tuple[str, int] | None = None
    late_edi: tuple[str, datetime, datetime] | None = None
    """(load, first fact reported, when the carrier sent it)."""
    detention: list[tuple[str, int]] = field(default_factory=list)
    rejected_tender: str | None = None


@dataclass
class DayFacts:
    """What the simulation did, for the report (everything else is read from the views)."""

    options: Options
    world: World
    imported: int = 0
    csv_files: int = 0
    reimport_unchanged: int = 0
    stock_lots: int = 0
    stock_units: int = 0
    expired_lots: int = 0
    damaged_units: int = 0
    backordered: list[str] = field(default_factory=list)
    plan: Outcome = field(default_factory=Outcome)
    loads: dict[str, Route] = field(default_factory=dict)
    trips: dict[str, Trip] = field(default_factory=dict)
    scenario: Scenario = field(default_factory=Scenario)
    telemetry: Telemetry = field(default_factory=Telemetry)
    edi_messages: int = 0
    jobs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(JOBS, 0))
    job_rounds: int = 0
    invoice_run: InvoiceRunReport = field(default_factory=InvoiceRunReport)
    worker_rounds: int = 0
    catch_ups: list[tuple[datetime, int]] = field(default_factory=list)
    """(clock, log position) after each round of the read side: what was known when."""


def _floor(moment: datetime, step: timedelta) -> datetime:
    """`moment` rounded down to a whole `step` (of the hour)."""
    local_moment = moment.astimezone(CHICAGO)
    hour = local_moment.replace(minute=0, second=0, microsecond=0)
    return hour + (local_moment - hour) // step * step


def _minutes(span: timedelta) -> float:
    return span.total_seconds() / 60


def _caller(actor: str, source: Source, seed: int, what: str) -> Caller:
    return Caller(actor=actor, source=source, correlation_id=f"demo-{seed}-{what}")


class _Day:
    """The run's state: the ledger, the views, the world and what has happened so far."""

    def __init__(self, ledger: Ledger, db: Database, world: World, options: Options, log: TextIO):
        self.ledger = ledger
        self.db = db
        self.world = world
        self.options = options
        self.log = log
        self.seed = options.seed
        self.agenda = _Agenda()
        self.started = time.monotonic()
        self.worker = Worker(ledger, db, batch_size=WORKER_BATCH)
        # the ETAs as the service gives them, from the planner's travel model for these routes
        travel = TravelModel(kind="haversine", detour_factor=DETOUR, speed_kmh=PLANNER_SPEED_KMH)
        self.eta = EtaPolicy(ledger, model_travel(travel), db=db)
        self.facts = DayFacts(options=options, world=world)
        self.allocated: list[tuple[OrderSpec, str]] = []
        # Drivers come on duty between 05:00 and 05:40, a few at a time.
        self.on_duty = {
            v.code: local((5, 0)) + timedelta(minutes=10 * (i % 5))
            for i, v in enumerate(world.vehicles)
        }
        self._offline_ref: str | None = None
        self._late_ref: str | None = None
        self._ready_last = local((17, 0))

    def caller(self, actor: str, source: Source, what: str) -> Caller:
        return _caller(actor, source, self.seed, what)

    def rng(self, purpose: str) -> random.Random:
        return random.Random(f"shipledger-demo:{self.seed}:{purpose}")

    def say(self, text: str) -> None:
        """Progress on stderr (never in the report: it carries wall-clock time)."""
        elapsed = time.monotonic() - self.started
        print(f"demo: [{elapsed:6.1f} s] {text}", file=self.log, flush=True)

    # --- the afternoon before ---------------------------------------------------------------

    def reference_data(self) -> None:
        w, start = self.world, local((14, 0), DAY - timedelta(days=1))
        admin = self.caller("demo:admin", Source.API, "reference-data")
        steps: list[Callable[[], object]] = []
        for code, name in w.accounts:
            steps.append(partial(self.ledger.open_account, admin, code, name))
        for code, name, scac in w.carriers:
            steps.append(partial(self.ledger.register_carrier, admin, code, name, scac))
        effective = local((0, 0), date(2026, 11, 1))
        for card in w.rate_cards:
            steps.append(
                partial(
                    self.ledger.publish_rates,
                    admin,
                    card.card,
                    card.rates,
                    effective_from=effective,
                    carrier_code=card.carrier,
                )
            )
        sites: list[tuple[Site, str | None]] = [(s, None) for s in (*w.warehouses, *w.yards)]
        sites += [(c.site, c.tenant) for c in w.customers]
        for site, owner in sites:
            steps.append(
                partial(
                    self.ledger.register_location,
                    admin,
                    site.code,
                    name=site.name,
                    address=site.address,
                    lat=site.lat,
                    lon=site.lon,
                    geofence_radius_m=site.radius_m,
                    dock_notes=site.dock_notes,
                    opening_hours=site.opening_hours,
                    appointment_required=site.appointment_required,
                    owner_tenant=owner,
                )
            )
        for driver in w.drivers:
            steps.append(
                partial(
                    self.ledger.register_driver,
                    admin,
                    driver.code,
                    first_name=driver.first_name,
                    last_name=driver.last_name,
                    carrier_code=driver.carrier,
                )
            )
        for vehicle in w.vehicles:
            steps.append(
                partial(
                    self.ledger.register_vehicle,
                    admin,
                    vehicle.code,
                    carrier_code=vehicle.carrier,
                    capacity_kg=Decimal(vehicle.capacity_kg),
                    capacity_m3=Decimal(vehicle.capacity_m3),
                    pallets=vehicle.pallets,
                    device_id=vehicle.device,
                )
            )
        spacing = min(1.0, 3000.0 / max(1, len(steps)))
        for i, step in enumerate(steps):
            self.agenda.at(start + timedelta(seconds=i * spacing), step)

    def stock(self) -> None:
        for n, lot in enumerate(self.world.stock):
            receiver = self.caller(f"wms:{lot.warehouse}", Source.API, f"asn-{n + 1:05d}")
            self.agenda.at(
                lot.received,
                partial(
                    self.ledger.receive_stock,
                    receiver,
                    warehouse=lot.warehouse,
                    sku=lot.sku,
                    lot=lot.lot,
                    quantity=lot.quantity,
                    expiry=lot.expiry,
                ),
            )
        self.facts.stock_lots = len(self.world.stock)
        self.facts.stock_units = sum(lot.quantity for lot in self.world.stock)
        self.facts.expired_lots = sum(
            1 for lot in self.world.stock if lot.expiry is not None and lot.expiry < DAY
        )

    def orders(self) -> None:
        eve = DAY - timedelta(days=1)
        sends = [("ACME", (16, 30), "orders-ACME-1"), ("BOREAL", (17, 15), "orders-BOREAL-1")]
        sends.append(("ACME", (17, 40), "orders-ACME-resend"))
        for tenant, (hour, minute), what in sends:
            self.agenda.at(local((hour, minute), eve), partial(self._import, tenant, what))

    def _import(self, tenant: str, what: str) -> None:
        mine = [o for o in self.world.orders if o.tenant == tenant]
        if not mine:  # a shipper with nothing to ship today sends no file
            return
        self.facts.csv_files += 1
        text = orders_csv(self.world, mine)
        drafts = parse_orders_csv(text, tenant)
        report = self.ledger.import_orders(
            self.caller(f"shipper:{tenant}", Source.CSV, what), tenant, drafts
        )
        self.facts.imported += report.recorded
        if what.endswith("resend"):
            self.facts.reimport_unchanged += report.unchanged

    def eld_history(self) -> None:
        """The week so far from every driver's ELD, uploaded the evening before."""
        rng = self.rng("eld-history")
        changes: list[DutyInput] = []
        for driver, vehicle in zip(self.world.drivers, self.world.vehicles, strict=True):
            days = 5 if driver.heavy_week else 3
            for back in range(days, 0, -1):
                day = DAY - timedelta(days=back)
                begin = local((5, 30), day) + timedelta(minutes=rng.randint(0, 40))
                long = 2.0 if driver.heavy_week else 0.0
                # lunch as today's: on the road a little after 11:15 (api.demo.drive)
                lunch = (local((11, 15), day) - begin) / timedelta(hours=1) + rng.uniform(0.1, 0.6)
                plan = [
                    (0.0, DutyStatus.ON_DUTY, "pre-trip inspection"),
                    (0.5, DutyStatus.DRIVING, ""),
                    (lunch - 0.5 + rng.uniform(-0.3, 0.2), DutyStatus.ON_DUTY, ""),
                    (lunch, DutyStatus.OFF_DUTY, "30-minute break"),
                    (lunch + 0.5, DutyStatus.DRIVING, ""),
                    (8.5 + long + rng.uniform(-0.5, 0.5), DutyStatus.ON_DUTY, "post-trip"),
                    (9.2 + long + rng.uniform(0, 0.3), DutyStatus.OFF_DUTY, "end of shift"),
                ]
                for hours, status, note in plan:
                    at = begin + timedelta(minutes=round(hours * 60))
                    changes.append(
                        DutyInput(
                            driver.code,
                            at.astimezone(UTC),
                            status,
                            vehicle_code=vehicle.code,
                            note=note,
                        )
                    )
        moment = local((20, 0), DAY - timedelta(days=1))
        eld = self.caller("eld:gateway", Source.ELD, "eld-history")

        def upload() -> None:
            report = self.ledger.ingest_duty(eld, changes, received_at=moment.astimezone(UTC))
            self.facts.telemetry.duty_sent += len(changes)
            self.facts.telemetry.add_duty(report)

        self.agenda.at(moment, upload, _FEED)

    # --- the warehouse morning --------------------------------------------------------------

    def warehouse_morning(self) -> None:
        orders = list(self.world.orders)
        span = timedelta(minutes=40)
        step = span / max(1, len(orders))
        for i, order in enumerate(orders):
            warehouse = self.world.home[order.ship_to_code]
            who = self.caller(f"wms:{warehouse}", Source.API, f"alloc-{order.reference}")
            self.agenda.at(
                local((3, 0)) + step * i,
                partial(self._allocate, order, warehouse, who),
            )
        self.agenda.at(local((3, 50)), self._forklift)
        self.agenda.at(local((4, 40)), self._plan)

    def _allocate(self, order: OrderSpec, warehouse: str, caller: Caller) -> None:
        order_id = Order.create_id(order.tenant, order.reference)
        self.ledger.allocate_order(caller, order_id, warehouse)
        if self.ledger.order(order_id).status is not OrderStatus.ALLOCATED:
            self.facts.backordered.append(order.reference)
            return
        self.allocated.append((order, warehouse))
        n = len(self.allocated)
        pick_at = local((3, 45)) + timedelta(seconds=(n * 2700) // max(1, len(self.world.orders)))
        picker = self.caller(f"wms:{warehouse}", Source.API, f"pick-{order.reference}")
        self.agenda.at(pick_at, partial(self.ledger.pick_order, picker, order_id))
        self.agenda.at(
            pick_at + timedelta(minutes=6), partial(self.ledger.pack_order, picker, order_id)
        )

    def _forklift(self) -> None:
        """A forklift punctures a few cases in the south warehouse: written off as damaged."""
        candidates = sorted(
            (lot for lot in self.world.stock if lot.warehouse == "WH-S" and lot.expiry is None),
            key=lambda lot: (-lot.quantity, lot.sku, lot.lot),
        )
        if not candidates:
            return
        lot = candidates[0]
        item = self.ledger.stock_item(lot.warehouse, lot.sku, lot.lot)
        quantity = min(3, item.available)
        if quantity <= 0:
            return
        who = self.caller("wms:WH-S", Source.API, "damage-1")
        self.ledger.record_damage(
            who, item.id, quantity, "forklift punctured cases during replenishment"
        )
        self.facts.damaged_units += quantity

    # --- planning and loads -----------------------------------------------------------------

    def _shifts(self) -> dict[str, Shift]:
        """When each truck can leave loaded, and its driver's hours (read from the ledger)."""
        shifts = {}
        now = self.ledger.clock()
        for vehicle in self.world.vehicles:
            on_duty = self.on_duty[vehicle.code]
            pre = pre_route(self.world, vehicle.warehouse)
            state = driver_history(self.ledger, vehicle.driver, as_of=now)
            spent = _minutes(pre)
            hos = HoursOfService(
                drive_remaining=max(0.0, _minutes(state.drive_remaining) - 10),
                duty_remaining=max(0.0, min(_minutes(state.window_remaining), 840.0) - spent),
                driven_since_break=min(480.0, max(0.0, 480.0 - _minutes(state.until_break)) + 10),
                cycle_remaining=max(0.0, _minutes(state.cycle_remaining) - spent),
            )
            shifts[vehicle.code] = Shift(
                depart=on_duty + pre,
                latest_return=min(on_duty + pre + ROUTE_LIMIT, local((20, 30))),
                hos=hos,
            )
        return shifts

    def _plan(self) -> None:
        self.say(f"planning routes for {len(self.allocated)} orders")
        packed = sorted(self.allocated, key=lambda x: x[0].reference)
        outcome = plan_routes(self.world, packed, self._shifts())
        self.facts.plan = outcome
        for sweep in outcome.sweeps:
            if sweep.hit_time_limit:
                self.say(f"warning: the search for {sweep.name} hit its time limit")
        routes = sorted(outcome.routes, key=lambda r: (r.warehouse, r.tenant, r.vehicle.code))
        width = max(3, len(str(len(routes))))
        for n, route in enumerate(routes, start=1):
            self.facts.loads[f"L-{DAY:%Y%m%d}-{n:0{width}d}"] = route
        self._scenario()
        self._loads()

    def _scenario(self) -> None:
        """Choose, once and reproducibly, where today's trouble happens."""
        rng = self.rng("scenario")
        s = self.facts.scenario
        refs = sorted(self.facts.loads)
        multi = [r for r in refs if len(self.facts.loads[r].stops) >= 2]
        used: set[str] = set()

        def take(pool: Sequence[str], carrier: str | None = None) -> str | None:
            for ref in pool:
                if ref not in used and (
                    carrier is None or self.facts.loads[ref].vehicle.carrier == carrier
                ):
                    used.add(ref)
                    return ref
            return None

        offline = take(multi) or take(refs)
        skewed = take(refs)
        refused = take(multi)
        # Damage can share a load with other trouble: the last stop is never the refused one.
        damaged = take(refs) or (refs[-1] if refs else None)
        # The late EDI 214 can come for any of the carrier's loads, trouble or not.
        lake = [r for r in refs if self.facts.loads[r].vehicle.carrier == "LAKE"]
        late = next((r for r in lake if r not in used), lake[0] if lake else None)
        if offline is not None:
            index = 1 if len(self.facts.loads[offline].stops) >= 2 else 0
            s.detention.append((offline, index))
        if refused is not None:
            s.refused = (refused, 0)
        if damaged is not None:
            s.damaged = (damaged, len(self.facts.loads[damaged].stops) - 1)
        if skewed is not None:
            s.skewed = (skewed, self.facts.loads[skewed].vehicle.device)
        busy = {s.refused} if s.refused else set()
        for ref in refs:
            for i in range(len(self.facts.loads[ref].stops)):
                if (ref, i) not in busy and (ref, i) not in s.detention and rng.random() < 0.05:
                    s.detention.append((ref, i))
        s.rejected_tender = next(
            (r for r in refs if self.facts.loads[r].vehicle.carrier == "LAKE"), None
        )
        self._offline_ref = offline
        self._late_ref = late

    def _loads(self) -> None:
        planner = self.caller("planner:demo", Source.PLANNER, f"plan-{DAY:%Y%m%d}")
        refs = sorted(self.facts.loads)
        tick = timedelta(seconds=max(1, 240 // max(1, len(refs))))
        t = self.ledger.clock() + timedelta(minutes=5)
        for n, ref in enumerate(refs):
            route = self.facts.loads[ref]
            trip = self._drive(ref, route, self.on_duty[route.vehicle.code])
            self.facts.trips[ref] = trip
            self.agenda.at(t + tick * n, partial(self._plan_load, ref, planner))
            self.agenda.at(t + timedelta(minutes=5) + tick * n, partial(self._tender, ref))
            self.agenda.at(t + timedelta(minutes=9) + tick * n, partial(self._accept, ref))
            self.agenda.at(t + timedelta(minutes=14) + tick * n, partial(self._dispatch, ref))
            self._road(ref, route, trip)
        self._telemetry()

    def _appointments(self, route: Route) -> list[tuple[datetime, datetime] | None]:
        slots: list[tuple[datetime, datetime] | None] = []
        for stop in route.stops:
            if not stop.customer.site.appointment_required or stop.planned_start is None:
                slots.append(None)
                continue
            floor = _floor(stop.planned_start, timedelta(minutes=30))
            start = max(stop.window[0], min(floor, stop.window[1] - timedelta(hours=1)))
            slots.append((start, start + timedelta(hours=1)))
        return slots

    def _drive(self, ref: str, route: Route, nominal: datetime) -> Trip:
        s = self.facts.scenario
        rng = self.rng(f"trip:{route.vehicle.code}")
        extra = {}
        for n, (r, i) in enumerate(s.detention):
            if r == ref:
                # The offline truck's long stop is the first one chosen: it must outlast the hour.
                minutes = 150 if n == 0 and ref == self._offline_ref else rng.randint(110, 170)
                extra[i] = timedelta(minutes=minutes)
        refused = s.refused[1] if s.refused and s.refused[0] == ref else None
        return drive_day(
            self.world,
            route,
            rng,
            nominal,
            extra_dwell=extra,
            refused=refused,
            appointments=self._appointments(route),
        )

    def _stop_plans(self, route: Route) -> list[StopPlan]:
        order_ids = tuple(
            Order.create_id(o.tenant, o.reference) for s in route.stops for o in s.orders
        )
        quarter = timedelta(minutes=15)
        opens = _floor(route.start - timedelta(minutes=90), quarter)
        closes = _floor(route.start + timedelta(minutes=44), quarter)
        plans = [
            StopPlan(
                StopKind.PICKUP,
                route.warehouse,
                TimeWindow(opens, closes),
                service_minutes=40,
                order_ids=order_ids,
            )
        ]
        for stop, slot in zip(route.stops, self._appointments(route), strict=True):
            plans.append(
                StopPlan(
                    StopKind.DELIVERY,
                    stop.customer.code,
                    TimeWindow(*stop.window),
                    service_minutes=stop.service_minutes,
                    appointment=TimeWindow(*slot) if slot else None,
                    order_ids=tuple(Order.create_id(o.tenant, o.reference) for o in stop.orders),
                )
            )
        return plans

    def _plan_load(self, ref: str, caller: Caller) -> None:
        route = self.facts.loads[ref]
        self.ledger.plan_load(
            caller,
            ref,
            self._stop_plans(route),
            planned_km=route.planned_km,
            plan_id=route.plan_id,
            customer=route.tenant,
        )

    def _dispatcher(self, what: str) -> Caller:
        return self.caller("dispatcher:jordan", Source.API, what)

    def _carrier(self, ref: str, what: str) -> Caller:
        carrier = self.facts.loads[ref].vehicle.carrier
        return self.caller(f"carrier:{carrier}", Source.API, f"{what}-{ref}")

    def _rate_card(self, carrier: str) -> str:
        return next(c.card for c in self.world.rate_cards if c.carrier == carrier)

    def _tender(self, ref: str) -> None:
        route = self.facts.loads[ref]
        load_id = Load.create_id(ref)
        card = self._rate_card(route.vehicle.carrier)
        self.ledger.tender_load(
            self._dispatcher(f"tender-{ref}"), load_id, route.vehicle.carrier, card
        )
        if ref == self.facts.scenario.rejected_tender:
            self.ledger.reject_tender(
                self._carrier(ref, "reject"), load_id, "no driver confirmed for the early slot yet"
            )
            t = self.ledger.clock() + timedelta(minutes=2)
            again = self._dispatcher(f"retender-{ref}")
            self.agenda.at(
                t, partial(self.ledger.tender_load, again, load_id, route.vehicle.carrier, card)
            )

    def _accept(self, ref: str) -> None:
        self.ledger.accept_tender(self._carrier(ref, "accept"), Load.create_id(ref))

    def _dispatch(self, ref: str) -> None:
        route = self.facts.loads[ref]
        self.ledger.dispatch_load(
            self._dispatcher(f"dispatch-{ref}"),
            Load.create_id(ref),
            route.vehicle.driver,
            route.vehicle.code,
        )

    # --- on the road ------------------------------------------------------------------------

    def _road(self, ref: str, route: Route, trip: Trip) -> None:
        """What the warehouse, the driver's app and the carrier report about the load."""
        s = self.facts.scenario
        load_id = Load.create_id(ref)
        pickup = Stop.create_id(load_id, 1)
        wms = self.caller(f"wms:{route.warehouse}", Source.API, f"outbound-{ref}")
        app = self.caller(f"driver:{route.vehicle.driver}", Source.DRIVER_APP, f"app-{ref}")
        self.agenda.at(
            trip.pickup.finish,
            partial(self._fact, wms, pickup, StopFact.LOADING_COMPLETED, "loaded and sealed"),
        )

        def leave_warehouse() -> None:
            for stop in route.stops:
                for order in stop.orders:
                    self.ledger.ship_order(
                        wms, Order.create_id(order.tenant, order.reference), load_id
                    )
            self.ledger.start_transit(app, load_id)

        self.agenda.at(trip.pickup.departure, leave_warehouse)
        last = len(route.stops) - 1
        for i, (stop, visit) in enumerate(zip(route.stops, trip.deliveries, strict=True)):
            stop_id = Stop.create_id(load_id, i + 2)
            if s.refused == (ref, i):
                self.agenda.at(
                    visit.departure + timedelta(minutes=5),
                    partial(self._edi, ref, [EdiStatus("A7", "BG", visit.finish, i + 2)]),
                )
                continue
            self.agenda.at(
                visit.finish,
                partial(self._unloaded, ref, stop, stop_id, i, i == last, app),
            )
            signer = f"{stop.customer.site.name.split(' #')[0]} receiving"
            digest = hashlib.sha256(f"{ref}:{i + 2}:{signer}".encode()).hexdigest()
            self.agenda.at(
                visit.departure,
                partial(self._pod, app, stop_id, signer, digest),
            )
        ready = max(trip.deliveries[-1].departure + timedelta(minutes=25), local((17, 0)))
        clerk = self.caller("billing:clerk", Source.API, f"ready-{ref}")
        self.agenda.at(ready, partial(self.ledger.mark_ready_to_invoice, clerk, load_id))
        self._ready_last = max(self._ready_last, ready)
        if ref == self._late_ref:
            self._late_edi(ref, trip)

    def _unloaded(
        self, ref: str, stop: RouteStop, stop_id: UUID, i: int, last: bool, app: Caller
    ) -> None:
        load_id = Load.create_id(ref)
        self._fact(app, stop_id, StopFact.UNLOADING_COMPLETED, "unloaded, count agreed")
        damaged = self.facts.scenario.damaged == (ref, i)
        for n, order in enumerate(stop.orders):
            short: tuple[tuple[int, int], ...] = ()
            if damaged and n == 0:
                line_no, quantity = 1, order.lines[0][1]
                short = ((line_no, min(2, quantity)),)
            self.ledger.deliver_order(app, Order.create_id(order.tenant, order.reference), short)
        if damaged:
            first = stop.orders[0]
            self.ledger.raise_exception(
                app,
                load_id,
                ExceptionKind.DAMAGED,
                owner="claims",
                note=(
                    f"{min(2, first.lines[0][1])} case(s) of {first.lines[0][0]} crushed in "
                    f"transit ({first.reference}); consignee noted it on the POD"
                ),
                stop_id=stop_id,
            )
        if stop.customer.liftgate:
            self.ledger.record_accessorial(app, load_id, "LIFTGATE", stop_id=stop_id)
        if stop.customer.lumper:
            self.ledger.record_accessorial(
                app,
                load_id,
                "LUMPER",
                amount=Decimal("85.00"),
                stop_id=stop_id,
                receipt=f"LMP-{ref[-3:]}-{i + 2}",
            )
        if last:
            self.ledger.deliver_load(app, load_id)

    def _fact(self, caller: Caller, stop_id: UUID, fact: StopFact, note: str) -> None:
        self.ledger.record_stop_fact(
            caller, stop_id, fact, occurred_at=self.ledger.clock(), detail=FactDetail(note=note)
        )

    def _pod(self, caller: Caller, stop_id: UUID, signer: str, digest: str) -> None:
        self.ledger.receive_pod(
            caller, stop_id, signer=signer, document_hash=digest, occurred_at=self.ledger.clock()
        )

    def _edi(self, ref: str, statuses: list[EdiStatus]) -> None:
        sent = self.ledger.clock()
        carrier = self.facts.loads[ref].vehicle.carrier
        scac = next(s for c, _, s in self.world.carriers if c == carrier)
        self.facts.edi_messages += 1
        text = edi_214(scac, 100 + self.facts.edi_messages, sent, [(ref, statuses)])
        messages = parse_214(text)
        who = self.caller(f"edi:{scac}", Source.EDI, f"edi214-{self.facts.edi_messages}")
        self.ledger.record_edi_214(who, messages, carrier=carrier)

    def _late_edi(self, ref: str, trip: Trip) -> None:
        """The carrier's status messages for the morning, sent hours after the fact."""
        j = 1 if self.facts.scenario.refused == (ref, 0) else 0  # a delivery that happened
        first = trip.deliveries[j]
        minute = timedelta(minutes=1)
        statuses = [
            EdiStatus("X3", "NS", trip.pickup.arrival + 3 * minute, 1),
            EdiStatus("AF", "NS", trip.pickup.departure + 2 * minute, 1),
            EdiStatus("X1", "NS", first.arrival + 6 * minute, j + 2),
            EdiStatus("D1", "NS", first.finish + 4 * minute, j + 2),
        ]
        sent = (first.departure + timedelta(hours=4, minutes=10)).replace(second=0, microsecond=0)
        self.facts.scenario.late_edi = (ref, trip.pickup.arrival, sent)
        self.agenda.at(sent, partial(self._edi, ref, statuses))

    # --- telematics -------------------------------------------------------------------------

    def _telemetry(self) -> None:
        """Every fix and duty change the devices send, as the ledger will receive them."""
        s = self.facts.scenario
        rng = self.rng("telemetry")
        sent: list[tuple[datetime, str, int, int, PingInput]] = []
        offline = None
        if self._offline_ref is not None:
            ref = self._offline_ref
            trip = self.facts.trips[ref]
            index = next(i for r, i in s.detention if r == ref)
            arrival = trip.deliveries[index].arrival
            begin = arrival - timedelta(minutes=25)
            back = begin + OFFLINE
            upload = back + timedelta(minutes=95)
            device = trip.route.vehicle.device
            s.offline = (ref, device, begin, back, upload)
            offline = (device, begin, back, upload)
        skewed = s.skewed[1] if s.skewed else None
        for ref in sorted(self.facts.trips):
            trip = self.facts.trips[ref]
            vehicle = trip.route.vehicle
            odometer = 80_000.0 + 1_000.0 * int(vehicle.code[-3:])
            previous = None
            for seq, fix in enumerate(trip.fixes):
                if previous is not None and fix.speed_kph > 0:
                    odometer += km_between(previous, (fix.lat, fix.lon)) * 1.3
                previous = (fix.lat, fix.lon)
                occurred = fix.at + (DEVICE_SKEW if vehicle.device == skewed else timedelta(0))
                received = fix.at + timedelta(seconds=rng.randint(2, 20))
                if offline and vehicle.device == offline[0] and offline[1] <= fix.at < offline[2]:
                    received = offline[3] + timedelta(seconds=seq % 60)
                    self.facts.telemetry.backfilled += 1
                elif rng.random() < 0.03:
                    received += timedelta(seconds=rng.randint(5, 240))
                ping = PingInput(
                    device_id=vehicle.device,
                    seq=seq,
                    occurred_at=occurred,
                    lat=fix.lat,
                    lon=fix.lon,
                    speed_kph=fix.speed_kph,
                    heading=fix.heading,
                    odometer_km=round(odometer, 1),
                )
                sent.append((received, vehicle.device, seq, 0, ping))
                if rng.random() < 0.01:
                    again = received + timedelta(seconds=rng.randint(1, 180))
                    sent.append((again, vehicle.device, seq, 1, ping))
        sent.sort(key=lambda x: x[:4])
        latest: dict[str, datetime] = {}
        for _, device, _, copy, ping in sent:
            if copy == 0 and ping.occurred_at < latest.get(device, ping.occurred_at):
                self.facts.telemetry.out_of_order += 1
            latest[device] = max(latest.get(device, ping.occurred_at), ping.occurred_at)
        self.facts.telemetry.pings_sent = len(sent)
        duty: list[tuple[datetime, DutyInput]] = []
        for ref in sorted(self.facts.trips):
            trip = self.facts.trips[ref]
            for at, status, note in trip.duty:
                change = DutyInput(
                    trip.route.vehicle.driver,
                    at.astimezone(UTC),
                    status,
                    vehicle_code=trip.route.vehicle.code,
                    note=note,
                )
                duty.append((at + timedelta(seconds=rng.randint(5, 60)), change))
        duty.sort(key=lambda x: (x[0], x[1].driver_code, x[1].occurred_at))
        self.facts.telemetry.duty_sent += len(duty)
        self._schedule_rounds(sent, duty)

    def _schedule_rounds(
        self,
        sent: list[tuple[datetime, str, int, int, PingInput]],
        duty: list[tuple[datetime, DutyInput]],
    ) -> None:
        start = local((5, 0))
        last = max([x[0] for x in sent[-1:]] + [x[0] for x in duty[-1:]] + [start])
        gateway = "telematics:gateway"
        t, k = start, 0
        while True:
            t += PING_ROUND
            batch = []
            while k < len(sent) and sent[k][0] <= t:
                batch.append(sent[k][4])
                k += 1
            if batch:
                caller = self.caller(gateway, Source.GPS, f"gps-{t.astimezone(UTC):%H%M}")
                self.agenda.at(t, partial(self._pings, caller, batch, t), _FEED)
            if k >= len(sent):
                break
        t, k = start, 0
        while k < len(duty):
            t += DUTY_ROUND
            changes = []
            while k < len(duty) and duty[k][0] <= t:
                changes.append(duty[k][1])
                k += 1
            if changes:
                caller = self.caller("eld:gateway", Source.ELD, f"eld-{t.astimezone(UTC):%H%M}")
                self.agenda.at(t, partial(self._duty, caller, changes, t), _FEED)
        end = max([last, *(trip.off_duty for trip in self.facts.trips.values())])
        t = start
        every = self.options.worker_every or (
            WORKER_EVERY if len(self.world.vehicles) <= BIG_FLEET else 2 * WORKER_EVERY
        )
        while t <= end + every:
            self.agenda.at(t, self._catch_up, _VIEWS)
            t += every
        t = local((7, 0))
        while t <= max(end, local((21, 0))):
            self.agenda.at(t, self._jobs, _JOBS)
            t += timedelta(hours=1)
        self.agenda.at(local((19, 5)), self._review)
        run_at = max(
            local((23, 30)), self._ready_last + timedelta(minutes=30), end + timedelta(minutes=30)
        )
        self.agenda.at(run_at - timedelta(minutes=20), self._review)
        self.agenda.at(run_at, self._invoice_run, _ACT)

    def _pings(self, caller: Caller, pings: list[PingInput], moment: datetime) -> None:
        report = self.ledger.ingest_pings(caller, pings, received_at=moment.astimezone(UTC))
        self.facts.telemetry.add_pings(report)

    def _duty(self, caller: Caller, changes: list[DutyInput], moment: datetime) -> None:
        report = self.ledger.ingest_duty(caller, changes, received_at=moment.astimezone(UTC))
        self.facts.telemetry.add_duty(report)

    # --- the read side, the jobs, the back office --------------------------------------------

    def _catch_up(self) -> None:
        self._read_side()
        self.facts.worker_rounds += 1

    def _read_side(self) -> None:
        """The views, then the ETAs (whose facts the views read in turn), until neither has
        anything left."""
        while self.worker.catch_up() + self.eta.catch_up():
            pass
        self.facts.catch_ups.append((self.ledger.clock(), self.ledger.position))

    def _jobs(self) -> None:
        self.say(
            f"{self.ledger.clock().astimezone(CHICAGO):%H:%M} jobs (log at {self.ledger.position})"
        )
        self._read_side()
        now = self.ledger.clock()
        for name in JOBS:
            result = run_job(name, self.ledger, self.db, now)
            self.facts.jobs[name] += result.emitted
        self.facts.job_rounds += 1

    def _review(self) -> None:
        """The evening dispatcher works the queue: closes what was handled on delivered loads
        (refusals stay with dispatch, damage with claims)."""
        self.worker.catch_up()
        rows = self.db.query(
            "SELECT q.exception_id, q.load_id, q.kind FROM exceptions_queue q "
            "JOIN load_board b ON b.load_id = q.load_id "
            "WHERE b.status IN ('delivered', 'pod_received', 'ready_to_invoice') "
            "ORDER BY q.exception_id"
        )
        caller = self._dispatcher(f"review-{DAY:%Y%m%d}")
        for exception_id, load_id, kind in rows:
            resolution = _RESOLUTIONS.get(str(kind))
            if resolution is not None:
                self.ledger.resolve_exception(
                    caller, UUID(str(load_id)), str(exception_id), resolution
                )

    def _invoice_run(self) -> None:
        self.say("invoice run")
        self.worker.catch_up()
        caller = self.caller("billing:invoice-run", Source.SCHEDULER, f"invoice-run-{DAY:%Y%m%d}")
        self.facts.invoice_run = invoice_run(self.ledger, self.db, caller, on=DAY)
        self.worker.catch_up()


def simulate(
    ledger: Ledger, db: Database, clock: SimClock, options: Options, log: TextIO = sys.stderr
) -> DayFacts:
    """Runs the whole day on an empty ledger; returns what happened (views are caught up)."""
    world = build_world(options.seed, options.vehicles, options.orders)
    day = _Day(ledger, db, world, options, log)
    day.say(
        f"seed {options.seed}: {len(world.vehicles)} vehicles, {len(world.orders)} orders, "
        f"{len(world.customers)} customer docks"
    )
    day.reference_data()
    day.stock()
    day.orders()
    day.eld_history()
    day.warehouse_morning()
    day.agenda.run(clock)
    day.worker.catch_up()
    return day.facts
