"""Re-planning mid-route: a day planned, a truck driven partway (its pings reconciled into
arrivals and departures, its driver's duty log), then the day re-planned at T — on SQLite and
PostgreSQL, every re-plan checked by the independent validator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from replan_world import DAY, PREVIOUS, World, at, build_world, minutes
from validator import travel_of, validate

from ledger.application import Ledger, RouteRevision, RouteStop
from ledger.errors import InvalidInput, ReplanBeforeLastFact, StopAlreadyVisited
from ledger.history import load_history
from ledger.loads import LoadStatus
from ledger.plans import PlanFigures, PlannedRoute
from ledger.stops import StopKind
from planner.model import Plan
from planner.portfolio import solve
from planner.replan import Replan, build_replan_request, record_replan
from support.clock import Clock
from support.factories import ADMIN

WorldAt = Callable[..., World]


@pytest.fixture
def world_at(ledger: Ledger, clock: Clock, store_url: str) -> Iterator[WorldAt]:
    """The day driven until a given time (options as `build_world`'s), on both backends."""
    worlds: list[World] = []

    def make(until: datetime, **options: bool) -> World:
        world = build_world(ledger, clock, store_url, until=until, **options)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.db.close()


def replanned(world: World, moment: datetime, time_limit: float = 1.0) -> tuple[Replan, Plan]:
    replan = build_replan_request(world.ledger, world.db, DAY, "WH-1", moment)
    plan = solve(replan.request, time_limit=time_limit, workers=1)
    return replan, plan


def route_of(plan: Plan, vehicle: str) -> list[str]:
    route = next((r for r in plan.routes if r.vehicle_id == vehicle), None)
    return [v.stop_id for v in route.visits] if route else []


def test_completed_stops_stay_first_and_unchanged_when_the_day_is_replanned_mid_route(
    world_at: WorldAt,
) -> None:
    T = at(14, 30)
    world = world_at(T)
    before = world.stops("L-1")
    assert [s.departure is not None for s in before] == [True, True, False, False, False]

    replan, plan = replanned(world, T)
    plan_id = record_replan(world.ledger, ADMIN, replan, plan, 1.0)
    head = world.ledger.position
    again = record_replan(world.ledger, ADMIN, replan, plan, 1.0)
    world.catch_up()

    assert validate(replan.request, plan) == []
    after = world.stops("L-1")
    assert [s.stop_id for s in after[:2]] == [s.stop_id for s in before[:2]]
    for old, new in zip(before[:2], after[:2], strict=True):
        assert (new.sequence, new.facts, new.planned_arrival) == (old.sequence, old.facts, None)
    remaining = after[2:]
    assert {s.stop_id for s in remaining} == {s.stop_id for s in before[2:]}
    assert [s.sequence for s in remaining] == [3, 4, 5]
    served = route_of(plan, "TRK-1")
    assert [replan.items[sid].stop_id for sid in served] == [s.stop_id for s in remaining]
    assert all(s.planned_arrival is not None and s.planned_arrival > T for s in remaining)
    record = world.ledger.find_plan(plan_id)
    assert record is not None and record.replaces == (PREVIOUS,)
    assert again == plan_id and world.ledger.position == head  # recorded once
    assert len(record.fingerprint) == 64 and record.figures.vehicles == len(plan.routes)
    board = world.db.query(
        "SELECT stops_total, stops_done, next_stop_sequence FROM load_board WHERE reference = 'L-1'"
    )
    assert [tuple(r) for r in board] == [(5, 2, 3)]
    rows = world.db.query(
        "SELECT stop_id, sequence FROM stop_times WHERE load_id = %s", (str(world.load("L-1")),)
    )
    assert {str(s.stop_id): s.sequence for s in after} == {str(r[0]): int(r[1]) for r in rows}
    views = ("load_board", "stop_times", "orders")
    live = [world.db.query(f"SELECT * FROM {view} ORDER BY 1") for view in views]
    world.runner.rebuild(list(views))
    assert [world.db.query(f"SELECT * FROM {view} ORDER BY 1") for view in views] == live
    earlier = load_history(world.ledger, world.load("L-1"), as_of=T - timedelta(minutes=1))
    assert sorted((s.stop_id, s.sequence) for s in earlier.stops) == sorted(
        (s.stop_id, s.sequence) for s in before
    )


def test_each_vehicle_starts_from_its_reconciled_position_when_the_day_is_replanned(
    world_at: WorldAt,
) -> None:
    T = at(14, 30)
    world = world_at(T)

    replan, plan = replanned(world, T)
    record_replan(world.ledger, ADMIN, replan, plan, 1.0)
    world.catch_up()

    truck = next(v for v in replan.request.vehicles if v.id == "TRK-1")
    last = max((p for p in world.pings if p.occurred_at <= T), key=lambda p: p.occurred_at)
    start = replan.request.locations[truck.start_location]
    assert (start.lat, start.lon) == (last.lat, last.lon)
    assert replan.starts["TRK-1"].source == "ping" and truck.shift_start == minutes(T)
    route = next(r for r in plan.routes if r.vehicle_id == "TRK-1")
    first = next(s for s in replan.request.stops if s.id == route.visits[0].stop_id)
    leg = travel_of(replan.request).time[truck.start_location][first.location]
    assert route.start_time == minutes(T)
    assert route.visits[0].arrival == pytest.approx(minutes(T) + leg, abs=1e-6)
    # TRK-1 left the warehouse: PO-5 (open) joins TRK-2's planned load, which keeps PO-4.
    assert "ACME/PO-5" not in route_of(plan, "TRK-1")
    assert sorted(route_of(plan, "TRK-2")) == ["ACME/PO-5", "L-2#2"]
    second = world.stops("L-2")
    assert world.ledger.load_by_reference("L-2").status is LoadStatus.PLANNED
    assert [s.sequence for s in second] == [1, 2, 3] and second[0].kind is StopKind.PICKUP
    assert replan.starts["TRK-2"].source == "warehouse"
    po5 = world.ledger.order_by_reference("ACME", "PO-5").id
    rows = world.db.query("SELECT load_id FROM orders WHERE order_id = %s", (str(po5),))
    assert [str(r[0]) for r in rows] == [str(world.load("L-2"))]


def test_plan_fits_the_hours_left_or_drops_with_reason_hos_when_the_driver_has_one_hour(
    world_at: WorldAt,
) -> None:
    T = at(14, 30)
    world = world_at(T, tired=True)

    replan, plan = replanned(world, T)
    record_replan(world.ledger, ADMIN, replan, plan, 1.0)

    truck = next(v for v in replan.request.vehicles if v.id == "TRK-1")
    assert truck.hos is not None
    assert truck.hos.drive_remaining == pytest.approx(60.0, abs=1.0)
    assert truck.hos.duty_remaining == pytest.approx(90.0, abs=1.0)
    assert validate(replan.request, plan) == []
    route = next((r for r in plan.routes if r.vehicle_id == "TRK-1"), None)
    assert route is None or route.drive_minutes <= truck.hos.drive_remaining + 1e-6
    dropped = {u.stop_id: u.reason for u in plan.unassigned if u.stop_id.startswith("L-1#")}
    assert dropped and set(dropped.values()) == {"hos"}
    # On board: a fresh driver at the warehouse does not take them over.
    assert not [s for s in route_of(plan, "TRK-2") if s.startswith("L-1#")]
    # The on-board orders the plan cannot place stay on the load, last, and say why.
    record = world.ledger.find_plan(replan.plan_id or "")
    assert record is not None and {u.reason for u in record.unplaced} == {"hos"}
    after = world.stops("L-1")
    assert len(after) == 5 and all(s.planned_arrival is None for s in after[-len(dropped) :])


def test_vehicle_starts_at_the_stop_once_its_service_is_done_when_it_is_dwelling_there(
    world_at: WorldAt,
) -> None:
    T = at(14, 5)
    world = world_at(T)
    arrived = world.arrivals[1]
    assert arrived < T < world.departures[1]

    replan, plan = replanned(world, T)
    record_replan(world.ledger, ADMIN, replan, plan, 1.0)

    assert validate(replan.request, plan) == []
    truck = next(v for v in replan.request.vehicles if v.id == "TRK-1")
    assert replan.request.locations[truck.start_location].id == "C-0"
    assert replan.starts["TRK-1"].source == "stop"
    assert truck.shift_start == pytest.approx(max(minutes(T), minutes(arrived) + 15))
    assert "L-1#2" not in {s.id for s in replan.request.stops}
    after = world.stops("L-1")
    assert after[1].arrival is not None and after[1].departure is None
    assert after[1].sequence == 2 and after[1].planned_arrival is None


def test_planned_load_is_superseded_when_its_orders_go_to_another_truck(
    world_at: WorldAt,
) -> None:
    T = at(14, 30)
    world = world_at(T, third_truck=True, exhausted_second_driver=True)

    replan, plan = replanned(world, T)
    record_replan(world.ledger, ADMIN, replan, plan, 1.0)
    world.catch_up()

    assert validate(replan.request, plan) == []
    trk2 = next(v for v in replan.request.vehicles if v.id == "TRK-2")
    assert trk2.hos is not None and trk2.hos.drive_remaining == 0
    assert route_of(plan, "TRK-2") == []
    assert sorted(route_of(plan, "TRK-3")) == ["ACME/PO-5", "L-2#2"]
    assert world.ledger.load_by_reference("L-2").status is LoadStatus.CANCELLED
    assert not world.ledger.load_by_reference("L-2").tonu
    record = world.ledger.find_plan(replan.plan_id or "")
    assert record is not None
    (new,) = [r for r in record.routes if r.vehicle_code == "TRK-3"]
    assert sorted(new.orders) == ["PO-4", "PO-5"] and new.driver_code == "DRV-3"
    rows = world.db.query(
        "SELECT reference, load_id FROM orders WHERE reference IN ('PO-4', 'PO-5')"
    )
    assert {str(r[1]) for r in rows} == {str(world.load(new.load_reference))}


def test_replan_is_refused_and_writes_nothing_when_dated_before_the_last_recorded_fact(
    world_at: WorldAt,
) -> None:
    world = world_at(at(14, 30))
    head = world.ledger.position
    early = world.departures[1] - timedelta(minutes=5)

    with pytest.raises(ReplanBeforeLastFact) as refused:
        build_replan_request(world.ledger, world.db, DAY, "WH-1", early)

    replan, plan = replanned(world, at(14, 30), time_limit=0.5)
    replan.at = early
    with pytest.raises(ReplanBeforeLastFact):
        record_replan(world.ledger, ADMIN, replan, plan, 0.5)
    assert refused.value.field == "at" and world.ledger.position == head


def replan_by_hand(world: World, T: datetime, stop_id: UUID) -> None:
    """A re-plan of L-1 made by hand at `T` whose route is the one stop `stop_id`."""
    route = PlannedRoute("TRK-1", "DRV-1", "L-1", (), 0.0, 0.0, T, T)
    world.ledger.record_replan(
        ADMIN,
        plan_id="REPLAN-by-hand",
        day=DAY,
        at=T,
        fingerprint="1" * 64,
        figures=PlanFigures("distance", 0.0, 0.0, 0.0, 1, 0.0, 0.0, "hand", 0.0, 0.0),
        replaces=(PREVIOUS,),
        routes=[RouteRevision(route, world.load("L-1"), (RouteStop(stop_id),))],
        unplaced=[],
    )


def test_replan_is_refused_and_writes_nothing_when_it_moves_a_completed_stop(
    world_at: WorldAt,
) -> None:
    T = at(14, 30)
    world = world_at(T)
    head = world.ledger.position
    done = world.stops("L-1")[1]

    with pytest.raises(StopAlreadyVisited) as refused:
        replan_by_hand(world, T, done.stop_id)

    assert refused.value.field == "routes[0].stops[0]"
    assert world.ledger.position == head and world.ledger.find_plan("REPLAN-by-hand") is None
    assert world.stops("L-1")[1] == done


def test_replan_is_refused_and_writes_nothing_when_it_drops_a_stop_of_a_load(
    world_at: WorldAt,
) -> None:
    T = at(14, 30)
    world = world_at(T)
    head = world.ledger.position
    stops = world.stops("L-1")

    with pytest.raises(InvalidInput) as refused:
        replan_by_hand(world, T, stops[4].stop_id)

    assert refused.value.rule == "keeps_every_stop"
    assert world.ledger.position == head and world.stops("L-1") == stops
