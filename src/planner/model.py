"""The planner's vocabulary: plain frozen dataclasses, no solver types.

Units: time in minutes (floats allowed) on one clock shared by windows and shifts, distance in
kilometres (or the instance's own unit for Euclidean benchmarks), demand and capacity in whole
units per named dimension (e.g. ``weight`` in kg, ``volume`` in litres, ``pallets``).

Errors::

    PlannerError
    └── PlanRequestError   the request is malformed; ``field`` names the offending field
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

__all__ = [
    "BREAK_AFTER_DRIVING",
    "BREAK_MINUTES",
    "CYCLE_70H",
    "DRIVE_LIMIT",
    "DUTY_WINDOW",
    "REASONS",
    "Break",
    "Depot",
    "HoursOfService",
    "Location",
    "Objective",
    "ObjectiveBreakdown",
    "PickupDelivery",
    "Plan",
    "PlanRequest",
    "PlanRequestError",
    "PlannerError",
    "Reason",
    "Route",
    "Stop",
    "TimeWindow",
    "TravelKind",
    "TravelModel",
    "Unassigned",
    "Vehicle",
    "Visit",
]

Objective = Literal["distance", "time", "cost"]
Reason = Literal["window", "capacity", "hos", "unreachable", "skill"]
TravelKind = Literal["matrix", "euclidean", "haversine"]
REASONS: tuple[Reason, ...] = ("window", "capacity", "hos", "unreachable", "skill")

DRIVE_LIMIT = 660.0  # 11 h of driving per duty period
DUTY_WINDOW = 840.0  # 14 h on-duty window
BREAK_AFTER_DRIVING = 480.0  # a 30-minute break is due after 8 h of driving
BREAK_MINUTES = 30.0
CYCLE_70H = 4200.0  # 70 h in 8 days


class PlannerError(Exception):
    """Root of the planner's errors."""


class PlanRequestError(PlannerError, ValueError):
    """The plan request is malformed; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Location:
    """A place: planar coordinates (``x``, ``y``), geographic ones (``lat``, ``lon``), or none
    when the travel model is an explicit matrix."""

    id: str
    x: float | None = None
    y: float | None = None
    lat: float | None = None
    lon: float | None = None


Depot = Location
"""A depot is just a location that vehicles start or end at."""


@dataclass(frozen=True)
class TimeWindow:
    """Service must start within ``[start, end]`` minutes."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PlanRequestError("window", f"end {self.end} is before start {self.start}")


@dataclass(frozen=True)
class HoursOfService:
    """What is left of a driver's hours at the vehicle's shift start, in minutes.

    ``duty_remaining`` runs on the wall clock from the shift start (the 14-hour window does not
    stop for breaks); ``driven_since_break`` counts toward the next 30-minute break.
    """

    drive_remaining: float = DRIVE_LIMIT
    duty_remaining: float = DUTY_WINDOW
    driven_since_break: float = 0.0
    cycle_remaining: float = CYCLE_70H


@dataclass(frozen=True)
class Vehicle:
    """A vehicle and its driver for one shift."""

    id: str
    capacity: Mapping[str, int]
    start_location: int
    end_location: int
    shift_start: float = 0.0
    shift_end: float = 1440.0
    cost_per_km: float = 1.0
    cost_per_hour: float = 0.0
    skills: frozenset[str] = frozenset()
    hos: HoursOfService | None = None


@dataclass(frozen=True)
class Stop:
    """A visit to make: windows for the start of service (none means any time within the
    vehicle's shift), service minutes, and skills the vehicle must have.

    ``demand`` is delivered from the vehicle's start location, except for a pair's pickup, whose
    demand is collected there and carried to its delivery (which declares none of its own).
    """

    id: str
    location: int
    demand: Mapping[str, int] = field(default_factory=dict)
    windows: tuple[TimeWindow, ...] = ()
    service_minutes: float = 0.0
    required_skills: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PickupDelivery:
    """The pickup's load travels on one vehicle to the delivery, which comes later."""

    pickup: str
    delivery: str


@dataclass(frozen=True)
class TravelModel:
    """How travel is measured.

    - ``matrix``: ``distance_km`` and ``time_minutes`` given per location pair (``None`` means
      unreachable);
    - ``euclidean``: straight lines between ``x``/``y``, unrounded; time = distance ×
      ``minutes_per_unit`` (Solomon: 1);
    - ``haversine``: great circle between ``lat``/``lon`` × ``detour_factor``, driven at
      ``speed_kmh``.
    """

    kind: TravelKind = "euclidean"
    distance_km: tuple[tuple[float | None, ...], ...] | None = None
    time_minutes: tuple[tuple[float | None, ...], ...] | None = None
    minutes_per_unit: float = 1.0
    detour_factor: float = 1.3
    speed_kmh: float = 60.0


