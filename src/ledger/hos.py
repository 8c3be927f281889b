"""US FMCSA Hours of Service for property-carrying drivers, folded in event time (PRODUCT §3, §4).

Duty-status changes are ordered by ``(occurred_at, position)`` and everything after ``at`` is
ignored, so the state at ``at`` is a function of the set of changes: a permutation, or a late change
arriving after others but earlier in event time, gives exactly the in-order result.

Rules (49 CFR 395.3 and 395.1(g)), all configurable through :class:`HosRules`:

- 11 h: no driving after 11 h of driving since the last reset.
- 14 h: no driving after the 14th hour since coming on duty after the last reset; off-duty time
  inside the window still counts, except the two periods of a sleeper-berth split.
- 30 min: no driving after 8 h of cumulative driving without a ≥ 30 consecutive minutes
  interruption of driving (off duty, sleeper berth, on duty not driving, or a mix).
- 60 h / 7 days or 70 h / 8 days: no driving once the on-duty time (driving included) in the period
  reaches the limit; ≥ 34 consecutive hours off duty or in the sleeper berth restart the cycle.
- 10 h: ≥ 10 consecutive hours off duty or in the sleeper berth (any mix) reset the 11 h and 14 h.
- Sleeper-berth split: a period of ≥ 7 consecutive hours in the sleeper berth and a separate period
  of ≥ 2 consecutive hours off duty or in the sleeper berth, together ≥ 10 h, in either order.
  Neither period counts against the 14 h; once the second is taken, the 11 h and 14 h are
  recalculated from the end of the first, and the second may pair with the next period in turn.

Simplifications and readings, chosen to err on the side of reporting a violation:

- History before the first change is treated as fully rested (clocks reset, cycle empty).
- The cycle is a rolling 7 x 24 h or 8 x 24 h window ending at each instant, not the carrier's
  home-terminal calendar days; it never counts less than the calendar reading. The remaining
  cycle is the limit minus the on-duty time in the window ending at ``at``; hours that will roll
  off later are not credited ahead.
- Split: only consecutive qualifying rest periods (each < 10 h; a ≥ 10 h rest is a plain reset)
  since the last reset are paired. The ≥ 7 h half must be one uninterrupted sleeper-berth stretch;
  off-duty time next to it is not credited with it. A pair counts once its second period has been
  taken (a rest still under way at ``at`` counts up to ``at``); driving between the two periods is
  then judged with the first one excluded, but until then the first period counts against the
  14 h. When either period could play either role, the reading whose recalculation point is later
  is used.
- Only driving can violate: being on duty past the 14th hour or with the cycle used up is lawful.
  Each continuous stretch of driving yields at most one violation per kind, starting at the instant
  the limit was passed and caused by the change that began the stretch; reaching a limit exactly
  as the stretch ends is not a violation.
- Not modelled: adverse driving conditions, the 16 h short-haul and other exceptions, personal
  conveyance and yard moves (the ``origin`` of a change is carried but not interpreted).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from ledger.errors import InvalidInput

__all__ = [
    "Cycle",
    "DutyChange",
    "DutyStatus",
    "HosRules",
    "HosState",
    "Violation",
    "ViolationKind",
    "hos_state",
]

_ZERO = timedelta(0)


class DutyStatus(StrEnum):
    """The four ELD duty statuses."""

    OFF_DUTY = "off_duty"
    SLEEPER_BERTH = "sleeper_berth"
    DRIVING = "driving"
    ON_DUTY = "on_duty"


class Cycle(StrEnum):
    """The two on-duty cycles a carrier can operate under."""

    US_60_7 = "60h/7d"
    US_70_8 = "70h/8d"

    @property
    def on_duty_limit(self) -> timedelta:
        return timedelta(hours=60) if self is Cycle.US_60_7 else timedelta(hours=70)

    @property
    def period(self) -> timedelta:
        return timedelta(days=7) if self is Cycle.US_60_7 else timedelta(days=8)


class ViolationKind(StrEnum):
    """Which limit a stretch of driving broke."""

    DRIVE_11 = "drive_11"
    WINDOW_14 = "window_14"
    BREAK_30 = "break_30"
    CYCLE = "cycle"


@dataclass(frozen=True)
class DutyChange:
    """A duty-status change from an ELD; ``position`` (log position) only breaks time ties."""

    occurred_at: datetime
    position: int
    status: DutyStatus
    origin: str = "automatic"

    def __post_init__(self) -> None:
        _require_aware(self.occurred_at, "occurred_at")
        # Accept any str-valued status spelled like ours (e.g. ledger.drivers.DutyStatus), and
        # hold our own enum so identity comparisons below stay exact.
        try:
            object.__setattr__(self, "status", DutyStatus(self.status))
        except ValueError:
            raise InvalidInput(f"unknown duty status {self.status!r}", field="status") from None


@dataclass(frozen=True)
class HosRules:
    """The limits applied; the defaults are the FMCSA property-carrying rules."""

    cycle: Cycle = Cycle.US_70_8
    drive_limit: timedelta = timedelta(hours=11)
    window: timedelta = timedelta(hours=14)
    break_after: timedelta = timedelta(hours=8)
    break_length: timedelta = timedelta(minutes=30)
    reset_rest: timedelta = timedelta(hours=10)
    restart_rest: timedelta = timedelta(hours=34)
    split_sleeper: timedelta = timedelta(hours=7)
    split_short: timedelta = timedelta(hours=2)

    def __post_init__(self) -> None:
        for name in (
            "drive_limit",
            "window",
            "break_after",
            "break_length",
            "reset_rest",
            "restart_rest",
            "split_sleeper",
            "split_short",
        ):
            value: timedelta = getattr(self, name)
            if value <= _ZERO:
                raise InvalidInput(f"{name} must be a positive duration, got {value}", field=name)


@dataclass(frozen=True)
class Violation:
    """Driving past a limit: which limit, from when, and the change that began that driving."""

    kind: ViolationKind
    started_at: datetime
    change: DutyChange


@dataclass(frozen=True)
class HosState:
    """What a driver has left at ``at``, and every violation up to then."""

    at: datetime
    status: DutyStatus
    status_since: datetime | None
    drive_remaining: timedelta
    window_remaining: timedelta
    until_break: timedelta
    cycle_remaining: timedelta
    violations: tuple[Violation, ...]

    @property
    def driving_available(self) -> timedelta:
        """Driving the driver may still do right now: the tightest of the four clocks."""
        return min(
            self.drive_remaining, self.window_remaining, self.until_break, self.cycle_remaining
        )


def hos_state(
    changes: Iterable[DutyChange],
    at: datetime,
    rules: HosRules = HosRules(),  # noqa: B008 - frozen, so a shared default is safe
) -> HosState:
    """The Hours of Service state at ``at``, from the changes that occurred at or before it."""
    _require_aware(at, "at")
    known = sorted((change for change in changes if change.occurred_at <= at), key=_change_key)
    if not known:
        return HosState(
            at=at,
            status=DutyStatus.OFF_DUTY,
            status_since=None,
            drive_remaining=rules.drive_limit,
            window_remaining=rules.window,
            until_break=rules.break_after,
            cycle_remaining=rules.cycle.on_duty_limit,
            violations=(),
        )
    return _Fold(_segments(known, at), at, rules).state()


def _change_key(change: DutyChange) -> tuple[datetime, int, str, str]:
    # Status and origin only matter for malformed input (two changes sharing time and position);
    # they keep the order total so the result never depends on the order of arrival.
    return (change.occurred_at, change.position, change.status.value, change.origin)


@dataclass(frozen=True)
class _Segment:
    """A stretch of one status, begun by ``change``, lasting until the next one (or ``at``)."""

    start: datetime
    end: datetime
    status: DutyStatus
    change: DutyChange

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def _segments(changes: Sequence[DutyChange], at: datetime) -> list[_Segment]:
    """Status stretches in event time: repeats of a status merged, instantaneous ones dropped."""
    stretches = [
        _Segment(change.occurred_at, nxt.occurred_at, change.status, change)
        for change, nxt in pairwise(changes)
    ]
    stretches.append(_Segment(changes[-1].occurred_at, at, changes[-1].status, changes[-1]))
    # Merge first, so a status recorded twice is credited to its first record; the current
    # status is kept even when it began exactly at ``at``.
    merged = _merged(stretches)
    lasting = [stretch for stretch in merged[:-1] if stretch.end > stretch.start]
    return _merged([*lasting, merged[-1]])


def _merged(stretches: Iterable[_Segment]) -> list[_Segment]:
    merged: list[_Segment] = []
    for stretch in stretches:
        if merged and merged[-1].status is stretch.status:
            merged[-1] = replace(merged[-1], end=stretch.end)
        else:
            merged.append(stretch)
    return merged


@dataclass(frozen=True)
class _Run:
    """A maximal run of consecutive segments of one kind (rest, or not driving)."""

    start: datetime
    end: datetime
    unbounded: bool  # reaches back before the first change, which counts as fully rested
    sleeper: tuple[datetime, datetime] | None  # its longest uninterrupted sleeper-berth stretch

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def sleeper_length(self) -> timedelta:
        return _ZERO if self.sleeper is None else self.sleeper[1] - self.sleeper[0]

    def at_least(self, duration: timedelta) -> bool:
        return self.unbounded or self.length >= duration


def _runs(segments: Sequence[_Segment], member: Callable[[DutyStatus], bool]) -> list[_Run]:
    """Maximal runs of member segments, led by the unbounded run of history before the first."""
    runs: list[_Run] = []
    if not member(segments[0].status):
        runs.append(_Run(segments[0].start, segments[0].start, unbounded=True, sleeper=None))
    index = 0
    while index < len(segments):
        if not member(segments[index].status):
            index += 1
            continue
        first = index
        sleeper: tuple[datetime, datetime] | None = None
        while index < len(segments) and member(segments[index].status):
            segment = segments[index]
            longest = _ZERO if sleeper is None else sleeper[1] - sleeper[0]
            if segment.status is DutyStatus.SLEEPER_BERTH and segment.length > longest:
                sleeper = (segment.start, segment.end)
            index += 1
        runs.append(
            _Run(segments[first].start, segments[index - 1].end, first == 0, sleeper=sleeper)
        )
    return runs


def _is_rest(status: DutyStatus) -> bool:
    return status in (DutyStatus.OFF_DUTY, DutyStatus.SLEEPER_BERTH)


def _is_on_duty(status: DutyStatus) -> bool:
    return status in (DutyStatus.DRIVING, DutyStatus.ON_DUTY)


def _is_driving(status: DutyStatus) -> bool:
    return status is DutyStatus.DRIVING


def _is_pause(status: DutyStatus) -> bool:
    return status is not DutyStatus.DRIVING


class _Tally:
    """Cumulative time spent in some statuses, readable at any instant."""

    def __init__(self, segments: Sequence[_Segment], member: Callable[[DutyStatus], bool]) -> None:
        self._segments = segments
        self._starts = [segment.start for segment in segments]
        self._member = [member(segment.status) for segment in segments]
        self._before: list[timedelta] = [_ZERO]
        for segment, counted in zip(segments, self._member, strict=True):
            self._before.append(self._before[-1] + (segment.length if counted else _ZERO))

    def upto(self, moment: datetime) -> timedelta:
        index = bisect_right(self._starts, moment) - 1
        if index < 0:
            return _ZERO
        segment = self._segments[index]
        partial = min(moment, segment.end) - segment.start if self._member[index] else _ZERO
        return self._before[index] + partial

    def between(self, start: datetime, end: datetime) -> timedelta:
        return self.upto(end) - self.upto(start) if end > start else _ZERO


@dataclass(frozen=True)
class _Pair:
    """A valid sleeper-berth split: where the clocks restart, and the two credited spans."""

    restart_at: datetime
    first_span: tuple[datetime, datetime]
    second_span: tuple[datetime, datetime]


def _pair(first: _Run, second: _Run, rules: HosRules) -> _Pair | None:
    """The split two consecutive qualifying rests make, if any (the later restart point wins)."""
    if (
        first.length >= rules.split_short
        and second.sleeper is not None
        and second.sleeper_length >= rules.split_sleeper
        and first.length + second.sleeper_length >= rules.reset_rest
    ):
        return _Pair(first.end, (first.start, first.end), second.sleeper)
    if (
        first.sleeper is not None
        and first.sleeper_length >= rules.split_sleeper
        and second.length >= rules.split_short
        and first.sleeper_length + second.length >= rules.reset_rest
    ):
        return _Pair(first.sleeper[1], first.sleeper, (second.start, second.end))
    return None


@dataclass(frozen=True)
class _Mark:
    """The 11 h / 14 h reference in force from ``since`` until the next rest ends."""

    since: datetime
    start: datetime  # the 11 h and 14 h count from here
    excluded: tuple[tuple[datetime, datetime], ...]  # split periods not counted in the 14 h


class _Fold:
    """The clocks and violations over one driver's event-time segments up to ``at``."""

    def __init__(self, segments: Sequence[_Segment], at: datetime, rules: HosRules) -> None:
        self._segments = segments
        self._at = at
        self._rules = rules
        self._driving = _Tally(segments, _is_driving)
        self._on_duty = _Tally(segments, _is_on_duty)
        rests = _runs(segments, _is_rest)
        self._restart_ends = [run.end for run in rests if run.at_least(rules.restart_rest)]
        self._break_ends = [
            run.end for run in _runs(segments, _is_pause) if run.at_least(rules.break_length)
        ]
        self._boundaries = [segment.start for segment in segments] + [segments[-1].end]
        self._marks = self._window_marks(rests)
        self._mark_times = [mark.since for mark in self._marks]

    def state(self) -> HosState:
        at, rules, current = self._at, self._rules, self._segments[-1]
        return HosState(
            at=at,
            status=current.status,
            status_since=current.start,
            drive_remaining=max(_ZERO, rules.drive_limit - self._drive_used(at)),
            window_remaining=max(_ZERO, rules.window - self._window_used(at)),
            until_break=max(_ZERO, rules.break_after - self._since_break(at)),
            cycle_remaining=max(_ZERO, rules.cycle.on_duty_limit - self._cycle_used(at)),
            violations=self._violations(),
        )

    def _window_marks(self, rests: Sequence[_Run]) -> list[_Mark]:
        rules = self._rules
        completes: dict[int, _Pair] = {}  # rest index -> the split it completes
        opens: dict[int, _Pair] = {}  # rest index -> the split it starts
        previous: int | None = None
        for index, run in enumerate(rests):
            if run.at_least(rules.reset_rest):
                previous = None
            elif _qualifies(run, rules):
                if previous is not None:
                    pair = _pair(rests[previous], run, rules)
                    if pair is not None:
                        completes[index] = opens[previous] = pair
                previous = index

        marks: list[_Mark] = []
        start = self._segments[0].start
        second: tuple[datetime, datetime] | None = None
        latest: int | None = None  # the latest qualifying rest since the reset
        for index, run in enumerate(rests):
            if run.at_least(rules.reset_rest):
                start, second, latest = run.end, None, None
            elif _qualifies(run, rules):
                if index in completes:
                    start, second = completes[index].restart_at, completes[index].second_span
                latest = index
            else:
                continue
            # In hindsight, the latest rest is excluded too when it opens a split taken later.
            first = opens[latest].first_span if latest in opens else None
            excluded = tuple(span for span in (second, first) if span is not None)
            marks.append(_Mark(run.end, start, excluded))
        return marks

    def _mark(self, moment: datetime) -> _Mark:
        return self._marks[bisect_right(self._mark_times, moment) - 1]

    def _drive_used(self, moment: datetime) -> timedelta:
        return self._driving.between(self._mark(moment).start, moment)

    def _window_used(self, moment: datetime) -> timedelta:
        mark = self._mark(moment)
        return (moment - mark.start) - _covered(mark.excluded, mark.start, moment)

    def _since_break(self, moment: datetime) -> timedelta:
        last_break = self._break_ends[bisect_right(self._break_ends, moment) - 1]
        return self._driving.between(last_break, moment)

    def _restart_before(self, moment: datetime) -> datetime:
        return self._restart_ends[bisect_right(self._restart_ends, moment) - 1]

    def _cycle_used(self, moment: datetime) -> timedelta:
        since = max(moment - self._rules.cycle.period, self._restart_before(moment))
        return self._on_duty.between(since, moment)

    def _violations(self) -> tuple[Violation, ...]:
        rules = self._rules
        found: list[Violation] = []
        for segment in self._segments:
            if segment.status is not DutyStatus.DRIVING or segment.length <= _ZERO:
                continue
            start, end = segment.start, segment.end
            crossings = {
                ViolationKind.DRIVE_11: _reached(start, self._drive_used(start), rules.drive_limit),
                ViolationKind.WINDOW_14: _reached(start, self._window_used(start), rules.window),
                ViolationKind.BREAK_30: _reached(
                    start, self._since_break(start), rules.break_after
                ),
                ViolationKind.CYCLE: self._cycle_crossing(start, end),
            }
            found.extend(
                Violation(kind, crossing, segment.change)
                for kind, crossing in crossings.items()
                if crossing is not None and crossing < end
            )
        order = list(ViolationKind)
        return tuple(sorted(found, key=lambda v: (v.started_at, order.index(v.kind))))

    def _cycle_crossing(self, start: datetime, end: datetime) -> datetime | None:
        """When, driving from ``start`` to ``end``, the rolling on-duty total reaches the limit.

        While driving, the total rises at one hour per hour less what slides out of the window, so
        it is piecewise linear with slope 0 or 1; its slope changes only where the trailing edge
        of the window crosses a segment boundary or the last restart.
        """
        period, limit = self._rules.cycle.period, self._rules.cycle.on_duty_limit
        restart = self._restart_before(start)
        low = bisect_right(self._boundaries, start - period)
        high = bisect_left(self._boundaries, end - period)
        points = {start, end, *(boundary + period for boundary in self._boundaries[low:high])}
        if start < restart + period < end:
            points.add(restart + period)
        previous: datetime | None = None
        previous_used = _ZERO
        for point in sorted(points):
            used = self._on_duty.between(max(point - period, restart), point)
            if used >= limit:
                return point if previous is None else previous + (limit - previous_used)
            previous, previous_used = point, used
        return None


def _reached(start: datetime, used: timedelta, limit: timedelta) -> datetime:
    """When a clock reading ``used`` at ``start``, running one hour per hour, hits ``limit``."""
    return start + max(_ZERO, limit - used)


def _qualifies(run: _Run, rules: HosRules) -> bool:
    """A rest that can be half of a sleeper-berth split."""
    return run.length >= rules.split_short or run.sleeper_length >= rules.split_sleeper


def _covered(
    spans: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime
) -> timedelta:
    """How much of [start, end] the spans cover, overlaps counted once."""
    clipped = sorted(
        (max(low, start), min(high, end)) for low, high in spans if min(high, end) > max(low, start)
    )
    total = _ZERO
    reach: datetime | None = None
    for low, high in clipped:
        if reach is None or low >= reach:
            total += high - low
            reach = high
        elif high > reach:
            total += high - reach
            reach = high
    return total


def _require_aware(moment: datetime, field: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be timezone-aware, got {moment.isoformat()}",
            field=field,
            rule="timezone_required",
        )
