"""Stops: a pickup or delivery at a location with a window; facts about it are recorded.

Facts from the world (arrived, departed, …) are always recorded, even late or contradictory;
reconciliation decides what they mean. An operator override is a fact with a reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidInput, StopAlreadyVisited
from ledger.events import LedgerEvent, Meta, Source, register_value_type
from ledger.ids import natural_id
from ledger.values import TimeWindow

__all__ = ["FactDetail", "Stop", "StopFact", "StopKind"]


@register_value_type
class StopKind(enum.StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


@register_value_type
class StopFact(enum.StrEnum):
    ARRIVED = "arrived"
    DEPARTED = "departed"
    LOADING_COMPLETED = "loading_completed"
    UNLOADING_COMPLETED = "unloading_completed"
    DELIVERY_ATTEMPTED = "delivery_attempted"
    REFUSED = "refused"
    POD_RECEIVED = "pod_received"
    ETA_REPORTED = "eta_reported"


@register_value_type
@dataclass(frozen=True)
class FactDetail:
    """What a fact says beyond its kind and time: evidence and what it replaces."""

    confidence: Decimal = Decimal("1")
    signer: str = ""
    document_hash: str = ""
    derived_from: tuple[str, ...] = ()
    supersedes: str | None = None
    note: str = ""
    eta: datetime | None = None  # for an ETA: the predicted arrival (occurred_at: when given)
    eta_window: TimeWindow | None = None

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.confidence <= Decimal(1):
            raise InvalidInput("confidence must be between 0 and 1", field="confidence")


class Stop(Aggregate):
    """One pickup or delivery of a load; its id is the load and its sequence number."""

    class Event(LedgerEvent):
        pass

    class Scheduled(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        load_id: UUID
        sequence: int
        kind: StopKind
        location_id: UUID
        window: TimeWindow
        appointment: TimeWindow | None
        service_minutes: int
        order_ids: tuple[UUID, ...]

    class AppointmentSet(Event):
        appointment: TimeWindow

    class FactRecorded(Event):
        fact: StopFact
        detail: FactDetail

    class Replanned(Event):
        plan_id: str
        sequence: int
        planned_arrival: datetime | None
        planned_departure: datetime | None

    @staticmethod
    def create_id(load_id: UUID, sequence: int) -> UUID:
        return natural_id("stop", str(load_id), str(sequence))

    @classmethod
    def schedule(
        cls,
        meta: Meta,
        *,
        load_id: UUID,
        sequence: int,
        kind: StopKind,
        location_id: UUID,
        window: TimeWindow,
        appointment: TimeWindow | None = None,
        service_minutes: int = 30,
        order_ids: tuple[UUID, ...] = (),
    ) -> Stop:
        if sequence < 1:
            raise InvalidInput("sequence starts at 1", field="sequence", rule=">= 1")
        if service_minutes < 0:
            raise InvalidInput("service_minutes must not be negative", field="service_minutes")
        created: Stop = cls(
            meta=meta,
            load_id=load_id,
            sequence=sequence,
            kind=kind,
            location_id=location_id,
            window=window,
            appointment=appointment,
            service_minutes=service_minutes,
            order_ids=order_ids,
        )
        return created

    @event(Scheduled)
    def __init__(
        self,
        meta: Meta,
        load_id: UUID,
        sequence: int,
        kind: StopKind,
        location_id: UUID,
        window: TimeWindow,
        appointment: TimeWindow | None,
        service_minutes: int,
        order_ids: tuple[UUID, ...],
    ) -> None:
        self.load_id = load_id
        self.sequence = sequence
        self.kind = kind
        self.location_id = location_id
        self.window = window
        self.appointment = appointment
        self.service_minutes = service_minutes
        self.order_ids = order_ids
        self.facts: list[tuple[int, StopFact, Meta, FactDetail]] = []
        self.plan_id: str | None = None
        self.planned_arrival: datetime | None = None
        self.planned_departure: datetime | None = None

    def set_appointment(self, meta: Meta, appointment: TimeWindow) -> None:
        self._appointment_set(meta, appointment)

    @event(AppointmentSet)
    def _appointment_set(self, meta: Meta, appointment: TimeWindow) -> None:
        self.appointment = appointment

    @property
    def visited(self) -> bool:
        """Whether anything has happened at the stop (an ETA is a prediction, not a visit)."""
        return any(fact is not StopFact.ETA_REPORTED for _, fact, _, _ in self.facts)

    def replan(
        self,
        meta: Meta,
        plan_id: str,
        sequence: int,
        planned_arrival: datetime | None,
        planned_departure: datetime | None,
    ) -> None:
        """A re-plan moves or re-times a stop only while nothing has happened at it."""
        if self.visited:
            raise StopAlreadyVisited(
                f"stop {self.sequence} of load {self.load_id} has recorded facts; "
                "a re-plan keeps it where it is",
                field="stop_id",
                rule="stop.replan",
            )
        if sequence < 1:
            raise InvalidInput("sequence starts at 1", field="sequence", rule=">= 1")
        self._replanned(meta, plan_id, sequence, planned_arrival, planned_departure)

    @event(Replanned)
    def _replanned(
        self,
        meta: Meta,
        plan_id: str,
        sequence: int,
        planned_arrival: datetime | None,
        planned_departure: datetime | None,
    ) -> None:
        self.plan_id = plan_id
        self.sequence = sequence
        self.planned_arrival = planned_arrival
        self.planned_departure = planned_departure

    def fact_id(self, version: int) -> str:
        return f"{self.id}:{version}"

    def record_fact(self, meta: Meta, fact: StopFact, detail: FactDetail) -> str:
        """Records a fact from the world; returns its id. Overrides must carry a reason."""
        if meta.source is Source.OPERATOR:
            meta.require_reason("an operator override")
        if fact is StopFact.POD_RECEIVED and not detail.signer:
            raise InvalidInput("a proof of delivery needs the signer", field="signer")
        if detail.supersedes is not None and detail.supersedes not in {
            self.fact_id(v) for v, *_ in self.facts
        }:
            raise InvalidInput(
                f"superseded fact {detail.supersedes} is not a fact of this stop",
                field="supersedes",
                rule="must_exist",
            )
        self._fact_recorded(meta, fact, detail)
        return self.fact_id(self.version)

    @event(FactRecorded)
    def _fact_recorded(self, meta: Meta, fact: StopFact, detail: FactDetail) -> None:
        self.facts.append((self.version + 1, fact, meta, detail))
