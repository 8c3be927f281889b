"""The ETA policy: a policy that keeps predicted arrivals as stop facts, in event time.

It follows the global log. When a vehicle on a load gets pings, when a stop fact of one of
its loads lands (a reconciled arrival, a departure, a correction), when an appointment is
set, when a load is dispatched, or when its driver's duty status changes, it predicts the
arrival at each remaining stop of the vehicle's active loads (`ledger.eta.predict`) from the
log as it stood at the end of the batch: the last fix by event time (or a later stop fact),
the stops without a reconciled departure, the driver's Hours of Service at that moment, the
dwell learned at each location from the `stop_times` view, the travel model it was given,
and the vehicle's pace against that model on the stretches it drove for these loads. From the
fleet's latest reconciled stays and legs (the same views, ended before the moment predicted)
it learns a dwell prior, whether early trucks wait for the window, and a pace profile by leg
length and hour of day (the legs' driving minutes from their drivers' duty logs); from the
driver's past shifts, a habitual break. A vehicle on a load that has been silent for
`REFRESH` while the log went on is predicted again for the time the log has reached.

It records an `ETA_REPORTED` fact for a stop only when the prediction moved since the last
ETA it recorded there by more than a threshold (5 min, a third of the ±15 min an ETA is held
to, however far off the stop is), each new one naming the one it supersedes: every ETA shown
is kept without flooding the stop's stream. A late ping or a corrected arrival changes the inputs,
so the ETAs are derived again and a new fact is recorded when they moved.

Its position is tracked in the same transaction as the facts it emits, so a crash and a
restart neither lose nor duplicate an ETA. Given a database, it never reads past the
position the `stop_times` view has reached, so the dwell it learns covers the batch.
Streams are cached as they are read (the log is append-only, and every read is bounded by
a position), so a batch reads only what is new.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking

from ledger.application import Ledger
from ledger.drivers import DutyLog
from ledger.errors import NotFound
from ledger.eta import (
    Driven,
    DwellPrior,
    EarlyStay,
    EtaRules,
    PaceProfile,
    PastDwell,
    Position,
    StopEta,
    Stretch,
    Travel,
    UpcomingStop,
    dwell_prior,
    eta_detail,
    learned_habit,
    learned_pace,
    predict,
    remaining_stops,
    waits_for_window,
)
from ledger.events import Meta, Source
from ledger.history import DUTY_LOOKBACK_DAYS
from ledger.hos import Cycle, DutyChange, DutyStatus, HosRules, HosState
from ledger.loads import Load, LoadStatus
from ledger.log import LogRecord, iter_log
from ledger.stops import Stop, StopFact
from ledger.telematics import PingLog
from ledger.timeline import (
    LoadState,
    StopState,
    duty_changes,
    fold_driver,
    fold_load,
    fold_stop,
    pings_of,
    select,
)
from ledger.values import GeoPoint
from projections.db import Database
from projections.view import iso

__all__ = ["ACTOR", "POLICY", "REFRESH", "THRESHOLD", "EtaPolicy"]

POLICY = "eta-predictor"
ACTOR = "policy:eta"
#: A prediction that moved less than this since the last recorded one is not recorded. Flat:
#: a share of the time still to go let an ETA 2 h out stand 12 min off the prediction, and
#: that stacked on the prediction's own error an hour before the arrival.
THRESHOLD = timedelta(minutes=5)
#: How long before dispatch a vehicle's pings may still tell where it is for the load.
BEFORE_DISPATCH = timedelta(hours=2)
#: Loads dispatched this long before the vehicle's latest dispatch are no longer looked at.
LOOKBACK = timedelta(days=7)
#: A vehicle on a load silent this long (at the time the log has reached) is predicted again:
#: time passing moves the ETA of a truck that stays where it is, or is overdue.
REFRESH = timedelta(minutes=10)
#: Streams kept in memory, least recently used dropped first.
CACHED_STREAMS = 5000
_ACTIVE = frozenset({LoadStatus.DISPATCHED, LoadStatus.IN_TRANSIT})
_RETRIES = 3
_DWELL_SQL = (
    "SELECT arrived_at, departed_at, COALESCE(appointment_start, window_start) FROM stop_times "
    "WHERE location_id = %s AND arrived_at IS NOT NULL AND departed_at > arrived_at "
    "AND departed_at < %s ORDER BY departed_at DESC LIMIT %s"
)
#: The fleet's latest reconciled stays and legs the prior and the pace profile learn from.
FLEET_SAMPLES = 400
_FLEET_DWELLS_SQL = (
    "SELECT stop_id, location_id, arrived_at, departed_at, "
    "COALESCE(appointment_start, window_start) FROM stop_times "
    "WHERE arrived_at IS NOT NULL AND departed_at > arrived_at "
    "ORDER BY departed_at DESC LIMIT %s"
)
#: A truck this much before the window (or appointment) opened was early.
EARLY = timedelta(minutes=10)
_FLEET_LEGS_SQL = (
    "SELECT a.stop_id, b.stop_id, a.location_id, b.location_id, a.departed_at, b.arrived_at, "
    "l.driver_code FROM stop_times a "
    "JOIN stop_times b ON b.load_id = a.load_id AND b.sequence = a.sequence + 1 "
    "JOIN load_board l ON l.load_id = a.load_id "
    "WHERE a.departed_at IS NOT NULL AND b.arrived_at > a.departed_at "
    "ORDER BY b.arrived_at DESC LIMIT %s"
)

log = logging.getLogger(__name__)
_V = TypeVar("_V")


@dataclass(frozen=True)
class _Reported:
    fact_id: str
    eta: datetime


class _Streams:
    """Streams as read so far; each read fetches only the events after the last one seen."""

    def __init__(self, ledger: Ledger, size: int = CACHED_STREAMS):
        self.ledger = ledger
        self.size = size
        self._records: OrderedDict[UUID, list[LogRecord]] = OrderedDict()
        self._fixes: OrderedDict[UUID, tuple[int, Position | None]] = OrderedDict()

    def records(self, stream: UUID, upto: int | None = None) -> list[LogRecord]:
        """The stream's records (known at `upto`, when given)."""
        cached = self._records.pop(stream, [])
        after = cached[-1].position if cached else 0
        cached += iter_log(self.ledger, stream=stream, after=after)
        self._keep(self._records, stream, cached)
        return cached if upto is None else [r for r in cached if r.position <= upto]

    def last_fix(self, stream: UUID, upto: int) -> Position | None:
        """The last fix by event time in a device-day's pings known at `upto`."""
        read, best = self._fixes.pop(stream, (0, None))
        if read > upto:  # asked about an earlier moment than cached: read it afresh
            read, best = 0, None
        for ping, _, device in pings_of(
            iter_log(self.ledger, stream=stream, after=read, stop=upto)
        ):
            if best is None or ping.occurred_at > best.at:
                best = Position(
                    GeoPoint(ping.lat, ping.lon), ping.occurred_at, f"{device}:{ping.key}"
                )
        self._keep(self._fixes, stream, (upto, best))
        return best

    def _keep(self, cache: OrderedDict[UUID, _V], key: UUID, value: _V) -> None:
        cache[key] = value  # the most recently used last
        while len(cache) > self.size:
            cache.popitem(last=False)


