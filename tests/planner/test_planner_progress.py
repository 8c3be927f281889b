"""Progress reaches the caller while the search runs: better costs, later times."""

from __future__ import annotations

import itertools
from pathlib import Path

from planner.portfolio import Progress, solve
from planner.vrplib_io import read_solomon

C101 = Path(__file__).resolve().parent / "data" / "C101.txt"


def test_progress_reports_improving_costs_over_time_when_a_callback_is_given() -> None:
    seen: list[Progress] = []

    plan = solve(read_solomon(C101), time_limit=1.5, workers=2, progress=seen.append)

    assert seen, "no progress reported"
    assert all(a.elapsed_seconds <= b.elapsed_seconds for a, b in itertools.pairwise(seen))
    assert all(
        (b.unassigned, b.best_cost) <= (a.unassigned, a.best_cost)
        for a, b in itertools.pairwise(seen)
    )
    assert seen[-1].best_cost >= plan.cost - 1e-6
