"""Bitemporal reads on the real store: as it happened at T, as known at T′, and both."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Caller, Ledger, StopPlan
from ledger.drivers import DutyInput, DutyStatus
from ledger.errors import InvalidInput, NotFound
from ledger.events import Source
from ledger.history import (
    driver_history,
    load_history,
    load_timeline,
    order_history,
    position_at,
    stock_history,
    stop_history,
    vehicle_history,
    viewpoint,
)
from ledger.log import iter_log
from ledger.stops import FactDetail, StopFact, StopKind
from ledger.telematics import PingInput
from ledger.timeline import fold_load, fold_stop, select
from support.clock import Clock
from support.factories import ADMIN, order_draft, reference_data, window

#: Written out here, not taken from `ledger.timeline` (PRODUCT §3).
PRECEDENCE = {
    Source.OPERATOR: 6,
    Source.DRIVER_APP: 5,
    Source.API: 4,
    Source.ELD: 3,
    Source.GPS: 2,
    Source.EDI: 1,
}
DAY = datetime(2026, 11, 20, tzinfo=UTC)
BASE = DAY.replace(hour=10)  # stop facts happen around 10:00 UTC
PLANNED_AT = BASE - timedelta(hours=12)  # the load was planned the evening before


def at(hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY.replace(hour=int(hours), minute=int(minutes))


def caller(source: Source, correlation_id: str = "test") -> Caller:
    return Caller(actor=f"test:{source.value}", source=source, correlation_id=correlation_id)


def plan_three_stops(ledger: Ledger, reference: str) -> tuple[UUID, list[UUID]]:
    ledger.plan_load(
        ADMIN,
        reference,
        [
            StopPlan(StopKind.PICKUP, "WH-1", window(BASE - timedelta(hours=3), 3)),
            StopPlan(StopKind.DELIVERY, "CUST-1", window(BASE, 3)),
            StopPlan(StopKind.DELIVERY, "CUST-1", window(BASE + timedelta(hours=2), 3)),
        ],
        occurred_at=PLANNED_AT,
        reason="planned the evening before",
    )
    load = ledger.load_by_reference(reference)
    return load.id, list(load.stop_ids)


def record(
    ledger: Ledger,
    stop_id: UUID,
    fact: StopFact,
    source: Source,
    occurred_at: datetime,
    supersedes: str | None = None,
) -> int:
    if source is Source.OPERATOR:
        return ledger.override_stop_fact(
            caller(source),
            stop_id,
            fact,
            occurred_at=occurred_at,
            reason="driver phoned the time in",
            supersedes=supersedes,
        )
    return ledger.record_stop_fact(
        caller(source),
        stop_id,
        fact,
        occurred_at=occurred_at,
        detail=FactDetail(supersedes=supersedes),
    )


# --- as-of correctness against an independent model -----------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A stop fact as this test recorded it (its own list, not read back from the ledger)."""

    stop: int
    fact: StopFact
    source: Source
    occurred_at: datetime
    position: int
    fact_id: str
    supersedes: str | None


def expected_winner(
    recorded: list[Recorded],
    stop: int,
    fact: StopFact,
    as_of: datetime | None,
    known_at: int | None,
) -> Recorded | None:
    """Highest precedence among the facts known and happened, not superseded by one of them;
    ties go to the later-recorded."""
    known = [
        r
        for r in recorded
        if r.stop == stop
        and (known_at is None or r.position <= known_at)
        and (as_of is None or r.occurred_at <= as_of)
    ]
    superseded = {r.supersedes for r in known if r.supersedes}
    candidates = [r for r in known if r.fact is fact and r.fact_id not in superseded]
    return max(candidates, key=lambda r: (PRECEDENCE[r.source], r.position), default=None)


