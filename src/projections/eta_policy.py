"""The ETA policy: a policy that keeps predicted arrivals as stop facts, in event time.

It follows the global log. When a vehicle on a load gets pings, when a stop fact of one of
its loads lands (a reconciled arrival, a departure, a correction), when an appointment is
set, when a load is dispatched, or when its driver's duty status changes, it predicts the
arrival at each remaining stop of the vehicle's active loads (`ledger.eta.predict`) from the
log as it stood at the end of the batch: the last fix by event time (or a later stop fact),
the stops without a reconciled departure, the driver's Hours of Service at that moment, the
dwell learned at each location from the `stop_times` view, the travel model it was given,
and the vehicle's pace against that model on the stretches it drove for these loads.

It records an `ETA_REPORTED` fact for a stop only when the prediction moved since the last
ETA it recorded there by more than a threshold (5 min, or a tenth of the time still to go
when that is more), each new one naming the one it supersedes: every ETA shown is kept
without flooding the stop's stream. A late ping or a corrected arrival changes the inputs,
so the ETAs are derived again and a new fact is recorded when they moved.

Its position is tracked in the same transaction as the facts it emits, so a crash and a
restart neither lose nor duplicate an ETA. Given a database, it never reads past the
position the `stop_times` view has reached, so the dwell it learns covers the batch.
Streams are cached as they are read (the log is append-only, and every read is bounded by
a position), so a batch reads only what is new.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking

from ledger.application import Ledger
from ledger.drivers import DutyLog
from ledger.errors import NotFound
from ledger.eta import (
    Driven,
    EtaRules,
    Position,
    StopEta,
    Travel,
    UpcomingStop,
    eta_detail,
    learned_pace,
    predict,
    remaining_stops,
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

__all__ = ["ACTOR", "POLICY", "THRESHOLD", "EtaPolicy"]

POLICY = "eta-predictor"
ACTOR = "policy:eta"
#: A prediction that moved less than this since the last recorded one is not recorded …
THRESHOLD = timedelta(minutes=5)
#: … nor one that moved less than this share of the time still to go to the stop.
THRESHOLD_SHARE = 0.1
#: How long before dispatch a vehicle's pings may still tell where it is for the load.
BEFORE_DISPATCH = timedelta(hours=2)
#: Loads dispatched this long before the vehicle's latest dispatch are no longer looked at.
LOOKBACK = timedelta(days=7)
#: Streams kept in memory, least recently used dropped first.
CACHED_STREAMS = 5000
_ACTIVE = frozenset({LoadStatus.DISPATCHED, LoadStatus.IN_TRANSIT})
_RETRIES = 3
_DWELL_SQL = (
    "SELECT dwell_minutes FROM stop_times WHERE location_id = %s AND dwell_minutes IS NOT NULL "
    "AND departed_at < %s ORDER BY departed_at DESC LIMIT %s"
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
        threshold_share: float = THRESHOLD_SHARE,
        batch_size: int = 500,
    ):
        self.ledger = ledger
        self.travel = travel
        self.db = db
        self.rules = rules or EtaRules()
        self.threshold = threshold
        self.threshold_share = threshold_share
        self.batch_size = batch_size
        self._streams = _Streams(ledger)
        self._vehicle_of_device: dict[str, str] = {}
        self._points: dict[UUID, GeoPoint] = {}

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
        changed: dict[UUID, Stop] = {}
        for vehicle, cause in causes.items():
            for stop in self._recompute(vehicle, cause, upto):
                changed[stop.id] = stop
        self.ledger.save_tracked(Tracking(POLICY, upto), *changed.values())
        return len(records)

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
        if isinstance(event, Stop.AppointmentSet) or (
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

    def _recompute(self, vehicle: str, cause: int, upto: int) -> list[Stop]:
        """Predicts the remaining stops of the vehicle's active loads, in dispatch order, and
        records the ETAs that moved; returns the stops it recorded on."""
        loads = self._active_loads(vehicle, upto)
        if not loads:
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
        if not upcoming:
            return []
        position = self._position(vehicle, loads, stops, upto)
        if position is None:
            return []
        now = position.at
        driver = loads[0].driver_code
        changes = self._duty(driver, now, upto)
        etas = predict(
            position,
            upcoming,
            now,
            self._dwell_history(upcoming, now),
            self._hos(driver, changes, now),
            self.travel,
            rules=self.rules,
            pace=learned_pace(self._driven(stops, position, changes, upcoming[0]), self.rules)
            or 1.0,
            started=any(
                s.arrival is not None or s.departure is not None
                for s in stops
                if s.load_id == load_of[upcoming[0].stop_id].load_id
            ),
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
    ) -> list[Driven]:
        """What the vehicle drove for these loads, oldest first, rests left out: each leg from
        a departure to the next arrival of the same load, then the leg under way, from the stop
        before the one it is heading for up to the position."""
        points = self._where(stops)
        legs: list[tuple[GeoPoint, GeoPoint, datetime, datetime]] = []
        for before, after in pairwise(stops):
            if before.load_id != after.load_id:
                continue  # between two loads the vehicle may have gone anywhere
            if before.departure is not None and after.arrival is not None:
                left, came = before.departure.occurred_at, after.arrival.occurred_at
                if came > left:
                    legs.append((points[before.location_id], points[after.location_id], left, came))
        index = next(i for i, s in enumerate(stops) if s.stop_id == heading.stop_id)
        previous = stops[index - 1] if index > 0 else None
        if (
            heading.arrived_at is None
            and previous is not None
            and previous.load_id == stops[index].load_id
            and previous.departure is not None
            and position.at > previous.departure.occurred_at
        ):
            left = previous.departure.occurred_at
            legs.append((points[previous.location_id], position.point, left, position.at))
        if not legs:
            return []
        modelled = self.travel([p for a, b, _, _ in legs for p in (a, b)])[::2]
        changes = duty_changes(duty)
        return [
            Driven(leg.minutes, _driving_minutes(changes, start, end))
            for leg, (_, _, start, end) in zip(modelled, legs, strict=True)
        ]

    def _dwell_history(
        self, upcoming: Sequence[UpcomingStop], now: datetime
    ) -> dict[UUID, list[timedelta]]:
        """The last reconciled dwells at each location that ended before `now`, oldest first."""
        if self.db is None:
            return {}
        history: dict[UUID, list[timedelta]] = {}
        for location_id in {s.location_id for s in upcoming}:
            rows = self.db.query(_DWELL_SQL, (str(location_id), iso(now), self.rules.dwell_samples))
            history[location_id] = [timedelta(minutes=int(r[0])) for r in reversed(rows)]
        return history

    # --- recording --------------------------------------------------------------------------

    def _record(self, eta: StopEta, load: LoadState, cause: int) -> Stop | None:
        """Records the ETA when it moved by more than the threshold since the last one."""
        last = self._last_reported(eta.stop_id)
        if last is not None:
            limit = max(self.threshold, (eta.arrival - eta.made_at) * self.threshold_share)
            if abs(eta.arrival - last.eta) <= limit:
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
