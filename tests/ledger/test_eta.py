"""Predicted arrivals: worked examples of `ledger.eta.predict` with the planner's travel model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from ledger.eta import (
    Driven,
    DwellPrior,
    DwellSource,
    EarlyStay,
    EtaRules,
    Habit,
    Leg,
    PaceProfile,
    PastDwell,
    Position,
    RestKind,
    Stretch,
    Travel,
    UpcomingStop,
    dwell_prior,
    eta_detail,
    expected_dwell,
    learned_habit,
    learned_pace,
    predict,
    remaining_stops,
    waits_for_window,
)
from ledger.events import Source
from ledger.geofence import haversine_m
from ledger.hos import DutyChange, DutyStatus, HosState
from ledger.stops import StopFact, StopKind
from ledger.timeline import ResolvedFact, StopState
from ledger.values import GeoPoint, TimeWindow
from planner.model import Location, TravelModel
from planner.travel import build_travel_for

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
YARD = GeoPoint(41.80, -87.75)


def planner_travel(speed_kmh: float = 60.0, detour_factor: float = 1.0) -> Travel:
    """The planner's haversine travel model, read leg by leg along a path."""
    model = TravelModel(kind="haversine", detour_factor=detour_factor, speed_kmh=speed_kmh)

    def legs(path: Sequence[GeoPoint]) -> list[Leg]:
        places = tuple(Location(str(i), lat=p.lat, lon=p.lon) for i, p in enumerate(path))
        matrix = build_travel_for(model, places)
        return [
            Leg(float(matrix.distance[i, i + 1]), float(matrix.time[i, i + 1]))
            for i in range(len(path) - 1)
        ]

    return legs


def km(a: GeoPoint, b: GeoPoint) -> float:
    return haversine_m(a.lat, a.lon, b.lat, b.lon) / 1000.0


def north(point: GeoPoint, kilometres: float) -> GeoPoint:
    return GeoPoint(point.lat + kilometres / 111.195, point.lon)


def stop(
    point: GeoPoint,
    *,
    service: int = 30,
    arrived_at: datetime | None = None,
    appointment: TimeWindow | None = None,
    location: UUID | None = None,
) -> UpcomingStop:
    return UpcomingStop(uuid4(), location or uuid4(), point, service, appointment, arrived_at)


def hos(**left: timedelta) -> HosState:
    clocks = {
        "drive_remaining": timedelta(hours=11),
        "window_remaining": timedelta(hours=14),
        "until_break": timedelta(hours=8),
        "cycle_remaining": timedelta(hours=70),
    }
    clocks.update(left)
    return HosState(
        at=NOW, status=DutyStatus.DRIVING, status_since=NOW - timedelta(hours=1), violations=(),
        **clocks,
    )  # fmt: skip


def at_yard() -> Position:
    return Position(YARD, NOW, "DEV-1:s1")


def close(a: datetime, b: datetime) -> bool:
    """Equal to within a second (floating-point minutes)."""
    return abs(a - b) <= timedelta(seconds=1)


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def test_arrival_is_now_plus_distance_over_speed_when_driving_a_straight_leg() -> None:
    there = north(YARD, 30)
    distance = km(YARD, there)

    [eta] = predict(at_yard(), [stop(there)], NOW, {}, None, planner_travel(60.0))

    assert close(eta.arrival, NOW + minutes(distance))
    assert eta.km == pytest.approx(distance)
    assert eta.drive_minutes == pytest.approx(distance)  # 60 km/h: a minute per km
    assert not eta.arrived and eta.rests == ()
    assert (eta.basis, eta.made_at) == ("DEV-1:s1", NOW)


def test_the_detour_factor_and_speed_of_the_travel_model_apply_when_given() -> None:
    there = north(YARD, 30)

    [eta] = predict(at_yard(), [stop(there)], NOW, {}, None, planner_travel(45.0, 1.3))

    expected = km(YARD, there) * 1.3 / 45.0 * 60.0
    assert close(eta.arrival, NOW + minutes(expected))


