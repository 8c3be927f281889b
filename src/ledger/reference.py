"""Reference data: accounts, locations, vehicles, drivers, carriers and rate cards.

Each is keyed by its code (a natural key), so registering the same code twice is the same
stream. Changes are events too: a charge can always be recomputed with the rates that
applied at the time.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidInput
from ledger.events import LedgerEvent, Meta
from ledger.ids import natural_id
from ledger.values import GeoPoint, Rates

__all__ = ["Account", "Carrier", "Driver", "Location", "RateCard", "Vehicle"]


class Account(Aggregate):
    """A shipper account: the tenant that owns orders and sees only its own."""

    class Event(LedgerEvent):
        pass

    class Opened(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        code: str
        name: str

    @staticmethod
    def create_id(code: str) -> UUID:
        return natural_id("account", code)

    @event(Opened)
    def __init__(self, meta: Meta, code: str, name: str) -> None:
        self.code = code
        self.name = name


class Location(Aggregate):
    """A place with a geofence: warehouse, customer dock, yard."""

    class Event(LedgerEvent):
        pass

    class Registered(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        code: str
        name: str
        address: str
        point: GeoPoint
        geofence_radius_m: float
        dock_notes: str
        opening_hours: str
        appointment_required: bool
        owner_tenant: str | None

    class Updated(Event):
        name: str
        address: str
        point: GeoPoint
        geofence_radius_m: float
        dock_notes: str
        opening_hours: str
        appointment_required: bool

    @staticmethod
    def create_id(code: str) -> UUID:
        return natural_id("location", code)

    @event(Registered)
    def __init__(
        self,
        meta: Meta,
        code: str,
        name: str,
        address: str,
        point: GeoPoint,
        geofence_radius_m: float,
        dock_notes: str,
        opening_hours: str,
        appointment_required: bool,
        owner_tenant: str | None,
    ) -> None:
        self.code = code
        self.owner_tenant = owner_tenant
        self._assign(
            name,
            address,
            point,
            geofence_radius_m,
            dock_notes,
            opening_hours,
            appointment_required,
        )

    @staticmethod
    def validate_radius(radius_m: float) -> float:
        if not 10.0 <= radius_m <= 5000.0:
            raise InvalidInput(
                f"geofence_radius_m must be between 10 and 5000, got {radius_m}",
                field="geofence_radius_m",
                rule="10..5000",
            )
        return radius_m

    def update(
        self,
        meta: Meta,
        *,
        name: str,
        address: str,
        point: GeoPoint,
        geofence_radius_m: float,
        dock_notes: str = "",
        opening_hours: str = "",
        appointment_required: bool = False,
    ) -> None:
        self.validate_radius(geofence_radius_m)
        if (
            name,
            address,
            point,
            geofence_radius_m,
            dock_notes,
            opening_hours,
            appointment_required,
        ) == self._values():
            return  # nothing changed: record nothing
        self._updated(
            meta,
            name,
            address,
            point,
            geofence_radius_m,
            dock_notes,
            opening_hours,
            appointment_required,
        )

    @event(Updated)
    def _updated(
        self,
        meta: Meta,
        name: str,
        address: str,
        point: GeoPoint,
        geofence_radius_m: float,
        dock_notes: str,
        opening_hours: str,
        appointment_required: bool,
    ) -> None:
        self._assign(
            name,
            address,
            point,
            geofence_radius_m,
            dock_notes,
            opening_hours,
            appointment_required,
        )

    def _assign(
        self,
        name: str,
        address: str,
        point: GeoPoint,
        geofence_radius_m: float,
        dock_notes: str,
        opening_hours: str,
        appointment_required: bool,
    ) -> None:
        self.name = name
        self.address = address
        self.point = point
        self.geofence_radius_m = geofence_radius_m
        self.dock_notes = dock_notes
        self.opening_hours = opening_hours
        self.appointment_required = appointment_required

    def _values(self) -> tuple[object, ...]:
        return (
            self.name,
            self.address,
            self.point,
            self.geofence_radius_m,
            self.dock_notes,
            self.opening_hours,
            self.appointment_required,
        )


class Carrier(Aggregate):
    """A trucking company that accepts tenders and runs loads."""

    class Event(LedgerEvent):
        pass

    class Registered(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        code: str
        name: str
        scac: str

    @staticmethod
    def create_id(code: str) -> UUID:
        return natural_id("carrier", code)

    @event(Registered)
    def __init__(self, meta: Meta, code: str, name: str, scac: str) -> None:
        self.code = code
        self.name = name
        self.scac = scac


class Vehicle(Aggregate):
    """A truck: capacity in weight, volume and pallets; the telematics device it carries."""

    class Event(LedgerEvent):
        pass

    class Registered(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        code: str
        carrier_code: str
        capacity_kg: Decimal
        capacity_m3: Decimal
        pallets: int
        device_id: str

    @staticmethod
    def create_id(code: str) -> UUID:
        return natural_id("vehicle", code)

    @event(Registered)
    def __init__(
        self,
        meta: Meta,
        code: str,
        carrier_code: str,
        capacity_kg: Decimal,
        capacity_m3: Decimal,
        pallets: int,
        device_id: str,
    ) -> None:
        self.code = code
        self.carrier_code = carrier_code
        self.capacity_kg = capacity_kg
        self.capacity_m3 = capacity_m3
        self.pallets = pallets
        self.device_id = device_id


class Driver(Aggregate):
    """A driver, with the Hours-of-Service cycle they work under (60 h/7 d or 70 h/8 d)."""

    class Event(LedgerEvent):
        pass

    class Registered(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        code: str
        first_name: str
        last_name: str
        carrier_code: str
        cycle_hours: int

    @staticmethod
    def create_id(code: str) -> UUID:
        return natural_id("driver", code)

    @event(Registered)
    def __init__(
        self,
        meta: Meta,
        code: str,
        first_name: str,
        last_name: str,
        carrier_code: str,
        cycle_hours: int,
    ) -> None:
        self.code = code
        self.first_name = first_name
        self.last_name = last_name
        self.carrier_code = carrier_code
        self.cycle_hours = cycle_hours


class RateCard(Aggregate):
    """A contract's rates; each publication is a version effective from a moment."""

    class Event(LedgerEvent):
        pass

    class Created(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        code: str
        carrier_code: str | None
        tenant: str | None

    class Published(Event):
        rates: Rates
        effective_from: datetime

    @staticmethod
    def create_id(code: str) -> UUID:
        return natural_id("ratecard", code)

    @event(Created)
    def __init__(self, meta: Meta, code: str, carrier_code: str | None, tenant: str | None) -> None:
        self.code = code
        self.carrier_code = carrier_code
        self.tenant = tenant
        self.versions: list[tuple[int, datetime, Rates]] = []

    def publish(self, meta: Meta, rates: Rates, effective_from: datetime) -> None:
        if (
            self.versions
            and self.versions[-1][2] == rates
            and (self.versions[-1][1] == effective_from)
        ):
            return  # the same terms again: nothing new
        self._published(meta, rates, effective_from)

    @event(Published)
    def _published(self, meta: Meta, rates: Rates, effective_from: datetime) -> None:
        self.versions.append((len(self.versions) + 1, effective_from, rates))

    def rates_at(self, moment: datetime) -> tuple[int, Rates] | None:
        """The version number and terms in force at `moment` (latest effective, then latest)."""
        best: tuple[int, datetime, Rates] | None = None
        for version, effective, rates in self.versions:
            if effective <= moment and (best is None or effective >= best[1]):
                best = (version, effective, rates)
        return None if best is None else (best[0], best[2])
