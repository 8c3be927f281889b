"""Predicted arrivals at a vehicle's remaining stops (PRODUCT §8): a pure function.

From the vehicle's reconciled position (its last fix by event time), the planned sequence
still ahead (stops without a reconciled departure), travel times from a travel model, the
dwell expected at each stop and the rests its driver's Hours of Service force, `predict`
walks the route forward in time:

- driving: each leg takes the travel model's minutes × the vehicle's pace — actual over
  modelled driving minutes on its latest stretches, the leg under way included
  (`learned_pace`; 1, the model as it is, when unknown);
- dwell: the median of the last reconciled dwells at the stop's location drawn toward the
  stop's planned service minutes (those alone when there is no history); service waits for
  the appointment, or the window, to open (as the planner schedules it); a vehicle already
  there longer than usual is expected to stay like the longer past visits;
- rests: a 30-min break when the driving left before the break runs out on a leg (a dwell of
  30 min or more counts as that break), a 10-h reset when the 11-h driving or the 14-h window
  runs out, a 34-h restart when the cycle does; a rest already under way when the prediction
  is made counts toward the first one, and a driver off duty on the way is on a break that
  lasts its 30 minutes; before the route starts, a driver on duty is doing the pre-trip
  inspection;
- uncertainty: the window around each arrival is a base margin, plus a margin per km driven
  to reach it, plus a share of each dwell on the way — it widens with distance.

How an ETA is recorded (`eta_detail`): an `ETA_REPORTED` stop fact whose `meta.occurred_at`
is the moment the prediction describes (`StopEta.made_at`: the time of the fix or fact it
starts from), whose `detail.eta` is the predicted arrival and `detail.eta_window` its window,
and which names the ETA it supersedes. The record time says when the ledger gave it, so "what
ETA did we give at 9:00" is the latest ETA fact known at 9:00 (`fold_stop` reads it).

Travel is a port (`Travel`): the ledger imports no planner, so the caller passes the
planner's travel model (haversine × detour factor at an average speed) through it.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from ledger.errors import InvalidInput
from ledger.hos import DutyStatus, HosRules, HosState
from ledger.stops import FactDetail
from ledger.timeline import StopState
from ledger.values import GeoPoint, TimeWindow

__all__ = [
    "Driven",
    "Dwell",
    "DwellSource",
    "EtaRules",
    "Leg",
    "Position",
    "Rest",
    "RestKind",
    "StopEta",
    "Travel",
    "UpcomingStop",
    "eta_detail",
    "expected_dwell",
    "learned_pace",
    "predict",
    "remaining_stops",
]

_ZERO = timedelta(0)


@dataclass(frozen=True)
class Leg:
    """One leg of driving: distance in km and time in minutes."""

    km: float
    minutes: float


class Travel(Protocol):
    """Driving distance and time for each consecutive pair of points of a path
    (`len(path) - 1` legs), e.g. the planner's travel model."""

    def __call__(self, path: Sequence[GeoPoint], /) -> Sequence[Leg]: ...


@dataclass(frozen=True)
class Position:
    """Where the vehicle is known to be, when, and what says so (a ping id or a fact id)."""

    point: GeoPoint
    at: datetime
    basis: str


@dataclass(frozen=True)
class UpcomingStop:
    """A stop still ahead in the planned sequence; `arrived_at` is set when the vehicle is
    there now (reconciled arrival, no departure yet)."""

    stop_id: UUID
    location_id: UUID
    point: GeoPoint
    service_minutes: int
    appointment: TimeWindow | None = None
    arrived_at: datetime | None = None
    window: TimeWindow | None = None


class DwellSource(enum.StrEnum):
    LEARNED = "learned"
    PLANNED = "planned"


@dataclass(frozen=True)
class Dwell:
    """The dwell expected at a stop and where the figure comes from."""

    minutes: float
    source: DwellSource
    samples: int = 0


class RestKind(enum.StrEnum):
    BREAK = "break_30m"
    RESET = "reset_10h"
    RESTART = "restart_34h"


@dataclass(frozen=True)
class Rest:
    """A rest the driver's Hours of Service force on the way."""

    kind: RestKind
    start: datetime
    end: datetime


