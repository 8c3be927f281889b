"""Re-planning mid-route: a day's loads under way, re-planned from where each vehicle is at T.

For one day and warehouse, at the re-plan time T (event time: what had happened by T counts):

- A stop where something has happened (an arrival, a departure, any other visit fact) is fixed:
  it stays first on its load, unchanged, and is not part of the optimisation.
- Each vehicle starts at its reconciled position at T: the stop it is dwelling at (ready once the
  stop's service is done), else the later of its last ping and its last departure. A vehicle that
  still has to load drives to the warehouse and loads there (``LOADING_MINUTES``): the model
  starts it at the warehouse, loaded; the drive is added to its route and taken off its hours.
- Each driver's remaining Hours of Service at T (drive, duty window, cycle, driving since the last
  30-minute break) come from the duty log, less what the vehicle does before the model starts.
- A dispatched or in-transit load keeps its deliveries on its vehicle: once the pickup is done
  they are on board and count against its capacity from the start (moving a dispatched load's
  freight would be a re-tender: the dispatcher's decision). A delivery the model cannot place
  stays on its load, last, and comes back with the reason.
- Open orders and the orders of loads that are only planned (not tendered) may go to any vehicle
  at or bound for the warehouse: one whose load is still to be picked up (for that load's
  customers), or an idle one (a new load, or the planned load it had, kept when all that load's
  orders stay on it). A planned load whose orders move is superseded.

In the model a vehicle-bound stop requires the skill ``vehicle:<code>``; a stop loaded at the
warehouse requires ``depot`` and ``tenant:<account>``. Times are minutes after midnight UTC of
the day, as in ``planner.jobs``. Loads of another shape than a pickup at the warehouse followed by
deliveries, and tendered or accepted loads, are left alone, and so are their vehicles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from uuid import UUID

from ledger.application import Caller, Ledger, RouteRevision, RouteStop, StopPlan
from ledger.errors import InvalidInput, ReplanBeforeLastFact
from ledger.history import driver_history, load_history, vehicle_history
from ledger.loads import LoadStatus
from ledger.plans import PlanFigures, PlannedRoute, UnplacedOrder
from ledger.reference import Location as Place
from ledger.stops import StopFact, StopKind
from ledger.timeline import LoadState, StopState
from ledger.values import TimeWindow as LedgerWindow
from planner.jobs import LOADING_MINUTES, SHIFT, TRAVEL
from planner.model import (
    BREAK_AFTER_DRIVING,
    BREAK_MINUTES,
    HoursOfService,
    Location,
    Plan,
    PlanRequest,
    Stop,
    TimeWindow,
    Vehicle,
    Visit,
)
from planner.portfolio import Progress, solve
from planner.travel import build_travel_for
from planner.vrplib_io import fingerprint
from projections.db import Database

__all__ = [
    "PlannedLoad",
    "Replan",
    "ReplanItem",
    "VehicleStart",
    "build_replan_request",
    "record_replan",
    "replan_day",
]

AT_WAREHOUSE_KM = 0.5
"""A vehicle whose last fix is this close to the warehouse is there."""
_UNDER_WAY = (LoadStatus.DISPATCHED, LoadStatus.IN_TRANSIT)
_ACTIVE = ("planned", "tendered", "accepted", "dispatched", "in_transit")


@dataclass(frozen=True)
class ReplanItem:
    """What one stop of the model stands for: a stop already on a load, or an open order."""

    location_code: str
    window: LedgerWindow
    service_minutes: int
    order_ids: tuple[UUID, ...]
    references: tuple[str, ...]
    stop_id: UUID | None = None
    load_id: UUID | None = None


@dataclass(frozen=True)
class VehicleStart:
    """Where a vehicle is at T and when the model's first leg can start.

    ``source`` says where the position came from: ``stop`` (dwelling there), ``ping``,
    ``departure`` (the last stop it left) or ``warehouse`` (no fix: assumed there). A vehicle
    that ``loads`` at the warehouse first gets there at ``loading_from`` after driving
    ``approach_km`` from ``position``; ``ready`` is when it is loaded.
    """

    vehicle: str
    driver: str | None
    position: tuple[float, float]
    source: str
    ready: float
    loads: bool
    approach_km: float = 0.0
    approach_minutes: float = 0.0
    loading_from: float | None = None
    load: LoadState | None = None
    pickup: StopState | None = None
    """The load's pickup when it is still to do."""
    dwelling: StopState | None = None


