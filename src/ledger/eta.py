"""Predicted arrivals at a vehicle's remaining stops (PRODUCT §8): a pure function.

From the vehicle's reconciled position (its last fix by event time), the planned sequence
still ahead (stops without a reconciled departure), travel times from a travel model, the
dwell expected at each stop and the rests its driver's Hours of Service force, `predict`
walks the route forward in time:

- driving: each leg takes the travel model's minutes × the vehicle's pace — actual over
  modelled driving minutes on its latest stretches, the leg under way included
  (`learned_pace`; 1, the model as it is, when unknown); with the fleet's `PaceProfile`
  (learned from its reconciled legs), × the fleet's factor for the leg's length and the hour
  it is driven, the pace then being the vehicle's own against the fleet's and the leg under
  way keeping its own;
- dwell: the median of the last reconciled dwells at the stop's location drawn toward the
  stop's planned service minutes (those alone when there is no history); with the fleet's
  `DwellPrior`, their geometric mean drawn toward the planned minutes scaled as the fleet's
  dwells run, by as much as the fleet's spreads say; service waits for the appointment, or
  the window, to open (as the planner schedules it, unless the fleet's early trucks are
  served at once); a vehicle already there longer than usual is expected to stay like the
  longer past visits;
- rests: a 30-min break when the driving left before the break runs out on a leg (a dwell of
  30 min or more counts as that break), a 10-h reset when the 11-h driving or the 14-h window
  runs out, a 34-h restart when the cycle does; a rest already under way when the prediction
  is made counts toward the first one, and a driver off duty on the way is on a break that
  lasts its 30 minutes; before the route starts, a driver on duty is doing the pre-trip
  inspection; a driver's habitual break (`learned_habit`, from past shifts) comes at its
  usual time when that finds the driver on the road, else at the start of the next leg;
- silence: a prediction may be made for a moment after the last fix (time passing moves the
  ETA of a vehicle that stays where it is, or is overdue);
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
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from ledger.errors import InvalidInput
from ledger.hos import DutyChange, DutyStatus, HosRules, HosState
from ledger.stops import FactDetail
from ledger.timeline import StopState
from ledger.values import GeoPoint, TimeWindow

__all__ = [
    "Driven",
    "Dwell",
    "DwellPrior",
    "DwellSource",
    "EarlyStay",
    "EtaRules",
    "Habit",
    "Leg",
    "PaceProfile",
    "PastDwell",
    "Position",
    "Rest",
    "RestKind",
    "StopEta",
    "Stretch",
    "Travel",
    "UpcomingStop",
    "dwell_prior",
    "eta_detail",
    "expected_dwell",
    "learned_habit",
    "learned_pace",
    "predict",
    "remaining_stops",
    "solar_hour",
    "waits_for_window",
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
    FLEET = "fleet"  # the planned minutes, scaled as the fleet's dwells run against theirs


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
    HABIT = "habit"  # the driver's usual break (a meal), which no rule forces


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
    # the planned service minutes count as this many dwells; None: as many as the fleet's
    # dwells say (`DwellPrior.weight`), 1 when nothing is learned
    planned_weight: float | None = None
    prior_locations: int = 5  # locations with dwells needed before the fleet's prior is used
    prior_weight_bounds: tuple[float, float] = (0.1, 4.0)
    tail_samples: int = 3  # past stays longer than the current one needed to read its end off
    # early stays more against waiting for the window than for it needed to tell the fleet's
    # early trucks are served at once (fewer: they wait, as the planner plans)
    served_at_once_votes: int = 2
    overstay_share: float = 0.2  # beyond every stay known: it lasts this share longer again
    base_margin: timedelta = timedelta(minutes=5)
    margin_per_km: timedelta = timedelta(seconds=15)
    dwell_margin: float = 0.25  # share of each dwell on the way added to the margin
    pace_stretches: int = 3  # the latest stretches driven that the pace is learned from
    pace_min_minutes: float = 15.0  # modelled driving they must add up to
    pace_bounds: tuple[float, float] = (0.5, 2.0)
    pace_prior_minutes: float = 30.0  # the vehicle's pace against the fleet's: pseudo-minutes
    leg_prior_minutes: float = 15.0  # the leg under way's own pace against the vehicle's
    profile_km_width: float = 0.35  # the fleet's pace: kernel width in log km …
    profile_hour_width: float = 1.0  # … and in hours of the (solar) day
    profile_prior: float = 1.0  # stretches' worth of weight the broader estimate counts as
    pre_trip: timedelta = timedelta(minutes=20)  # on duty before the route starts: inspection
    habit_days: int = 3  # past shifts needed to tell a driver's habitual break …
    habit_share: float = 0.75  # … the share of them with one …
    habit_spread: timedelta = timedelta(minutes=45)  # … starting this close to the usual time
    habit_break: tuple[timedelta, timedelta] = (timedelta(minutes=15), timedelta(hours=3))
    habit_grace: timedelta = timedelta(hours=2)  # not taken this long after its time: skipped
    hos: HosRules = field(default_factory=HosRules)

    def __post_init__(self) -> None:
        if self.dwell_samples < 1 or not 1 <= self.min_samples <= self.dwell_samples:
            raise InvalidInput(
                "need 1 <= min_samples <= dwell_samples", field="min_samples", rule="range"
            )
        if self.planned_weight is not None and self.planned_weight < 0:
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
    # what else the time from `made_at` to `arrival` is made of, in minutes:
    at_stops: float = 0.0  # dwell at the stops on the way (what is left of the current one)
    resting: float = 0.0  # rests the driver's hours force (or one under way)
    waiting: float = 0.0  # before the route: the pre-trip inspection

    def describe(self) -> str:
        """One line for a fact's note: what the figure rests on."""
        parts = [
            f"from {self.basis} at {self.made_at.isoformat()}",
            f"{self.km:.1f} km, {self.drive_minutes:.0f} min driving (pace {self.pace:.2f})",
            f"{self.at_stops:.0f} min at stops on the way, {self.resting:.0f} min resting, "
            f"{self.waiting:.0f} min waiting",
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
    prior: DwellPrior | None = None,
) -> Dwell:
    """The median of the last reconciled dwells at the stop's location (most recent last),
    drawn toward the stop's planned service minutes by `rules.planned_weight` (a few dwells
    are a weak guide); the planned minutes alone when there are too few dwells. For a
    vehicle already there `elapsed`, the median of the past dwells that lasted longer (none:
    it is about to leave).

    With a `prior` learned from the fleet's dwells, the planned minutes are first scaled by
    the fleet's ratio of dwell to plan and count as many dwells as the fleet's spread says;
    a vehicle already there is expected to stay like the fleet's stays that, against what
    was expected of them, lasted as long: read as a ratio and as minutes over, the shorter of
    the two (its log-normal tail when there are too few)."""
    recent = list(history.get(stop.location_id, ()))[-rules.dwell_samples :]
    planned = float(stop.service_minutes)
    if prior is None:
        if len(recent) < rules.min_samples:
            return Dwell(planned, DwellSource.PLANNED)
        if elapsed is not None:
            longer = [d for d in recent if d > elapsed] or [elapsed]
            return Dwell(_median_minutes(longer), DwellSource.LEARNED, len(recent))
        n = len(recent)
        weight = 1.0 if rules.planned_weight is None else rules.planned_weight
        minutes = (n * _median_minutes(recent) + weight * planned) / (n + weight)
        return Dwell(minutes, DwellSource.LEARNED, n)
    base = planned * prior.ratio
    n = len(recent) if len(recent) >= rules.min_samples else 0
    weight = prior.weight if rules.planned_weight is None else rules.planned_weight
    if n and base > 0:
        dwell = Dwell(_typical(recent, base, weight), DwellSource.LEARNED, n)
    elif n:
        dwell = Dwell(_median_minutes(recent), DwellSource.LEARNED, n)
    else:
        dwell = Dwell(base, DwellSource.FLEET)
    if elapsed is None or dwell.minutes <= 0:
        return dwell
    stayed = elapsed.total_seconds() / 60.0
    expected = dwell.minutes
    outlasting = [r for r in prior.residuals if r * expected > stayed]
    beyond = [x for x in prior.excesses if expected + x > stayed]
    readings = []
    if len(outlasting) >= rules.tail_samples:  # as long as the stays that lasted as long
        readings.append(statistics.median(outlasting) * expected)
    if len(beyond) >= rules.tail_samples:  # … by as much over what was expected of them
        readings.append(expected + statistics.median(beyond))
    if readings:  # a dock that keeps trucks waiting adds time: the ratio of a detention at a
        minutes = min(readings)  # short stop, scaled onto a long one, would read hours
    elif prior.residuals:  # longer than any known: the longer it lasted, the longer it lasts
        minutes = stayed * (1.0 + rules.overstay_share)
    else:  # nothing known yet: the median of the log-normal tail beyond `stayed`
        spread = prior.spread * math.sqrt(1.0 + 1.0 / (n + weight) if n + weight else 2.0)
        normal = statistics.NormalDist(math.log(expected), spread)
        share = normal.cdf(math.log(max(stayed, 1e-3)))
        minutes = math.exp(normal.inv_cdf(min(1.0 - 1e-9, (1.0 + share) / 2.0)))
    return Dwell(max(stayed, minutes), dwell.source, dwell.samples)


