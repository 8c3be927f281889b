"""Small hand-made requests for the planner tests (planar coordinates, 1 unit = 1 minute)."""

from __future__ import annotations

from collections.abc import Sequence

from planner.model import (
    HoursOfService,
    Location,
    PickupDelivery,
    PlanRequest,
    Stop,
    TimeWindow,
    TravelModel,
    Vehicle,
)


def depot_and(points: Sequence[tuple[float, float]]) -> tuple[Location, ...]:
    """Location 0 is the depot at the origin; then the given points."""
    return (
        Location("depot", 0.0, 0.0),
        *tuple(Location(f"p{i + 1}", x, y) for i, (x, y) in enumerate(points)),
    )


def vehicle(
    vid: str = "v1",
    *,
    capacity: dict[str, int] | None = None,
    shift: tuple[float, float] = (0.0, 1440.0),
    skills: frozenset[str] = frozenset(),
    hos: HoursOfService | None = None,
) -> Vehicle:
    return Vehicle(
        vid,
        capacity if capacity is not None else {"weight": 100},
        0,
        0,
        shift[0],
        shift[1],
        skills=skills,
        hos=hos,
    )


def stop(
    sid: str,
    location: int,
    *,
    demand: dict[str, int] | None = None,
    windows: Sequence[tuple[float, float]] = (),
    service: float = 0.0,
    skills: frozenset[str] = frozenset(),
) -> Stop:
    return Stop(
        sid,
        location,
        demand if demand is not None else {},
        tuple(TimeWindow(a, b) for a, b in windows),
        service,
        skills,
    )


def request(
    locations: tuple[Location, ...],
    vehicles: Sequence[Vehicle],
    stops: Sequence[Stop],
    pairs: Sequence[tuple[str, str]] = (),
) -> PlanRequest:
    return PlanRequest(
        locations,
        tuple(vehicles),
        tuple(stops),
        tuple(PickupDelivery(p, d) for p, d in pairs),
        TravelModel(kind="euclidean"),
    )
