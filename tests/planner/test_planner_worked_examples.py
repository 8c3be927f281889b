"""Worked examples: pairs, Hours of Service, breaks, skills, capacities, windows."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planner_factories import depot_and, request, stop, vehicle
from validator import validate

from planner.model import HoursOfService, Location, PlanRequest, TravelModel
from planner.portfolio import solve


def test_pickup_is_served_before_its_delivery_on_one_vehicle_when_paired() -> None:
    # The depot delivery (5) and the pair's load (10) do not fit together in a 10-unit van,
    # so the depot delivery must come off before the pickup.
    req = request(
        depot_and([(10, 0), (20, 0), (5, 5), (-10, 0)]),
        [vehicle("v1", capacity={"weight": 10}), vehicle("v2", capacity={"weight": 10})],
        [
            stop("pick", 1, demand={"weight": 10}),
            stop("drop", 2),
            stop("depot-delivery", 3, demand={"weight": 5}),
            stop("other", 4, demand={"weight": 5}),
        ],
        pairs=[("pick", "drop")],
    )

    plan = solve(req, time_limit=1.0, workers=1)

    assert plan.feasible and validate(req, plan) == []
    (route,) = [r for r in plan.routes if any(v.stop_id == "pick" for v in r.visits)]
    order = [v.stop_id for v in route.visits]
    assert order.index("pick") < order.index("drop")


def test_stop_is_dropped_for_hos_when_the_only_driver_has_two_hours_for_a_three_hour_route() -> (
    None
):
    req = request(
        depot_and([(90, 0)]),
        [vehicle(hos=HoursOfService(drive_remaining=120))],
        [stop("far", 1, service=10)],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert [(u.stop_id, u.reason) for u in plan.unassigned] == [("far", "hos")]
    assert validate(req, plan) == []


def test_another_vehicle_takes_the_route_when_one_driver_is_out_of_hours() -> None:
    req = request(
        depot_and([(90, 0)]),
        [vehicle("tired", hos=HoursOfService(drive_remaining=120)), vehicle("fresh")],
        [stop("far", 1, service=10)],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert plan.feasible and validate(req, plan) == []
    assert [r.vehicle_id for r in plan.routes] == ["fresh"]


def test_route_contains_a_break_when_it_drives_more_than_eight_hours() -> None:
    req = request(
        depot_and([(285, 0)]),
        [vehicle(hos=HoursOfService())],
        [stop("far", 1, service=10)],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert plan.feasible and validate(req, plan) == []
    (route,) = plan.routes
    assert route.drive_minutes > 480
    assert route.breaks and all(b.minutes >= 30 for b in route.breaks)


def test_engine_schedule_with_breaks_is_valid_when_the_objective_is_time() -> None:
    # The time objective keeps the solver's own cumul values and break intervals.
    req = replace(
        request(
            depot_and([(150, 0), (280, 0), (150, 40)]),
            [vehicle(hos=HoursOfService(driven_since_break=200))],
            [
                stop("a", 1, service=20),
                stop("b", 2, service=20),
                stop("c", 3, windows=[(300, 900)]),
            ],
        ),
        objective="time",
    )

    plan = solve(req, time_limit=1.0, workers=1)

    assert plan.feasible and validate(req, plan) == []
    assert plan.routes[0].breaks


def test_first_break_comes_early_when_the_driver_has_already_driven_most_of_eight_hours() -> None:
    req = request(
        depot_and([(60, 0)]),
        [vehicle(hos=HoursOfService(driven_since_break=450))],
        [stop("near", 1, service=10)],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert plan.feasible and validate(req, plan) == []
    (route,) = plan.routes
    assert route.breaks and route.breaks[0].start <= route.start_time + 30 + 1e-6


def test_stop_is_dropped_for_skill_when_no_vehicle_has_it() -> None:
    req = request(
        depot_and([(10, 0), (0, 10)]),
        [vehicle(skills=frozenset({"cold"}))],
        [
            stop("cold", 1, skills=frozenset({"cold"})),
            stop("crane", 2, skills=frozenset({"crane"})),
        ],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert validate(req, plan) == []
    assert [(u.stop_id, u.reason) for u in plan.unassigned] == [("crane", "skill")]


def test_stop_is_dropped_for_capacity_when_one_dimension_exceeds_every_vehicle() -> None:
    req = request(
        depot_and([(10, 0), (0, 10)]),
        [vehicle(capacity={"weight": 1000, "pallets": 2})],
        [
            stop("light-but-bulky", 1, demand={"weight": 10, "pallets": 3}),
            stop("fits", 2, demand={"weight": 900, "pallets": 2}),
        ],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert validate(req, plan) == []
    assert [(u.stop_id, u.reason) for u in plan.unassigned] == [("light-but-bulky", "capacity")]


def test_second_window_is_used_when_the_first_cannot_be_reached() -> None:
    req = request(
        depot_and([(100, 0)]),
        [vehicle()],
        [stop("split", 1, windows=[(0, 50), (200, 260)], service=5)],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert plan.feasible and validate(req, plan) == []
    assert 200 <= plan.routes[0].visits[0].start <= 260


def test_stop_is_dropped_for_window_when_even_a_direct_drive_arrives_late() -> None:
    req = request(depot_and([(100, 0)]), [vehicle()], [stop("late", 1, windows=[(0, 50)])])

    plan = solve(req, time_limit=0.5, workers=1)

    assert [(u.stop_id, u.reason) for u in plan.unassigned] == [("late", "window")]
    assert not plan.feasible


def test_third_stop_is_dropped_for_capacity_when_each_vehicle_fits_only_one() -> None:
    req = request(
        depot_and([(10, 0), (12, 0), (14, 0)]),
        [vehicle("a", capacity={"weight": 20}), vehicle("b", capacity={"weight": 20})],
        [stop(f"s{i}", i, demand={"weight": 12}) for i in (1, 2, 3)],
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert validate(req, plan) == []
    assert len(plan.routes) == 2
    assert [u.reason for u in plan.unassigned] == ["capacity"]


def test_stop_is_dropped_as_unreachable_when_the_matrix_has_no_road_to_it() -> None:
    gap = None
    roads = ((0, 5, 7, gap), (5, 0, 3, gap), (7, 3, 0, gap), (gap, gap, gap, 0))
    req = PlanRequest(
        tuple(Location(f"l{i}") for i in range(4)),
        (vehicle(capacity={"weight": 10}),),
        (stop("a", 1, demand={"weight": 2}), stop("b", 2), stop("island", 3)),
        travel=TravelModel("matrix", roads, roads),
    )

    plan = solve(req, time_limit=0.5, workers=1)

    assert validate(req, plan) == []
    assert [(u.stop_id, u.reason) for u in plan.unassigned] == [("island", "unreachable")]


def test_one_longer_route_replaces_two_short_ones_when_vehicles_come_first() -> None:
    # Two vehicles: a+c and b (42 units); one vehicle must zigzag a, b, c (62 units).
    base = request(
        depot_and([(-10, 0), (10, 0), (-11, 0)]),
        [vehicle("v1"), vehicle("v2")],
        [
            stop("a", 1, windows=[(10, 10)]),
            stop("b", 2, windows=[(30, 30)]),
            stop("c", 3, windows=[(50, 60)]),
        ],
    )

    by_distance = solve(base, time_limit=0.5, workers=1)
    fewest = solve(replace(base, vehicles_first=True), time_limit=0.5, workers=1)

    assert validate(base, by_distance) == [] and validate(base, fewest) == []
    assert len(by_distance.routes) == 2 and by_distance.breakdown.distance == pytest.approx(42)
    assert len(fewest.routes) == 1 and fewest.breakdown.distance == pytest.approx(62)