def test_dwell_is_the_median_of_the_last_dwells_when_the_location_has_history() -> None:
    first, second = stop(north(YARD, 10), service=30), stop(north(YARD, 20))
    older = [minutes(500), minutes(500)]  # beyond the last 10: forgotten
    recent = [minutes(m) for m in (20, 200, 25, 30, 22, 24, 26, 21, 23, 27)]
    history = {first.location_id: older + recent}

    rules = EtaRules(planned_weight=0)

    etas = predict(
        at_yard(), [first, second], NOW, history, None, planner_travel(60.0), rules=rules
    )

    assert etas[0].dwell.source is DwellSource.LEARNED
    assert etas[0].dwell.samples == 10
    assert etas[0].dwell.minutes == pytest.approx(24.5)
    assert etas[0].departure == etas[0].arrival + minutes(24.5)
    leg = km(north(YARD, 10), north(YARD, 20))
    assert close(etas[1].arrival, etas[0].departure + minutes(leg))


def test_a_few_dwells_are_drawn_toward_the_planned_service_minutes() -> None:
    here = stop(north(YARD, 10), service=30)
    history = {here.location_id: [minutes(60)]}

    dwell = expected_dwell(here, history, EtaRules(planned_weight=1))

    assert (dwell.minutes, dwell.source, dwell.samples) == (45.0, DwellSource.LEARNED, 1)


def test_a_long_stay_is_expected_to_last_like_the_longer_visits_there() -> None:
    here = stop(north(YARD, 10), service=30)
    history = {here.location_id: [minutes(m) for m in (20, 25, 30, 70, 90)]}

    staying = expected_dwell(here, history, elapsed=minutes(40))
    overstaying = expected_dwell(here, history, elapsed=minutes(100))

    assert staying.minutes == 80.0
    assert overstaying.minutes == 100.0  # longer than any: about to leave


def test_dwell_falls_back_to_planned_service_minutes_when_history_is_short() -> None:
    here = stop(north(YARD, 10), service=45)
    history = {here.location_id: [minutes(200), minutes(210)]}

    dwell = expected_dwell(here, history, EtaRules(min_samples=3))

    assert (dwell.minutes, dwell.source, dwell.samples) == (45.0, DwellSource.PLANNED, 0)


def test_a_30_minute_break_is_taken_when_until_break_runs_out_before_the_stop() -> None:
    there = north(YARD, 60)  # an hour away at 60 km/h
    driver = hos(until_break=minutes(20))

    [eta] = predict(at_yard(), [stop(there)], NOW, {}, driver, planner_travel(60.0))

    assert [(r.kind, r.start, r.end) for r in eta.rests] == [
        (RestKind.BREAK, NOW + minutes(20), NOW + minutes(50))
    ]
    assert close(eta.arrival, NOW + minutes(km(YARD, there) + 30))


def test_a_10_hour_reset_is_taken_when_the_driving_time_runs_out() -> None:
    there = north(YARD, 60)
    driver = hos(drive_remaining=minutes(40))

    [eta] = predict(at_yard(), [stop(there)], NOW, {}, driver, planner_travel(60.0))

    assert [r.kind for r in eta.rests] == [RestKind.RESET]
    assert eta.rests[0].end - eta.rests[0].start == timedelta(hours=10)
    assert close(eta.arrival, NOW + timedelta(hours=10) + minutes(km(YARD, there)))


def test_a_dwell_of_30_minutes_or_more_counts_as_the_break() -> None:
    first, second = stop(north(YARD, 10), service=40), stop(north(YARD, 40))
    driver = hos(until_break=minutes(20))

    etas = predict(at_yard(), [first, second], NOW, {}, driver, planner_travel(60.0))

    assert [eta.rests for eta in etas] == [(), ()]


