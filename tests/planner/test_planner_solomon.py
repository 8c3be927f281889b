"""Solomon smoke test: C101 (optimum 828.94) within 2 % in 5 seconds, every customer served."""

from __future__ import annotations

from pathlib import Path

from validator import validate

from planner.portfolio import solve
from planner.vrplib_io import read_solomon

C101 = Path(__file__).resolve().parent / "data" / "C101.txt"
C101_OPTIMUM = 828.94


def test_c101_is_served_within_two_percent_of_optimum_when_given_five_seconds() -> None:
    request = read_solomon(C101)

    plan = solve(request, time_limit=5.0, workers=2)

    assert plan.feasible
    assert len(plan.routes) <= 25
    assert validate(request, plan) == []
    assert plan.breakdown.distance <= C101_OPTIMUM * 1.02
