"""Geofence arrival and departure detection, folded in event time (PRODUCT §4).

A pure function of the pings: fixes are ordered by ``(occurred_at, position)`` and deduplicated by
``ping_id`` before anything else happens, so a backfilled hour of pings, a reordered feed or a
feed with duplicates gives exactly the visits a clean live feed gives.

How a visit is read from the ordered fixes, independently for each geofence:

- A *stay* opens at a fix inside the fence (haversine distance to the centre ≤ radius).
- The stay continues through fixes inside the fence and through *stationary* fixes outside it
  (speed known and ≤ the stationary threshold: GPS drift while parked at the dock). It ends at the
  first outside fix that is moving or has no speed.
- Arrival: the opening fix, once the vehicle has stayed for the dwell threshold, measured from
  the opening fix to a later fix *inside* the fence, with at least ``min_inside_fixes`` inside
  fixes. The fixes from the opening fix to the one that met both conditions established it.
  A stay that ends before that is a pass-through and yields nothing.
- Departure: the first fix outside the fence of the outside run that ended the stay; those fixes
  established it. Stationary fixes just outside followed by a return inside are drift, not a
  departure. A stay still open after the last fix has no departure yet.

Known limits, kept on purpose: fences are evaluated independently (overlapping fences can hold
simultaneous visits); a feed with no moving fix between two places (a coverage gap) cannot tell
that the vehicle left, so a departure is only known once a moving or speedless fix is outside.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.errors import InvalidInput

__all__ = [
    "EARTH_RADIUS_M",
    "DetectionRules",
    "Fix",
    "Geofence",
    "Visit",
    "detect_visits",
    "haversine_m",
]

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), in metres."""


@dataclass(frozen=True)
class Fix:
    """One GPS fix; ``position`` is its ledger log position, used only to break time ties."""

    occurred_at: datetime
    position: int
    lat: float
    lon: float
    speed_kph: float | None
    ping_id: str

    def __post_init__(self) -> None:
        _require_aware(self.occurred_at, "occurred_at")
        _require_coordinates(self.lat, self.lon)
        if self.speed_kph is not None and not (
            math.isfinite(self.speed_kph) and self.speed_kph >= 0.0
        ):
            raise InvalidInput(
                f"speed must be a finite non-negative number, got {self.speed_kph!r}",
                field="speed_kph",
            )


@dataclass(frozen=True)
class Geofence:
    """A circle around a stop: arrival and departure are judged against it."""

    stop_id: str
    lat: float
    lon: float
    radius_m: float

    def __post_init__(self) -> None:
        _require_coordinates(self.lat, self.lon)
        if not (math.isfinite(self.radius_m) and self.radius_m > 0.0):
            raise InvalidInput(
                f"radius must be a positive number of metres, got {self.radius_m!r}",
                field="radius_m",
            )

    def contains(self, fix: Fix) -> bool:
        """A fix is inside when its great-circle distance to the centre is at most the radius."""
        return haversine_m(self.lat, self.lon, fix.lat, fix.lon) <= self.radius_m


@dataclass(frozen=True)
class DetectionRules:
    """How long, how still and how many fixes it takes to call a stay an arrival."""

    dwell: timedelta = timedelta(minutes=3)
    stationary_kph: float = 5.0
    min_inside_fixes: int = 2

    def __post_init__(self) -> None:
        if self.dwell < timedelta(0):
            raise InvalidInput(f"dwell must not be negative, got {self.dwell}", field="dwell")
        if not (math.isfinite(self.stationary_kph) and self.stationary_kph >= 0.0):
            raise InvalidInput(
                f"stationary threshold must be >= 0, got {self.stationary_kph!r}",
                field="stationary_kph",
            )
        if self.min_inside_fixes < 1:
            raise InvalidInput(
                f"min_inside_fixes must be >= 1, got {self.min_inside_fixes!r}",
                field="min_inside_fixes",
            )


@dataclass(frozen=True)
class Visit:
    """A detected visit to a stop, naming the pings its arrival and departure come from."""

    stop_id: str
    arrived_at: datetime
    arrival_ping_ids: tuple[str, ...]
    departed_at: datetime | None
    departure_ping_ids: tuple[str, ...]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in decimal degrees."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = math.radians(lat2 - lat1)
    dlambda = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2.0) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2.0) ** 2
    # Rounding can push h a hair above 1 for antipodal points; asin would then raise.
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, h))))


