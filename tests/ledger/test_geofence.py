"""Geofence arrival and departure detection on event time (PRODUCT §4)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.geofence import (
    EARTH_RADIUS_M,
    DetectionRules,
    Fix,
    Geofence,
    Visit,
    detect_visits,
    haversine_m,
)

METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180.0
DOCK = Geofence("STOP-DOCK", lat=41.8500, lon=-87.6500, radius_m=150.0)
CUSTOMER = Geofence("STOP-CUST", lat=41.9351, lon=-87.6440, radius_m=200.0)
FENCES = (DOCK, CUSTOMER)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=UTC)


def pings(
    fence: Geofence,
    start: datetime,
    end: datetime,
    *,
    every: timedelta = timedelta(minutes=5),
    north_m: float = 20.0,
    speed_kph: float | None = 0.0,
) -> list[Fix]:
    """Fixes every ``every`` from start to end inclusive, ``north_m`` north of the fence centre."""
    fixes = []
    moment = start
    while moment <= end:
        fixes.append(
            Fix(
                occurred_at=moment,
                position=0,
                lat=fence.lat + north_m / METRES_PER_DEGREE,
                lon=fence.lon,
                speed_kph=speed_kph,
                ping_id=f"p-{moment:%H%M}",
            )
        )
        moment += every
    return fixes


def driving_near(fence: Geofence, start: datetime, end: datetime) -> list[Fix]:
    """Moving fixes two kilometres north of the fence: well outside it."""
    return pings(fence, start, end, north_m=2_000.0, speed_kph=50.0)


def live(fixes: list[Fix]) -> list[Fix]:
    """The fixes as a live feed records them: log positions in event-time order."""
    return [dataclasses.replace(fix, position=index + 1) for index, fix in enumerate(fixes)]


def test_visit_spans_the_dwell_when_vehicle_arrives_at_10_05_and_leaves_3h20_later() -> None:
    fixes = live(
        driving_near(DOCK, at(9, 30), at(10, 0))
        + pings(DOCK, at(10, 5), at(13, 20))
        + driving_near(DOCK, at(13, 25), at(13, 45))
    )

    visits = detect_visits(fixes, FENCES)

    assert visits == [
        Visit(
            stop_id="STOP-DOCK",
            arrived_at=at(10, 5),
            arrival_ping_ids=("p-1005", "p-1010"),
            departed_at=at(13, 25),
            departure_ping_ids=("p-1325",),
        )
    ]
    assert visits[0].departed_at is not None
    assert visits[0].departed_at - visits[0].arrived_at == timedelta(hours=3, minutes=20)


def test_no_visit_when_vehicle_passes_through_in_2_minutes() -> None:
    fixes = live(
        driving_near(DOCK, at(10, 50), at(10, 55))
        + pings(DOCK, at(11, 0), at(11, 2), every=timedelta(minutes=1), speed_kph=30.0)
        + driving_near(DOCK, at(11, 3), at(11, 10))
    )

    visits = detect_visits(fixes, FENCES)

    assert visits == []


def test_arrival_when_vehicle_stays_exactly_the_dwell_threshold() -> None:
    fixes = live(
        pings(DOCK, at(11, 0), at(11, 3), every=timedelta(minutes=1))
        + driving_near(DOCK, at(11, 4), at(11, 4))
    )

    visits = detect_visits(fixes, FENCES)

    assert [(v.arrived_at, v.departed_at) for v in visits] == [(at(11, 0), at(11, 4))]
    assert visits[0].arrival_ping_ids == ("p-1100", "p-1101", "p-1102", "p-1103")


def test_two_visits_in_order_when_vehicle_serves_two_stops_in_sequence() -> None:
    fixes = live(
        pings(DOCK, at(8, 0), at(9, 0))
        + driving_near(DOCK, at(9, 5), at(9, 40))
        + pings(CUSTOMER, at(9, 45), at(10, 30), north_m=-50.0)
        + driving_near(CUSTOMER, at(10, 35), at(10, 50))
    )

    visits = detect_visits(fixes, FENCES)

    assert visits == [
        Visit("STOP-DOCK", at(8, 0), ("p-0800", "p-0805"), at(9, 5), ("p-0905",)),
        Visit("STOP-CUST", at(9, 45), ("p-0945", "p-0950"), at(10, 35), ("p-1035",)),
    ]


def test_two_visits_when_vehicle_revisits_a_stop() -> None:
    fixes = live(
        pings(DOCK, at(8, 0), at(8, 30))
        + driving_near(DOCK, at(8, 35), at(9, 0))
        + pings(DOCK, at(9, 5), at(9, 30))
        + driving_near(DOCK, at(9, 35), at(9, 40))
    )

    visits = detect_visits(fixes, FENCES)

    assert [(v.stop_id, v.arrived_at, v.departed_at) for v in visits] == [
        ("STOP-DOCK", at(8, 0), at(8, 35)),
        ("STOP-DOCK", at(9, 5), at(9, 35)),
    ]


def test_same_visit_when_an_hour_of_pings_is_backfilled() -> None:
    timeline = (
        driving_near(DOCK, at(9, 30), at(10, 0))
        + pings(DOCK, at(10, 5), at(13, 20))
        + driving_near(DOCK, at(13, 25), at(13, 45))
    )
    live_feed = live(timeline)
    # The device was offline from 10:00 to 11:00: that hour reaches the ledger last.
    offline = [fix for fix in timeline if at(10, 0) <= fix.occurred_at < at(11, 0)]
    online = [fix for fix in timeline if fix not in offline]
    backfilled_feed = live(online + offline)

    from_live = detect_visits(live_feed, FENCES)
    from_backfill = detect_visits(backfilled_feed, FENCES)

    assert from_backfill == from_live
    assert [v.arrived_at for v in from_backfill] == [at(10, 5)]


def test_same_visit_when_pings_are_duplicated_and_reordered() -> None:
    feed = live(pings(DOCK, at(10, 5), at(10, 30)) + driving_near(DOCK, at(10, 35), at(10, 40)))
    recorded_twice = [dataclasses.replace(fix, position=fix.position + 100) for fix in feed[:3]]

    visits = detect_visits(list(reversed(feed)) + recorded_twice + feed[:2], FENCES)

    assert visits == detect_visits(feed, FENCES)


def test_arrival_moves_earlier_when_a_late_ping_fills_the_gap() -> None:
    feed = live(pings(DOCK, at(10, 40), at(11, 30)) + driving_near(DOCK, at(11, 35), at(11, 35)))
    late = dataclasses.replace(pings(DOCK, at(10, 5), at(10, 35))[0], position=10_000)
    late_more = [
        dataclasses.replace(fix, position=10_001 + index)
        for index, fix in enumerate(pings(DOCK, at(10, 10), at(10, 35)))
    ]

    before = detect_visits(feed, FENCES)
    after = detect_visits([*feed, late, *late_more], FENCES)

    assert [v.arrived_at for v in before] == [at(10, 40)]
    assert [v.arrived_at for v in after] == [at(10, 5)]


def test_drift_is_not_a_departure_when_a_parked_vehicle_pings_just_outside() -> None:
    drift = pings(DOCK, at(10, 30), at(10, 30), north_m=180.0, speed_kph=0.0)
    fixes = live(
        pings(DOCK, at(10, 0), at(10, 25))
        + drift
        + pings(DOCK, at(10, 35), at(11, 0))
        + driving_near(DOCK, at(11, 5), at(11, 5))
    )

    visits = detect_visits(fixes, FENCES)

    assert [(v.arrived_at, v.departed_at) for v in visits] == [(at(10, 0), at(11, 5))]


def test_departure_is_the_first_fix_outside_when_vehicle_waits_outside_before_driving_off() -> None:
    fixes = live(
        pings(DOCK, at(10, 0), at(10, 30))
        + pings(DOCK, at(10, 35), at(10, 45), north_m=300.0, speed_kph=0.0)
        + driving_near(DOCK, at(10, 50), at(10, 50))
    )

    visits = detect_visits(fixes, FENCES)

    assert visits == [
        Visit(
            "STOP-DOCK",
            at(10, 0),
            ("p-1000", "p-1005"),
            at(10, 35),
            ("p-1035", "p-1040", "p-1045", "p-1050"),
        )
    ]


def test_visit_is_open_when_vehicle_is_still_inside() -> None:
    fixes = live(driving_near(DOCK, at(9, 50), at(9, 55)) + pings(DOCK, at(10, 0), at(10, 20)))

    visits = detect_visits(fixes, FENCES)

    assert visits == [Visit("STOP-DOCK", at(10, 0), ("p-1000", "p-1005"), None, ())]


def test_no_visit_when_fewer_inside_fixes_than_required() -> None:
    fixes = live(
        pings(DOCK, at(10, 0), at(10, 10), every=timedelta(minutes=10))
        + driving_near(DOCK, at(10, 15), at(10, 15))
    )

    visits = detect_visits(fixes, FENCES, DetectionRules(min_inside_fixes=3))

    assert visits == []


def test_distance_is_one_degree_of_arc_when_points_differ_by_one_degree_of_latitude() -> None:
    assert haversine_m(10.0, 20.0, 11.0, 20.0) == pytest.approx(METRES_PER_DEGREE)
    assert haversine_m(10.0, 20.0, 10.0, 20.0) == 0.0


def test_distance_is_about_344_km_when_measuring_london_to_paris() -> None:
    london_to_paris = haversine_m(51.5074, -0.1278, 48.8566, 2.3522)

    assert london_to_paris == pytest.approx(343_900, abs=1_000)
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(london_to_paris)


def test_distance_is_half_the_circumference_when_points_are_antipodal() -> None:
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_refused_when_fix_time_is_naive() -> None:
    with pytest.raises(InvalidInput):
        Fix(datetime(2026, 11, 20, 10, 0), 1, DOCK.lat, DOCK.lon, 0.0, "p-1")


def test_refused_when_two_fences_share_a_stop() -> None:
    with pytest.raises(InvalidInput):
        detect_visits([], [DOCK, dataclasses.replace(CUSTOMER, stop_id=DOCK.stop_id)])


# --- properties -------------------------------------------------------------------------------

START = at(6, 0)
FENCE_SPACING_DEG = 0.05  # about 5.5 km between fence centres: fences never overlap
AWAY = (41.0, -87.0)  # far from every fence


@dataclasses.dataclass(frozen=True)
class Route:
    """Generated fixes, with the visits a careful human would read from them."""

    fences: tuple[Geofence, ...]
    fixes: tuple[Fix, ...]
    rules: DetectionRules
    expected: tuple[Visit, ...]


@st.composite
def routes(draw: st.DrawFn) -> Route:
    """A vehicle that drives between randomly sized fences and dwells a random time in each."""
    fences = tuple(
        Geofence(
            f"S{index}",
            lat=41.80 + FENCE_SPACING_DEG * index,
            lon=-87.70,
            radius_m=draw(st.floats(50.0, 400.0)),
        )
        for index in range(draw(st.integers(1, 3)))
    )
    rules = DetectionRules(
        dwell=timedelta(minutes=draw(st.sampled_from([0, 1, 3, 10]))),
        min_inside_fixes=draw(st.integers(1, 3)),
    )
    stops = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(fences) - 1),  # which fence
                st.lists(st.integers(0, 240), min_size=1, max_size=8),  # gaps in seconds
                st.integers(1, 3),  # fixes driving away afterwards
            ),
            min_size=1,
            max_size=6,
        )
    )
    leaves_last = draw(st.booleans())

    fixes: list[Fix] = []
    expected: list[Visit] = []
    moment = START

    def add(lat: float, lon: float, speed: float | None) -> Fix:
        fix = Fix(moment, len(fixes) + 1, lat, lon, speed, f"p{len(fixes) + 1}")
        fixes.append(fix)
        return fix

    for number, (which, gaps, away_count) in enumerate(stops):
        fence = fences[which]
        inside: list[Fix] = []
        for gap in gaps:
            moment += timedelta(seconds=gap)
            distance = fence.radius_m * draw(st.floats(0.0, 0.9))
            bearing = draw(st.floats(0.0, 2 * math.pi))
            lat = fence.lat + distance * math.cos(bearing) / METRES_PER_DEGREE
            lon = fence.lon + distance * math.sin(bearing) / (
                METRES_PER_DEGREE * math.cos(math.radians(fence.lat))
            )
            inside.append(add(lat, lon, draw(st.sampled_from([0.0, 2.0, 15.0, None]))))
        departure: Fix | None = None
        if number < len(stops) - 1 or leaves_last:
            for _ in range(away_count):
                moment += timedelta(minutes=draw(st.integers(1, 30)))
                away = add(*AWAY, draw(st.sampled_from([40.0, 90.0, None])))
                departure = departure or away
        established = next(
            (
                index
                for index, fix in enumerate(inside)
                if fix.occurred_at - inside[0].occurred_at >= rules.dwell
                and index + 1 >= rules.min_inside_fixes
            ),
            None,
        )
        if established is not None:
            expected.append(
                Visit(
                    fence.stop_id,
                    inside[0].occurred_at,
                    tuple(fix.ping_id for fix in inside[: established + 1]),
                    None if departure is None else departure.occurred_at,
                    () if departure is None else (departure.ping_id,),
                )
            )
    expected.sort(key=lambda visit: (visit.arrived_at, visit.stop_id))
    return Route(fences, tuple(fixes), rules, tuple(expected))


@settings(max_examples=150, deadline=None)
@given(routes())
def test_visits_match_the_route_when_vehicle_dwells_at_generated_stops(route: Route) -> None:
    visits = detect_visits(route.fixes, route.fences, route.rules)

    assert visits == list(route.expected)


@settings(max_examples=150, deadline=None)
@given(route=routes(), data=st.data())
def test_visits_are_identical_when_fixes_are_permuted_and_duplicated(
    route: Route, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(route.fixes))
    copies = data.draw(st.lists(st.sampled_from(route.fixes), max_size=10))
    rerecorded = [dataclasses.replace(fix, position=fix.position + 1_000_000) for fix in copies]
    feed = data.draw(st.permutations([*shuffled, *copies, *rerecorded]))

    visits = detect_visits(feed, route.fences, route.rules)

    assert visits == detect_visits(route.fixes, route.fences, route.rules)


@settings(max_examples=100, deadline=None)
@given(routes())
def test_visits_last_the_dwell_and_never_overlap_when_detected(route: Route) -> None:
    visits = detect_visits(route.fixes, route.fences, route.rules)

    for visit in visits:
        if visit.departed_at is not None:
            assert visit.departed_at - visit.arrived_at >= route.rules.dwell
    for fence in route.fences:
        at_stop = [v for v in visits if v.stop_id == fence.stop_id]
        for earlier, later in itertools.pairwise(at_stop):
            assert earlier.departed_at is not None
            assert earlier.departed_at <= later.arrived_at