@dataclass(frozen=True)
class EtaRules:
    """The prediction's settings: how dwell and pace are learned, how long a pre-trip
    inspection takes, how wide the window around an arrival is, and the Hours of Service."""

    dwell_samples: int = 10  # the last N reconciled dwells at a location
    min_samples: int = 1  # fewer than this: the planned service minutes
    planned_weight: float = 1.0  # the planned service minutes count as this many dwells
    base_margin: timedelta = timedelta(minutes=5)
    margin_per_km: timedelta = timedelta(seconds=15)
    dwell_margin: float = 0.25  # share of each dwell on the way added to the margin
    pace_stretches: int = 3  # the latest stretches driven that the pace is learned from
    pace_min_minutes: float = 15.0  # modelled driving they must add up to
    pace_bounds: tuple[float, float] = (0.5, 2.0)
    pre_trip: timedelta = timedelta(minutes=20)  # on duty before the route starts: inspection
    hos: HosRules = field(default_factory=HosRules)

    def __post_init__(self) -> None:
        if self.dwell_samples < 1 or not 1 <= self.min_samples <= self.dwell_samples:
            raise InvalidInput(
                "need 1 <= min_samples <= dwell_samples", field="min_samples", rule="range"
            )
        if self.planned_weight < 0:
            raise InvalidInput("planned_weight must not be negative", field="planned_weight")
        if self.base_margin < _ZERO or self.margin_per_km < _ZERO or self.dwell_margin < 0:
            raise InvalidInput("margins must not be negative", field="base_margin", rule=">= 0")
        low, high = self.pace_bounds
        if not 0 < low <= 1 <= high or self.pace_stretches < 1:
            raise InvalidInput("need 0 < low <= 1 <= high", field="pace_bounds", rule="range")


@dataclass(frozen=True)
class StopEta:
    """The predicted arrival at one stop, its window, and what it was computed from."""

    stop_id: UUID
    arrival: datetime
    window: TimeWindow
    departure: datetime
    km: float  # driving from the position to the stop
    drive_minutes: float
    dwell: Dwell  # expected at this stop
    rests: tuple[Rest, ...]  # forced between the previous stop (or the position) and this one
    basis: str  # the position's ping or fact id
    made_at: datetime
    arrived: bool = False  # the vehicle is there: `arrival` is the reconciled one
    pace: float = 1.0  # actual over modelled driving minutes it assumed

    def describe(self) -> str:
        """One line for a fact's note: what the figure rests on."""
        parts = [
            f"from {self.basis} at {self.made_at.isoformat()}",
            f"{self.km:.1f} km, {self.drive_minutes:.0f} min driving (pace {self.pace:.2f})",
            f"dwell here {self.dwell.minutes:.0f} min ({self.dwell.source.value}"
            + (f", {self.dwell.samples} samples)" if self.dwell.samples else ")"),
        ]
        parts += [f"{r.kind.value} {r.start.isoformat()}" for r in self.rests]
        return "; ".join(parts)


# --- inputs ------------------------------------------------------------------------------------


def remaining_stops(
    stops: Sequence[StopState], points: Mapping[UUID, GeoPoint]
) -> list[UpcomingStop]:
    """The planned sequence still ahead: stops without a reconciled departure, after the last
    stop the vehicle reached (a stop passed without any fact is not waited for)."""
    ordered = sorted(stops, key=lambda s: s.sequence)
    reached = [i for i, s in enumerate(ordered) if s.arrival is not None or s.departure is not None]
    first = reached[-1] if reached else 0
    ahead = []
    for state in ordered[first:]:
        if state.departure is not None:
            continue
        ahead.append(
            UpcomingStop(
                stop_id=state.stop_id,
                location_id=state.location_id,
                point=points[state.location_id],
                service_minutes=state.service_minutes,
                appointment=state.appointment,
                window=state.window,
                arrived_at=state.arrival.occurred_at if state.arrival else None,
            )
        )
    return ahead


def expected_dwell(
    stop: UpcomingStop,
    history: Mapping[UUID, Sequence[timedelta]],
    rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    elapsed: timedelta | None = None,
) -> Dwell:
    """The median of the last reconciled dwells at the stop's location (most recent last),
    drawn toward the stop's planned service minutes by `rules.planned_weight` (a few dwells
    are a weak guide); the planned minutes alone when there are too few dwells. For a
    vehicle already there `elapsed`, the median of the past dwells that lasted longer (none:
    it is about to leave)."""
    recent = list(history.get(stop.location_id, ()))[-rules.dwell_samples :]
    planned = float(stop.service_minutes)
    if len(recent) < rules.min_samples:
        return Dwell(planned, DwellSource.PLANNED)
    if elapsed is not None:
        longer = [d for d in recent if d > elapsed] or [elapsed]
        return Dwell(_median_minutes(longer), DwellSource.LEARNED, len(recent))
    n, weight = len(recent), rules.planned_weight
    minutes = (n * _median_minutes(recent) + weight * planned) / (n + weight)
    return Dwell(minutes, DwellSource.LEARNED, n)