@dataclass(frozen=True)
class PlanRequest:
    """Everything the planner needs; vehicles and stops refer to locations by index."""

    locations: tuple[Location, ...]
    vehicles: tuple[Vehicle, ...]
    stops: tuple[Stop, ...]
    pairs: tuple[PickupDelivery, ...] = ()
    travel: TravelModel = field(default_factory=TravelModel)
    objective: Objective = "distance"
    vehicles_first: bool = False
    name: str = ""

    def validate(self) -> None:
        """Raise ``PlanRequestError`` naming the first inconsistent field."""
        n = len(self.locations)
        if self.objective not in ("distance", "time", "cost"):
            raise PlanRequestError("objective", f"unknown objective {self.objective!r}")
        for i, vehicle in enumerate(self.vehicles):
            where = f"vehicles[{i}]"
            for name, index in (
                ("start_location", vehicle.start_location),
                ("end_location", vehicle.end_location),
            ):
                if not 0 <= index < n:
                    raise PlanRequestError(f"{where}.{name}", f"no location {index}")
            if vehicle.shift_end < vehicle.shift_start:
                raise PlanRequestError(f"{where}.shift_end", "shift ends before it starts")
            for dim, cap in vehicle.capacity.items():
                if cap < 0:
                    raise PlanRequestError(f"{where}.capacity.{dim}", "must not be negative")
        seen: set[str] = set()
        for i, stop in enumerate(self.stops):
            where = f"stops[{i}]"
            if stop.id in seen:
                raise PlanRequestError(f"{where}.id", f"duplicate stop id {stop.id!r}")
            seen.add(stop.id)
            if not 0 <= stop.location < n:
                raise PlanRequestError(f"{where}.location", f"no location {stop.location}")
            if stop.service_minutes < 0:
                raise PlanRequestError(f"{where}.service_minutes", "must not be negative")
            for dim, qty in stop.demand.items():
                if qty < 0:
                    raise PlanRequestError(f"{where}.demand.{dim}", "must not be negative")
            ordered = sorted(stop.windows, key=lambda w: w.start)
            for j, (a, b) in enumerate(pairwise(ordered)):
                if b.start <= a.end:
                    raise PlanRequestError(f"{where}.windows[{j + 1}]", "windows overlap")
        paired: set[str] = set()
        by_id = {stop.id: (k, stop) for k, stop in enumerate(self.stops)}
        for i, pair in enumerate(self.pairs):
            for name, stop_id in (("pickup", pair.pickup), ("delivery", pair.delivery)):
                if stop_id not in seen:
                    raise PlanRequestError(f"pairs[{i}].{name}", f"no stop {stop_id!r}")
                if stop_id in paired:
                    raise PlanRequestError(f"pairs[{i}].{name}", f"{stop_id!r} is in two pairs")
                paired.add(stop_id)
            if pair.pickup == pair.delivery:
                raise PlanRequestError(f"pairs[{i}]", "pickup and delivery are the same stop")
            k, delivery = by_id[pair.delivery]
            own = {d: q for d, q in delivery.demand.items() if q}
            if own and own != {d: q for d, q in by_id[pair.pickup][1].demand.items() if q}:
                message = "a pair's delivery carries its pickup's load; leave it empty"
                raise PlanRequestError(f"stops[{k}].demand", message)
        self._validate_travel()

    def _validate_travel(self) -> None:
        travel, n = self.travel, len(self.locations)
        if travel.kind == "matrix":
            for name, matrix in (
                ("distance_km", travel.distance_km),
                ("time_minutes", travel.time_minutes),
            ):
                if matrix is None:
                    raise PlanRequestError(f"travel.{name}", "required for a matrix model")
                if len(matrix) != n or any(len(row) != n for row in matrix):
                    raise PlanRequestError(f"travel.{name}", f"must be {n} x {n}")
        elif travel.kind == "euclidean":
            for i, loc in enumerate(self.locations):
                if loc.x is None or loc.y is None:
                    raise PlanRequestError(f"locations[{i}]", "x and y are required")
        elif travel.kind == "haversine":
            for i, loc in enumerate(self.locations):
                if loc.lat is None or loc.lon is None:
                    raise PlanRequestError(f"locations[{i}]", "lat and lon are required")
            if travel.speed_kmh <= 0:
                raise PlanRequestError("travel.speed_kmh", "must be positive")
        else:
            raise PlanRequestError("travel.kind", f"unknown travel kind {travel.kind!r}")


@dataclass(frozen=True)
class Visit:
    """When a route reaches a stop (``arrival``), starts serving it and leaves."""

    stop_id: str
    location: int
    arrival: float
    start: float
    departure: float


@dataclass(frozen=True)
class Break:
    """A 30-minute (or longer) rest on the road or while waiting."""

    start: float
    minutes: float


@dataclass(frozen=True)
class Route:
    """One vehicle's day: it leaves its start at ``start_time`` and is back at ``end_time``."""

    vehicle_id: str
    visits: tuple[Visit, ...]
    start_time: float
    end_time: float
    distance: float
    drive_minutes: float
    breaks: tuple[Break, ...] = ()
    cost: float = 0.0


@dataclass(frozen=True)
class ObjectiveBreakdown:
    """The plan's figures: distance, time on duty, driving, vehicles used, money, and the
    penalties for stops left out (in the objective's unit)."""

    distance: float
    time: float
    drive: float
    vehicles: int
    cost: float
    penalties: float


@dataclass(frozen=True)
class Unassigned:
    """A stop the plan leaves out, and why."""

    stop_id: str
    reason: Reason
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    """The best plan found within the time limit; ``feasible`` means every stop is served."""

    routes: tuple[Route, ...]
    objective: Objective
    cost: float
    breakdown: ObjectiveBreakdown
    feasible: bool
    unassigned: tuple[Unassigned, ...]
    engine: str = "ortools"
    elapsed_seconds: float = 0.0