fact_specs = st.lists(
    st.tuples(
        st.integers(0, 2),  # which stop
        st.sampled_from([StopFact.ARRIVED, StopFact.DEPARTED]),
        st.sampled_from([Source.GPS, Source.EDI, Source.OPERATOR, Source.DRIVER_APP]),
        st.integers(-300, 300),  # minutes from 10:00, in any order: late facts included
        st.none() | st.integers(0, 30),  # supersede one of the stop's earlier facts
    ),
    min_size=4,
    max_size=9,
)
as_of_minutes = st.none() | st.integers(-780, 360)  # down to before the load was planned


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=fact_specs,
    correction=st.tuples(st.integers(0, 30), st.integers(-300, 300)),
    data=st.data(),
)
def test_history_matches_the_folds_and_an_independent_model_when_facts_arrive_in_any_order(
    ledger: Ledger,
    specs: list[tuple[int, StopFact, Source, int, int | None]],
    correction: tuple[int, int],
    data: st.DataObject,
) -> None:
    if ledger.position == 0:
        reference_data(ledger)
    before_plan = ledger.position
    load_id, stop_ids = plan_three_stops(ledger, f"L-{uuid.uuid4().hex[:10]}")
    scheduled = {r.stream: r.position for r in iter_log(ledger, after=before_plan)}
    recorded: list[Recorded] = []
    versions = dict.fromkeys(range(3), 1)  # a stop's Scheduled is version 1

    def add(
        stop: int, fact: StopFact, source: Source, minutes: int, supersedes: str | None
    ) -> None:
        occurred_at = BASE + timedelta(minutes=minutes)
        position = record(ledger, stop_ids[stop], fact, source, occurred_at, supersedes)
        versions[stop] += 1
        fact_id = f"{stop_ids[stop]}:{versions[stop]}"
        recorded.append(Recorded(stop, fact, source, occurred_at, position, fact_id, supersedes))

    for stop, fact, source, minutes, pick in specs:
        earlier = [r.fact_id for r in recorded if r.stop == stop]
        supersedes = earlier[pick % len(earlier)] if pick is not None and earlier else None
        add(stop, fact, source, minutes, supersedes)
    # A derived correction (source gps) that names the fact it supersedes, recorded last.
    target = recorded[correction[0] % len(recorded)]
    add(target.stop, target.fact, Source.GPS, correction[1], target.fact_id)
    head = ledger.position
    # This example's events read from the global log (not through the per-stream read).
    logged = list(iter_log(ledger, after=before_plan))

    for _ in range(4):
        minutes = data.draw(as_of_minutes, label="as_of minutes from 10:00")
        as_of = None if minutes is None else BASE + timedelta(minutes=minutes)
        # A position from 0 to the head, drawn relative to this example's events (the store
        # keeps the events of earlier examples, so absolute bounds would move between runs).
        offset = data.draw(st.none() | st.integers(-1, 2 * len(specs) + 6), label="known_at")
        known_at = None
        if offset is not None:
            known_at = 0 if offset < 0 else min(head, before_plan + offset)

        history = load_history(ledger, load_id, as_of=as_of, known_at=known_at)

        by_sequence = {state.sequence: state for state in history.stops}
        load_records = [r for r in logged if r.stream == load_id]
        assert history.load == fold_load(select(load_records, as_of=as_of, known_at=known_at))
        assert load_timeline(ledger, load_id, as_of, known_at).history == history
        for index, stop_id in enumerate(stop_ids):
            stop_records = [r for r in logged if r.stream == stop_id]
            direct = fold_stop(select(stop_records, as_of=as_of, known_at=known_at))
            state = by_sequence.get(index + 1)
            assert state == direct
            assert stop_history(ledger, stop_id, as_of=as_of, known_at=known_at) == direct
            is_known = (known_at is None or scheduled[stop_id] <= known_at) and (
                as_of is None or as_of >= PLANNED_AT
            )
            assert (state is not None) == is_known
            if state is None:
                continue
            for fact in (StopFact.ARRIVED, StopFact.DEPARTED):
                want = expected_winner(recorded, index, fact, as_of, known_at)
                got = state.facts.get(fact)
                assert (None if got is None else (got.occurred_at, got.source, got.fact_id)) == (
                    None if want is None else (want.occurred_at, want.source, want.fact_id)
                )


# --- "what did we believe at T′ about T" ----------------------------------------------------