def test_a_break_under_way_counts_toward_the_required_one() -> None:
    there = north(YARD, 10)
    driver = HosState(
        at=NOW,
        status=DutyStatus.OFF_DUTY,
        status_since=NOW - minutes(20),
        drive_remaining=timedelta(hours=5),
        window_remaining=timedelta(hours=8),
        until_break=timedelta(0),
        cycle_remaining=timedelta(hours=40),
        violations=(),
    )

    [eta] = predict(at_yard(), [stop(there)], NOW, {}, driver, planner_travel(60.0))

    assert [(r.kind, r.end) for r in eta.rests] == [(RestKind.BREAK, NOW + minutes(10))]


def test_the_eta_window_widens_with_distance() -> None:
    near, far = stop(north(YARD, 5), service=0), stop(north(YARD, 80), service=0)
    rules = EtaRules(base_margin=minutes(5), margin_per_km=timedelta(seconds=15))

    etas = predict(at_yard(), [near, far], NOW, {}, None, planner_travel(60.0), rules=rules)

    widths = [eta.window.end - eta.window.start for eta in etas]
    assert widths[0] < widths[1]
    half = minutes(5) + timedelta(seconds=15) * etas[1].km
    assert abs(widths[1] / 2 - half) < timedelta(seconds=1)
    assert all(eta.window.contains(eta.arrival) for eta in etas)


def test_a_stop_the_vehicle_is_at_is_left_after_its_expected_dwell() -> None:
    here = stop(north(YARD, 10), service=30, arrived_at=NOW - minutes(10))
    then = stop(north(YARD, 25))
    position = Position(north(YARD, 10), NOW, "DEV-1:s9")

    etas = predict(position, [here, then], NOW, {}, None, planner_travel(60.0))

    assert etas[0].arrived and etas[0].arrival == NOW - minutes(10)
    assert etas[0].departure == NOW + minutes(20)
    assert close(etas[1].arrival, NOW + minutes(35))


def test_an_overstay_leaves_no_earlier_than_now() -> None:
    here = stop(north(YARD, 10), service=30, arrived_at=NOW - minutes(90))
    position = Position(north(YARD, 10), NOW, "DEV-1:s9")

    [eta] = predict(position, [here], NOW, {}, None, planner_travel(60.0))

    assert eta.departure == NOW


def test_service_waits_for_the_appointment_when_the_vehicle_is_early() -> None:
    appointment = TimeWindow(NOW + minutes(60), NOW + minutes(90))
    first = stop(north(YARD, 10), service=20, appointment=appointment)
    second = stop(north(YARD, 20))

    etas = predict(at_yard(), [first, second], NOW, {}, None, planner_travel(60.0))

    assert etas[0].arrival < appointment.start
    assert etas[0].departure == appointment.start + minutes(20)


def test_service_waits_for_the_window_to_open_when_there_is_no_appointment() -> None:
    window = TimeWindow(NOW + minutes(60), NOW + minutes(180))
    first = UpcomingStop(uuid4(), uuid4(), north(YARD, 10), 20, window=window)

    [eta] = predict(at_yard(), [first], NOW, {}, None, planner_travel(60.0))

    assert eta.departure == window.start + minutes(20)


def test_a_route_not_started_leaves_when_the_pre_trip_inspection_is_done() -> None:
    there = north(YARD, 10)
    driver = HosState(
        at=NOW,
        status=DutyStatus.ON_DUTY,
        status_since=NOW - minutes(5),
        drive_remaining=timedelta(hours=11),
        window_remaining=timedelta(hours=14),
        until_break=timedelta(hours=8),
        cycle_remaining=timedelta(hours=40),
        violations=(),
    )
    travel = planner_travel(60.0)

    [waiting] = predict(at_yard(), [stop(there)], NOW, {}, driver, travel, started=False)
    [moving] = predict(at_yard(), [stop(there)], NOW, {}, driver, travel, started=True)

    assert waiting.arrival - moving.arrival == minutes(15)  # 20 min inspection, 5 done