@dataclass(frozen=True)
class PastDwell:
    """A reconciled dwell at a location and the service minutes planned for that visit."""

    location_id: UUID
    planned: float
    minutes: float


@dataclass(frozen=True)
class DwellPrior:
    """What the fleet's dwells say about a stop before its own history does: dwells run at
    `ratio` × the planned service minutes, which count as `weight` dwells of the location's
    own; a visit's dwell spreads around its location's by `spread` (sd of the log); and
    `residuals`, each past dwell over what was expected of it, sorted, and `excesses`, the
    minutes by which each lasted longer than expected (the longest stays: a dock that keeps a
    truck waiting adds time rather than multiplying it)."""

    ratio: float = 1.0
    weight: float = 1.0
    spread: float = 0.3
    residuals: tuple[float, ...] = ()
    excesses: tuple[float, ...] = ()


def dwell_prior(
    dwells: Sequence[PastDwell],
    rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
) -> DwellPrior:
    """Learns the fleet's prior from past dwells (oldest first), empirical Bayes on the log of
    dwell over plan: the median location's ratio, the spread within a location (pooled), and
    the spread between locations beyond it; their quotient is how many dwells the plan is
    worth. Too few locations: the planned minutes as they are, worth one dwell."""
    at: dict[UUID, list[PastDwell]] = {}
    for dwell in dwells:
        if dwell.planned > 0 and dwell.minutes > 0:
            at.setdefault(dwell.location_id, []).append(dwell)
    if len(at) < rules.prior_locations:
        return DwellPrior()
    logs = {
        place: [math.log(d.minutes / d.planned) for d in visits] for place, visits in at.items()
    }
    means = {place: statistics.fmean(values) for place, values in logs.items()}
    squares = sum(sum((v - means[p]) ** 2 for v in values) for p, values in logs.items())
    freedom = sum(len(values) - 1 for values in logs.values())
    within = squares / freedom if freedom >= rules.prior_locations else DwellPrior.spread**2
    between = statistics.pvariance(means.values()) - statistics.fmean(
        within / len(values) for values in logs.values()
    )
    low, high = rules.prior_weight_bounds
    weight = min(high, max(low, within / max(between, 1e-6)))
    ratio = math.exp(statistics.median(means.values()))
    residuals, excesses = [], []
    for visits in at.values():
        for i, visit in enumerate(visits):
            others = [timedelta(minutes=d.minutes) for d in visits[:i] + visits[i + 1 :]]
            others = others[-rules.dwell_samples :]
            base = visit.planned * ratio
            expected = _typical(others, base, weight) if others else base
            residuals.append(visit.minutes / expected)
            excesses.append(visit.minutes - expected)
    return DwellPrior(
        ratio, weight, math.sqrt(within), tuple(sorted(residuals)), tuple(sorted(excesses))
    )


