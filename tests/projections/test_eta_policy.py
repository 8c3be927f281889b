"""The ETA policy records predicted arrivals as stop facts: when they move, once, and so that
"what ETA did we give at T" has an answer."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from uuid import UUID

import pytest

from ledger.application import Ledger, RouteRevision, RouteStop, StopPlan
from ledger.eta import EtaRules, Leg, Travel
from ledger.history import customer_view, load_history, stop_history
from ledger.log import iter_log
from ledger.plans import PlanFigures, PlannedRoute
from ledger.stops import Stop, StopFact
from ledger.telematics import PingInput
from ledger.values import GeoPoint, TimeWindow
from planner.model import Location, TravelModel
from planner.travel import build_travel_for
from projections.db import Database
from projections.eta_policy import ACTOR, REFRESH, THRESHOLD, EtaPolicy
from projections.migrations import migrate
from projections.reconciler import Reconciler
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN
from support.scenario import DAY as SCENARIO_DAY
from support.scenario import STOPS, Day, plan_day


def scenario_travel(speed_kmh: float = 40.0) -> Travel:
    """The planner's haversine model at the scenario truck's 40 km/h on straight lines."""
    model = TravelModel(kind="haversine", detour_factor=1.0, speed_kmh=speed_kmh)

    def legs(path: Sequence[GeoPoint]) -> list[Leg]:
        places = tuple(Location(str(i), lat=p.lat, lon=p.lon) for i, p in enumerate(path))
        matrix = build_travel_for(model, places)
        return [
            Leg(float(matrix.distance[i, i + 1]), float(matrix.time[i, i + 1]))
            for i in range(len(path) - 1)
        ]

    return legs


@dataclass
class World:
    ledger: Ledger
    db: Database
    runner: Runner
    reconciler: Reconciler
    policy: EtaPolicy
    clock: Clock

    def plan_day(self) -> Day:
        """The scenario's load, dispatched at 14:00; then the clock moves past its pings."""
        day = plan_day(self.ledger)
        self.clock.advance(days=3)
        return day

    def settle(self) -> None:
        """The worker's order: stop facts from pings, then the views, then the ETAs."""
        for _ in range(5):
            done = self.reconciler.catch_up() + self.runner.catch_up() + self.policy.catch_up()
            if not done:
                return

    def feed(self, pings: Sequence[PingInput], batch: int = 10) -> None:
        """Ingests pings in batches (5 minutes of them by default), settling after each."""
        for i in range(0, len(pings), batch):
            self.ledger.ingest_pings(ADMIN, pings[i : i + batch])
            self.settle()


@pytest.fixture
def world(ledger: Ledger, store_url: str, clock: Clock) -> Iterator[World]:
    db = Database(store_url)
    migrate(db)
    policy = EtaPolicy(ledger, scenario_travel(), db=db)
    yield World(ledger, db, Runner(ledger, db), Reconciler(ledger), policy, clock)
    db.close()


@dataclass(frozen=True)
class Reported:
    position: int
    fact_id: str
    made_at: datetime
    eta: datetime
    supersedes: str | None
    derived_from: tuple[str, ...]
    recorded_at: datetime
    note: str = ""


def reported(ledger: Ledger, stop_id: UUID) -> list[Reported]:
    """The ETAs the policy recorded at a stop, in log order."""
    found = []
    for record in iter_log(ledger, stream=stop_id):
        event = record.event
        if (
            isinstance(event, Stop.FactRecorded)
            and event.fact is StopFact.ETA_REPORTED
            and event.meta.actor == ACTOR
        ):
            eta = event.detail.eta
            assert eta is not None
            found.append(
                Reported(
                    record.position,
                    f"{record.stream}:{record.version}",
                    event.meta.occurred_at,
                    eta,
                    event.detail.supersedes,
                    event.detail.derived_from,
                    record.recorded_at,
                    event.detail.note,
                )
            )
    return found


def until(day: Day, moment: datetime) -> list[PingInput]:
    return [p for p in day.pings if p.occurred_at < moment]