def test_the_pace_is_actual_over_modelled_driving_once_there_is_enough_of_it() -> None:
    rules = EtaRules(pace_stretches=2, pace_min_minutes=15, pace_bounds=(0.5, 2.0))

    assert learned_pace([Driven(10, 20)], rules) is None  # too little driving to tell
    assert learned_pace([Driven(60, 30), Driven(30, 36), Driven(30, 42)], rules) == 1.3
    assert learned_pace([Driven(20, 100)], rules) == 2.0  # within bounds


def state(sequence: int, *, arrived: bool = False, departed: bool = False) -> StopState:
    def fact(kind: StopFact, at: datetime) -> ResolvedFact:
        return ResolvedFact(kind, at, Source.GPS, sequence * 10, f"s{sequence}:{kind.value}")

    facts = {}
    if arrived:
        facts[StopFact.ARRIVED] = fact(StopFact.ARRIVED, NOW - timedelta(hours=4 - sequence))
    if departed:
        facts[StopFact.DEPARTED] = fact(StopFact.DEPARTED, NOW - timedelta(hours=3.5 - sequence))
    return StopState(
        stop_id=UUID(int=sequence),
        load_id=UUID(int=99),
        sequence=sequence,
        kind=StopKind.DELIVERY,
        location_id=UUID(int=100 + sequence),
        window=TimeWindow(NOW, NOW + timedelta(hours=8)),
        appointment=None,
        service_minutes=30,
        facts=facts,
        eta=None,
        computed_from=(1,),
    )


def test_remaining_stops_are_those_not_departed_after_the_last_one_reached() -> None:
    stops = [
        state(1, arrived=True, departed=True),
        state(2),  # passed without any fact: not waited for
        state(3, arrived=True),  # here now
        state(4),
    ]
    points = {s.location_id: north(YARD, s.sequence) for s in stops}

    ahead = remaining_stops(stops, points)

    assert [s.stop_id for s in ahead] == [UUID(int=3), UUID(int=4)]
    assert ahead[0].arrived_at == NOW - timedelta(hours=1)
    assert ahead[1].arrived_at is None


def test_an_eta_fact_detail_keeps_the_predicted_arrival_its_window_and_its_evidence() -> None:
    [eta] = predict(at_yard(), [stop(north(YARD, 30))], NOW, {}, None, planner_travel(60.0))

    detail = eta_detail(eta, supersedes="stop:7")

    assert (detail.eta, detail.eta_window) == (eta.arrival, eta.window)
    assert detail.derived_from == ("DEV-1:s1",)
    assert detail.supersedes == "stop:7"
    assert "30.0 km" in detail.note


# --- learning from the fleet, habits, silence ----------------------------------------------


def stays(location: UUID, planned: float, *minutes: float) -> list[PastDwell]:
    return [PastDwell(location, planned, m) for m in minutes]


def fleet(ratio: float, *, locations: int = 8, visits: int = 4) -> list[PastDwell]:
    """Locations whose dwells run `ratio` × their planned 30 min, each spread ±20 %."""
    spread = (0.8, 1.0, 1.25, 1.0)
    return [
        PastDwell(UUID(int=1000 + n), 30.0, 30.0 * ratio * (1.0 + 0.1 * (n % 3 - 1)) * f)
        for n in range(locations)
        for f in spread[:visits]
    ]


def test_the_fleets_prior_is_its_ratio_of_dwell_to_plan_and_too_few_locations_give_none() -> None:
    prior = dwell_prior(fleet(0.5))
    few = dwell_prior(fleet(0.5, locations=3))

    assert prior.ratio == pytest.approx(0.5, rel=0.02)
    assert 0.0 < prior.spread < 0.3
    assert len(prior.residuals) == len(prior.excesses) == 32
    assert few == DwellPrior()  # the plan as it is, worth one dwell