def _typical(stays: Sequence[timedelta], base: float, weight: float) -> float:
    """A location's typical dwell: the geometric mean of its stays and the fleet's figure for
    its plan, which counts as `weight` stays (dwells spread multiplicatively)."""
    logs = [math.log(max(d.total_seconds() / 60.0, 0.5)) for d in stays]
    return math.exp((sum(logs) + weight * math.log(base)) / (len(logs) + weight))


def _median_minutes(spans: Sequence[timedelta]) -> float:
    return statistics.median(d.total_seconds() / 60.0 for d in spans)


@dataclass(frozen=True)
class EarlyStay:
    """A reconciled stay of a truck that came before the window (or appointment) opened: the
    planned service minutes, the whole stay, and the minutes from the opening to leaving."""

    planned: float
    minutes: float
    from_opening: float


def waits_for_window(
    early: Sequence[EarlyStay],
    ratio: float,
    rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
) -> bool:
    """Whether the fleet's early trucks wait for the window to open: each early stay votes for
    the reading under which it lasted closer to its planned minutes × the fleet's `ratio`; it
    takes `rules.served_at_once_votes` more against waiting than for it to overturn the
    planner's assumption that they wait (one stay served a little fast is no evidence)."""
    votes = 0
    for stay in early:
        if stay.planned <= 0 or stay.minutes <= 0:
            continue
        expected = math.log(stay.planned * ratio)
        waited = abs(math.log(stay.from_opening) - expected) if stay.from_opening > 0 else math.inf
        votes += 1 if waited < abs(math.log(stay.minutes) - expected) else -1
    return votes > -rules.served_at_once_votes