def _median_minutes(spans: Sequence[timedelta]) -> float:
    return statistics.median(d.total_seconds() / 60.0 for d in spans)


@dataclass(frozen=True)
class Driven:
    """A stretch the vehicle drove: the travel model's minutes for it, and the minutes it
    really drove (rests and stops left out)."""

    model_minutes: float
    actual_minutes: float


def learned_pace(
    driven: Sequence[Driven],
    rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
) -> float | None:
    """Actual over modelled driving minutes on the latest stretches (most recent last), within
    bounds; None when they add up to too little driving to tell."""
    recent = list(driven)[-rules.pace_stretches :]
    model = sum(d.model_minutes for d in recent)
    if model < rules.pace_min_minutes:
        return None
    low, high = rules.pace_bounds
    return min(high, max(low, sum(d.actual_minutes for d in recent) / model))


# --- the walk ----------------------------------------------------------------------------------


class _Clocks:
    """The driver's Hours of Service, run forward: what is left, and the rests they force."""

    def __init__(self, state: HosState | None, rules: HosRules):
        self.rules = rules
        self.enabled = state is not None
        if state is None:
            self.drive = self.window = self.until_break = self.cycle = timedelta.max
            self.pausing_since: datetime | None = None
            self.resting_since: datetime | None = None
            return
        self.drive = state.drive_remaining
        self.window = state.window_remaining
        self.until_break = state.until_break
        self.cycle = state.cycle_remaining
        since = state.status_since
        paused = state.status is not DutyStatus.DRIVING
        resting = state.status in (DutyStatus.OFF_DUTY, DutyStatus.SLEEPER_BERTH)
        self.pausing_since = since if paused and since is not None else None
        self.resting_since = since if resting and since is not None else None

    def drive_for(self, t: datetime, minutes: float) -> tuple[datetime, list[Rest]]:
        """Drives `minutes` from `t`, resting whenever a limit is reached."""
        left = timedelta(minutes=minutes)
        rests: list[Rest] = []
        while left > _ZERO:
            allowed = min(self.drive, self.window, self.until_break, self.cycle)
            if allowed <= _ZERO:
                rest = self._rest(t)
                rests.append(rest)
                t = rest.end
                continue
            step = min(allowed, left)
            t += step
            left -= step
            self._spend(step, driving=True)
            self.pausing_since = self.resting_since = None
        return t, rests

    def at_stop(self, arrived: datetime, start: datetime, end: datetime) -> None:
        """Time at a stop from `start` to `end`: on duty, not driving; a stay of 30 min or
        more since `arrived` is the break."""
        if not self.enabled or end <= start:
            return
        self._spend(end - start, driving=False)
        if end - arrived >= self.rules.break_length:
            self.until_break = self.rules.break_after

    def _spend(self, span: timedelta, *, driving: bool) -> None:
        if not self.enabled:
            return
        self.window -= span
        self.cycle -= span
        if driving:
            self.drive -= span
            self.until_break -= span

    def _rest(self, t: datetime) -> Rest:
        rules = self.rules
        if self.cycle <= _ZERO:
            kind, length, since = RestKind.RESTART, rules.restart_rest, self.resting_since
        elif self.drive <= _ZERO or self.window <= _ZERO:
            kind, length, since = RestKind.RESET, rules.reset_rest, self.resting_since
        else:
            kind, length, since = RestKind.BREAK, rules.break_length, self.pausing_since
        end = max(t, since + length) if since is not None else t + length
        if kind is RestKind.BREAK:
            self.window -= end - t  # the 14-h window does not stop for a break
            self.until_break = rules.break_after
        else:
            self.drive, self.window = rules.drive_limit, rules.window
            self.until_break = rules.break_after
            if kind is RestKind.RESTART:
                self.cycle = rules.cycle.on_duty_limit
        self.pausing_since = self.resting_since = None
        return Rest(kind, t, end)