def test_arrival_is_what_we_believed_then_when_asked_before_and_after_an_override(
    ledger: Ledger,
) -> None:
    reference_data(ledger)
    load_id, stop_ids = plan_three_stops(ledger, "L-DISPUTE")
    stop = stop_ids[1]
    gps = record(ledger, stop, StopFact.ARRIVED, Source.GPS, at("10:40"))
    edi = record(ledger, stop, StopFact.ARRIVED, Source.EDI, at("10:05"))
    override = record(ledger, stop, StopFact.ARRIVED, Source.OPERATOR, at("10:15"))

    def arrival(
        as_of: datetime | None = None, known_at: int | datetime | None = None
    ) -> tuple[datetime, Source] | None:
        state = stop_history(ledger, stop, as_of=as_of, known_at=known_at)
        assert state is not None
        fact = state.arrival
        return None if fact is None else (fact.occurred_at, fact.source)

    assert arrival(known_at=gps) == (at("10:40"), Source.GPS)
    assert arrival(known_at=edi) == (at("10:40"), Source.GPS)  # gps outranks edi
    assert arrival(known_at=override) == (at("10:15"), Source.OPERATOR)
    assert arrival() == (at("10:15"), Source.OPERATOR)
    # At 10:30 the gps arrival had not happened yet: at `edi` we believed edi's 10:05.
    assert arrival(as_of=at("10:30"), known_at=edi) == (at("10:05"), Source.EDI)
    assert arrival(as_of=at("10:30"), known_at=override) == (at("10:15"), Source.OPERATOR)
    assert arrival(as_of=at("10:00"), known_at=override) is None
    # The same question with T′ as a time: the moment the edi fact was recorded.
    (edi_record,) = iter_log(ledger, after=edi - 1, limit=1)
    assert arrival(known_at=edi_record.recorded_at) == (at("10:40"), Source.GPS)
    history = load_history(ledger, load_id, known_at=edi_record.recorded_at)
    assert history.viewpoint.known_at == edi
    assert history.stops[1].arrival is not None
    assert history.stops[1].arrival.source is Source.GPS


def test_timeline_lists_every_fact_in_event_time_with_both_clocks_when_facts_arrive_late(
    ledger: Ledger,
) -> None:
    reference_data(ledger)
    load_id, stop_ids = plan_three_stops(ledger, "L-TIMELINE")
    gps = record(ledger, stop_ids[0], StopFact.ARRIVED, Source.GPS, at("07:40"))
    ledger.record_stop_fact(
        caller(Source.DRIVER_APP, "req-42"), stop_ids[0], StopFact.DEPARTED, occurred_at=at("08:30")
    )
    late = record(ledger, stop_ids[0], StopFact.ARRIVED, Source.OPERATOR, at("07:20"))
    record(ledger, stop_ids[1], StopFact.ARRIVED, Source.EDI, at("08:10"))  # before stop 1 left

    timeline = load_timeline(ledger, load_id)
    early = load_timeline(ledger, load_id, known_at=gps)

    facts = [e for e in timeline.entries if e.kind.startswith("stop.") and e.fact_id]
    assert [(e.occurred_at, e.kind, e.stop_sequence) for e in facts] == [
        (at("07:20"), "stop.arrived", 1),
        (at("07:40"), "stop.arrived", 1),
        (at("08:10"), "stop.arrived", 2),
        (at("08:30"), "stop.departed", 1),
    ]
    keys = [(e.occurred_at, e.position) for e in timeline.entries]
    assert keys == sorted(keys)
    assert timeline.entries[0].kind == "load.planned"
    overridden = next(e for e in facts if e.position == late)
    assert (overridden.source, overridden.reason, overridden.in_effect) == (
        Source.OPERATOR,
        "driver phoned the time in",
        True,
    )
    assert next(e for e in facts if e.position == gps).in_effect is False
    departed = next(e for e in facts if e.kind == "stop.departed")
    assert (departed.actor, departed.correlation_id) == ("test:driver_app", "req-42")
    assert overridden.recorded_at > departed.recorded_at  # happened first, learned later
    assert timeline.load is not None and timeline.load.status.value == "planned"
    assert timeline.stops[0].dwell == timedelta(minutes=70)
    assert timeline.conflicts == ((stop_ids[0], stop_ids[1]),)
    assert [e.position for e in early.entries if e.fact_id] == [gps]
    assert early.conflicts == ()
    document = timeline.as_dict()
    assert list(document) == ["load_id", "reference", "as_of", "known_at", "head", "facts", "state"]
    assert document["state"]["stops"][0]["arrival"]["source"] == "operator"
    assert document["state"]["conflicts"][0]["after_stop"] == 2


# --- time → position --------------------------------------------------------------------------


def test_position_is_zero_before_the_first_event_and_the_head_after_the_last(
    ledger: Ledger,
) -> None:
    assert position_at(ledger, DAY) == 0  # an empty log
    for n in range(6):
        ledger.open_account(ADMIN, f"T{n}", f"Tenant {n}")  # one event per transaction
    records = list(iter_log(ledger))
    times = [r.recorded_at for r in records]
    assert times == sorted(times) and len(set(times)) == len(times)
    tick = timedelta(microseconds=1)

    assert position_at(ledger, times[0] - tick) == 0
    assert position_at(ledger, times[0] - timedelta(days=365)) == 0
    assert position_at(ledger, times[-1]) == ledger.position
    assert position_at(ledger, times[-1] + timedelta(days=365)) == ledger.position
    for previous, current in pairwise(records):
        assert position_at(ledger, current.recorded_at) == current.position
        assert position_at(ledger, current.recorded_at - tick) == previous.position
    assert viewpoint(ledger, known_at=times[0] - tick).known_at == 0


