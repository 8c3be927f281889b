"""The GPS reconciler: a policy that turns pings into stop facts, in event time.

It follows the global log. When pings arrive for a device whose vehicle is on a load (or a
load is dispatched), it runs geofence detection over that vehicle's pings for the load, in
event-time order, against the load's stop geofences, and records what it finds as stop facts
(`source=gps`, naming the pings they came from). When a late ping moves an arrival or a
departure, it records a correction that names the fact it supersedes; nothing is edited.
When any stop fact lands, it checks the load's stops for contradictions (arrival at a stop
before the departure from the one before it) and raises an exception for a human.

Its position is tracked in the same transaction as the events it emits, so a crash and a
restart neither lose nor duplicate a derived fact.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking

from ledger.application import Ledger
from ledger.errors import NotFound
from ledger.events import Meta, Source
from ledger.geofence import DetectionRules, Fix, Geofence, Visit, detect_visits
from ledger.loads import ExceptionKind, Load, LoadStatus
from ledger.log import iter_log
from ledger.stops import FactDetail, Stop, StopFact
from ledger.telematics import PingLog
from ledger.timeline import fold_stop, load_conflicts, pings_of

__all__ = ["ACTOR", "POLICY", "Reconciler"]

POLICY = "gps-reconciler"
ACTOR = "policy:gps-reconciler"
#: How long before dispatch a vehicle's pings may still belong to the load (yard moves).
BEFORE_DISPATCH = timedelta(hours=2)
#: How long after the last window a late departure is still looked for.
AFTER_LAST_WINDOW = timedelta(hours=24)
CONFIDENCE = Decimal("0.9")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Current:
    fact_id: str
    occurred_at: datetime


class Reconciler:
    def __init__(
        self,
        ledger: Ledger,
        *,
        rules: DetectionRules | None = None,
        batch_size: int = 500,
    ):
        self.ledger = ledger
        self.rules = rules or DetectionRules()
        self.batch_size = batch_size
        self._vehicle_of_device: dict[str, str | float] = {}  # code, or unknown until

    def position(self) -> int:
        return self.ledger.tracked_position(POLICY)

    # --- the batch --------------------------------------------------------------------------

    def run_once(self) -> int:
        """Processes one batch of the log; returns how many records it covered."""
        start = self.position()
        records = list(iter_log(self.ledger, after=start, limit=self.batch_size))
        if not records:
            return 0
        upto = records[-1].position
        to_detect: dict[UUID, int] = {}
        to_check: dict[UUID, int] = {}
        for record in records:
            event = record.event
            if isinstance(event, PingLog.PingsRecorded):
                for load_id in self._loads_of_device(event.device_id):
                    to_detect[load_id] = record.position
            elif isinstance(event, Load.Dispatched):
                to_detect[record.stream] = record.position
            elif isinstance(event, Stop.FactRecorded):
                stop = self.ledger.stop(record.stream)
                to_check[stop.load_id] = record.position
        changed: dict[UUID, Stop | Load] = {}
        for load_id, cause in to_detect.items():
            for stop in self._detect(load_id, cause, upto):
                changed[stop.id] = stop
        for load_id, cause in to_check.items():
            load = self._check_conflicts(load_id, cause, upto)
            if load is not None:
                changed[load.id] = load
        try:
            self.ledger.save_tracked(Tracking(POLICY, upto), *changed.values())
        except IntegrityError:
            log.info("another reconciler moved first; this batch is dropped and redone")
            return 0
        return len(records)

    def catch_up(self) -> int:
        total = 0
        while done := self.run_once():
            total += done
        return total

    # --- detection ----------------------------------------------------------------------------

    def _vehicle(self, device_id: str) -> str | None:
        """The vehicle a device is installed in; an unknown device is asked again a minute
        later (it may be installed since), not on every batch of its pings."""
        known = self._vehicle_of_device.get(device_id)
        if isinstance(known, str):
            return known
        if known is not None and known > time.monotonic():
            return None
        try:
            vehicle = self.ledger.device(device_id).vehicle_code
        except NotFound:
            self._vehicle_of_device[device_id] = time.monotonic() + 60.0
            return None
        self._vehicle_of_device[device_id] = vehicle
        return vehicle

    def _loads_of_device(self, device_id: str) -> list[UUID]:
        vehicle = self._vehicle(device_id)
        if vehicle is None:
            return []
        return [load_id for load_id, _ in self.ledger.vehicle_loads(vehicle)]

    def _detect(self, load_id: UUID, cause: int, upto: int) -> list[Stop]:
        load = self.ledger.load(load_id)
        if load.vehicle_code is None or load.status is LoadStatus.CANCELLED:
            return []
        assigned = self.ledger.vehicle_loads(load.vehicle_code)
        dispatched = next((at for lid, at in assigned if lid == load_id), None)
        if dispatched is None:
            return []
        stops = [self.ledger.stop(stop_id) for stop_id in load.stop_ids]
        fences = [self._fence(stop) for stop in stops]
        device = self.ledger.vehicle(load.vehicle_code).device_id
        begin = dispatched - BEFORE_DISPATCH
        end = max(s.window.end for s in stops) + AFTER_LAST_WINDOW
        fixes = self._fixes(device, begin, end, upto)
        visits = detect_visits(fixes, fences, self.rules)
        changed = []
        for stop in stops:
            visit = next((v for v in visits if v.stop_id == str(stop.id)), None)
            if visit is not None and self._record(stop, load, visit, cause):
                changed.append(stop)
        return changed

    def _fence(self, stop: Stop) -> Geofence:
        location = self.ledger.location_by_id(stop.location_id)
        return Geofence(
            str(stop.id), location.point.lat, location.point.lon, location.geofence_radius_m
        )

    def _fixes(self, device: str, begin: datetime, end: datetime, upto: int) -> list[Fix]:
        fixes = []
        day = begin.date()
        while day <= min(end, begin + timedelta(days=7)).date():
            stream = PingLog.create_id(device, day)
            for ping, position, device_id in pings_of(
                iter_log(self.ledger, stream=stream, stop=upto)
            ):
                if begin <= ping.occurred_at <= end:
                    fixes.append(
                        Fix(
                            ping.occurred_at,
                            position,
                            ping.lat,
                            ping.lon,
                            ping.speed_kph,
                            f"{device_id}:{ping.key}",
                        )
                    )
            day += timedelta(days=1)
        return fixes

    def _record(self, stop: Stop, load: Load, visit: Visit, cause: int) -> bool:
        """Records the visit's arrival and departure where they differ from what the
        reconciler said before; says whether it recorded anything."""
        recorded = False
        wanted = [(StopFact.ARRIVED, visit.arrived_at, visit.arrival_ping_ids)]
        if visit.departed_at is not None:
            wanted.append((StopFact.DEPARTED, visit.departed_at, visit.departure_ping_ids))
        for kind, at, pings in wanted:
            current = self._current(stop, kind)
            if current is not None and current.occurred_at == at:
                continue
            meta = Meta(
                occurred_at=at,
                actor=ACTOR,
                source=Source.GPS,
                correlation_id=f"{POLICY}:{cause}",
                causation_id=str(cause),
                tenant=load.tenants[0] if len(load.tenants) == 1 else None,
            )
            detail = FactDetail(
                confidence=CONFIDENCE,
                derived_from=tuple(pings),
                supersedes=current.fact_id if current else None,
                note="geofence detection in event time",
            )
            stop.record_fact(meta, kind, detail)
            recorded = True
        return recorded

    @staticmethod
    def _current(stop: Stop, kind: StopFact) -> _Current | None:
        """The reconciler's own latest, not superseded, fact of this kind at the stop."""
        superseded = {d.supersedes for _, _, _, d in stop.facts if d.supersedes}
        current = None
        for version, fact, meta, _ in stop.facts:
            fact_id = stop.fact_id(version)
            if fact is kind and meta.actor == ACTOR and fact_id not in superseded:
                current = _Current(fact_id, meta.occurred_at)
        return current

    # --- contradictions -----------------------------------------------------------------------

    def _check_conflicts(self, load_id: UUID, cause: int, upto: int) -> Load | None:
        load = self.ledger.load(load_id)
        states = [
            s
            for s in (
                fold_stop(iter_log(self.ledger, stream=sid, stop=upto)) for sid in load.stop_ids
            )
            if s is not None
        ]
        conflicts = load_conflicts(states)
        open_ones = [
            x for x in load.exceptions.values() if x.kind is ExceptionKind.CONFLICTING_FACTS
        ]
        meta = Meta(
            occurred_at=self.ledger.clock(),
            actor=ACTOR,
            source=Source.SYSTEM,
            correlation_id=f"{POLICY}:{cause}",
            causation_id=str(cause),
            tenant=load.tenants[0] if len(load.tenants) == 1 else None,
        )
        if conflicts and not open_ones:
            before, after = conflicts[0]
            seq = {s.stop_id: s.sequence for s in states}
            load.raise_exception(
                meta,
                ExceptionKind.CONFLICTING_FACTS,
                after,
                "dispatch",
                f"arrival at stop {seq[after]} is before the departure from stop {seq[before]} "
                "(event time); check the facts and override the wrong one",
            )
            return load
        if not conflicts and open_ones:
            for exception in open_ones:
                load.resolve_exception(meta, exception.exception_id, "facts no longer conflict")
            return load
        return None