@dataclass(frozen=True)
class Driven:
    """A stretch the vehicle drove: the travel model's minutes for it, and the minutes it
    really drove (rests and stops left out)."""

    model_minutes: float
    actual_minutes: float


def learned_pace(
    driven: Sequence[Driven],
    rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    prior_minutes: float = 0.0,
) -> float | None:
    """Actual over modelled driving minutes on the latest stretches (most recent last), within
    bounds; None when they add up to too little driving to tell. With `prior_minutes`, both
    sums start from that many minutes (a pace of 1 until the driving says otherwise)."""
    recent = list(driven)[-rules.pace_stretches :]
    model = sum(d.model_minutes for d in recent)
    if model + prior_minutes < rules.pace_min_minutes or model + prior_minutes <= 0:
        return None
    low, high = rules.pace_bounds
    actual = sum(d.actual_minutes for d in recent)
    return min(high, max(low, (actual + prior_minutes) / (model + prior_minutes)))


@dataclass(frozen=True)
class Stretch:
    """A leg the fleet drove, stop to stop: the travel model's km and minutes for it, the
    minutes really driven (rests left out), when it started and the longitude it started at
    (for the hour of the day where it was)."""

    km: float
    model_minutes: float
    actual_minutes: float
    start: datetime
    lon: float


def solar_hour(at: datetime, lon: float) -> float:
    """The hour of the day by the sun at a longitude (local time without time zones)."""
    hours = at.timestamp() / 3600.0 + lon / 15.0
    return hours % 24.0