@dataclass(frozen=True)
class PlannedLoad:
    """A load that is only planned, the vehicle its plan gave it, and its stops."""

    state: LoadState
    vehicle: str
    stops: tuple[StopState, ...]


@dataclass
class Replan:
    """A re-plan built from the ledger at ``at``, what each part of its request stands for, and
    once solved and recorded, the plan and its id."""

    day: date
    warehouse: str
    at: datetime
    request: PlanRequest
    starts: dict[str, VehicleStart]
    items: dict[str, ReplanItem]
    planned: dict[UUID, PlannedLoad]
    replaces: tuple[str, ...]
    left_alone: tuple[str, ...] = ()
    plan: Plan | None = None
    plan_id: str | None = None
    position: int = 0
    cancelled: tuple[str, ...] = field(default=())


def _minutes(day: date, moment: datetime) -> float:
    midnight = datetime.combine(day, clock_time(0), tzinfo=UTC)
    return (moment - midnight).total_seconds() / 60


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _visited(stop: StopState) -> bool:
    """Something has happened at the stop (an ETA is a prediction, not a visit)."""
    return any(kind is not StopFact.ETA_REPORTED for kind in stop.facts)


def _leg(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """Kilometres and minutes from `a` to `b` in the planner's travel model."""
    ends = (Location("a", lat=a[0], lon=a[1]), Location("b", lat=b[0], lon=b[1]))
    travel = build_travel_for(TRAVEL, ends)
    return float(travel.distance[0, 1]), float(travel.time[0, 1])


def _advance(hos: HoursOfService, *, drive: float, duty: float, rest: float) -> HoursOfService:
    """What is left after `duty` minutes on duty, `drive` of them driving, that end with `rest`
    minutes without driving (30 of those are the break)."""
    since = 0.0 if rest >= BREAK_MINUTES else hos.driven_since_break + drive
    return HoursOfService(
        drive_remaining=max(0.0, hos.drive_remaining - drive),
        duty_remaining=max(0.0, hos.duty_remaining - duty),
        driven_since_break=min(BREAK_AFTER_DRIVING, since),
        cycle_remaining=max(0.0, hos.cycle_remaining - duty),
    )


def _nothing_after(stops: Iterable[StopState], reference: str, at: datetime) -> None:
    """Refuses early, before any search, what the ledger would refuse on recording."""
    for stop in stops:
        for kind, fact in stop.facts.items():
            if kind is not StopFact.ETA_REPORTED and fact.occurred_at > at:
                raise ReplanBeforeLastFact(
                    f"stop {stop.sequence} of load {reference} was {kind.value} at "
                    f"{fact.occurred_at.isoformat()}, after the re-plan's {at.isoformat()}",
                    field="at",
                    rule="after_last_fact",
                )


class _Builder:
    """The locations, vehicles and stops of one re-plan request."""

    def __init__(self, ledger: Ledger, day: date, warehouse: str, at: datetime) -> None:
        self.ledger, self.day, self.warehouse, self.at = ledger, day, warehouse, at
        self.now = _minutes(day, at)
        depot = ledger.location(warehouse)
        self.depot_id = depot.id
        self.depot = (depot.point.lat, depot.point.lon)
        self.locations = [Location(warehouse, lat=depot.point.lat, lon=depot.point.lon)]
        self.index = {warehouse: 0}
        self.vehicles: list[Vehicle] = []
        self.stops: list[Stop] = []
        self.items: dict[str, ReplanItem] = {}
        self.starts: dict[str, VehicleStart] = {}
        self._places: dict[UUID, Place] = {}

    def place(self, location_id: UUID) -> Place:
        if location_id not in self._places:
            self._places[location_id] = self.ledger.location_by_id(location_id)
        return self._places[location_id]

    def location(self, code: str, point: tuple[float, float]) -> int:
        if code not in self.index:
            self.index[code] = len(self.locations)
            self.locations.append(Location(code, lat=point[0], lon=point[1]))
        return self.index[code]

    def window(self, window: LedgerWindow) -> TimeWindow:
        start = max(0.0, _minutes(self.day, window.start))
        return TimeWindow(start, max(start, _minutes(self.day, window.end)))

    def demand(self, order_ids: Iterable[UUID]) -> dict[str, int]:
        kg, m3 = Decimal(0), Decimal(0)
        for order_id in order_ids:
            for line in self.ledger.order(order_id).lines:
                kg += line.weight_kg
                m3 += line.volume_m3
        return {"kg": int(kg.to_integral_value()), "dm3": int((m3 * 1000).to_integral_value())}

    def add_stop(self, stop_id: str, item: ReplanItem, skills: Iterable[str]) -> None:
        place = self.ledger.location(item.location_code)
        self.items[stop_id] = item
        self.stops.append(
            Stop(
                stop_id,
                self.location(place.code, (place.point.lat, place.point.lon)),
                demand=self.demand(item.order_ids),
                windows=(self.window(item.window),),
                service_minutes=float(item.service_minutes),
                required_skills=frozenset(skills),
            )
        )

    def orders_of(self, stop: StopState) -> tuple[UUID, ...]:
        orders: tuple[UUID, ...] = self.ledger.stop(stop.stop_id).order_ids
        return orders

    def existing_stop(self, load: LoadState, stop: StopState, skills: Iterable[str]) -> None:
        orders = self.orders_of(stop)
        self.add_stop(
            f"{load.reference}#{stop.sequence}",
            ReplanItem(
                self.place(stop.location_id).code,
                stop.appointment or stop.window,
                stop.service_minutes,
                orders,
                tuple(self.ledger.order(o).reference for o in orders),
                stop_id=stop.stop_id,
                load_id=load.load_id,
            ),
            skills,
        )

    def add_vehicle(self, start: VehicleStart, capacity: dict[str, int], skills: set[str]) -> None:
        if start.loads:
            where = 0
        elif start.dwelling is not None:
            where = self.location(self.place(start.dwelling.location_id).code, start.position)
        else:
            where = self.location(f"{start.vehicle}@{self.at:%Y-%m-%dT%H:%MZ}", start.position)
        self.starts[start.vehicle] = start
        self.vehicles.append(
            Vehicle(
                start.vehicle,
                capacity,
                where,
                0,
                shift_start=start.ready,
                shift_end=max(float(SHIFT[1]), start.ready),
                skills=frozenset({*skills, f"vehicle:{start.vehicle}"}),
                hos=self.hos(start),
            )
        )

    def start(
        self, vehicle: str, driver: str | None, load: LoadState | None, stops: Sequence[StopState]
    ) -> VehicleStart:
        """Where `vehicle` is at T, and when it is ready for the model's first leg."""
        visited = [s for s in stops if _visited(s)]
        pickup = stops[0] if stops and not _visited(stops[0]) else None
        facts = [f.occurred_at for s in visited for f in (s.arrival, s.departure) if f]
        dwelling = [
            s
            for s in visited
            if s.arrival is not None and s.departure is None and s.arrival.occurred_at == max(facts)
        ]  # arrived, not left, and nothing has happened anywhere since
        if dwelling:
            stop = dwelling[0]
            assert stop.arrival is not None
            place = self.place(stop.location_id)
            done = _minutes(self.day, stop.arrival.occurred_at) + stop.service_minutes
            return VehicleStart(
                vehicle,
                driver,
                (place.point.lat, place.point.lon),
                "stop",
                max(self.now, done),
                loads=stop is stops[0],
                load=load,
                dwelling=stop,
            )
        position, source, seen = self.depot, "warehouse", None
        for stop in visited:
            if stop.departure is not None and (seen is None or stop.departure.occurred_at > seen):
                place = self.place(stop.location_id)
                position, source = (place.point.lat, place.point.lon), "departure"
                seen = stop.departure.occurred_at
        if self.ledger.vehicle(vehicle).device_id:
            fix = vehicle_history(self.ledger, vehicle, as_of=self.at)
            if fix is not None and (seen is None or fix.ping.occurred_at >= seen):
                position, source = (fix.ping.lat, fix.ping.lon), "ping"
        if load is not None and pickup is None:  # under way, the load on board
            return VehicleStart(vehicle, driver, position, source, self.now, False, load=load)
        km, minutes = _leg(position, self.depot)
        if km <= AT_WAREHOUSE_KM:
            km, minutes = 0.0, 0.0
        return VehicleStart(
            vehicle,
            driver,
            position,
            source,
            self.now + minutes + LOADING_MINUTES,
            True,
            approach_km=km,
            approach_minutes=minutes,
            loading_from=self.now + minutes,
            load=load,
            pickup=pickup,
        )

    def hos(self, start: VehicleStart) -> HoursOfService | None:
        """The driver's hours at T, less what the vehicle does before the model starts."""
        if start.driver is None:
            return None
        state = driver_history(self.ledger, start.driver, as_of=self.at)
        at_t = HoursOfService(
            drive_remaining=state.drive_remaining.total_seconds() / 60,
            duty_remaining=state.window_remaining.total_seconds() / 60,
            driven_since_break=max(
                0.0, BREAK_AFTER_DRIVING - state.until_break.total_seconds() / 60
            ),
            cycle_remaining=state.cycle_remaining.total_seconds() / 60,
        )
        before = start.ready - self.now
        if start.loading_from is not None:
            return _advance(at_t, drive=start.approach_minutes, duty=before, rest=LOADING_MINUTES)
        return _advance(at_t, drive=0.0, duty=before, rest=before)


def build_replan_request(
    ledger: Ledger, db: Database, day: date, warehouse: str, at: datetime
) -> Replan:
    """The re-plan of `day` for `warehouse` as things stood at `at`: the views say which loads,
    orders and vehicles there are (catch them up first); each load's state is folded from the
    ledger at `at`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("at must be timezone-aware", field="at", rule="timezone_required")
    now = ledger.clock()
    if not now - ledger.retention <= at <= now + ledger.future_skew:
        raise InvalidInput(
            f"a re-plan is made as of a time between {ledger.retention.days} days ago and now",
            field="at",
            rule="recent",
        )
    if abs(at.astimezone(UTC).date() - day) > timedelta(days=1):
        raise InvalidInput(
            f"a re-plan of {day} is made on that day (or the day before or after)",
            field="day",
            rule="near_at",
        )
    builder = _Builder(ledger, day, warehouse, at)
    depot = builder.depot_id
    under_way: list[tuple[LoadState, list[StopState]]] = []
    planned: dict[UUID, PlannedLoad] = {}
    planned_driver: dict[str, str | None] = {}
    busy_vehicles: set[str] = set()
    busy_drivers: set[str] = set()
    replaces: set[str] = set()
    left_alone: list[str] = []
    for (load_id,) in db.query(
        "SELECT load_id FROM load_board WHERE planned_day = %s AND status IN "
        f"({', '.join(repr(s) for s in _ACTIVE)}) ORDER BY reference",
        (day.isoformat(),),
    ):
        known = load_history(ledger, UUID(str(load_id)))
        if not known.stops or min(known.stops, key=lambda s: s.sequence).location_id != depot:
            continue  # another warehouse's load
        history = load_history(ledger, known.load_id, as_of=at)
        load = history.load
        if load is None:
            raise ReplanBeforeLastFact(
                f"load {known.reference} was planned after the re-plan's {at.isoformat()}",
                field="at",
                rule="after_last_fact",
            )
        stops = sorted(history.stops, key=lambda s: s.sequence)
        plan_id = ledger.load(load.load_id).plan_id
        record = ledger.find_plan(plan_id) if plan_id else None
        routes = record.routes if record else ()
        route = next((r for r in routes if r.load_reference == load.reference), None)
        vehicle = load.vehicle_code or (route.vehicle_code if route else None)
        driver = load.driver_code or (route.driver_code if route else None)
        shaped = stops[0].kind is StopKind.PICKUP and all(
            s.kind is StopKind.DELIVERY for s in stops[1:]
        )
        if load.status is LoadStatus.PLANNED and shaped and vehicle is not None:
            _nothing_after(known.stops, load.reference, at)
            planned[load.load_id] = PlannedLoad(load, vehicle, tuple(stops))
            planned_driver[vehicle] = driver
        elif load.status in _UNDER_WAY and shaped:
            _nothing_after(known.stops, load.reference, at)
            under_way.append((load, stops))
        elif load.status is not LoadStatus.PLANNED:
            left_alone.append(load.reference)
        else:
            continue  # planned by hand: not the planner's to move
        if plan_id:
            replaces.add(plan_id)
        if load.status is not LoadStatus.PLANNED:
            busy_vehicles.update([vehicle] if vehicle else [])
            busy_drivers.update([driver] if driver else [])
    fleet = {
        str(code): (
            str(carrier),
            {"kg": int(Decimal(str(kg))), "dm3": int(Decimal(str(m3)) * 1000)},
        )
        for code, carrier, kg, m3 in db.query(
            "SELECT vehicle_code, carrier_code, capacity_kg, capacity_m3 FROM fleet_vehicles "
            "ORDER BY vehicle_code"
        )
    }
    for load, stops in under_way:
        assert load.vehicle_code is not None
        start = builder.start(load.vehicle_code, load.driver_code, load, stops)
        skills = {"depot", *(f"tenant:{t}" for t in load.tenants)} if start.loads else set()
        builder.add_vehicle(start, fleet.get(load.vehicle_code, ("", {}))[1], skills)
        for stop in stops[1:]:
            if not _visited(stop):
                builder.existing_stop(load, stop, {f"vehicle:{load.vehicle_code}"})
    tenants: set[str] = set()
    for order_id, reference, tenant, start_at, end_at, service in db.query(
        "SELECT order_id, reference, tenant, window_start, window_end, service_minutes "
        "FROM orders WHERE day = %s AND warehouse = %s "
        "AND status IN ('allocated', 'picked', 'packed') AND on_hold = 0 AND load_id IS NULL "
        "ORDER BY reference",
        (day.isoformat(), warehouse),
    ):
        order = ledger.order(UUID(str(order_id)))
        tenants.add(str(tenant))
        builder.add_stop(
            f"{tenant}/{reference}",
            ReplanItem(
                builder.place(order.ship_to).code,
                LedgerWindow(_parse(str(start_at)), _parse(str(end_at))),
                int(service),
                (order.id,),
                (str(reference),),
            ),
            {"depot", f"tenant:{tenant}"},
        )
    for planned_load in planned.values():
        for stop in planned_load.stops[1:]:
            owners = {ledger.order(o).tenant for o in builder.orders_of(stop)}
            tenants.update(owners)
            builder.existing_stop(
                planned_load.state, stop, {"depot", *(f"tenant:{t}" for t in owners)}
            )
    pool: dict[str, list[str]] = {}
    for code, carrier in db.query(
        "SELECT driver_code, carrier_code FROM fleet_drivers ORDER BY driver_code"
    ):
        if str(code) not in busy_drivers:
            pool.setdefault(str(carrier), []).append(str(code))
    for code, (carrier, capacity) in fleet.items():
        if code in busy_vehicles:
            continue
        drivers = pool.get(carrier, [])
        driver = planned_driver.get(code)
        if driver not in drivers:
            driver = drivers[0] if drivers else None
        if driver is not None:
            drivers.remove(driver)
        start = builder.start(code, driver, None, ())
        builder.add_vehicle(start, capacity, {"depot", *(f"tenant:{t}" for t in tenants)})
    request = PlanRequest(
        locations=tuple(builder.locations),
        vehicles=tuple(builder.vehicles),
        stops=tuple(builder.stops),
        travel=TRAVEL,
        objective="distance",
        name=f"{day.isoformat()}/{warehouse}@{at.astimezone(UTC):%H:%M}",
    )
    return Replan(
        day,
        warehouse,
        at.astimezone(UTC),
        request,
        builder.starts,
        builder.items,
        planned,
        tuple(sorted(replaces)),
        tuple(left_alone),
    )


def _delivery(item: ReplanItem) -> StopPlan:
    return StopPlan(
        StopKind.DELIVERY,
        item.location_code,
        item.window,
        item.service_minutes,
        None,
        item.order_ids,
    )


def record_replan(
    ledger: Ledger, caller: Caller, replan: Replan, plan: Plan, time_limit: float
) -> str:
    """Records `plan` for `replan` through the ledger (idempotently: its id carries the inputs'
    fingerprint); returns the plan id."""
    digest = fingerprint(replan.request)
    plan_id = f"REPLAN-{replan.day:%Y%m%d}-{replan.warehouse}-{replan.at:%H%M}-{digest[:10]}"
    midnight = datetime.combine(replan.day, clock_time(0), tzinfo=UTC)

    def at(minutes: float) -> datetime:
        return midnight + timedelta(minutes=minutes)

    def timed(item: ReplanItem, visit: Visit, keep: bool) -> RouteStop:
        if keep:
            return RouteStop(item.stop_id, None, at(visit.arrival), at(visit.departure))
        return RouteStop(None, _delivery(item), at(visit.arrival), at(visit.departure))

    routes = {route.vehicle_id: route for route in plan.routes}
    left_out = {u.stop_id for u in plan.unassigned}
    revisions: list[RouteRevision] = []
    kept: set[UUID] = set()
    added = extra_km = extra_minutes = 0.0
    for vehicle in replan.request.vehicles:
        start = replan.starts[vehicle.id]
        route = routes.get(vehicle.id)
        served = [(visit, replan.items[visit.stop_id]) for visit in (route.visits if route else ())]
        stops: list[RouteStop] = []
        pickup: tuple[datetime, datetime] | None = None
        if start.loading_from is not None:
            pickup = (at(start.loading_from), at(start.ready))
        load_id: UUID | None = None
        reference = ""
        customer: str | None = None
        if start.load is not None:  # under way: its own stops and the orders that joined it
            load_id, reference = start.load.load_id, start.load.reference
            if start.pickup is not None and pickup is not None:
                stops.append(RouteStop(start.pickup.stop_id, None, *pickup))
            for visit, item in served:
                stops.append(timed(item, visit, item.load_id == load_id))
            stops += [
                RouteStop(item.stop_id)
                for stop_id, item in replan.items.items()
                if item.load_id == load_id and stop_id in left_out
            ]
        elif served and pickup is not None:
            own = next((k for k, p in replan.planned.items() if p.vehicle == vehicle.id), None)
            orders = {o for _, item in served for o in item.order_ids}
            here = {item.stop_id for _, item in served}
            if own is not None and {s.stop_id for s in replan.planned[own].stops[1:]} <= here:
                load_id, reference = own, replan.planned[own].state.reference
                kept.add(own)
                stops.append(RouteStop(replan.planned[own].stops[0].stop_id, None, *pickup))
            else:
                added += 1
                reference = f"{plan_id}-{int(added):02d}"
                first = at(served[0][0].arrival)
                window = LedgerWindow(pickup[0], max(first, pickup[1]))
                loading = StopPlan(StopKind.PICKUP, replan.warehouse, window, LOADING_MINUTES)
                stops.append(RouteStop(None, loading, *pickup))
                owners = {ledger.order(o).tenant for o in orders}
                customer = next(iter(owners)) if len(owners) == 1 else None
            for visit, item in served:
                stops.append(timed(item, visit, load_id is not None and item.load_id == load_id))
        if not stops:
            continue
        extra_km += start.approach_km
        extra_minutes += start.approach_minutes
        revisions.append(
            RouteRevision(
                PlannedRoute(
                    vehicle_code=vehicle.id,
                    driver_code=start.driver,
                    load_reference=reference,
                    orders=tuple(ref for _, item in served for ref in item.references),
                    distance_km=round((route.distance if route else 0.0) + start.approach_km, 3),
                    drive_minutes=round(
                        (route.drive_minutes if route else 0.0) + start.approach_minutes, 1
                    ),
                    starts_at=replan.at,
                    ends_at=at(route.end_time if route else start.ready),
                ),
                load_id,
                tuple(stops),
                customer,
            )
        )
    unplaced = [
        UnplacedOrder(reference, u.reason, u.detail)
        for u in plan.unassigned
        for reference in (replan.items[u.stop_id].references or (u.stop_id,))
    ]
    b = plan.breakdown
    figures = PlanFigures(
        objective=plan.objective,
        distance_km=round(b.distance + extra_km, 3),
        duty_minutes=round(b.time, 1),
        drive_minutes=round(b.drive + extra_minutes, 1),
        vehicles=b.vehicles,
        cost=round(b.cost, 2),
        penalties=round(b.penalties, 2),
        engine=plan.engine,
        elapsed_seconds=round(plan.elapsed_seconds, 2),
        time_limit_seconds=time_limit,
    )
    superseded = [load_id for load_id in replan.planned if load_id not in kept]
    replan.position = ledger.record_replan(
        caller,
        plan_id=plan_id,
        day=replan.day,
        at=replan.at,
        fingerprint=digest,
        figures=figures,
        replaces=replan.replaces,
        routes=revisions,
        unplaced=unplaced,
        cancel=superseded,
    )
    replan.plan, replan.plan_id = plan, plan_id
    replan.cancelled = tuple(replan.planned[k].state.reference for k in superseded)
    return plan_id


def replan_day(
    ledger: Ledger,
    db: Database,
    caller: Caller,
    day: date,
    warehouse: str,
    *,
    at: datetime | None = None,
    time_limit: float = 10.0,
    workers: int = 2,
    progress: Callable[[Progress], None] | None = None,
) -> Replan:
    """Re-plans `day` for `warehouse` as things stand at `at` (default: now) and records it."""
    replan = build_replan_request(ledger, db, day, warehouse, at or ledger.clock())
    plan = solve(replan.request, time_limit=time_limit, workers=workers, progress=progress)
    record_replan(ledger, caller, replan, plan, time_limit)
    return replan
