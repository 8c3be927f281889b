"""Hypothesis strategies for small planner requests (at most 12 stops, planar, 1 unit = 1 min).

Some stops are made impossible on purpose: a skill no vehicle has, more demand than any vehicle
carries, or a window that closes before even a direct drive from the depot could arrive.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from planner.model import (
    HoursOfService,
    Location,
    PickupDelivery,
    PlanRequest,
    Stop,
    TimeWindow,
    TravelModel,
    Vehicle,
)

HORIZON = 600.0
"""The working day of the small-area instances, in minutes."""
SKILLS = ("cold", "lift")


@st.composite
def vehicles(draw: st.DrawFn, count: int, horizon: float) -> tuple[Vehicle, ...]:
    result = []
    for k in range(count):
        hos = None
        if draw(st.booleans()):
            hos = HoursOfService(
                drive_remaining=draw(st.sampled_from([60.0, 150.0, 300.0, 660.0])),
                duty_remaining=draw(st.sampled_from([240.0, 840.0])),
                driven_since_break=draw(st.sampled_from([0.0, 200.0, 450.0])),
                cycle_remaining=draw(st.sampled_from([300.0, 4200.0])),
            )
        result.append(
            Vehicle(
                f"v{k}",
                {"weight": draw(st.integers(20, 60)), "pallets": draw(st.integers(2, 6))},
                0,
                0,
                0.0,
                horizon,
                cost_per_km=draw(st.sampled_from([0.5, 1.0, 2.0])),
                cost_per_hour=draw(st.sampled_from([0.0, 30.0])),
                skills=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=2))),
                hos=hos,
            )
        )
    return tuple(result)


@st.composite
def requests(draw: st.DrawFn) -> PlanRequest:
    """A depot, up to 12 stops (maybe one pickup-delivery pair), 1-3 vehicles; either a small
    area and a 10-hour day, or a wide one and a 24-hour day where breaks fall due."""
    n = draw(st.integers(1, 12))
    reach, horizon = draw(st.sampled_from([(60, HORIZON), (60, HORIZON), (250, 1440.0)]))
    points = [
        (float(draw(st.integers(-reach, reach))), float(draw(st.integers(-reach, reach))))
        for _ in range(n)
    ]
    locations = (
        Location("depot", 0.0, 0.0),
        *tuple(Location(f"p{i}", x, y) for i, (x, y) in enumerate(points)),
    )
    fleet = draw(vehicles(draw(st.integers(1, 3)), horizon))
    stops = []
    for i, (x, y) in enumerate(points):
        direct = math.hypot(x, y)
        kind = draw(
            st.sampled_from(["plain", "plain", "plain", "window", "late", "heavy", "skill"])
        )
        demand = {"weight": draw(st.integers(0, 15)), "pallets": draw(st.integers(0, 2))}
        windows: tuple[TimeWindow, ...] = ()
        skills: frozenset[str] = frozenset()
        if kind == "window":
            start = float(draw(st.integers(0, int(horizon) - 200)))
            windows = (TimeWindow(start, start + draw(st.integers(30, 200))),)
        elif kind == "late":  # closes before a direct drive could arrive
            end = max(0.0, math.floor(direct) - 5.0)
            windows = (TimeWindow(0.0, end),)
        elif kind == "heavy":
            demand = {"weight": 1000, "pallets": 1}
        elif kind == "skill":
            skills = frozenset({"crane"})
        elif draw(st.booleans()):
            skills = frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=1)))
        stops.append(Stop(f"s{i}", i + 1, demand, windows, float(draw(st.integers(0, 20))), skills))
    pairs: tuple[PickupDelivery, ...] = ()
    plain = [
        s for s in stops if not s.windows and not s.required_skills and s.demand["weight"] < 100
    ]
    if len(plain) >= 2 and draw(st.booleans()):
        pickup, delivery = plain[0], plain[1]
        stops[stops.index(delivery)] = Stop(delivery.id, delivery.location, {}, (), 5.0)
        pairs = (PickupDelivery(pickup.id, delivery.id),)
    objective = draw(st.sampled_from(["distance", "distance", "time", "cost"]))
    return PlanRequest(
        locations, fleet, tuple(stops), pairs, TravelModel(kind="euclidean"), objective
    )
