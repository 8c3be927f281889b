"""Travel: unrounded planar distances, great circles with detours, matrices with gaps."""

from __future__ import annotations

import math

import pytest

from planner.model import Location, TravelModel
from planner.travel import build_travel_for


def test_planar_distance_is_unrounded_and_time_follows_it_when_euclidean() -> None:
    locs = (Location("a", 0, 0), Location("b", 1, 1))

    travel = build_travel_for(TravelModel("euclidean", minutes_per_unit=2.0), locs)

    assert travel.distance[0, 1] == pytest.approx(math.sqrt(2))
    assert travel.time[0, 1] == pytest.approx(2 * math.sqrt(2))


def test_road_distance_is_the_great_circle_times_the_detour_when_geographic() -> None:
    # One degree along a meridian is R * pi / 180 = 111.195 km; Amsterdam Centraal to Utrecht
    # Centraal is about 35.2 km as the crow flies.
    locs = (
        Location("equator", lat=0.0, lon=0.0),
        Location("north", lat=1.0, lon=0.0),
        Location("ams", lat=52.3791, lon=4.9003),
        Location("utr", lat=52.0894, lon=5.1100),
    )

    travel = build_travel_for(TravelModel("haversine", detour_factor=1.3, speed_kmh=60), locs)

    assert travel.distance[0, 1] == pytest.approx(111.195 * 1.3, rel=1e-4)
    assert travel.distance[2, 3] == pytest.approx(35.2 * 1.3, rel=0.01)
    assert travel.time[2, 3] == pytest.approx(travel.distance[2, 3], rel=1e-9)


def test_missing_matrix_entry_is_unreachable_when_given_as_null() -> None:
    locs = (Location("a"), Location("b"))
    model = TravelModel("matrix", ((0, 5.0), (None, 0)), ((0, 7.0), (None, 0)))

    travel = build_travel_for(model, locs)

    assert travel.reachable(0, 1) and not travel.reachable(1, 0)
