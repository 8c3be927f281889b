"""Value objects events carry: windows, order lines, rates, geo points."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ledger.errors import InvalidInput
from ledger.events import aware, register_value_type

__all__ = ["GeoPoint", "OrderLine", "Rates", "ServiceLevel", "TimeWindow"]


@register_value_type
class ServiceLevel(enum.StrEnum):
    STANDARD = "standard"
    EXPEDITED = "expedited"
    APPOINTMENT = "appointment"


@register_value_type
@dataclass(frozen=True)
class TimeWindow:
    """A closed interval in world time; start ≤ end, both timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        aware(self.start, "window_start")
        aware(self.end, "window_end")
        if self.end < self.start:
            raise InvalidInput(
                "window_end must not be before window_start", field="window_end", rule="window"
            )

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@register_value_type
@dataclass(frozen=True)
class GeoPoint:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat <= 90.0:
            raise InvalidInput(f"lat {self.lat} out of range", field="lat", rule="-90..90")
        if not -180.0 <= self.lon <= 180.0:
            raise InvalidInput(f"lon {self.lon} out of range", field="lon", rule="-180..180")


@register_value_type
@dataclass(frozen=True)
class OrderLine:
    """One line of an order: a quantity of a sku, with its weight and volume."""

    line_no: int
    sku: str
    quantity: int
    weight_kg: Decimal = Decimal(0)
    volume_m3: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not self.sku:
            raise InvalidInput("sku must not be empty", field="sku", rule="required")
        if not 0 < self.quantity <= 1_000_000_000:
            raise InvalidInput(
                f"quantity must be between 1 and 10^9, got {self.quantity}",
                field="quantity",
                rule="1..10^9",
            )
        if self.weight_kg < 0 or self.volume_m3 < 0:
            raise InvalidInput("weight and volume must not be negative", field="weight_kg")


@register_value_type
@dataclass(frozen=True)
class Rates:
    """A rate card's terms (PRODUCT §6). Money is Decimal, never float."""

    currency: str = "USD"
    per_mile: Decimal = Decimal("2.50")
    minimum: Decimal = Decimal("350.00")
    fuel_surcharge_pct: Decimal = Decimal("0")
    stop_off: Decimal = Decimal("75.00")
    detention_free_minutes: int = 120
    detention_hourly: Decimal = Decimal("60.00")
    detention_increment_minutes: int = 15
    layover: Decimal = Decimal("250.00")
    tonu: Decimal = Decimal("200.00")
    accessorials: tuple[tuple[str, Decimal], ...] = ()

    def __post_init__(self) -> None:
        for name in ("per_mile", "minimum", "stop_off", "detention_hourly", "layover", "tonu"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} must not be negative", field=name, rule=">= 0")
        if self.detention_increment_minutes <= 0:
            raise InvalidInput(
                "detention_increment_minutes must be positive",
                field="detention_increment_minutes",
                rule="> 0",
            )