def predict(
    position: Position,
    remaining: Sequence[UpcomingStop],
    now: datetime,
    dwell_history: Mapping[UUID, Sequence[timedelta]],
    hos_state: HosState | None,
    travel: Travel,
    *,
    rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
    pace: float = 1.0,
    started: bool = True,
) -> list[StopEta]:
    """The arrival at each remaining stop, in sequence, starting from `position` at `now`.

    A stop the vehicle is at (`arrived_at` set) comes back with its reconciled arrival and
    `arrived=True`; the vehicle leaves it once its expected dwell is over (not before `now`).
    Legs take the travel model's minutes × `pace`. `hos_state` None means the driver's hours
    are unknown: no rest is forced. A route not `started` (no stop reached yet) whose driver
    is on duty, not driving, waits for the pre-trip inspection: it leaves `rules.pre_trip`
    after the driver came on duty. A driver off duty on the way is on a break that lasts its
    30 minutes.
    """
    if pace <= 0:
        raise InvalidInput(f"pace must be positive, got {pace}", field="pace", rule="> 0")
    if not remaining:
        return []
    legs = travel([position.point, *(stop.point for stop in remaining)])
    if len(legs) != len(remaining):
        raise ValueError(f"travel gave {len(legs)} legs for {len(remaining)} stops")
    clocks = _Clocks(hos_state, rules.hos)
    t = now
    under_way: list[Rest] = []  # a rest the driver is taking now, before the next leg
    if (
        not started
        and hos_state is not None
        and hos_state.status is DutyStatus.ON_DUTY
        and hos_state.status_since is not None
        and remaining[0].arrived_at is None
    ):
        t = max(now, hos_state.status_since + rules.pre_trip)
        clocks.at_stop(hos_state.status_since, now, t)
    elif (
        started
        and hos_state is not None
        and hos_state.status in (DutyStatus.OFF_DUTY, DutyStatus.SLEEPER_BERTH)
        and hos_state.status_since is not None
        and remaining[0].arrived_at is None
    ):  # off duty on the way: a break, which lasts its 30 minutes
        t = max(now, hos_state.status_since + rules.hos.break_length)
        clocks.at_stop(hos_state.status_since, now, t)
        if t > now:
            under_way.append(Rest(RestKind.BREAK, now, t))
    km = drive_minutes = 0.0
    margin = rules.base_margin
    result = []
    for stop, leg in zip(remaining, legs, strict=True):
        elapsed = None if stop.arrived_at is None else max(_ZERO, now - stop.arrived_at)
        dwell = expected_dwell(stop, dwell_history, rules, elapsed=elapsed)
        rests: list[Rest] = []
        if stop.arrived_at is not None:
            arrival, arrived = stop.arrived_at, True
        else:
            minutes = leg.minutes * pace
            t, rests = clocks.drive_for(t, minutes)
            rests, under_way = under_way + rests, []
            km += leg.km
            drive_minutes += minutes
            margin += rules.margin_per_km * leg.km
            arrival, arrived = t, False
        opens = stop.appointment or stop.window  # service starts when it opens, as planned
        start = max(arrival, opens.start) if opens is not None else arrival
        departure = max(t, start + timedelta(minutes=dwell.minutes))
        clocks.at_stop(arrival, max(t, arrival), departure)
        window = (
            TimeWindow(arrival, arrival)
            if arrived
            else TimeWindow(arrival - margin, arrival + margin)
        )
        result.append(
            StopEta(
                stop_id=stop.stop_id,
                arrival=arrival,
                window=window,
                departure=departure,
                km=km,
                drive_minutes=drive_minutes,
                dwell=dwell,
                rests=tuple(rests),
                basis=position.basis,
                made_at=now,
                arrived=arrived,
                pace=pace,
            )
        )
        margin += timedelta(minutes=dwell.minutes) * rules.dwell_margin
        t = departure
    return result


# --- the recorded form -------------------------------------------------------------------------


def eta_detail(
    eta: StopEta, *, supersedes: str | None, derived_from: tuple[str, ...] = ()
) -> FactDetail:
    """The detail of an `ETA_REPORTED` fact: the predicted arrival, its window, what it was
    computed from, and the ETA it replaces."""
    return FactDetail(
        eta=eta.arrival,
        eta_window=eta.window,
        derived_from=(eta.basis, *derived_from),
        supersedes=supersedes,
        note=eta.describe(),
    )
