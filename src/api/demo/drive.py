"""A truck's day, driven: where it is every 30 s and what its ELD records.

The driver comes on duty at the yard, drives to the warehouse, loads, delivers the route in
order along straight-line legs at a city speed, dwells at each dock for its service (longer
where the demo asks for detention), takes a 30-minute lunch break on the road, and drives
back to the yard. Pure: a function of the route, the extras and the random generator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from api.demo.planning import DETOUR, Route
from api.demo.world import Site, World, km_between, local
from ledger.hos import DutyStatus

__all__ = ["PING_EVERY", "Fix", "Trip", "Visit", "drive_day", "pre_route"]

PING_EVERY = timedelta(seconds=30)
PRE_TRIP = timedelta(minutes=15)
POST_TRIP = timedelta(minutes=15)
LOADING = timedelta(minutes=40)
LUNCH = timedelta(minutes=30)
_GPS_NOISE = 0.00004  # degrees, about 4 m


@dataclass(frozen=True)
class Fix:
    """One true position of the truck (before any device trouble)."""

    at: datetime
    lat: float
    lon: float
    speed_kph: float
    heading: float


@dataclass(frozen=True)
class Visit:
    """When the truck reached a dock, started and finished its work, and left."""

    arrival: datetime
    start: datetime
    finish: datetime
    departure: datetime


@dataclass
class Trip:
    route: Route
    on_duty: datetime
    pickup: Visit
    deliveries: list[Visit]
    back_at_yard: datetime
    off_duty: datetime
    fixes: list[Fix] = field(default_factory=list)
    duty: list[tuple[datetime, DutyStatus, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Leg:
    begin: datetime
    end: datetime
    origin: tuple[float, float]
    target: tuple[float, float]
    speed_kph: float  # road speed shown by the device; 0 for a stay


def pre_route(world: World, warehouse: str) -> timedelta:
    """On duty → leaving the warehouse loaded: pre-trip, the drive from the yard, loading."""
    yard, dock = world.yard_of(warehouse), world.warehouse(warehouse)
    drive = timedelta(hours=km_between(yard.point, dock.point) * DETOUR / 25.0)
    return PRE_TRIP + drive + LOADING


def _parking(rng: random.Random, site: Site) -> tuple[float, float]:
    """Where the truck stands at a site: somewhere near the middle of its geofence."""
    r = site.radius_m * 0.3 * rng.random()
    theta = rng.uniform(0, 2 * math.pi)
    dlat = r * math.cos(theta) / 111_000
    dlon = r * math.sin(theta) / (111_000 * math.cos(math.radians(site.lat)))
    return (site.lat + dlat, site.lon + dlon)


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    dlam = math.radians(b[1] - a[1])
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    return round((math.degrees(math.atan2(y, x)) + 360.0) % 360.0, 1)


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(seconds=round(rng.uniform(low, high) * 60))


class _Driver:
    """Accumulates the legs and duty changes of a day as it is driven."""

    def __init__(self, rng: random.Random, start: datetime, where: tuple[float, float]):
        self.rng = rng
        self.t = start
        self.where = where
        self.legs: list[_Leg] = []
        self.duty: list[tuple[datetime, DutyStatus, str]] = []

    def status(self, status: DutyStatus, note: str = "") -> None:
        if self.duty and self.duty[-1][1] is status:
            return
        self.duty.append((self.t, status, note))

    def stay(self, until: datetime) -> None:
        if until > self.t:
            self.legs.append(_Leg(self.t, until, self.where, self.where, 0.0))
            self.t = until

    def drive(self, target: tuple[float, float]) -> None:
        straight_kph = self.rng.uniform(22.0, 34.0)
        km = km_between(self.where, target)
        duration = max(timedelta(minutes=1), timedelta(hours=km / straight_kph))
        duration = timedelta(seconds=round(duration.total_seconds()))
        road_kph = round(straight_kph * DETOUR, 1)
        self.status(DutyStatus.DRIVING)
        self.legs.append(_Leg(self.t, self.t + duration, self.where, target, road_kph))
        self.t += duration
        self.where = target


def drive_day(
    world: World,
    route: Route,
    rng: random.Random,
    nominal_on_duty: datetime,
    *,
    extra_dwell: Mapping[int, timedelta],
    refused: int | None,
    appointments: Sequence[tuple[datetime, datetime] | None],
) -> Trip:
    """The day of the truck on `route`; delivery `i` dwells `extra_dwell[i]` longer."""
    yard = world.yard_of(route.warehouse)
    dock = world.warehouse(route.warehouse)
    # A route whose first window opens late lets the driver start later.
    on_duty = max(nominal_on_duty, route.start - pre_route(world, route.warehouse))
    on_duty = on_duty.replace(second=0, microsecond=0)
    d = _Driver(rng, on_duty, _parking(rng, yard))
    d.status(DutyStatus.ON_DUTY, "pre-trip inspection")
    d.stay(on_duty + PRE_TRIP)
    d.drive(_parking(rng, dock))
    d.status(DutyStatus.ON_DUTY, "loading at the dock")
    arrival = d.t
    finish = arrival + LOADING + _minutes(rng, -5, 15)
    d.stay(finish)
    d.stay(max(d.t + _minutes(rng, 1, 4), route.start))
    pickup = Visit(arrival, arrival, finish, d.t)
    lunch_taken = False
    deliveries: list[Visit] = []
    fences = [(s.customer.site.point, s.customer.site.radius_m) for s in route.stops]
    fences += [(dock.point, dock.radius_m), (yard.point, yard.radius_m)]
    for i, stop in enumerate(route.stops):
        site = stop.customer.site
        target = _parking(rng, site)
        if not lunch_taken and d.t >= local((11, 15)):
            lunch_taken = _lunch_on_the_way(d, target, fences)
        d.drive(target)
        d.status(DutyStatus.ON_DUTY, "at the customer")
        arrival = d.t
        window_start = (appointments[i] or stop.window)[0]
        start = max(arrival, window_start)
        if i == refused:
            finish = start + _minutes(rng, 6, 12)
        else:
            finish = start + stop.service_minutes * _minutes(rng, 0.8, 1.3)
            finish += extra_dwell.get(i, timedelta(0))
        finish = finish.replace(microsecond=0)
        d.stay(finish)
        d.stay(d.t + _minutes(rng, 1, 4))
        deliveries.append(Visit(arrival, start, finish, d.t))
    if not lunch_taken:
        _lunch_on_the_way(d, _parking(rng, yard), fences)
    d.drive(_parking(rng, yard))
    back = d.t
    d.status(DutyStatus.ON_DUTY, "post-trip inspection")
    d.stay(back + POST_TRIP)
    d.status(DutyStatus.OFF_DUTY, "end of shift")
    trip = Trip(route, on_duty, pickup, deliveries, back, d.t, duty=d.duty)
    trip.fixes = _sample(rng, d.legs, on_duty, d.t)
    return trip


def _lunch_on_the_way(
    d: _Driver, target: tuple[float, float], fences: Sequence[tuple[tuple[float, float], float]]
) -> bool:
    """A 30-minute break part way along the next leg, away from every geofence of the day."""
    origin = d.where
    for fraction in (0.5, 0.35, 0.65):
        point = (
            origin[0] + (target[0] - origin[0]) * fraction,
            origin[1] + (target[1] - origin[1]) * fraction,
        )
        if all(km_between(point, c) * 1000 > r + 250.0 for c, r in fences):
            d.drive(point)
            d.status(DutyStatus.OFF_DUTY, "30-minute break")
            d.stay(d.t + LUNCH)
            return True
    return False


def _sample(rng: random.Random, legs: Sequence[_Leg], begin: datetime, end: datetime) -> list[Fix]:
    """A fix every 30 s (from a device-specific second), with a few metres of GPS noise."""
    fixes: list[Fix] = []
    t = begin + timedelta(seconds=rng.randint(0, 29))
    k = 0
    heading = 0.0
    while t <= end and legs:
        while k < len(legs) - 1 and t >= legs[k].end:
            k += 1
        leg = legs[k]
        span = (leg.end - leg.begin).total_seconds()
        f = 1.0 if span <= 0 else min(1.0, max(0.0, (t - leg.begin).total_seconds() / span))
        lat = leg.origin[0] + (leg.target[0] - leg.origin[0]) * f
        lon = leg.origin[1] + (leg.target[1] - leg.origin[1]) * f
        moving = leg.speed_kph > 0 and f < 1.0
        if moving:
            heading = _bearing(leg.origin, leg.target)
            speed = max(5.5, round(leg.speed_kph + rng.uniform(-4.0, 4.0), 1))
        else:
            speed = 0.0
        fixes.append(
            Fix(
                t,
                round(lat + rng.uniform(-_GPS_NOISE, _GPS_NOISE), 6),
                round(lon + rng.uniform(-_GPS_NOISE, _GPS_NOISE), 6),
                speed,
                heading,
            )
        )
        t += PING_EVERY
    return fixes