def test_a_first_visit_is_expected_to_dwell_as_the_fleets_dwells_run_against_their_plan() -> None:
    here = stop(north(YARD, 10), service=40)

    dwell = expected_dwell(here, {}, prior=dwell_prior(fleet(0.5)))

    assert dwell.source is DwellSource.FLEET
    assert dwell.minutes == pytest.approx(20.0, rel=0.02)


def test_with_a_prior_the_stays_at_a_location_outweigh_the_plan_as_they_add_up() -> None:
    here = stop(north(YARD, 10), service=30)
    prior = DwellPrior(ratio=1.0, weight=0.5, spread=0.25)
    one = {here.location_id: [minutes(60)]}
    four = {here.location_id: [minutes(60)] * 4}

    once = expected_dwell(here, one, prior=prior).minutes
    often = expected_dwell(here, four, prior=prior).minutes

    assert 30.0 < once < often < 60.0
    assert once == pytest.approx(60.0 ** (1 / 1.5) * 30.0 ** (0.5 / 1.5))  # geometric


def test_a_stay_longer_than_any_known_is_expected_to_last_longer_again() -> None:
    here = stop(north(YARD, 10), service=30)
    prior = DwellPrior(residuals=(0.8, 1.0, 1.2), excesses=(-6.0, 0.0, 6.0))

    dwell = expected_dwell(
        here, {}, EtaRules(overstay_share=0.4), elapsed=minutes(100), prior=prior
    )

    assert dwell.minutes == pytest.approx(140.0)


def test_a_long_stay_is_expected_to_last_as_long_over_as_the_fleets_long_stays() -> None:
    here = stop(north(YARD, 10), service=30)
    usual = (0.9, 1.0, 1.0, 1.0, 1.1, 1.2)
    prior = DwellPrior(
        residuals=(*usual, 3.0, 4.0, 5.0),  # the longest was at a site that takes 90 min
        excesses=(-3.0, 0.0, 0.0, 0.0, 3.0, 6.0, 120.0, 150.0, 180.0),
    )

    early = expected_dwell(here, {}, elapsed=minutes(10), prior=prior)
    detained = expected_dwell(here, {}, elapsed=minutes(100), prior=prior)

    assert early.minutes == pytest.approx(33.0)  # the median of all: as usual
    assert detained.minutes == pytest.approx(30.0 + 150.0)  # held up as long as the long ones


def test_a_detention_at_a_short_stop_adds_its_minutes_to_a_long_one_not_its_ratio() -> None:
    here = stop(north(YARD, 10), service=45)
    usual = (0.9, 1.0, 1.0, 1.0, 1.1, 1.2)
    prior = DwellPrior(
        residuals=(*usual, 6.0, 7.0, 8.0),  # held 2 h or more at docks planned for 20 min
        excesses=(-3.0, 0.0, 0.0, 0.0, 3.0, 6.0, 120.0, 140.0, 160.0),
    )

    detained = expected_dwell(here, {}, elapsed=minutes(80), prior=prior)

    assert detained.minutes == pytest.approx(45.0 + 140.0)  # not 7 × 45 min


def test_early_trucks_wait_for_the_window_until_the_stays_say_otherwise_twice_over() -> None:
    fast = EarlyStay(planned=30.0, minutes=35.0, from_opening=5.0)  # served at once
    slow = EarlyStay(planned=30.0, minutes=75.0, from_opening=32.0)  # waited, then served

    assert waits_for_window([], ratio=1.0)  # as the planner plans
    assert waits_for_window([fast], ratio=1.0)  # one stay is no evidence
    assert not waits_for_window([fast, fast], ratio=1.0)
    assert waits_for_window([fast, fast, slow], ratio=1.0)
    assert not waits_for_window([fast], 1.0, EtaRules(served_at_once_votes=1))


def stretch(km: float, ratio: float, local_hour: float, day: int = 0) -> Stretch:
    """A leg driven at `local_hour` by the sun at the yard's longitude."""
    start = datetime(2026, 11, 2 + day, tzinfo=UTC) + timedelta(hours=local_hour - YARD.lon / 15)
    model = km * 1.5
    return Stretch(km, model, model * ratio, start - timedelta(minutes=model * ratio / 2), YARD.lon)


