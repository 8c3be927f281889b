"""Travel distances and times between locations, from a matrix, planar or geographic coordinates.

Unreachable pairs carry ``inf``. Pure numpy; nothing here knows about solvers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from planner.model import Location, PlanRequest, PlanRequestError, TravelModel

__all__ = ["EARTH_RADIUS_KM", "TravelMatrix", "build_travel", "euclidean", "haversine"]

EARTH_RADIUS_KM = 6371.0088

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class TravelMatrix:
    """Distance and driving time for every ordered pair of locations."""

    distance: FloatArray
    time: FloatArray

    def reachable(self, a: int, b: int) -> bool:
        """Whether one can drive from location ``a`` to location ``b``."""
        return bool(math.isfinite(self.time[a, b]) and math.isfinite(self.distance[a, b]))


def euclidean(xs: FloatArray, ys: FloatArray) -> FloatArray:
    """Unrounded straight-line distances between planar points."""
    dx = xs[:, None] - xs[None, :]
    dy = ys[:, None] - ys[None, :]
    result: FloatArray = np.sqrt(dx * dx + dy * dy)
    return result


def haversine(lats: FloatArray, lons: FloatArray) -> FloatArray:
    """Great-circle distances in km between points given in degrees."""
    phi = np.radians(lats)
    lam = np.radians(lons)
    dphi = phi[:, None] - phi[None, :]
    dlam = lam[:, None] - lam[None, :]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.sin(dlam / 2) ** 2
    result: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return result


def _coords(locations: tuple[Location, ...], a: str, b: str) -> tuple[FloatArray, FloatArray]:
    first = np.array([float(getattr(loc, a)) for loc in locations], dtype=np.float64)
    second = np.array([float(getattr(loc, b)) for loc in locations], dtype=np.float64)
    return first, second


def _from_rows(rows: tuple[tuple[float | None, ...], ...] | None, name: str) -> FloatArray:
    if rows is None:
        raise PlanRequestError(f"travel.{name}", "required for a matrix model")
    matrix = np.array(
        [[math.inf if v is None or v < 0 else float(v) for v in row] for row in rows],
        dtype=np.float64,
    )
    np.fill_diagonal(matrix, 0.0)
    return matrix


def build_travel(request: PlanRequest) -> TravelMatrix:
    """The travel matrix the request's travel model describes."""
    return build_travel_for(request.travel, request.locations)


def build_travel_for(model: TravelModel, locations: tuple[Location, ...]) -> TravelMatrix:
    """The travel matrix for ``locations`` under ``model``."""
    if model.kind == "matrix":
        return TravelMatrix(
            _from_rows(model.distance_km, "distance_km"),
            _from_rows(model.time_minutes, "time_minutes"),
        )
    if model.kind == "euclidean":
        xs, ys = _coords(locations, "x", "y")
        distance = euclidean(xs, ys)
        return TravelMatrix(distance, distance * model.minutes_per_unit)
    lats, lons = _coords(locations, "lat", "lon")
    distance = haversine(lats, lons) * model.detour_factor
    return TravelMatrix(distance, distance / model.speed_kmh * 60.0)