def test_viewpoint_is_refused_when_a_time_is_naive_or_a_position_negative(
    ledger: Ledger,
) -> None:
    with pytest.raises(InvalidInput) as naive:
        viewpoint(ledger, as_of=datetime(2026, 11, 20, 10, 0))
    with pytest.raises(InvalidInput) as negative:
        viewpoint(ledger, known_at=-1)

    assert naive.value.field == "as_of"
    assert negative.value.field == "known_at"


def test_load_is_not_found_when_no_load_has_that_id(ledger: Ledger) -> None:
    with pytest.raises(NotFound):
        load_timeline(ledger, uuid.uuid4())


# --- orders, stock, vehicles, drivers ---------------------------------------------------------


def test_order_and_stock_are_as_they_were_when_asked_before_later_changes(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    placed_at = clock.now
    placed = ledger.place_order(ADMIN, "ACME", order_draft("PO-1", clock.now, ("SKU-1", 5)))
    received = ledger.receive_stock(ADMIN, warehouse="WH-1", sku="SKU-1", quantity=10)
    clock.advance(hours=1)
    order_id = ledger.order_by_reference("ACME", "PO-1").id
    stock_id = ledger.stock_item("WH-1", "SKU-1").id
    ledger.hold_order(ADMIN, order_id, "customer asked to wait")
    ledger.adjust_stock(ADMIN, stock_id, -2, "cycle count")
    half_way = placed_at + timedelta(minutes=30)

    held_now = order_history(ledger, order_id)
    held_then = order_history(ledger, order_id, as_of=half_way)
    held_known = order_history(ledger, order_id, known_at=placed)
    unknown = order_history(ledger, order_id, known_at=placed - 1)

    assert held_now is not None and held_now.on_hold
    assert held_then is not None and not held_then.on_hold
    assert held_known is not None and not held_known.on_hold
    assert unknown is None
    on_hand = [
        state.on_hand if state else None
        for state in (
            stock_history(ledger, stock_id),
            stock_history(ledger, stock_id, as_of=half_way),
            stock_history(ledger, stock_id, known_at=received),
        )
    ]
    assert on_hand == [8, 10, 10]


def test_vehicle_position_is_the_latest_fix_known_then_when_a_late_batch_arrives(
    ledger: Ledger,
) -> None:
    reference_data(ledger)

    def ping(seq: int, occurred_at: datetime) -> PingInput:
        return PingInput("DEV-1", seq, occurred_at, 41.85 + seq / 1000, -87.65)

    before = ledger.position
    first = ledger.ingest_pings(
        ADMIN, [ping(1, DAY - timedelta(minutes=10)), ping(2, at("12:00")), ping(3, at("12:10"))]
    ).position
    ledger.ingest_pings(ADMIN, [ping(4, at("13:00"))])

    def fix(
        as_of: datetime | None = None, known_at: int | None = None, days: int = 2
    ) -> datetime | None:
        found = vehicle_history(ledger, "TRK-1", as_of=as_of, known_at=known_at, days=days)
        return None if found is None else found.ping.occurred_at

    assert fix() == at("13:00")
    assert fix(known_at=first) == at("12:10")
    assert fix(as_of=at("12:05")) == at("12:00")  # a ping later in the same batch is not yet
    assert fix(as_of=at("00:05")) == DAY - timedelta(minutes=10)  # from the previous day
    assert fix(as_of=at("00:05"), days=1) is None
    assert fix(known_at=before) is None


def test_driver_status_is_what_the_eld_had_reported_when_a_change_arrives_late(
    ledger: Ledger,
) -> None:
    reference_data(ledger)
    driving = ledger.ingest_duty(
        ADMIN, [DutyInput("DRV-1", DAY - timedelta(hours=4), DutyStatus.DRIVING)]
    ).position
    ledger.ingest_duty(ADMIN, [DutyInput("DRV-1", at("09:00"), DutyStatus.OFF_DUTY)])

    known_then = driver_history(ledger, "DRV-1", as_of=at("10:00"), known_at=driving)
    known_now = driver_history(ledger, "DRV-1", as_of=at("10:00"))
    before = driver_history(ledger, "DRV-1", as_of=at("08:00"))

    assert known_then.status.value == "driving"
    assert known_then.violations  # driving since 20:00 yesterday: past the 11 hours
    assert known_now.status.value == "off_duty"
    assert known_now.status_since == at("09:00")
    assert before.status.value == "driving"