def at_local(hour: float) -> datetime:
    return datetime(2026, 11, 20, tzinfo=UTC) + timedelta(hours=hour - YARD.lon / 15)


def test_the_pace_profile_learns_the_rush_hour_and_that_longer_legs_run_faster() -> None:
    legs = [stretch(10, 1.4, 8.0, d) for d in range(4)]  # the morning rush
    legs += [stretch(10, 1.0, 12.0, d) for d in range(4)]  # midday
    legs += [stretch(200, 0.5, 12.0, d) for d in range(4)]  # long legs, midday

    profile = PaceProfile(legs)

    rush, midday = (
        profile.factor(10, at_local(8.0), YARD.lon),
        profile.factor(10, at_local(12.0), YARD.lon),
    )
    assert rush == pytest.approx(1.4, rel=0.1)
    assert midday == pytest.approx(1.0, rel=0.1)
    assert profile.factor(200, at_local(12.0), YARD.lon) == pytest.approx(0.5, rel=0.1)
    # few stretches at that hour for long legs: their length still tells
    assert profile.factor(200, at_local(8.0), YARD.lon) < 0.8
    assert PaceProfile([]).factor(10, at_local(8.0), YARD.lon) == 1.0


def test_a_leg_takes_the_profiles_factor_for_the_hour_it_is_driven() -> None:
    legs = [stretch(30, 1.5, 8.0, d) for d in range(6)] + [
        stretch(30, 1.0, 14.0, d) for d in range(6)
    ]
    there = north(YARD, 30)
    travel = planner_travel(60.0)

    [rush] = predict(
        Position(YARD, at_local(7.8), "p"), [stop(there)], at_local(7.8), {}, None, travel,
        profile=PaceProfile(legs),
    )  # fmt: skip
    [calm] = predict(
        Position(YARD, at_local(14.0), "p"), [stop(there)], at_local(14.0), {}, None, travel,
        profile=PaceProfile(legs),
    )  # fmt: skip

    assert rush.drive_minutes > 1.35 * km(YARD, there)
    assert calm.drive_minutes == pytest.approx(km(YARD, there), rel=0.1)


def test_the_leg_under_way_keeps_its_own_pace_the_legs_after_it_the_vehicles() -> None:
    first, second = stop(north(YARD, 30), service=0), stop(north(YARD, 60), service=0)

    etas = predict(
        at_yard(), [first, second], NOW, {}, None, planner_travel(60.0), pace=1.0, leg_pace=1.5
    )

    assert etas[0].drive_minutes == pytest.approx(1.5 * km(YARD, first.point))
    leg = etas[1].drive_minutes - etas[0].drive_minutes
    assert leg == pytest.approx(km(first.point, second.point))


def test_an_early_truck_is_served_at_once_when_the_fleet_does_not_wait_for_windows() -> None:
    window = TimeWindow(NOW + minutes(120), NOW + minutes(240))
    first = UpcomingStop(uuid4(), uuid4(), north(YARD, 10), 20, window=window)

    [waits] = predict(at_yard(), [first], NOW, {}, None, planner_travel(60.0))
    [served] = predict(
        at_yard(), [first], NOW, {}, None, planner_travel(60.0), wait_for_window=False
    )

    assert waits.departure == window.start + minutes(20)
    assert served.departure == served.arrival + minutes(20)


def duty(day: int, *spans: tuple[float, DutyStatus]) -> list[DutyChange]:
    """Duty changes at local (solar) hours of a November day, in order."""
    return [
        DutyChange(at_local(hour) + timedelta(days=day - 20), day * 100 + i, status)
        for i, (hour, status) in enumerate(spans)
    ]


