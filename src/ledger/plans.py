"""Plans: the planner's chosen plan, recorded so the decision can be explained later — the
inputs' fingerprint, the objective broken down, each route, and the orders it left out and why.
A re-plan names the plans it replaces (`replaces`); older plans replace none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.events import LedgerEvent, Meta, register_value_type
from ledger.ids import natural_id

__all__ = ["PlanFigures", "PlanRecord", "PlannedRoute", "UnplacedOrder"]


@register_value_type
@dataclass(frozen=True)
class PlanFigures:
    """The objective broken down (distance km, duty and driving minutes, vehicles, cost,
    penalties for what was left out)."""

    objective: str
    distance_km: float
    duty_minutes: float
    drive_minutes: float
    vehicles: int
    cost: float
    penalties: float
    engine: str
    elapsed_seconds: float
    time_limit_seconds: float


@register_value_type
@dataclass(frozen=True)
class PlannedRoute:
    vehicle_code: str
    driver_code: str | None
    load_reference: str
    orders: tuple[str, ...]
    distance_km: float
    drive_minutes: float
    starts_at: datetime
    ends_at: datetime


@register_value_type
@dataclass(frozen=True)
class UnplacedOrder:
    order_reference: str
    reason: str
    detail: str


class PlanRecord(Aggregate):
    class Event(LedgerEvent):
        pass

    class Chosen(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        plan_id: str
        day: date
        fingerprint: str
        figures: PlanFigures
        routes: tuple[PlannedRoute, ...]
        unplaced: tuple[UnplacedOrder, ...]
        replaces: tuple[str, ...] = ()

    @staticmethod
    def create_id(plan_id: str) -> UUID:
        return natural_id("plan", plan_id)

    @event(Chosen)
    def __init__(
        self,
        meta: Meta,
        plan_id: str,
        day: date,
        fingerprint: str,
        figures: PlanFigures,
        routes: tuple[PlannedRoute, ...],
        unplaced: tuple[UnplacedOrder, ...],
        replaces: tuple[str, ...] = (),
    ) -> None:
        self.plan_id = plan_id
        self.day = day
        self.fingerprint = fingerprint
        self.figures = figures
        self.routes = routes
        self.unplaced = unplaced
        self.replaces = replaces