class PaceProfile:
    """How the fleet really drives against the travel model, by the leg's length and the hour
    of the day: a kernel-weighted mean of the log of actual over modelled minutes on the
    stretches known (rush hours and door-to-door speeds that grow with the trip's length are
    learned, not assumed), drawn toward the same mean over the length alone where the hour
    has few stretches, and that toward the model itself (1) where the length has few."""

    def __init__(
        self,
        stretches: Sequence[Stretch],
        rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
    ):
        self.rules = rules
        self._points = [
            (
                math.log(max(s.km, 0.5)),
                solar_hour(s.start + timedelta(minutes=s.actual_minutes / 2), s.lon),
                math.log(s.actual_minutes / s.model_minutes),
            )
            for s in stretches
            if s.model_minutes >= 1.0 and s.actual_minutes > 0
        ]
        self._memo: dict[tuple[int, int], float] = {}

    def __len__(self) -> int:
        return len(self._points)

    def factor(self, km: float, at: datetime, lon: float) -> float:
        """Actual over modelled minutes for a leg of `km` (the travel model's) driven at `at`."""
        if not self._points:
            return 1.0
        # memoised on a grid finer than the kernels: about 3 % in length, 6 min in the day
        key = (round(math.log(max(km, 0.5)) / 0.03), round(solar_hour(at, lon) * 10) % 240)
        if key not in self._memo:
            self._memo[key] = self._factor(key[0] * 0.03, key[1] / 10)
        return self._memo[key]

    def _factor(self, x: float, hour: float) -> float:
        rules = self.rules
        by_km = by_both = weight_km = weight_both = 0.0
        for xk, hk, yk in self._points:
            near = math.exp(-0.5 * ((x - xk) / rules.profile_km_width) ** 2)
            if near < 1e-4:
                continue
            dh = abs(hour - hk) % 24.0
            dh = min(dh, 24.0 - dh)
            when = math.exp(-0.5 * (dh / rules.profile_hour_width) ** 2)
            by_km += near * yk
            weight_km += near
            by_both += near * when * yk
            weight_both += near * when
        length = by_km / (weight_km + rules.profile_prior)
        log_ratio = (by_both + rules.profile_prior * length) / (weight_both + rules.profile_prior)
        low, high = rules.pace_bounds
        return min(high, max(low, math.exp(log_ratio)))


@dataclass(frozen=True)
class Habit:
    """A break the driver takes most shifts though no rule forces it (a meal): when it usually
    starts, as a time of the UTC day (a driver keeps to one time zone), and how long it lasts;
    `due` is today's, which the prediction plans for."""

    start: timedelta  # since midnight UTC
    length: timedelta
    due: datetime


def learned_habit(
    changes: Sequence[DutyChange],
    now: datetime,
    rules: EtaRules = EtaRules(),  # noqa: B008 - frozen, so a shared default is safe
) -> Habit | None:
    """The driver's habitual break from their past shifts (split by rests of 10 h or more):
    the first off-duty stretch of 15 min to 3 h in each; a habit when at least
    `rules.habit_share` of the last shifts (`rules.habit_days` or more) had one starting within
    `rules.habit_spread` of the usual time. None as well when the current shift already had
    its break, or its time is `rules.habit_grace` gone."""
    known = sorted((c for c in changes if c.occurred_at <= now), key=lambda c: c.occurred_at)
    if not known:
        return None
    stretches = [
        (c.status, c.occurred_at, n.occurred_at if n is not None else now)
        for c, n in zip(known, [*known[1:], None], strict=True)
    ]
    resting = (DutyStatus.OFF_DUTY, DutyStatus.SLEEPER_BERTH)
    shifts: list[list[tuple[DutyStatus, datetime, datetime]]] = [[]]
    for status, begin, end in stretches:
        if status in resting and end - begin >= rules.hos.reset_rest:
            if shifts[-1]:
                shifts.append([])
            continue
        shifts[-1].append((status, begin, end))
    current, past = shifts[-1], [x for x in shifts[:-1] if x][-7:]
    shortest, longest = rules.habit_break
    breaks = []
    for shift in past:
        # a rest before the shift's first work is not a break in it
        working = [i for i, (status, _, _) in enumerate(shift) if status not in resting]
        taken = next(
            (
                (begin, end)
                for status, begin, end in shift[working[0] if working else len(shift) :]
                if status in resting and shortest <= end - begin <= longest
            ),
            None,
        )
        breaks.append(taken)
    if len(past) < rules.habit_days:
        return None
    starts = [_time_of_day(begin) for begin, _ in (b for b in breaks if b is not None)]
    if not starts:
        return None
    usual = _circular_median(starts)
    near = [
        (begin, end)
        for begin, end in (b for b in breaks if b is not None)
        if _day_gap(_time_of_day(begin), usual) <= rules.habit_spread
    ]
    if len(near) < rules.habit_share * len(past):
        return None
    if not current or any(
        status in resting and end - begin >= shortest for status, begin, end in current[1:]
    ):
        return None  # off duty, or the break of this shift already taken
    if current[-1][0] in resting:
        return None  # resting now: the rest under way is the break
    midnight = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    due = min(
        (midnight + usual + timedelta(days=k) for k in (-1, 0, 1)),
        key=lambda d: abs(d - now),
    )
    if due < current[0][1] or now - due > rules.habit_grace:
        return None
    length = timedelta(seconds=statistics.median((e - b).total_seconds() for b, e in near))
    return Habit(usual, length, due)