class EtaPolicy:
    def __init__(
        self,
        ledger: Ledger,
        travel: Travel,
        *,
        db: Database | None = None,
        rules: EtaRules | None = None,
        threshold: timedelta = THRESHOLD,
        batch_size: int = 500,
    ):
        self.ledger = ledger
        self.travel = travel
        self.db = db
        self.rules = rules or EtaRules()
        self.threshold = threshold
        self.batch_size = batch_size
        self._streams = _Streams(ledger)
        self._vehicle_of_device: dict[str, str] = {}
        self._points: dict[UUID, GeoPoint] = {}
        # what the fleet teaches, read once a batch; each derived figure kept per cut-off
        # (departed, stay, arrived, opened): the stay as the service time when trucks wait
        self._fleet_dwells: list[tuple[datetime, PastDwell, datetime, datetime]] = []
        self._waits: dict[int, bool] = {}
        self._fleet_legs: list[tuple[datetime, Stretch]] = []
        self._priors: dict[int, DwellPrior] = {}
        self._profiles: dict[int, PaceProfile] = {}
        self._service: dict[UUID, float] = {}
        # vehicle → the moment of its last prediction (None: read from the load board first)
        self._watched: dict[str, datetime] | None = None
        self._stretches: dict[tuple[str, str, str, str], Stretch | None] = {}

    def position(self) -> int:
        return self.ledger.tracked_position(POLICY)

    # --- the batch --------------------------------------------------------------------------

    def run_once(self) -> int:
        """Processes one batch of the log; returns how many records it covered."""
        for _ in range(_RETRIES):
            try:
                return self._batch()
            except IntegrityError:
                # A writer touched one of the stops (or another predictor moved first):
                # decide again from the log as it stands now.
                log.info("a stop or the position moved under the ETA policy; batch redone")
        return 0

    def catch_up(self) -> int:
        total = 0
        while done := self.run_once():
            total += done
        return total

    def _batch(self) -> int:
        start = self.position()
        horizon = self._view_position()
        if horizon is not None and horizon <= start:
            return 0
        records = list(iter_log(self.ledger, after=start, stop=horizon, limit=self.batch_size))
        if not records:
            return 0
        upto = records[-1].position
        causes: dict[str, int] = {}
        for record in records:
            vehicle = self._vehicle_touched(record)
            if vehicle is not None:
                causes[vehicle] = record.position
        self._points = {}  # locations are read again each batch (they may have moved)
        reached = _reached(records, self.ledger.clock())
        silent = [
            vehicle
            for vehicle, predicted in self._watch().items()
            if vehicle not in causes and reached is not None and reached - predicted >= REFRESH
        ]
        if causes or silent:
            self._read_fleet(upto)
        changed: dict[UUID, Stop] = {}
        for vehicle, cause in causes.items():
            for stop in self._recompute(vehicle, cause, upto):
                changed[stop.id] = stop
        for vehicle in silent:
            assert reached is not None
            for stop in self._recompute(vehicle, upto, upto, refresh_at=reached):
                changed[stop.id] = stop
        self.ledger.save_tracked(Tracking(POLICY, upto), *changed.values())
        return len(records)

    def _watch(self) -> dict[str, datetime]:
        """The vehicles on active loads and when each was last predicted (after a restart,
        those of the load board, as if predicted long ago)."""
        if self._watched is None:
            self._watched = {}
            if self.db is not None:
                rows = self.db.query(
                    "SELECT vehicle_code FROM load_board WHERE status IN (%s, %s) "
                    "AND vehicle_code IS NOT NULL",
                    (LoadStatus.DISPATCHED.value, LoadStatus.IN_TRANSIT.value),
                )
                self._watched = {str(r[0]): datetime.min.replace(tzinfo=UTC) for r in rows}
        return self._watched

    def _view_position(self) -> int | None:
        """How far the `stop_times` view has read (None: no view, planned dwell only)."""
        if self.db is None:
            return None
        rows = self.db.query(
            "SELECT position FROM projection_positions WHERE name = %s", ("stop_times",)
        )
        return int(rows[0][0]) if rows else 0

    def _vehicle_touched(self, record: LogRecord) -> str | None:
        """The vehicle whose ETAs a record may move, if any."""
        event = record.event
        if isinstance(event, PingLog.PingsRecorded):
            return self._vehicle(event.device_id)
        if isinstance(event, Load.Dispatched):
            return event.vehicle_code
        if isinstance(event, DutyLog.DutyStatusChanged):
            return event.vehicle_code  # a change that names no vehicle waits for the pings
        if isinstance(event, Load.Replanned):  # a new sequence: the same truck, new ETAs
            load = fold_load(self._streams.records(record.stream, record.position))
            return load.vehicle_code if load is not None else None
        if isinstance(event, Stop.AppointmentSet | Stop.Replanned) or (
            isinstance(event, Stop.FactRecorded) and event.fact is not StopFact.ETA_REPORTED
        ):
            scheduled = self._streams.records(record.stream)[0].event
            assert isinstance(scheduled, Stop.Scheduled), "a stop's stream opens with it"
            load = fold_load(self._streams.records(scheduled.load_id, record.position))
            return load.vehicle_code if load is not None else None
        return None

    def _vehicle(self, device_id: str) -> str | None:
        known = self._vehicle_of_device.get(device_id)
        if known is None:
            try:
                known = self.ledger.device(device_id).vehicle_code
            except NotFound:
                return None
            self._vehicle_of_device[device_id] = known
        return known

    # --- one vehicle ------------------------------------------------------------------------

    def _recompute(
        self, vehicle: str, cause: int, upto: int, *, refresh_at: datetime | None = None
    ) -> list[Stop]:
        """Predicts the remaining stops of the vehicle's active loads, in dispatch order, and
        records the ETAs that moved; returns the stops it recorded on. With `refresh_at`, the
        prediction is made for that moment, when the vehicle has been silent since its last
        position for `REFRESH` or more."""
        loads = self._active_loads(vehicle, upto)
        watched = self._watch()
        if not loads:
            watched.pop(vehicle, None)
            return []
        load_of: dict[UUID, LoadState] = {}
        stops: list[StopState] = []
        upcoming: list[UpcomingStop] = []
        for load in loads:
            states = [fold_stop(self._streams.records(s, upto)) for s in load.stop_ids]
            known = sorted((s for s in states if s is not None), key=lambda s: s.sequence)
            load_of.update({s.stop_id: load for s in known})
            stops += known
            upcoming += remaining_stops(known, self._where(known))
        position = self._position(vehicle, loads, stops, upto) if upcoming else None
        if position is None:
            watched.pop(vehicle, None)  # nothing ahead, or nowhere yet: its news will tell
            return []
        now = position.at
        if refresh_at is not None:
            if refresh_at - position.at < REFRESH:
                return []  # not silent: its next news predicts it again
            now = refresh_at
        watched[vehicle] = now
        driver = loads[0].driver_code
        changes = self._duty(driver, now, upto)
        profile = self._profile(now)
        driven, under_way = self._driven(stops, position, changes, upcoming[0], profile)
        rules = self.rules
        if profile is None:  # the vehicle's pace against the model, the leg under way included
            pace = learned_pace([*driven, *([under_way] if under_way else [])], rules) or 1.0
            leg_pace = None
        else:  # against the fleet's: its legs so far, then the leg under way against that
            pace = learned_pace(driven, rules, prior_minutes=rules.pace_prior_minutes) or 1.0
            leg_pace = pace
            if under_way is not None:
                k = rules.leg_prior_minutes
                low, high = rules.pace_bounds
                own = (under_way.actual_minutes + k * pace) / (under_way.model_minutes + k)
                leg_pace = min(high, max(low, own))
        waits = self._waits_for_window(now)
        etas = predict(
            position,
            upcoming,
            now,
            self._dwell_history(upcoming, now, waits),
            self._hos(driver, changes, now),
            self.travel,
            rules=rules,
            pace=pace,
            started=any(
                s.arrival is not None or s.departure is not None
                for s in stops
                if s.load_id == load_of[upcoming[0].stop_id].load_id
            ),
            profile=profile,
            leg_km=self._leg_km(stops, upcoming[0]),
            leg_pace=leg_pace,
            dwell_prior=self._dwell_prior(now, waits),
            wait_for_window=waits,
            habit=learned_habit(duty_changes(changes), now, rules),
        )
        recorded = []
        for eta in etas:
            if not eta.arrived:
                stop = self._record(eta, load_of[eta.stop_id], cause)
                if stop is not None:
                    recorded.append(stop)
        return recorded

    def _active_loads(self, vehicle: str, upto: int) -> list[LoadState]:
        assigned = self.ledger.vehicle_loads(vehicle)
        if not assigned:
            return []
        latest = max(at for _, at in assigned)
        loads = []
        for load_id, dispatched in assigned:
            if dispatched < latest - LOOKBACK:
                continue
            load = fold_load(self._streams.records(load_id, upto))
            if load is not None and load.status in _ACTIVE and load.vehicle_code == vehicle:
                loads.append(load)
        return sorted(loads, key=lambda x: (x.dispatched_at or x.status_since, x.reference))

    def _where(self, stops: Sequence[StopState]) -> dict[UUID, GeoPoint]:
        for stop in stops:
            if stop.location_id not in self._points:
                location = self.ledger.location_by_id(stop.location_id)
                self._points[stop.location_id] = location.point
        return {s.location_id: self._points[s.location_id] for s in stops}

    def _position(
        self, vehicle: str, loads: Sequence[LoadState], stops: Sequence[StopState], upto: int
    ) -> Position | None:
        """The last fix by event time since shortly before dispatch, or the latest reconciled
        arrival or departure when that is later (the vehicle was at that stop then)."""
        begin = min(x.dispatched_at or x.status_since for x in loads) - BEFORE_DISPATCH
        device = self.ledger.vehicle(vehicle).device_id
        best: Position | None = None
        day = begin.date()
        while day <= (begin + LOOKBACK).date():
            fix = self._streams.last_fix(PingLog.create_id(device, day), upto)
            if fix is not None and fix.at >= begin and (best is None or fix.at > best.at):
                best = fix
            day += timedelta(days=1)
        points = self._where(stops)
        for stop in stops:
            for fact in (stop.arrival, stop.departure):
                if fact is not None and (best is None or fact.occurred_at > best.at):
                    best = Position(points[stop.location_id], fact.occurred_at, fact.fact_id)
        return best

    def _duty(self, driver: str | None, now: datetime, upto: int) -> list[LogRecord]:
        """The driver's duty records of the Hours-of-Service lookback known at `upto`."""
        if driver is None:
            return []
        last = now.date()
        records: list[LogRecord] = []
        for back in range(DUTY_LOOKBACK_DAYS, -1, -1):
            stream = DutyLog.create_id(driver, last - timedelta(days=back))
            records += self._streams.records(stream, upto)
        return select(records, as_of=now)

    def _hos(self, driver: str | None, records: list[LogRecord], now: datetime) -> HosState | None:
        """The driver's hours at `now` (as `ledger.history.driver_history` reads them)."""
        if driver is None:
            return None
        try:
            hours = self.ledger.driver(driver).cycle_hours
        except NotFound:
            return None
        cycle = Cycle.US_60_7 if hours == 60 else Cycle.US_70_8
        return fold_driver(records, now, HosRules(cycle=cycle))

    def _driven(
        self,
        stops: Sequence[StopState],
        position: Position,
        duty: list[LogRecord],
        heading: UpcomingStop,
        profile: PaceProfile | None = None,
    ) -> tuple[list[Driven], Driven | None]:
        """What the vehicle drove for these loads, oldest first, rests left out: each leg from
        a departure to the next arrival of the same load; then the leg under way, from the stop
        before the one it is heading for up to the position. With the fleet's `profile`, the
        modelled minutes are the fleet's for such a leg at that hour (the pace is then the
        vehicle's own against the fleet's)."""
        points = self._where(stops)
        # (from, to, left, came, the whole leg's end: its length is what the profile reads)
        legs: list[tuple[GeoPoint, GeoPoint, datetime, datetime, GeoPoint]] = []
        for before, after in pairwise(stops):
            if before.load_id != after.load_id:
                continue  # between two loads the vehicle may have gone anywhere
            if before.departure is not None and after.arrival is not None:
                left, came = before.departure.occurred_at, after.arrival.occurred_at
                if came > left:
                    goal = points[after.location_id]
                    legs.append((points[before.location_id], goal, left, came, goal))
        index = next(i for i, s in enumerate(stops) if s.stop_id == heading.stop_id)
        previous = stops[index - 1] if index > 0 else None
        on_a_leg = (
            heading.arrived_at is None
            and previous is not None
            and previous.load_id == stops[index].load_id
            and previous.departure is not None
            and position.at > previous.departure.occurred_at
        )
        if on_a_leg:
            assert previous is not None and previous.departure is not None
            left = previous.departure.occurred_at
            origin = points[previous.location_id]
            legs.append((origin, position.point, left, position.at, heading.point))
        if not legs:
            return [], None
        modelled = self.travel([p for a, b, _, _, _ in legs for p in (a, b)])[::2]
        wholes = (
            self.travel([p for a, _, _, _, e in legs for p in (a, e)])[::2]
            if profile is not None
            else modelled
        )
        changes = duty_changes(duty)
        driven = []
        for leg, whole, (origin, _, start, end, _) in zip(modelled, wholes, legs, strict=True):
            actual = _driving_minutes(changes, start, end)
            expected = leg.minutes
            if profile is not None:
                halfway = start + timedelta(minutes=actual / 2)
                expected *= profile.factor(whole.km, halfway, origin.lon)
            driven.append(Driven(expected, actual))
        return (driven[:-1], driven[-1]) if on_a_leg else (driven, None)

    def _leg_km(self, stops: Sequence[StopState], heading: UpcomingStop) -> float | None:
        """The travel model's km of the whole leg to the stop the vehicle is heading for, from
        the stop before it on the same load (None: no such stop)."""
        index = next(i for i, s in enumerate(stops) if s.stop_id == heading.stop_id)
        if index == 0 or stops[index - 1].load_id != stops[index].load_id:
            return None
        points = self._where(stops)
        [leg] = self.travel([points[stops[index - 1].location_id], heading.point])
        return leg.km

    # --- what the fleet teaches -------------------------------------------------------------

    def _read_fleet(self, upto: int) -> None:
        """The fleet's latest reconciled stays and legs from the views (as far as they have
        read), oldest first; the legs' driving minutes come from their drivers' duty logs."""
        self._priors, self._profiles = {}, {}
        if self.db is None:
            return
        self._waits = {}
        dwells = []
        for stop_id, location_id, arrived, departed, opened in self.db.query(
            _FLEET_DWELLS_SQL, (FLEET_SAMPLES,)
        ):
            came, left = datetime.fromisoformat(arrived), datetime.fromisoformat(departed)
            planned = self._planned_service(UUID(stop_id), upto)
            stay = PastDwell(UUID(location_id), planned, (left - came).total_seconds() / 60)
            dwells.append((left, stay, came, datetime.fromisoformat(opened)))
        self._fleet_dwells = dwells[::-1]
        legs = []
        for row in self.db.query(_FLEET_LEGS_SQL, (FLEET_SAMPLES,)):
            stretch = self._stretch(row, upto)
            if stretch is not None:
                legs.append((datetime.fromisoformat(row[5]), stretch))
        self._fleet_legs = legs[::-1]

    def _planned_service(self, stop_id: UUID, upto: int) -> float:
        if stop_id not in self._service:
            state = fold_stop(self._streams.records(stop_id, upto))
            self._service[stop_id] = float(state.service_minutes) if state else 0.0
        return self._service[stop_id]

    def _stretch(self, row: tuple[object, ...], upto: int) -> Stretch | None:
        """A leg of the fleet, stop to stop, as the travel model and the duty log see it (kept
        once read: a leg whose both ends are reconciled rarely moves)."""
        first, second, origin, target, departed, arrived = (str(x) for x in row[:6])
        driver = None if row[6] is None else str(row[6])
        key = (first, second, departed, arrived)
        if key not in self._stretches:
            left, came = datetime.fromisoformat(departed), datetime.fromisoformat(arrived)
            a, b = self._location(UUID(origin)), self._location(UUID(target))
            [leg] = self.travel([a, b])
            changes = duty_changes(self._duty(driver, came, upto))
            actual = _driving_minutes(changes, left, came)
            self._stretches[key] = Stretch(leg.km, leg.minutes, actual, left, a.lon)
        return self._stretches[key]

    def _location(self, location_id: UUID) -> GeoPoint:
        if location_id not in self._points:
            self._points[location_id] = self.ledger.location_by_id(location_id).point
        return self._points[location_id]

    def _dwell_prior(self, now: datetime, waits: bool) -> DwellPrior | None:
        """The fleet's dwell prior from the stays that ended before `now` (from the opening
        of the window on, when trucks wait for it)."""
        if self.db is None:
            return None
        known = bisect_left(self._fleet_dwells, now, key=lambda x: x[0])
        if known not in self._priors:
            stays = [
                replace(stay, minutes=_service_minutes(came, left, opened if waits else None))
                for left, stay, came, opened in self._fleet_dwells[:known]
            ]
            self._priors[known] = dwell_prior([d for d in stays if d.minutes > 0], self.rules)
        return self._priors[known]

    def _waits_for_window(self, now: datetime) -> bool:
        """Whether the fleet's trucks that came early waited for the window (or appointment)
        to open, by the early stays that ended before `now` (`ledger.eta.waits_for_window`)."""
        known = bisect_left(self._fleet_dwells, now, key=lambda x: x[0])
        if known not in self._waits:
            ratio = dwell_prior([d for _, d, _, _ in self._fleet_dwells[:known]], self.rules).ratio
            early = [
                EarlyStay(stay.planned, stay.minutes, (left - opened).total_seconds() / 60)
                for left, stay, came, opened in self._fleet_dwells[:known]
                if came <= opened - EARLY
            ]
            self._waits[known] = waits_for_window(early, ratio, self.rules)
        return self._waits[known]

    def _profile(self, now: datetime) -> PaceProfile | None:
        """The fleet's pace profile from the legs that ended before `now` (None: none yet)."""
        known = bisect_left(self._fleet_legs, now, key=lambda x: x[0])
        if not known:
            return None
        if known not in self._profiles:
            self._profiles[known] = PaceProfile(
                [s for _, s in self._fleet_legs[:known]], self.rules
            )
        return self._profiles[known]

    def _dwell_history(
        self, upcoming: Sequence[UpcomingStop], now: datetime, waits: bool = True
    ) -> dict[UUID, list[timedelta]]:
        """The last reconciled dwells at each location that ended before `now`, oldest first
        (from the opening of the window on, when trucks wait for it; whole minutes)."""
        if self.db is None:
            return {}
        history: dict[UUID, list[timedelta]] = {}
        for location_id in {s.location_id for s in upcoming}:
            rows = self.db.query(_DWELL_SQL, (str(location_id), iso(now), self.rules.dwell_samples))
            stays = [
                _service_minutes(
                    datetime.fromisoformat(came),
                    datetime.fromisoformat(left),
                    datetime.fromisoformat(opened) if waits else None,
                )
                for came, left, opened in reversed(rows)
            ]
            history[location_id] = [timedelta(minutes=m // 1) for m in stays if m > 0]
        return history

    # --- recording --------------------------------------------------------------------------

    def _record(self, eta: StopEta, load: LoadState, cause: int) -> Stop | None:
        """Records the ETA when it moved by more than the threshold since the last one."""
        last = self._last_reported(eta.stop_id)
        if last is not None and abs(eta.arrival - last.eta) <= self.threshold:
            return None
        meta = Meta(
            occurred_at=eta.made_at,
            actor=ACTOR,
            source=Source.SYSTEM,
            correlation_id=f"{POLICY}:{cause}",
            causation_id=str(cause),
            tenant=load.tenants[0] if len(load.tenants) == 1 else None,
        )
        stop = self.ledger.stop(eta.stop_id)
        stop.record_fact(
            meta,
            StopFact.ETA_REPORTED,
            eta_detail(eta, supersedes=last.fact_id if last else None),
        )
        return stop

    def _last_reported(self, stop_id: UUID) -> _Reported | None:
        """The latest ETA this policy recorded at the stop (whatever the batch's bound: its
        own facts may lie beyond it)."""
        last = None
        for record in self._streams.records(stop_id):
            event = record.event
            if (
                isinstance(event, Stop.FactRecorded)
                and event.fact is StopFact.ETA_REPORTED
                and event.meta.actor == ACTOR
            ):
                predicted = event.detail.eta
                if predicted is not None:
                    last = _Reported(f"{record.stream}:{record.version}", predicted)
        return last


def _reached(records: Sequence[LogRecord], clock: datetime) -> datetime | None:
    """How far in time the log has reached: the latest fix or duty change among the records
    (never past the clock)."""
    latest = None
    for record in records:
        event = record.event
        if isinstance(event, PingLog.PingsRecorded):
            moment = max((p.occurred_at for p in event.pings), default=None)
        elif isinstance(event, DutyLog.DutyStatusChanged) and record.meta is not None:
            moment = record.meta.occurred_at
        else:
            continue
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return None if latest is None else min(latest, clock)


def _service_minutes(came: datetime, left: datetime, opened: datetime | None) -> float:
    """Minutes at a stop, from the opening of its window on when given (trucks wait for it)."""
    begun = max(came, opened) if opened is not None else came
    return (left - begun).total_seconds() / 60


def _driving_minutes(changes: Sequence[DutyChange], start: datetime, end: datetime) -> float:
    """Minutes of [start, end] the duty log shows as driving (all of them without a log)."""
    ordered = sorted(
        (c for c in changes if c.occurred_at <= end), key=lambda c: (c.occurred_at, c.position)
    )
    if not ordered:
        return (end - start).total_seconds() / 60
    driving = timedelta(0)
    for change, following in zip(ordered, [*ordered[1:], None], strict=True):
        until = following.occurred_at if following is not None else end
        low, high = max(change.occurred_at, start), min(until, end)
        if change.status is DutyStatus.DRIVING and high > low:
            driving += high - low
    return driving.total_seconds() / 60
