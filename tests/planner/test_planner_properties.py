"""Property: every stop is served by a valid route or left out with the reason that holds."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, event, given, settings
from planner_strategies import requests
from validator import validate

from planner.model import PlanRequest
from planner.portfolio import solve


def _expected_reason(request: PlanRequest, index: int) -> str | None:
    """The reason a stop must carry when it is impossible on its own, else ``None``."""
    stop = request.stops[index]
    if any(stop.id in (p.pickup, p.delivery) for p in request.pairs):
        return None
    eligible = [v for v in request.vehicles if stop.required_skills <= v.skills]
    if not eligible:
        return "skill"
    if not any(all(q <= v.capacity.get(d, 0) for d, q in stop.demand.items()) for v in eligible):
        return "capacity"
    loc = request.locations[stop.location]
    direct = math.hypot(loc.x or 0.0, loc.y or 0.0)
    if stop.windows and all(direct > w.end + 1e-9 for w in stop.windows):
        return "window"
    return None


@settings(
    max_examples=14,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(requests())
def test_every_stop_is_served_validly_or_dropped_with_its_reason_when_instances_are_random(
    request: PlanRequest,
) -> None:
    plan = solve(request, time_limit=0.6, workers=1)

    assert validate(request, plan) == []
    reasons = {u.stop_id: u.reason for u in plan.unassigned}
    for reason in reasons.values():
        event(f"dropped for {reason}")
    event("served all" if plan.feasible else "some dropped")
    for i, stop in enumerate(request.stops):
        expected = _expected_reason(request, i)
        if expected is not None:
            assert reasons.get(stop.id) == expected, (stop, plan.unassigned)
        elif stop.id in reasons:
            assert reasons[stop.id] in ("window", "capacity", "hos"), plan.unassigned
