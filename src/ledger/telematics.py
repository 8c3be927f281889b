"""Vehicle telematics: devices and their pings, one stream per device per service day.

A ping is a fact from the world: recorded even late; a duplicate (same device and sequence,
or same device and fix time when there is no sequence) is counted, not stored twice.
Streams are per device per UTC day so they stay bounded.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Transcoding

from ledger.errors import InvalidInput
from ledger.events import LedgerEvent, Meta, aware, register_transcoding, register_value_type
from ledger.ids import natural_id

__all__ = ["Device", "Ping", "PingFlag", "PingInput", "PingLog", "PingSource", "ping_key"]


@register_value_type
class PingSource(enum.StrEnum):
    GPS = "gps"
    ELD = "eld"


@register_value_type
class PingFlag(enum.StrEnum):
    UNREGISTERED_DEVICE = "unregistered_device"
    BEYOND_RETENTION = "beyond_retention"


@dataclass(frozen=True)
class PingInput:
    """One position fix as a device reported it (validated on construction)."""

    device_id: str
    seq: int | None
    occurred_at: datetime
    lat: float
    lon: float
    speed_kph: float | None = None
    heading: float | None = None
    odometer_km: float | None = None
    source: PingSource = PingSource.GPS

    def __post_init__(self) -> None:
        if not self.device_id:
            raise InvalidInput("device_id must not be empty", field="device_id", rule="required")
        aware(self.occurred_at)
        if not -90.0 <= self.lat <= 90.0:
            raise InvalidInput(f"lat {self.lat} out of range", field="lat", rule="-90..90")
        if not -180.0 <= self.lon <= 180.0:
            raise InvalidInput(f"lon {self.lon} out of range", field="lon", rule="-180..180")
        if self.speed_kph is not None and self.speed_kph < 0:
            raise InvalidInput("speed_kph must not be negative", field="speed_kph", rule=">= 0")
        if self.heading is not None and not 0.0 <= self.heading <= 360.0:
            raise InvalidInput("heading must be within 0..360", field="heading", rule="0..360")
        if self.seq is not None and self.seq < 0:
            raise InvalidInput("seq must not be negative", field="seq", rule=">= 0")

    @property
    def service_day(self) -> date:
        return self.occurred_at.astimezone(UTC).date()


def ping_key(seq: int | None, occurred_at: datetime) -> str:
    """The duplicate key within a device: its sequence number, else its fix time."""
    return f"s{seq}" if seq is not None else f"t{occurred_at.astimezone(UTC).isoformat()}"


class Device(Aggregate):
    """A telematics device and the vehicle it is installed in."""

    class Event(LedgerEvent):
        pass

    class Installed(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        device_id: str
        vehicle_code: str

    @staticmethod
    def create_id(device_id: str) -> UUID:
        return natural_id("device", device_id)

    @event(Installed)
    def __init__(self, meta: Meta, device_id: str, vehicle_code: str) -> None:
        self.device_id = device_id
        self.vehicle_code = vehicle_code


@dataclass(frozen=True)
class Ping:
    """One recorded fix: its own world time, position, motion and the flags it was given."""

    seq: int | None
    occurred_at: datetime
    lat: float
    lon: float
    speed_kph: float | None
    heading: float | None
    odometer_km: float | None
    source: PingSource
    flags: tuple[PingFlag, ...] = ()

    @property
    def key(self) -> str:
        return ping_key(self.seq, self.occurred_at)


class _PingAsList(Transcoding):
    """Pings are stored by the hundred thousand: a positional list, not a keyed object."""

    type = Ping
    name = "ping"

    def encode(self, obj: Ping) -> list[Any]:
        return [
            obj.seq,
            obj.occurred_at.isoformat(),
            obj.lat,
            obj.lon,
            obj.speed_kph,
            obj.heading,
            obj.odometer_km,
            obj.source,  # a StrEnum: `json` writes it as its string
            list(obj.flags),
        ]

    def decode(self, data: list[Any]) -> Ping:
        seq, at, lat, lon, speed, heading, odometer, source, flags = data
        return Ping(
            seq,
            datetime.fromisoformat(at),
            lat,
            lon,
            speed,
            heading,
            odometer,
            PingSource(source),
            tuple(PingFlag(f) for f in flags),
        )


register_transcoding(_PingAsList(), rows="pings")


class PingLog(Aggregate):
    """The pings of one device on one UTC service day, recorded in batches."""

    class Event(LedgerEvent):
        pass

    class Opened(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        device_id: str
        day: date

    class PingsRecorded(Event):
        """Pings of one device received together; `meta.occurred_at` is the earliest fix."""

        device_id: str
        pings: tuple[Ping, ...]

    @staticmethod
    def create_id(device_id: str, day: date) -> UUID:
        return natural_id("pings", device_id, day.isoformat())

    @event(Opened)
    def __init__(self, meta: Meta, device_id: str, day: date) -> None:
        self.device_id = device_id
        self.day = day
        self.keys: set[str] = set()

    def has(self, ping: PingInput) -> bool:
        return ping_key(ping.seq, ping.occurred_at) in self.keys

    def record(
        self, meta: Meta, pings: list[tuple[PingInput, tuple[PingFlag, ...]]]
    ) -> tuple[Ping, ...]:
        """Records the pings that are not duplicates; returns those it recorded."""
        fresh: dict[str, Ping] = {}
        device_id, day = self.device_id, self.day
        for ping, flags in pings:
            if ping.device_id != device_id or ping.occurred_at.astimezone(UTC).date() != day:
                raise InvalidInput("ping does not belong to this device-day", field="device_id")
            key = f"s{ping.seq}" if ping.seq is not None else ping_key(None, ping.occurred_at)
            if key in self.keys or key in fresh:
                continue
            fresh[key] = Ping(
                ping.seq,
                ping.occurred_at,
                ping.lat,
                ping.lon,
                ping.speed_kph,
                ping.heading,
                ping.odometer_km,
                ping.source,
                flags,
            )
        recorded = tuple(fresh.values())
        if recorded:
            earliest = min(p.occurred_at for p in recorded)
            if earliest != meta.occurred_at:
                meta = dataclasses.replace(meta, occurred_at=earliest)
            self._recorded(meta, self.device_id, recorded)
        return recorded

    @event(PingsRecorded)
    def _recorded(self, meta: Meta, device_id: str, pings: tuple[Ping, ...]) -> None:
        self.keys.update([f"s{p.seq}" if p.seq is not None else p.key for p in pings])