def detect_visits(
    fixes: Iterable[Fix],
    fences: Sequence[Geofence],
    rules: DetectionRules = DetectionRules(),  # noqa: B008 - frozen, so a shared default is safe
) -> list[Visit]:
    """Visits to the fenced stops, derived from the fixes in event-time order."""
    _require_unique_stops(fences)
    ordered = _event_time_order(fixes)
    visits = [visit for fence in fences for visit in _visits_to(fence, ordered, rules)]
    return sorted(visits, key=lambda visit: (visit.arrived_at, visit.stop_id))


def _event_time_order(fixes: Iterable[Fix]) -> list[Fix]:
    """Fixes by (occurred_at, position), one per ping id: the earliest copy wins."""
    unique: list[Fix] = []
    seen: set[str] = set()
    for fix in sorted(fixes, key=_fix_key):
        if fix.ping_id not in seen:
            seen.add(fix.ping_id)
            unique.append(fix)
    return unique


def _fix_key(fix: Fix) -> tuple[datetime, int, str, float, float, bool, float]:
    # The tail of the key only matters for malformed input (two fixes sharing time and position);
    # it keeps the order total so the result never depends on the order of arrival.
    speed = fix.speed_kph
    return (
        fix.occurred_at,
        fix.position,
        fix.ping_id,
        fix.lat,
        fix.lon,
        speed is None,
        0.0 if speed is None else speed,
    )


def _visits_to(fence: Geofence, fixes: Sequence[Fix], rules: DetectionRules) -> list[Visit]:
    """One fence's visits: open a stay inside, establish it after the dwell, close it outside."""
    visits: list[Visit] = []
    opened: int | None = None  # index of the fix that opened the current stay
    established: int | None = None  # index of the fix that made the stay an arrival
    inside_count = 0
    outside_from: int | None = None  # first fix of the current run of fixes outside the fence

    for index, fix in enumerate(fixes):
        if fence.contains(fix):
            if opened is None:
                opened, established, inside_count = index, None, 0
            outside_from = None
            inside_count += 1
            if (
                established is None
                and fix.occurred_at - fixes[opened].occurred_at >= rules.dwell
                and inside_count >= rules.min_inside_fixes
            ):
                established = index
            continue
        if opened is None:
            continue
        if outside_from is None:
            outside_from = index
        if _is_stationary(fix, rules):
            continue
        if established is not None:
            visits.append(
                Visit(
                    stop_id=fence.stop_id,
                    arrived_at=fixes[opened].occurred_at,
                    arrival_ping_ids=_ping_ids(fixes, opened, established),
                    departed_at=fixes[outside_from].occurred_at,
                    departure_ping_ids=_ping_ids(fixes, outside_from, index),
                )
            )
        opened, established, outside_from = None, None, None

    if opened is not None and established is not None:
        visits.append(
            Visit(
                stop_id=fence.stop_id,
                arrived_at=fixes[opened].occurred_at,
                arrival_ping_ids=_ping_ids(fixes, opened, established),
                departed_at=None,
                departure_ping_ids=(),
            )
        )
    return visits


def _is_stationary(fix: Fix, rules: DetectionRules) -> bool:
    return fix.speed_kph is not None and fix.speed_kph <= rules.stationary_kph


def _ping_ids(fixes: Sequence[Fix], first: int, last: int) -> tuple[str, ...]:
    return tuple(fix.ping_id for fix in fixes[first : last + 1])


def _require_unique_stops(fences: Sequence[Geofence]) -> None:
    counts = Counter(fence.stop_id for fence in fences)
    duplicates = sorted(stop_id for stop_id, count in counts.items() if count > 1)
    if duplicates:
        raise InvalidInput(
            f"one geofence per stop expected; repeated: {', '.join(duplicates)}", field="stop_id"
        )


def _require_coordinates(lat: float, lon: float) -> None:
    if not -90.0 <= lat <= 90.0:
        raise InvalidInput(f"latitude must be within [-90, 90], got {lat!r}", field="lat")
    if not -180.0 <= lon <= 180.0:
        raise InvalidInput(f"longitude must be within [-180, 180], got {lon!r}", field="lon")


def _require_aware(moment: datetime, field: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be timezone-aware, got {moment.isoformat()}",
            field=field,
            rule="timezone_required",
        )
