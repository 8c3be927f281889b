"""Route planning: OR-Tools vehicle routing with capacities, time windows, pickup-and-delivery
pairs, skills, shifts and drivers' Hours of Service.

``solve(request, time_limit=..., progress=...)`` returns the best ``Plan`` found by two searches
running side by side (PyVRP joins for plain VRPTW requests when it is installed); stops it
cannot place come back in ``Plan.unassigned`` with a reason. Only ``planner.solver`` imports
OR-Tools; ``planner.pyvrp_engine`` loads PyVRP lazily.

Modules: ``model`` (the vocabulary), ``travel`` (distances and times), ``solver`` (OR-Tools),
``pyvrp_engine``, ``portfolio`` (runs the searches, keeps the best), ``schedule`` (timing and
the plan), ``diagnose`` (why a stop is left out), ``vrplib_io`` (JSON, Solomon, VRPLIB), ``cli``.
"""

from planner.model import (
    Break,
    Depot,
    HoursOfService,
    Location,
    ObjectiveBreakdown,
    PickupDelivery,
    Plan,
    PlannerError,
    PlanRequest,
    PlanRequestError,
    Route,
    Stop,
    TimeWindow,
    TravelModel,
    Unassigned,
    Vehicle,
    Visit,
)
from planner.portfolio import Progress, ProgressCallback, solve
from planner.travel import TravelMatrix, build_travel
from planner.vrplib_io import (
    fingerprint,
    load_request,
    plan_to_json,
    read_json_request,
    read_solomon,
    read_vrplib,
    request_from_json,
    request_to_json,
    write_json_request,
)

__all__ = [
    "Break",
    "Depot",
    "HoursOfService",
    "Location",
    "ObjectiveBreakdown",
    "PickupDelivery",
    "Plan",
    "PlanRequest",
    "PlanRequestError",
    "PlannerError",
    "Progress",
    "ProgressCallback",
    "Route",
    "Stop",
    "TimeWindow",
    "TravelMatrix",
    "TravelModel",
    "Unassigned",
    "Vehicle",
    "Visit",
    "build_travel",
    "fingerprint",
    "load_request",
    "plan_to_json",
    "read_json_request",
    "read_solomon",
    "read_vrplib",
    "request_from_json",
    "request_to_json",
    "solve",
    "write_json_request",
]