def working_day(day: int, lunch: float | None) -> list[DutyChange]:
    spans = [(6.0, DutyStatus.ON_DUTY), (6.5, DutyStatus.DRIVING)]
    if lunch is not None:
        spans += [(lunch, DutyStatus.OFF_DUTY), (lunch + 0.5, DutyStatus.DRIVING)]
    return duty(day, *spans, (15.0, DutyStatus.OFF_DUTY))


def test_a_drivers_usual_break_is_learned_from_the_shifts_before() -> None:
    past = [c for d, lunch in ((16, 11.0), (17, 11.5), (18, 11.2)) for c in working_day(d, lunch)]
    today = duty(20, (6.0, DutyStatus.ON_DUTY), (6.5, DutyStatus.DRIVING))

    habit = learned_habit(past + today, at_local(9.0))
    irregular = learned_habit(
        [c for d, lunch in ((16, 9.0), (17, 13.0), (18, None)) for c in working_day(d, lunch)]
        + today,
        at_local(9.0),
    )
    taken = learned_habit(
        past + duty(20, (6.0, DutyStatus.ON_DUTY), (6.5, DutyStatus.DRIVING),
                    (8.0, DutyStatus.OFF_DUTY), (8.5, DutyStatus.DRIVING)),
        at_local(9.0),
    )  # fmt: skip

    assert habit is not None
    assert abs(habit.due - at_local(11.2)) < minutes(1)
    assert habit.length == minutes(30)
    assert irregular is None
    assert taken is None


def test_the_usual_break_comes_at_its_time_on_the_road_or_after_the_stop_it_finds() -> None:
    first, second = stop(north(YARD, 60), service=10), stop(north(YARD, 90), service=10)
    route = (at_yard(), [first, second], NOW, {}, None, planner_travel(60.0))
    plain = predict(*route)
    on_the_road = Habit(timedelta(hours=11), minutes(30), NOW + minutes(30))
    at_the_stop = Habit(timedelta(hours=11), minutes(30), plain[0].arrival + minutes(5))

    driving = predict(*route, habit=on_the_road)
    staying = predict(*route, habit=at_the_stop)

    assert [(r.kind, r.start) for r in driving[0].rests] == [(RestKind.HABIT, NOW + minutes(30))]
    assert close(driving[0].arrival, plain[0].arrival + minutes(30))
    assert driving[1].rests == ()  # the day's break is taken
    assert staying[0].rests == ()
    assert [(r.kind, r.start) for r in staying[1].rests] == [(RestKind.HABIT, staying[0].departure)]
    assert close(staying[1].arrival, plain[1].arrival + minutes(30))


def test_a_truck_silent_at_a_stop_is_expected_to_leave_after_its_stay_counted_to_now() -> None:
    here = stop(north(YARD, 10), service=30, arrived_at=NOW - minutes(10))
    then = stop(north(YARD, 25))
    heard = Position(north(YARD, 10), NOW - minutes(5), "DEV-1:s9")

    [_, fresh] = predict(heard, [here, then], NOW - minutes(5), {}, None, planner_travel(60.0))
    [_, later] = predict(heard, [here, then], NOW + minutes(40), {}, None, planner_travel(60.0))

    assert close(fresh.arrival, NOW + minutes(35))
    assert close(later.arrival, NOW + minutes(55))  # overstayed: it leaves no earlier than now
    assert later.made_at == NOW + minutes(40)


def test_a_truck_silent_while_driving_drove_on_and_is_not_there_before_now() -> None:
    there = north(YARD, 30)
    driving = hos()  # driving for the last hour
    heard = Position(YARD, NOW - minutes(20), "DEV-1:s9")

    [soon] = predict(heard, [stop(there)], NOW, {}, driving, planner_travel(60.0))
    [overdue] = predict(heard, [stop(there)], NOW + minutes(60), {}, driving, planner_travel(60.0))

    assert close(soon.arrival, NOW - minutes(20) + minutes(km(YARD, there)))
    assert overdue.arrival == NOW + minutes(60)