def _time_of_day(at: datetime) -> timedelta:
    utc = at.astimezone(UTC)
    return utc - datetime.combine(utc.date(), datetime.min.time(), tzinfo=UTC)


def _day_gap(a: timedelta, b: timedelta) -> timedelta:
    gap = abs(a - b) % timedelta(days=1)
    return min(gap, timedelta(days=1) - gap)


def _circular_median(times: Sequence[timedelta]) -> timedelta:
    """The time of day closest, in total, to all of them (on the 24-h circle)."""
    return min(times, key=lambda t: sum((_day_gap(t, u) for u in times), timedelta(0)))


# --- the walk ----------------------------------------------------------------------------------


class _Clocks:
    """The driver's Hours of Service, run forward: what is left, and the rests they force."""

    def __init__(self, state: HosState | None, rules: HosRules, habit: Habit | None = None):
        self.rules = rules
        self.habit = habit
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
        """Drives `minutes` from `t`, resting whenever a limit is reached; the driver's
        habitual break comes when its time comes on the road (the leg then driven stops for
        it), or at the start of the first leg after it."""
        left = timedelta(minutes=minutes)
        rests: list[Rest] = []
        while left > _ZERO:
            if self.habit is not None and t >= self.habit.due:
                rest = self._habit(t, self.habit)
                rests.append(rest)
                t = rest.end
            allowed = min(self.drive, self.window, self.until_break, self.cycle)
            if self.habit is not None:
                allowed = min(allowed, self.habit.due - t)
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

    def credit(self, span: timedelta) -> None:
        """Gives back `span` of driving the state already counted (the walk drives it again)."""
        if self.enabled:
            self.drive += span
            self.window += span
            self.until_break += span
            self.cycle += span

    def _habit(self, t: datetime, habit: Habit) -> Rest:
        """The driver's usual break, on the road: it counts as the 30-min one when as long."""
        self.habit = None
        if self.enabled:
            self.window -= habit.length
            if habit.length >= self.rules.break_length:
                self.until_break = self.rules.break_after
        self.pausing_since = self.resting_since = None
        return Rest(RestKind.HABIT, t, t + habit.length)

    def _rest(self, t: datetime) -> Rest:
        self.habit = None  # a forced rest is the day's break
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
    profile: PaceProfile | None = None,
    leg_km: float | None = None,
    leg_pace: float | None = None,
    dwell_prior: DwellPrior | None = None,
    wait_for_window: bool = True,
    habit: Habit | None = None,
) -> list[StopEta]:
    """The arrival at each remaining stop, in sequence, starting from `position` at `now`.

    A stop the vehicle is at (`arrived_at` set) comes back with its reconciled arrival and
    `arrived=True`; the vehicle leaves it once its expected dwell is over (not before `now`).
    Legs take the travel model's minutes × `pace`. `hos_state` None means the driver's hours
    are unknown: no rest is forced. A route not `started` (no stop reached yet) whose driver
    is on duty, not driving, waits for the pre-trip inspection: it leaves `rules.pre_trip`
    after the driver came on duty. A driver off duty on the way is on a break that lasts its
    30 minutes.

    With a fleet's `profile`, each leg also takes its factor for the leg's length and the hour
    it is driven (`pace` is then the vehicle's own against the fleet's); the leg under way is
    read by its whole length, `leg_km`, when given, at its own `leg_pace` when given. With a
    `dwell_prior`, dwells are expected as `expected_dwell` reads them with it. Service waits
    for the appointment or window to open (the dwell counts from then) unless
    `wait_for_window` is False (a fleet whose early trucks are served at once). A driver's
    `habit` is a break taken on the road once its time has come.

    A `position` older than `now` is a vehicle silent since: at a stop, its stay is `now`
    long; stopped elsewhere, it leaves from there at `now`; driving (its driver's status
    says so), it drove on from the fix and reaches the next stop no earlier than `now`.
    """
    if pace <= 0:
        raise InvalidInput(f"pace must be positive, got {pace}", field="pace", rule="> 0")
    if not remaining:
        return []
    legs = travel([position.point, *(stop.point for stop in remaining)])
    if len(legs) != len(remaining):
        raise ValueError(f"travel gave {len(legs)} legs for {len(remaining)} stops")
    clocks = _Clocks(hos_state, rules.hos, habit)
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
    elif (
        position.at < now
        and hos_state is not None
        and hos_state.status is DutyStatus.DRIVING
        and remaining[0].arrived_at is None
    ):  # silent since its last fix, still driving: on from there, and not there before now
        t = position.at
        clocks.credit(now - position.at)
    not_before = now
    km = drive_minutes = 0.0
    at_stops = resting = 0.0
    waiting = _minutes(max(_ZERO, t - now)) - sum(_minutes(r.end - r.start) for r in under_way)
    margin = rules.base_margin
    result = []
    origin = position.point
    for n, (stop, leg) in enumerate(zip(remaining, legs, strict=True)):
        opens = (stop.appointment or stop.window) if wait_for_window else None
        elapsed = None
        if stop.arrived_at is not None:  # service began when the vehicle came, or it opened
            served = max(stop.arrived_at, opens.start) if opens is not None else stop.arrived_at
            elapsed = max(_ZERO, now - served)
        dwell = expected_dwell(stop, dwell_history, rules, elapsed=elapsed, prior=dwell_prior)
        rests: list[Rest] = []
        if stop.arrived_at is not None:
            arrival, arrived = stop.arrived_at, True
        else:
            minutes = leg.minutes * (leg_pace if n == 0 and leg_pace is not None else pace)
            if profile is not None:
                whole = leg_km if n == 0 and leg_km is not None else leg.km
                halfway = t + timedelta(minutes=minutes * profile.factor(whole, t, origin.lon) / 2)
                minutes *= profile.factor(whole, halfway, origin.lon)
            t, rests = clocks.drive_for(t, minutes)
            rests, under_way = under_way + rests, []
            resting += sum(_minutes(r.end - r.start) for r in rests)
            km += leg.km
            drive_minutes += minutes
            margin += rules.margin_per_km * leg.km
            t = max(t, not_before)
            arrival, arrived = t, False
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
                at_stops=at_stops,
                resting=resting,
                waiting=waiting,
            )
        )
        margin += timedelta(minutes=dwell.minutes) * rules.dwell_margin
        at_stops += _minutes(departure - max(t, arrival))  # waiting for a window included
        t = departure
        origin = stop.point
    return result


def _minutes(span: timedelta) -> float:
    return span.total_seconds() / 60.0


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
