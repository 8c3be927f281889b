"""The planner's travel model as the ETA predictor's `Travel` port (the ledger imports no
planner: the composition root passes this in)."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.eta import Leg, Travel
from ledger.values import GeoPoint
from planner.model import Location, TravelModel
from planner.travel import build_travel_for

__all__ = ["model_travel"]


def model_travel(model: TravelModel) -> Travel:
    """A travel model as the planner reads it (pass the plans' own: the ETA predictor learns
    how the fleet drives against it, and starts from it)."""

    def legs(path: Sequence[GeoPoint], /) -> list[Leg]:
        places = tuple(Location(str(i), lat=p.lat, lon=p.lon) for i, p in enumerate(path))
        matrix = build_travel_for(model, places)
        return [
            Leg(float(matrix.distance[i, i + 1]), float(matrix.time[i, i + 1]))
            for i in range(len(path) - 1)
        ]

    return legs