def between(day: Day, start: datetime, end: datetime) -> list[PingInput]:
    return [p for p in day.pings if start <= p.occurred_at < end]


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def test_etas_are_recorded_for_the_remaining_stops_when_a_truck_is_halfway_through_its_day(
    world: World,
) -> None:
    day = world.plan_day()
    world.ledger.ingest_duty(ADMIN, list(day.duty))
    halfway = day.arrivals[1] - minutes(10)  # between the pickup and the first delivery

    world.feed(until(day, halfway), batch=len(day.pings))

    pickup, first, second = (reported(world.ledger, s) for s in day.stop_ids)
    assert pickup == []  # already departed: nothing ahead there
    assert len(first) == len(second) == 1
    assert abs(first[0].eta - day.arrivals[1]) < minutes(2)
    # the second delivery: the first's planned 30 service minutes, then the 6 km leg
    leg = second[0].eta - first[0].eta - minutes(30)
    assert minutes(7) < leg < minutes(11)
    last_ping = until(day, halfway)[-1]
    assert first[0].made_at == last_ping.occurred_at
    assert first[0].derived_from == (f"DEV-1:s{last_ping.seq}",)
    assert first[0].supersedes is None


def test_an_eta_is_recorded_again_only_when_it_moved_by_more_than_the_threshold(
    world: World,
) -> None:
    day = world.plan_day()
    world.ledger.ingest_duty(ADMIN, list(day.duty))
    world.feed(until(day, day.departures[0] + minutes(5)), batch=len(day.pings))
    before = reported(world.ledger, day.stop_ids[1])

    world.feed(between(day, day.departures[0] + minutes(5), day.arrivals[1]))  # 5 min batches

    first = reported(world.ledger, day.stop_ids[1])
    assert first == before  # the truck kept to its prediction: no ETA per batch
    assert len(first) == 1
    assert abs(first[0].eta - day.arrivals[1]) < minutes(3)

    world.feed(between(day, day.arrivals[1], day.departures[1]))  # 200 min at the dock

    second = reported(world.ledger, day.stop_ids[2])
    assert len(second) > 2  # the overstay pushes the next stop's ETA, step by step
    for before, after in pairwise(second):
        assert abs(after.eta - before.eta) > THRESHOLD
        assert after.supersedes == before.fact_id
    overstay = day.departures[1] - day.arrivals[1] - minutes(30)
    assert len(second) <= 1 + overstay / THRESHOLD
    assert reported(world.ledger, day.stop_ids[1]) == first  # arrived: no more ETAs there


def test_a_late_backfill_of_pings_derives_the_etas_again(world: World) -> None:
    day = world.plan_day()
    offline_from = day.arrivals[1] - minutes(10)
    back_at = day.departures[1] + minutes(10)

    world.feed(until(day, offline_from), batch=len(day.pings))
    before = reported(world.ledger, day.stop_ids[2])
    world.feed(between(day, offline_from, back_at), batch=1000)  # the device's buffer, late

    after = reported(world.ledger, day.stop_ids[2])
    assert len(before) == 1 and len(after) == 2
    moved = after[1].eta - before[0].eta
    assert abs(moved - (day.departures[1] - day.arrivals[1] - minutes(30))) < minutes(3)
    assert after[1].supersedes == before[0].fact_id
    last_ping = between(day, offline_from, back_at)[-1]
    assert after[1].made_at == last_ping.occurred_at


def test_a_restart_records_nothing_twice_when_the_same_range_is_run_again(
    world: World, store_url: str, clock: Clock
) -> None:
    day = world.plan_day()
    world.ledger.ingest_pings(ADMIN, until(day, day.arrivals[1] - minutes(10)))
    world.reconciler.catch_up()
    world.runner.catch_up()
    # A second predictor (another process) works on the same batch and saves first.
    other = Ledger(store_url, clock=clock)
    rival = EtaPolicy(other, scenario_travel(), db=world.db)
    save = other.save_tracked
    raced = []

    def save_after_the_first_one(*args: Any) -> int:
        if not raced:
            raced.append(world.policy.catch_up())
        return save(*args)

    other.save_tracked = save_after_the_first_one  # type: ignore[method-assign]
    restarted = Ledger(store_url, clock=clock)
    try:
        rival.catch_up()
        EtaPolicy(restarted, scenario_travel(), db=world.db).catch_up()
        positions = {rival.position(), world.policy.position()}
    finally:
        other.close()
        restarted.close()

    assert raced and raced[0] > 0
    assert [len(reported(world.ledger, s)) for s in day.stop_ids] == [0, 1, 1]
    assert positions == {world.runner.position()}  # as far as the views (its own ETAs follow)


def test_a_crash_before_saving_loses_nothing_when_the_policy_restarts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = world.plan_day()
    world.ledger.ingest_pings(ADMIN, until(day, day.arrivals[1] - minutes(10)))
    world.reconciler.catch_up()
    world.runner.catch_up()

    def crash(*args: Any) -> int:
        raise RuntimeError("power cut")

    monkeypatch.setattr(world.ledger, "save_tracked", crash)
    with pytest.raises(RuntimeError):
        world.policy.run_once()
    monkeypatch.undo()
    EtaPolicy(world.ledger, scenario_travel(), db=world.db).catch_up()

    assert [len(reported(world.ledger, s)) for s in day.stop_ids] == [0, 1, 1]


