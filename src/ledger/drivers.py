"""Driver duty logs (ELD duty status), one stream per driver per UTC day."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidInput
from ledger.events import LedgerEvent, Meta, aware, register_value_type
from ledger.hos import DutyStatus
from ledger.ids import natural_id

__all__ = ["DutyInput", "DutyLog", "DutyOrigin", "DutyStatus"]


register_value_type(DutyStatus)


@register_value_type
class DutyOrigin(enum.StrEnum):
    AUTOMATIC = "automatic"
    DRIVER_EDITED = "driver_edited"
    OTHER_USER = "other_user"


@dataclass(frozen=True)
class DutyInput:
    """One duty-status change as the ELD reported it."""

    driver_code: str
    occurred_at: datetime
    status: DutyStatus
    origin: DutyOrigin = DutyOrigin.AUTOMATIC
    vehicle_code: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not self.driver_code:
            raise InvalidInput("driver_code must not be empty", field="driver_code")
        aware(self.occurred_at)

    @property
    def service_day(self) -> date:
        return self.occurred_at.astimezone(UTC).date()


class DutyLog(Aggregate):
    """The duty-status changes of one driver on one UTC day."""

    class Event(LedgerEvent):
        pass

    class Opened(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        driver_code: str
        day: date

    class DutyStatusChanged(Event):
        driver_code: str
        status: DutyStatus
        origin: DutyOrigin
        vehicle_code: str | None
        note: str

    @staticmethod
    def create_id(driver_code: str, day: date) -> UUID:
        return natural_id("duty", driver_code, day.isoformat())

    @event(Opened)
    def __init__(self, meta: Meta, driver_code: str, day: date) -> None:
        self.driver_code = driver_code
        self.day = day
        self.keys: set[tuple[str, str]] = set()

    def record(self, meta: Meta, change: DutyInput) -> bool:
        """Records the change unless the same status at the same time is already here."""
        key = (change.occurred_at.astimezone(UTC).isoformat(), change.status.value)
        if key in self.keys:
            return False
        if change.origin is not DutyOrigin.AUTOMATIC:
            meta.require_reason("an edited duty status")
        self._changed(
            meta,
            change.driver_code,
            change.status,
            change.origin,
            change.vehicle_code,
            change.note,
        )
        return True

    @event(DutyStatusChanged)
    def _changed(
        self,
        meta: Meta,
        driver_code: str,
        status: DutyStatus,
        origin: DutyOrigin,
        vehicle_code: str | None,
        note: str,
    ) -> None:
        self.keys.add((meta.occurred_at.astimezone(UTC).isoformat(), status.value))
