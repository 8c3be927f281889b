"""Late and disordered telematics reconcile to the same stop times as live ones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest

from ledger.application import Ledger
from ledger.events import Source
from ledger.log import iter_log
from ledger.stops import Stop, StopFact
from ledger.telematics import PingInput
from projections.db import Database
from projections.migrations import migrate
from projections.reconciler import ACTOR, Reconciler
from projections.runner import Runner
from projections.view import iso
from support.clock import Clock
from support.factories import ADMIN, OPERATOR
from support.scenario import Day, plan_day


@pytest.fixture
def world(ledger: Ledger, store_url: str) -> Iterator[tuple[Ledger, Runner, Reconciler]]:
    db = Database(store_url)
    migrate(db)
    yield ledger, Runner(ledger, db), Reconciler(ledger)
    db.close()


def feed(
    ledger: Ledger,
    runner: Runner,
    reconciler: Reconciler,
    pings: Sequence[PingInput],
    batch: int = 60,
) -> None:
    """Ingests in batches, letting the policy and the views run between them (as live)."""
    for i in range(0, len(pings), batch):
        ledger.ingest_pings(ADMIN, pings[i : i + batch])
        reconciler.catch_up()
        runner.catch_up()
    reconciler.catch_up()
    runner.catch_up()


def stop_times(runner: Runner, day: Day) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in runner.db.query(
            "SELECT sequence, arrived_at, arrival_source, departed_at, departure_source, "
            "dwell_minutes, detention_minutes, on_time FROM stop_times WHERE load_id = %s "
            "ORDER BY sequence",
            (str(day.load_id),),
        )
    ]


def gps_facts(ledger: Ledger, stop_id: object) -> list[Stop.FactRecorded]:
    return [
        r.event
        for r in iter_log(ledger, stream=stop_id)  # type: ignore[arg-type]
        if isinstance(r.event, Stop.FactRecorded) and r.meta and r.meta.actor == ACTOR
    ]


def test_arrivals_and_departures_are_derived_from_pings_when_they_come_live(
    world: tuple[Ledger, Runner, Reconciler], clock: Clock
) -> None:
    ledger, runner, reconciler = world
    day = plan_day(ledger)
    clock.advance(days=1)

    feed(ledger, runner, reconciler, day.pings)

    rows = stop_times(runner, day)
    assert [r[1] for r in rows] == [iso(t) for t in day.arrivals]
    assert [r[3] for r in rows] == [iso(t) for t in day.departures]
    assert {r[2] for r in rows} == {"gps"}
    assert rows[1][5] == 200  # dwell minutes at the second stop
    assert rows[1][6] == 90  # 3 h 20 min dwell, 2 h free, 15-min increments
    facts = gps_facts(ledger, day.stop_ids[1])
    assert [f.fact for f in facts] == [StopFact.ARRIVED, StopFact.DEPARTED]
    assert all(f.detail.derived_from and f.detail.supersedes is None for f in facts)


def test_backfilled_hour_moves_the_arrival_with_a_correction_when_pings_come_late(
    world: tuple[Ledger, Runner, Reconciler], clock: Clock
) -> None:
    ledger, runner, reconciler = world
    day = plan_day(ledger)
    clock.advance(days=1)
    arrival = day.arrivals[1]
    offline = [p for p in day.pings if arrival <= p.occurred_at < arrival + timedelta(minutes=35)]
    live = [p for p in day.pings if p not in offline]

    feed(ledger, runner, reconciler, live)
    before = stop_times(runner, day)[1]
    feed(ledger, runner, reconciler, offline)
    after = stop_times(runner, day)[1]

    assert before[1] == iso(arrival + timedelta(minutes=35))
    assert after[1] == iso(arrival)
    assert (before[6], after[6]) == (45, 90)  # detention moves with the arrival
    arrivals = [f for f in gps_facts(ledger, day.stop_ids[1]) if f.fact is StopFact.ARRIVED]
    assert len(arrivals) == 2
    assert arrivals[1].detail.supersedes is not None
    assert arrivals[1].meta.occurred_at == arrival


def test_operator_override_outranks_gps_and_edi(
    world: tuple[Ledger, Runner, Reconciler], clock: Clock
) -> None:
    ledger, runner, reconciler = world
    day = plan_day(ledger)
    clock.advance(days=1)
    feed(ledger, runner, reconciler, day.pings)
    stop = day.stop_ids[1]
    edi_time = day.arrivals[1] - timedelta(minutes=50)
    operator_time = day.arrivals[1] + timedelta(minutes=5)

    ledger.record_stop_fact(ADMIN, stop, StopFact.ARRIVED, occurred_at=edi_time, source=Source.EDI)
    runner.catch_up()
    after_edi = stop_times(runner, day)[1]
    ledger.override_stop_fact(
        OPERATOR,
        stop,
        StopFact.ARRIVED,
        occurred_at=operator_time,
        reason="driver called: gate queue",
    )
    runner.catch_up()
    after_override = stop_times(runner, day)[1]

    assert (after_edi[1], after_edi[2]) == (iso(day.arrivals[1]), "gps")
    assert (after_override[1], after_override[2]) == (iso(operator_time), "operator")


def test_contradicting_facts_raise_an_exception_for_a_human(
    world: tuple[Ledger, Runner, Reconciler], clock: Clock
) -> None:
    ledger, runner, reconciler = world
    day = plan_day(ledger)
    clock.advance(days=1)
    feed(ledger, runner, reconciler, day.pings)

    # a carrier says it reached stop 3 before it left stop 2
    ledger.override_stop_fact(
        OPERATOR,
        day.stop_ids[2],
        StopFact.ARRIVED,
        occurred_at=day.departures[1] - timedelta(hours=1),
        reason="keyed from the carrier's call",
    )
    reconciler.catch_up()
    runner.catch_up()

    queue = runner.db.query("SELECT kind, owner, stop_id FROM exceptions_queue")
    board = runner.db.query("SELECT conflicts, open_exceptions FROM load_board")
    assert queue == [("conflicting_facts", "dispatch", str(day.stop_ids[2]))]
    assert board == [(1, 1)]


def test_kpis_count_on_time_stops_dwell_and_tenders_by_day_carrier_and_customer(
    world: tuple[Ledger, Runner, Reconciler], clock: Clock
) -> None:
    ledger, runner, reconciler = world
    day = plan_day(ledger)
    clock.advance(days=1)
    feed(ledger, runner, reconciler, day.pings)

    stops = runner.db.query(
        "SELECT day, carrier_code, stops, pickups, pickups_on_time, deliveries, "
        "deliveries_on_time, dwell_minutes, detention_minutes FROM kpi_daily"
    )
    loads = runner.db.query(
        "SELECT loads, tenders, tenders_accepted, exceptions FROM kpi_loads_daily"
    )

    assert stops == [(day.arrivals[0].date().isoformat(), "FAST", 3, 1, 1, 2, 2, 245, 90)]
    assert loads == [(1, 1, 1, 0)]


def test_hours_of_service_are_recomputed_when_a_duty_change_arrives_late(
    world: tuple[Ledger, Runner, Reconciler], clock: Clock
) -> None:
    ledger, runner, _ = world
    day = plan_day(ledger)
    clock.advance(days=1)
    on_time = [
        c
        for c in day.duty
        if c.status.value != "on_duty" or c.occurred_at < day.duty[1].occurred_at
    ]
    late = [c for c in day.duty if c not in on_time]  # the 40-minute on-duty break

    ledger.ingest_duty(ADMIN, on_time)
    runner.catch_up()
    before = runner.db.query("SELECT until_break_minutes, violation_kinds FROM driver_hos")
    ledger.ingest_duty(ADMIN, late)
    runner.catch_up()
    after = runner.db.query("SELECT until_break_minutes, violation_kinds FROM driver_hos")

    assert before[0][1] == "break_30"  # 8 h of driving without the break
    assert after[0][1] == ""  # the late break is in place: no violation