def test_the_eta_we_gave_at_a_moment_is_answered_as_known_then(world: World) -> None:
    day = world.plan_day()
    last = day.stop_ids[2]
    world.feed(until(day, day.arrivals[1] - minutes(10)), batch=len(day.pings))
    given = reported(world.ledger, last)[0]
    known_then = world.ledger.position
    world.feed(between(day, day.arrivals[1] - minutes(10), day.departures[1]), batch=60)
    latest = reported(world.ledger, last)[-1]

    as_known_then = stop_history(world.ledger, last, known_at=known_then)
    by_time = stop_history(world.ledger, last, known_at=given.recorded_at)
    today = stop_history(world.ledger, last)
    history = load_history(world.ledger, day.load_id, known_at=given.position)
    shown = customer_view(world.ledger, day.load_id, known_at=known_then)

    assert latest.eta - given.eta > minutes(60)
    assert as_known_then is not None and as_known_then.eta == given.eta
    assert by_time is not None and by_time.eta == given.eta
    assert today is not None and today.eta == latest.eta
    assert [s.eta for s in history.stops][2] == given.eta
    assert shown["stops"][2]["eta"] == given.eta.isoformat()


def test_as_it_happened_at_a_moment_keeps_the_eta_made_by_then(world: World) -> None:
    day = world.plan_day()
    last = day.stop_ids[2]
    world.feed(until(day, day.departures[1]), batch=60)
    etas = reported(world.ledger, last)
    middle = etas[len(etas) // 2]

    then = stop_history(world.ledger, last, as_of=middle.made_at)

    # the fact is dated when the prediction was made, not at the arrival it predicts
    assert then is not None and then.eta == middle.eta
    assert all(e.made_at < e.eta for e in etas)


def test_dwell_learned_at_a_location_moves_the_eta_of_the_stops_after_it(
    ledger: Ledger, store_url: str, clock: Clock
) -> None:
    db = Database(store_url)
    migrate(db)
    learning = EtaPolicy(ledger, scenario_travel(), db=db, rules=EtaRules(planned_weight=0))
    world = World(ledger, db, Runner(ledger, db), Reconciler(ledger), learning, clock)
    day = world.plan_day()  # 200 min at the first delivery
    world.feed(day.pings, batch=len(day.pings))
    later = timedelta(days=3)
    repeat = plan_again(ledger, "L-AGAIN", day, later)  # dispatched on the clock: 3 days on

    world.feed(
        [shifted(p, later) for p in until(day, day.arrivals[1] - minutes(10))],
        batch=len(day.pings),
    )

    first, second = (reported(ledger, s) for s in repeat[1:])
    assert len(first) == len(second) == 1
    leg = second[0].eta - first[0].eta - minutes(200)
    assert minutes(7) < leg < minutes(11)  # dwell learned: 200 min, not the planned 30
    db.close()


def plan_again(
    ledger: Ledger,
    reference: str,
    day: Day,
    later: timedelta,
    *,
    driver: str = "DRV-1",
    vehicle: str = "TRK-1",
) -> list[UUID]:
    """The same three stops, `later` (for the same truck unless told)."""
    plans = [
        StopPlan(
            kind,
            code,
            TimeWindow(
                day.arrivals[i] + later - minutes(60), day.arrivals[i] + later + minutes(60)
            ),
        )
        for i, (code, _, _, kind) in enumerate(STOPS)
    ]
    ledger.plan_load(ADMIN, reference, plans, customer="ACME")
    load = ledger.load_by_reference(reference)
    ledger.tender_load(ADMIN, load.id, "FAST", None)
    ledger.accept_tender(ADMIN, load.id)
    ledger.dispatch_load(ADMIN, load.id, driver, vehicle)
    return list(load.stop_ids)


def shifted(ping: PingInput, by: timedelta) -> PingInput:
    return PingInput(
        ping.device_id,
        None if ping.seq is None else ping.seq + 100_000,
        ping.occurred_at + by,
        ping.lat,
        ping.lon,
        ping.speed_kph,
        ping.heading,
    )


def test_a_silent_truck_at_a_dock_has_the_etas_after_it_moved_as_time_passes(
    world: World,
) -> None:
    day = world.plan_day()  # 200 min at the first delivery, 30 planned
    world.ledger.register_vehicle(
        ADMIN, "TRK-2", carrier_code="FAST", capacity_kg=Decimal(12000),
        capacity_m3=Decimal(60), pallets=24, device_id="DEV-2",
    )  # fmt: skip
    silent_from = day.arrivals[1] + minutes(10)
    world.feed(until(day, silent_from), batch=len(day.pings))
    before = reported(world.ledger, day.stop_ids[2])
    # TRK-1's device is silent for an hour; the log goes on with another truck's pings
    other = [
        PingInput("DEV-2", n, silent_from + minutes(n), 41.70, -87.80, 0.0, 0.0)
        for n in range(0, 61)
    ]

    world.feed(other, batch=5)

    after = reported(world.ledger, day.stop_ids[2])
    assert len(after) > len(before)
    last_fix = until(day, silent_from)[-1]
    assert after[-1].made_at > last_fix.occurred_at + REFRESH
    assert after[-1].derived_from == (f"DEV-1:s{last_fix.seq}",)  # still from its last fix
    assert after[-1].eta - before[-1].eta > minutes(30)  # it stays on: the next stop later
    assert after[len(before)].supersedes == before[-1].fact_id


def test_the_fleets_legs_teach_how_fast_the_roads_really_are(
    ledger: Ledger, store_url: str, clock: Clock
) -> None:
    db = Database(store_url)
    migrate(db)
    # the model says 60 km/h; the scenario's trucks do 40 km/h on the same straight lines
    fast = scenario_travel(60.0)
    world = World(
        ledger, db, Runner(ledger, db), Reconciler(ledger), EtaPolicy(ledger, fast, db=db), clock
    )
    day = world.plan_day()
    world.feed(day.pings, batch=len(day.pings))  # a day's legs, reconciled
    later = timedelta(days=3)
    ledger.register_vehicle(
        ADMIN, "TRK-2", carrier_code="FAST", capacity_kg=Decimal(12000),
        capacity_m3=Decimal(60), pallets=24, device_id="DEV-2",
    )  # fmt: skip
    ledger.register_driver(ADMIN, "DRV-2", first_name="Bo", last_name="Ek", carrier_code="FAST")
    repeat = plan_again(ledger, "L-AGAIN", day, later, driver="DRV-2", vehicle="TRK-2")
    at_the_warehouse = day.arrivals[0] + minutes(5)

    world.feed(  # another truck, which has driven nothing yet: only the fleet's legs tell
        [replace(shifted(p, later), device_id="DEV-2") for p in until(day, at_the_warehouse)],
        batch=len(day.pings),
    )

    [eta] = reported(ledger, repeat[1])
    driving = float(re.search(r"(\d+) min driving", eta.note)[1])  # type: ignore[index]
    leg = (day.arrivals[1] - day.departures[0]) / minutes(1)
    [modelled] = fast([GeoPoint(*STOPS[0][1:3]), GeoPoint(*STOPS[1][1:3])])
    assert modelled.minutes < 0.75 * leg  # the model alone would be far too quick
    assert abs(driving - leg) < 0.1 * leg
    db.close()


def test_a_replan_that_swaps_the_remaining_stops_moves_their_etas_without_a_new_ping(
    world: World,
) -> None:
    world.clock.now = SCENARIO_DAY - minutes(2)  # dispatched before the truck sets off
    day = world.plan_day()
    world.ledger.ingest_duty(ADMIN, list(day.duty))
    halfway = day.arrivals[1] - minutes(10)
    world.feed(until(day, halfway), batch=len(day.pings))
    _, first, second = day.stop_ids
    (before_first,), (before_second,) = (
        reported(world.ledger, first),
        reported(world.ledger, second),
    )
    assert before_first.eta < before_second.eta
    load = world.ledger.load(day.load_id)
    route = PlannedRoute("TRK-1", None, load.reference, (), 0.0, 0.0, halfway, halfway)
    figures = PlanFigures("distance", 0.0, 0.0, 0.0, 1, 0.0, 0.0, "test", 0.0, 0.0)

    world.ledger.record_replan(
        ADMIN,
        plan_id="swap",
        day=halfway.date(),
        at=halfway,
        fingerprint="swap",
        figures=figures,
        replaces=(),
        routes=[RouteRevision(route, load.id, (RouteStop(second), RouteStop(first)))],
        unplaced=(),
    )
    world.settle()

    after_first, after_second = reported(world.ledger, first)[-1], reported(world.ledger, second)
    assert after_second[-1].eta < after_first.eta  # the swapped stop is now next
    assert after_first.supersedes == before_first.fact_id
    assert after_second[-1].supersedes == before_second.fact_id
