"""Hours of Service state from duty-status changes, in event time (PRODUCT §3, §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.hos import (
    Cycle,
    DutyChange,
    DutyStatus,
    HosRules,
    HosState,
    Violation,
    ViolationKind,
    hos_state,
)

OFF = DutyStatus.OFF_DUTY
SLEEPER = DutyStatus.SLEEPER_BERTH
DRIVING = DutyStatus.DRIVING
ON = DutyStatus.ON_DUTY
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def day(number: int, hour: int, minute: int = 0) -> datetime:
    """A moment on day ``number`` of March 2026 (day 0 is 1 March)."""
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=number, hours=hour, minutes=minute)


def log(*entries: tuple[datetime, DutyStatus]) -> list[DutyChange]:
    """Duty changes as an ELD sends them live: log positions in event-time order."""
    return [
        DutyChange(occurred_at=moment, position=index + 1, status=status)
        for index, (moment, status) in enumerate(entries)
    ]


def driving_day(number: int) -> list[tuple[datetime, DutyStatus]]:
    """Eight hours of driving from 06:00, two hours of other work, then off: 10 h on duty."""
    return [(day(number, 6), DRIVING), (day(number, 14), ON), (day(number, 16), OFF)]


# --- 11 hours driving ---------------------------------------------------------------------------


def test_no_drive_time_left_when_driver_has_driven_11_hours() -> None:
    changes = log((day(0, 6), DRIVING), (day(0, 10), OFF), (day(0, 10, 30), DRIVING))

    state = hos_state(changes, day(0, 17, 30))

    assert state.drive_remaining == timedelta(0)
    assert state.window_remaining == timedelta(hours=2, minutes=30)
    assert state.until_break == HOUR
    assert state.status is DRIVING
    assert state.status_since == day(0, 10, 30)
    assert state.violations == ()


def test_drive_violation_when_driver_keeps_driving_past_11_hours() -> None:
    changes = log((day(0, 6), DRIVING), (day(0, 10), OFF), (day(0, 10, 30), DRIVING))

    state = hos_state(changes, day(0, 18))

    assert state.violations == (Violation(ViolationKind.DRIVE_11, day(0, 17, 30), changes[2]),)


# --- 14-hour window -----------------------------------------------------------------------------


def test_window_closes_without_violation_when_14_hours_pass_while_on_duty() -> None:
    changes = log((day(0, 6), ON), (day(0, 8), DRIVING), (day(0, 14), ON))

    state = hos_state(changes, day(0, 20, 30))

    assert state.window_remaining == timedelta(0)
    assert state.drive_remaining == timedelta(hours=5)
    assert state.driving_available == timedelta(0)
    assert state.violations == ()


def test_window_violation_when_driving_after_the_14th_hour() -> None:
    changes = log((day(0, 6), ON), (day(0, 8), DRIVING), (day(0, 14), ON), (day(0, 21), DRIVING))

    state = hos_state(changes, day(0, 21, 30))

    assert state.violations == (Violation(ViolationKind.WINDOW_14, day(0, 21), changes[3]),)
    assert state.drive_remaining == timedelta(hours=4, minutes=30)


def test_window_keeps_running_when_driver_takes_a_short_rest() -> None:
    changes = log((day(0, 6), DRIVING), (day(0, 9), OFF), (day(0, 13), DRIVING))

    state = hos_state(changes, day(0, 15))

    assert state.window_remaining == timedelta(hours=5)
    assert state.drive_remaining == timedelta(hours=6)


# --- 30-minute break ----------------------------------------------------------------------------


def test_break_violation_when_driving_8_hours_without_a_break() -> None:
    changes = log((day(0, 6), DRIVING))

    state = hos_state(changes, day(0, 15))

    assert state.until_break == timedelta(0)
    assert state.violations == (Violation(ViolationKind.BREAK_30, day(0, 14), changes[0]),)


@pytest.mark.parametrize("pause", [OFF, SLEEPER, ON])
def test_break_clock_restarts_when_driving_stops_for_30_minutes(pause: DutyStatus) -> None:
    changes = log((day(0, 6), DRIVING), (day(0, 13), pause), (day(0, 13, 30), DRIVING))

    state = hos_state(changes, day(0, 16, 30))

    assert state.until_break == timedelta(hours=5)
    assert state.violations == ()


def test_break_violation_when_the_pause_is_one_minute_short() -> None:
    changes = log((day(0, 6), DRIVING), (day(0, 13), OFF), (day(0, 13, 29), DRIVING))

    state = hos_state(changes, day(0, 16, 30))

    assert state.violations == (Violation(ViolationKind.BREAK_30, day(0, 14, 29), changes[2]),)


# --- 10 hours off -------------------------------------------------------------------------------


def test_drive_and_window_reset_when_off_duty_10_hours() -> None:
    changes = log(
        (day(0, 6), DRIVING),
        (day(0, 11), OFF),
        (day(0, 11, 30), DRIVING),
        (day(0, 17, 30), OFF),
    )

    state = hos_state(changes, day(1, 3, 30))

    assert state.drive_remaining == timedelta(hours=11)
    assert state.window_remaining == timedelta(hours=14)
    assert state.until_break == timedelta(hours=8)
    assert state.status is OFF
    assert state.status_since == day(0, 17, 30)
    assert state.violations == ()


def test_drive_and_window_stay_used_when_off_duty_only_9_hours() -> None:
    changes = log(
        (day(0, 6), DRIVING),
        (day(0, 11), OFF),
        (day(0, 11, 30), DRIVING),
        (day(0, 17, 30), OFF),
    )

    state = hos_state(changes, day(1, 2, 30))

    assert state.drive_remaining == timedelta(0)
    assert state.window_remaining == timedelta(0)


def test_sleeper_and_off_duty_combine_when_resting_10_hours() -> None:
    changes = log(
        (day(0, 6), DRIVING),
        (day(0, 14), OFF),
        (day(0, 18), SLEEPER),
        (day(0, 22), OFF),
        (day(1, 0), DRIVING),
    )

    state = hos_state(changes, day(1, 1))

    assert state.drive_remaining == timedelta(hours=10)
    assert state.window_remaining == timedelta(hours=13)


# --- 60/70-hour cycle ---------------------------------------------------------------------------


def test_cycle_violation_when_driving_past_70_hours_in_8_days() -> None:
    entries = [entry for number in range(1, 7) for entry in driving_day(number)]
    changes = log(*entries, (day(7, 6), ON), (day(7, 10), DRIVING), (day(7, 18), OFF))

    state = hos_state(changes, day(7, 20))

    assert state.violations == (Violation(ViolationKind.CYCLE, day(7, 16), changes[-2]),)
    assert state.cycle_remaining == timedelta(0)


def test_cycle_violation_comes_sooner_when_on_the_60_hour_7_day_cycle() -> None:
    entries = [entry for number in range(1, 7) for entry in driving_day(number)]
    changes = log(*entries, (day(7, 6), ON), (day(7, 10), DRIVING), (day(7, 18), OFF))

    state = hos_state(changes, day(7, 20), HosRules(cycle=Cycle.US_60_7))

    assert state.violations == (Violation(ViolationKind.CYCLE, day(7, 10), changes[-2]),)


def test_cycle_crossing_waits_while_old_hours_roll_off() -> None:
    # 60 h on days 1-6 and one hour on day 7; on day 8 day 1's hours slide out of the 7 days as
    # fast as new driving comes in, until 16:00, when day 1's work ended 168 hours earlier.
    entries = [entry for number in range(1, 7) for entry in driving_day(number)]
    changes = log(
        *entries,
        (day(7, 12), ON),
        (day(7, 13), OFF),
        (day(8, 10), DRIVING),
        (day(8, 14), OFF),
        (day(8, 14, 30), DRIVING),
        (day(8, 21, 30), OFF),
    )

    state = hos_state(changes, day(8, 22), HosRules(cycle=Cycle.US_60_7))

    assert state.violations == (Violation(ViolationKind.CYCLE, day(8, 19, 30), changes[-2]),)


def test_cycle_restarts_when_off_duty_34_hours() -> None:
    entries = [entry for number in range(1, 7) for entry in driving_day(number)]
    changes = log(*entries)

    restarted = hos_state(changes, day(8, 2))
    not_yet = hos_state(changes, day(8, 1))

    assert restarted.cycle_remaining == timedelta(hours=70)
    assert not_yet.cycle_remaining == timedelta(hours=10)


def test_cycle_counts_only_after_the_restart_when_driving_resumes() -> None:
    entries = [entry for number in range(1, 7) for entry in driving_day(number)]
    changes = log(*entries, (day(8, 6), DRIVING), (day(8, 10), OFF))

    state = hos_state(changes, day(8, 12))

    assert state.cycle_remaining == timedelta(hours=66)
    assert state.violations == ()


# --- sleeper-berth split ------------------------------------------------------------------------


def test_clocks_recalculate_from_the_end_of_the_sleeper_period_when_split_7_3() -> None:
    changes = log(
        (day(0, 6), ON),
        (day(0, 7), DRIVING),
        (day(0, 12), SLEEPER),  # 7 h in the sleeper berth
        (day(0, 19), DRIVING),  # 20:00 would end an unsplit 14-hour window
        (day(1, 0), OFF),  # 3 h off completes the split
        (day(1, 3), DRIVING),
    )

    state = hos_state(changes, day(1, 3))

    assert state.violations == ()
    assert state.drive_remaining == timedelta(hours=6)  # 11 h less the 5 h since the sleeper
    assert state.window_remaining == timedelta(hours=9)  # 8 h since the sleeper less 3 h off


def test_clocks_recalculate_from_the_end_of_the_first_rest_when_split_2_8() -> None:
    changes = log(
        (day(0, 6), DRIVING),
        (day(0, 9), OFF),  # 2 h off first
        (day(0, 11), DRIVING),
        (day(0, 16), SLEEPER),  # then 8 h in the sleeper berth
        (day(1, 0), DRIVING),
    )

    state = hos_state(changes, day(1, 0))

    assert state.violations == ()
    assert state.drive_remaining == timedelta(hours=6)  # 5 h driven since the first rest
    assert state.window_remaining == timedelta(hours=9)  # 13 h since it, less 8 h sleeper


def test_second_period_pairs_again_when_splits_follow_each_other() -> None:
    changes = log(
        (day(0, 6), DRIVING),
        (day(0, 11), SLEEPER),  # first split: 7 h sleeper ...
        (day(0, 18), DRIVING),
        (day(0, 22), OFF),  # ... and 3 h off, which also opens the second split ...
        (day(1, 1), DRIVING),
        (day(1, 5), SLEEPER),  # ... with 7 h sleeper
        (day(1, 12), DRIVING),
    )

    state = hos_state(changes, day(1, 12))

    assert state.violations == ()
    assert state.drive_remaining == timedelta(hours=7)  # 4 h driven since 01:00
    assert state.window_remaining == timedelta(hours=10)  # 11 h since 01:00 less 7 h sleeper


def test_split_needs_ten_hours_when_sleeper_period_is_7_and_rest_is_2() -> None:
    changes = log(
        (day(0, 6), DRIVING),
        (day(0, 10), SLEEPER),
        (day(0, 17), DRIVING),
        (day(0, 21), OFF),
        (day(0, 23), ON),
    )

    state = hos_state(changes, day(0, 23))

    assert state.drive_remaining == timedelta(hours=3)  # still counted from 06:00
    assert state.window_remaining == timedelta(0)


def test_split_is_credited_only_when_its_second_period_has_been_taken() -> None:
    sleeper_then_driving = log(
        (day(0, 6), ON),
        (day(0, 7), DRIVING),
        (day(0, 12), SLEEPER),
        (day(0, 19), DRIVING),
    )
    completed = [
        *sleeper_then_driving,
        DutyChange(day(1, 0), position=5, status=OFF),
        DutyChange(day(1, 3), position=6, status=DRIVING),
    ]

    provisional = hos_state(sleeper_then_driving, day(0, 23))
    in_hindsight = hos_state(completed, day(1, 3))

    assert provisional.violations == (
        Violation(ViolationKind.WINDOW_14, day(0, 20), sleeper_then_driving[3]),
    )
    assert in_hindsight.violations == ()


# --- event time ---------------------------------------------------------------------------------


def test_late_change_counts_as_if_it_had_come_in_order() -> None:
    in_order = log((day(0, 6), DRIVING), (day(0, 10), OFF), (day(0, 10, 30), DRIVING))
    late_break = DutyChange(day(0, 10), position=99, status=OFF)
    as_received = [in_order[0], in_order[2], late_break]

    state = hos_state(as_received, day(0, 15))

    assert state == hos_state(in_order, day(0, 15))
    assert state.until_break == timedelta(hours=3, minutes=30)


def test_changes_after_the_moment_are_ignored() -> None:
    changes = log((day(0, 6), DRIVING), (day(0, 20), OFF))

    state = hos_state(changes, day(0, 9))

    assert state.status is DRIVING
    assert state.drive_remaining == timedelta(hours=8)
    assert state.violations == ()


def test_fully_rested_when_there_are_no_changes() -> None:
    state = hos_state([], day(0, 9))

    assert state == HosState(
        at=day(0, 9),
        status=OFF,
        status_since=None,
        drive_remaining=timedelta(hours=11),
        window_remaining=timedelta(hours=14),
        until_break=timedelta(hours=8),
        cycle_remaining=timedelta(hours=70),
        violations=(),
    )


def test_refused_when_the_moment_is_naive() -> None:
    with pytest.raises(InvalidInput):
        hos_state([], datetime(2026, 3, 1, 9, 0))


def test_refused_when_status_is_unknown() -> None:
    with pytest.raises(InvalidInput):
        DutyChange(day(0, 6), 1, "napping")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------

STATUSES: st.SearchStrategy[DutyStatus] = st.sampled_from(DutyStatus)


WORK = st.tuples(st.sampled_from([DRIVING, ON]), st.integers(0, 6 * 60))
REST = st.tuples(
    st.sampled_from([OFF, SLEEPER]),
    st.one_of(
        st.integers(0, 60),  # breaks, and ties
        st.sampled_from([120, 180, 420, 480]),  # the halves of sleeper splits
        st.integers(60, 16 * 60),  # anything up to a reset
        st.integers(30 * 60, 40 * 60),  # restarts
    ),
)


@st.composite
def duty_logs(draw: st.DrawFn) -> list[DutyChange]:
    """Shifts of work and rest at random lengths (ties included), positions in arrival order."""
    shifts = draw(
        st.lists(
            st.tuples(st.lists(WORK, min_size=1, max_size=3), st.lists(REST, max_size=2)),
            min_size=1,
            max_size=8,
        )
    )
    changes: list[DutyChange] = []
    moment = day(0, 0)
    for work, rest in shifts:
        for status, minutes in [*work, *rest]:
            changes.append(DutyChange(moment, position=len(changes) + 1, status=status))
            moment += minutes * MINUTE
    return changes


def moments(changes: list[DutyChange]) -> st.SearchStrategy[datetime]:
    """A moment shortly before or after one of the changes, the last one as often as not."""
    last = changes[-1].occurred_at
    return st.tuples(
        st.one_of(st.just(last), st.sampled_from([change.occurred_at for change in changes])),
        st.integers(-60, 20 * 60),
    ).map(lambda pick: pick[0] + pick[1] * MINUTE)


RULES = st.sampled_from([HosRules(), HosRules(cycle=Cycle.US_60_7)])


@settings(max_examples=200, deadline=None)
@given(changes=duty_logs(), rules=RULES, data=st.data())
def test_state_is_identical_when_changes_arrive_in_any_order_or_twice(
    changes: list[DutyChange], rules: HosRules, data: st.DataObject
) -> None:
    moment = data.draw(moments(changes))
    duplicates = data.draw(st.lists(st.sampled_from(changes), max_size=5))
    shuffled = data.draw(st.permutations([*changes, *duplicates]))

    state = hos_state(shuffled, moment, rules)

    assert state == hos_state(changes, moment, rules)


@settings(max_examples=200, deadline=None)
@given(changes=duty_logs(), status=STATUSES, rules=RULES, data=st.data())
def test_state_is_unchanged_when_a_change_after_the_moment_is_added(
    changes: list[DutyChange], status: DutyStatus, rules: HosRules, data: st.DataObject
) -> None:
    moment = data.draw(moments(changes))
    after = moment + data.draw(st.integers(1, 3 * 24 * 60)) * MINUTE
    position = data.draw(st.integers(-5, 100))
    future = DutyChange(after, position=position, status=status)
    arrival = data.draw(st.integers(0, len(changes)))

    state = hos_state([*changes[:arrival], future, *changes[arrival:]], moment, rules)

    assert state == hos_state(changes, moment, rules)


@settings(max_examples=200, deadline=None)
@given(changes=duty_logs(), rules=RULES, data=st.data())
def test_clocks_stay_within_their_limits_and_violations_are_driving(
    changes: list[DutyChange], rules: HosRules, data: st.DataObject
) -> None:
    moment = data.draw(moments(changes))

    state = hos_state(changes, moment, rules)

    assert timedelta(0) <= state.drive_remaining <= rules.drive_limit
    assert timedelta(0) <= state.window_remaining <= rules.window
    assert timedelta(0) <= state.until_break <= rules.break_after
    assert timedelta(0) <= state.cycle_remaining <= rules.cycle.on_duty_limit
    for violation in state.violations:
        assert violation.change.status is DRIVING
        assert violation.change.occurred_at <= violation.started_at < moment
    assert list(state.violations) == sorted(
        state.violations, key=lambda v: (v.started_at, list(ViolationKind).index(v.kind))
    )


@settings(max_examples=300, deadline=None)
@given(changes=duty_logs(), data=st.data())
def test_a_split_never_takes_time_away_when_sleeper_periods_are_paired(
    changes: list[DutyChange], data: st.DataObject
) -> None:
    moment = data.draw(moments(changes))
    no_splits = HosRules(split_sleeper=timedelta(days=365))

    with_splits = hos_state(changes, moment)
    without = hos_state(changes, moment, no_splits)

    assert with_splits.drive_remaining >= without.drive_remaining
    assert with_splits.window_remaining >= without.window_remaining
    assert {(v.kind, v.change) for v in with_splits.violations} <= {
        (v.kind, v.change) for v in without.violations
    }
