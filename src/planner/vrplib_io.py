"""Read plan requests from Solomon / VRPLIB files and from the product's JSON; write JSON.

The product's plan request (JSON, UTF-8), all times in minutes on one clock::

    {
      "name": "demo",                         # optional
      "objective": "distance",                # "distance" | "time" | "cost"; default "distance"
      "vehicles_first": false,                # fewest vehicles before the objective
      "travel": {                             # default {"kind": "euclidean"}
        "kind": "haversine",                  # "haversine" | "euclidean" | "matrix"
        "detour_factor": 1.3, "speed_kmh": 60,          # haversine
        "minutes_per_unit": 1.0,                        # euclidean: time = distance x this
        "distance_km": [[0, 5.2], [5.4, 0]],            # matrix (null = unreachable)
        "time_minutes": [[0, 7], [8, 0]]                # matrix
      },
      "locations": [                          # referred to by "id" or by position
        {"id": "depot", "lat": 52.37, "lon": 4.89},     # or "x"/"y" for euclidean
        ...
      ],
      "vehicles": [{
        "id": "truck-1", "start": "depot", "end": "depot",
        "capacity": {"weight": 1000, "volume": 8000, "pallets": 12},  # whole units
        "shift": [360, 1080],                 # [start, end]
        "cost_per_km": 0.9, "cost_per_hour": 32,
        "skills": ["tail-lift"],
        "hos": {                              # optional: driver's hours left at shift start
          "drive_remaining": 660, "duty_remaining": 840,
          "driven_since_break": 0, "cycle_remaining": 4200
        }
      }],
      "stops": [{
        "id": "order-17", "location": "customer-17",
        "demand": {"weight": 120, "pallets": 1},
        "windows": [[480, 600], [780, 840]],  # service starts inside one; none = any time
        "service_minutes": 15,
        "skills": ["tail-lift"]               # the vehicle needs all of them
      }],
      "pairs": [{"pickup": "order-5p", "delivery": "order-5d"}]  # same vehicle, pickup first;
                                              # the pickup's demand is carried to the delivery
    }

Malformed input raises ``PlanRequestError`` whose ``field`` is a path such as
``stops[3].windows[0]``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import vrplib

from planner.model import (
    HoursOfService,
    Location,
    PickupDelivery,
    Plan,
    PlanRequest,
    PlanRequestError,
    Stop,
    TimeWindow,
    TravelModel,
    Vehicle,
)

__all__ = [
    "fingerprint",
    "load_request",
    "plan_to_json",
    "read_json_request",
    "read_solomon",
    "read_vrplib",
    "request_from_json",
    "request_to_json",
    "write_json_request",
]


# --- reading the product's JSON -------------------------------------------------------------


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PlanRequestError(field, f"expected a number, got {json.dumps(value)}")
    return float(value)


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise PlanRequestError(field, f"expected a whole number, got {json.dumps(value)}")
    return int(value)


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise PlanRequestError(field, f"expected a non-empty string, got {json.dumps(value)}")
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise PlanRequestError(field, f"expected true or false, got {json.dumps(value)}")
    return value


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PlanRequestError(field, f"expected an object, got {json.dumps(value)[:40]}")
    return value


def _list(value: Any, field: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise PlanRequestError(field, f"expected a list, got {json.dumps(value)[:40]}")
    return value


def _required(obj: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in obj:
        raise PlanRequestError(f"{field}.{key}" if field else key, "is required")
    return obj[key]


def _quantities(value: Any, field: str) -> dict[str, int]:
    result: dict[str, int] = {}
    for dim, qty in _object(value, field).items():
        number = _integer(qty, f"{field}.{dim}")
        if number < 0:
            raise PlanRequestError(f"{field}.{dim}", "must not be negative")
        result[dim] = number
    return result


def _window(value: Any, field: str) -> TimeWindow:
    if isinstance(value, dict):
        start = _number(_required(value, "start", field), f"{field}.start")
        end = _number(_required(value, "end", field), f"{field}.end")
    else:
        pair = _list(value, field)
        if len(pair) != 2:
            raise PlanRequestError(field, "expected [start, end]")
        start, end = _number(pair[0], f"{field}[0]"), _number(pair[1], f"{field}[1]")
    if end < start:
        raise PlanRequestError(field, f"window end {end:g} is before its start {start:g}")
    return TimeWindow(start, end)


def _matrix(value: Any, field: str) -> tuple[tuple[float | None, ...], ...]:
    rows = []
    for i, row in enumerate(_list(value, field)):
        rows.append(
            tuple(
                None if v is None else _number(v, f"{field}[{i}][{j}]")
                for j, v in enumerate(_list(row, f"{field}[{i}]"))
            )
        )
    return tuple(rows)


def _travel(value: Any) -> TravelModel:
    obj = _object(value, "travel")
    kind = obj.get("kind", "euclidean")
    if kind not in ("matrix", "euclidean", "haversine"):
        raise PlanRequestError("travel.kind", f"unknown travel kind {json.dumps(kind)}")
    return TravelModel(
        kind=kind,
        distance_km=_matrix(obj["distance_km"], "travel.distance_km")
        if "distance_km" in obj
        else None,
        time_minutes=_matrix(obj["time_minutes"], "travel.time_minutes")
        if "time_minutes" in obj
        else None,
        minutes_per_unit=_number(obj.get("minutes_per_unit", 1.0), "travel.minutes_per_unit"),
        detour_factor=_number(obj.get("detour_factor", 1.3), "travel.detour_factor"),
        speed_kmh=_number(obj.get("speed_kmh", 60.0), "travel.speed_kmh"),
    )


def _location(value: Any, field: str) -> Location:
    obj = _object(value, field)
    coords = {
        key: _number(obj[key], f"{field}.{key}") for key in ("x", "y", "lat", "lon") if key in obj
    }
    return Location(_string(_required(obj, "id", field), f"{field}.id"), **coords)


def _location_ref(value: Any, field: str, ids: Mapping[str, int], count: int) -> int:
    if isinstance(value, str):
        if value not in ids:
            raise PlanRequestError(field, f"no location with id {json.dumps(value)}")
        return ids[value]
    index = _integer(value, field)
    if not 0 <= index < count:
        raise PlanRequestError(field, f"no location {index}")
    return index


def _hos(value: Any, field: str) -> HoursOfService:
    obj = _object(value, field)
    defaults = HoursOfService()
    kwargs = {
        key: _number(obj.get(key, getattr(defaults, key)), f"{field}.{key}")
        for key in ("drive_remaining", "duty_remaining", "driven_since_break", "cycle_remaining")
    }
    for key, number in kwargs.items():
        if number < 0:
            raise PlanRequestError(f"{field}.{key}", "must not be negative")
    return HoursOfService(**kwargs)


def _skills(value: Any, field: str) -> frozenset[str]:
    return frozenset(_string(s, f"{field}[{i}]") for i, s in enumerate(_list(value, field)))


def _vehicle(value: Any, field: str, ids: Mapping[str, int], count: int) -> Vehicle:
    obj = _object(value, field)
    start = _location_ref(_required(obj, "start", field), f"{field}.start", ids, count)
    shift = _list(obj.get("shift", [0, 1440]), f"{field}.shift")
    if len(shift) != 2:
        raise PlanRequestError(f"{field}.shift", "expected [start, end]")
    shift_start = _number(shift[0], f"{field}.shift[0]")
    shift_end = _number(shift[1], f"{field}.shift[1]")
    if shift_end < shift_start:
        raise PlanRequestError(f"{field}.shift", "the shift ends before it starts")
    return Vehicle(
        id=_string(_required(obj, "id", field), f"{field}.id"),
        capacity=_quantities(obj.get("capacity", {}), f"{field}.capacity"),
        start_location=start,
        end_location=_location_ref(obj.get("end", start), f"{field}.end", ids, count),
        shift_start=shift_start,
        shift_end=shift_end,
        cost_per_km=_number(obj.get("cost_per_km", 1.0), f"{field}.cost_per_km"),
        cost_per_hour=_number(obj.get("cost_per_hour", 0.0), f"{field}.cost_per_hour"),
        skills=_skills(obj.get("skills", []), f"{field}.skills"),
        hos=_hos(obj["hos"], f"{field}.hos") if obj.get("hos") is not None else None,
    )


def _stop(value: Any, field: str, ids: Mapping[str, int], count: int) -> Stop:
    obj = _object(value, field)
    windows = tuple(
        _window(w, f"{field}.windows[{i}]")
        for i, w in enumerate(_list(obj.get("windows", []), f"{field}.windows"))
    )
    service = _number(obj.get("service_minutes", 0.0), f"{field}.service_minutes")
    if service < 0:
        raise PlanRequestError(f"{field}.service_minutes", "must not be negative")
    return Stop(
        id=_string(_required(obj, "id", field), f"{field}.id"),
        location=_location_ref(_required(obj, "location", field), f"{field}.location", ids, count),
        demand=_quantities(obj.get("demand", {}), f"{field}.demand"),
        windows=windows,
        service_minutes=service,
        required_skills=_skills(obj.get("skills", []), f"{field}.skills"),
    )


def request_from_json(document: Any) -> PlanRequest:
    """Build and validate a request from a parsed JSON document."""
    root = _object(document, "request")
    locations = tuple(
        _location(v, f"locations[{i}]")
        for i, v in enumerate(_list(_required(root, "locations", ""), "locations"))
    )
    ids = {loc.id: i for i, loc in enumerate(locations)}
    n = len(locations)
    vehicles = tuple(
        _vehicle(v, f"vehicles[{i}]", ids, n)
        for i, v in enumerate(_list(_required(root, "vehicles", ""), "vehicles"))
    )
    stops = tuple(
        _stop(v, f"stops[{i}]", ids, n)
        for i, v in enumerate(_list(_required(root, "stops", ""), "stops"))
    )
    pairs = []
    for i, v in enumerate(_list(root.get("pairs", []), "pairs")):
        obj = _object(v, f"pairs[{i}]")
        pairs.append(
            PickupDelivery(
                _string(_required(obj, "pickup", f"pairs[{i}]"), f"pairs[{i}].pickup"),
                _string(_required(obj, "delivery", f"pairs[{i}]"), f"pairs[{i}].delivery"),
            )
        )
    objective = root.get("objective", "distance")
    if objective not in ("distance", "time", "cost"):
        raise PlanRequestError("objective", f"expected distance, time or cost, got {objective!r}")
    request = PlanRequest(
        locations=locations,
        vehicles=vehicles,
        stops=stops,
        pairs=tuple(pairs),
        travel=_travel(root.get("travel", {"kind": "euclidean"})),
        objective=objective,
        vehicles_first=_bool(root.get("vehicles_first", False), "vehicles_first"),
        name=str(root.get("name", "")),
    )
    request.validate()
    return request


def read_json_request(path: str | Path) -> PlanRequest:
    """Read the product's JSON plan request; malformed JSON is reported with its line."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanRequestError(
            "json", f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    return request_from_json(document)


# --- writing ----------------------------------------------------------------------------------


def _drop_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


def request_to_json(request: PlanRequest) -> dict[str, Any]:
    """The JSON document for a request (locations referred to by id)."""
    ids = [loc.id for loc in request.locations]
    travel = request.travel
    travel_doc: dict[str, Any] = {"kind": travel.kind}
    if travel.kind == "matrix":
        travel_doc["distance_km"] = [list(r) for r in travel.distance_km or ()]
        travel_doc["time_minutes"] = [list(r) for r in travel.time_minutes or ()]
    elif travel.kind == "euclidean":
        travel_doc["minutes_per_unit"] = travel.minutes_per_unit
    else:
        travel_doc["detour_factor"] = travel.detour_factor
        travel_doc["speed_kmh"] = travel.speed_kmh
    return {
        "name": request.name,
        "objective": request.objective,
        "vehicles_first": request.vehicles_first,
        "travel": travel_doc,
        "locations": [
            _drop_none({"id": loc.id, "x": loc.x, "y": loc.y, "lat": loc.lat, "lon": loc.lon})
            for loc in request.locations
        ],
        "vehicles": [
            _drop_none(
                {
                    "id": v.id,
                    "start": ids[v.start_location],
                    "end": ids[v.end_location],
                    "capacity": dict(v.capacity),
                    "shift": [v.shift_start, v.shift_end],
                    "cost_per_km": v.cost_per_km,
                    "cost_per_hour": v.cost_per_hour,
                    "skills": sorted(v.skills),
                    "hos": None
                    if v.hos is None
                    else {
                        "drive_remaining": v.hos.drive_remaining,
                        "duty_remaining": v.hos.duty_remaining,
                        "driven_since_break": v.hos.driven_since_break,
                        "cycle_remaining": v.hos.cycle_remaining,
                    },
                }
            )
            for v in request.vehicles
        ],
        "stops": [
            {
                "id": s.id,
                "location": ids[s.location],
                "demand": dict(s.demand),
                "windows": [[w.start, w.end] for w in s.windows],
                "service_minutes": s.service_minutes,
                "skills": sorted(s.required_skills),
            }
            for s in request.stops
        ],
        "pairs": [{"pickup": p.pickup, "delivery": p.delivery} for p in request.pairs],
    }


def fingerprint(request: PlanRequest) -> str:
    """A SHA-256 of the request's canonical JSON: the same inputs give the same fingerprint."""
    canonical = json.dumps(request_to_json(request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_json_request(request: PlanRequest, path: str | Path) -> None:
    """Write a request as the product's JSON."""
    Path(path).write_text(json.dumps(request_to_json(request), indent=2) + "\n", encoding="utf-8")


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The JSON document for a plan."""
    b = plan.breakdown
    return {
        "objective": plan.objective,
        "cost": round(plan.cost, 4),
        "feasible": plan.feasible,
        "engine": plan.engine,
        "elapsed_seconds": round(plan.elapsed_seconds, 3),
        "breakdown": {
            "distance": round(b.distance, 4),
            "time": round(b.time, 4),
            "drive": round(b.drive, 4),
            "vehicles": b.vehicles,
            "cost": round(b.cost, 4),
            "penalties": round(b.penalties, 4),
        },
        "routes": [
            {
                "vehicle": r.vehicle_id,
                "start_time": round(r.start_time, 3),
                "end_time": round(r.end_time, 3),
                "distance": round(r.distance, 4),
                "drive_minutes": round(r.drive_minutes, 3),
                "cost": round(r.cost, 4),
                "breaks": [{"start": round(x.start, 3), "minutes": x.minutes} for x in r.breaks],
                "visits": [
                    {
                        "stop": v.stop_id,
                        "arrival": round(v.arrival, 3),
                        "start": round(v.start, 3),
                        "departure": round(v.departure, 3),
                    }
                    for v in r.visits
                ],
            }
            for r in plan.routes
        ],
        "unassigned": [
            {"stop": u.stop_id, "reason": u.reason, "detail": u.detail} for u in plan.unassigned
        ],
    }


# --- benchmark formats ------------------------------------------------------------------------


def read_solomon(path: str | Path, *, dimension: str = "weight") -> PlanRequest:
    """A Solomon instance: fleet and capacity from the file, Euclidean travel (unrounded,
    time = distance), the depot's window as every vehicle's shift, distance objective."""
    data = vrplib.read_instance(str(path), instance_format="solomon")
    coords = data["node_coord"]
    windows = data["time_window"]
    locations = tuple(
        Location(str(i), x=float(x), y=float(y)) for i, (x, y) in enumerate(coords.tolist())
    )
    depot_open, depot_close = float(windows[0][0]), float(windows[0][1])
    vehicles = tuple(
        Vehicle(f"v{k + 1}", {dimension: int(data["capacity"])}, 0, 0, depot_open, depot_close)
        for k in range(int(data["vehicles"]))
    )
    stops = tuple(
        Stop(
            id=str(i),
            location=i,
            demand={dimension: int(data["demand"][i])},
            windows=(TimeWindow(float(windows[i][0]), float(windows[i][1])),),
            service_minutes=float(data["service_time"][i]),
        )
        for i in range(1, len(coords))
    )
    return PlanRequest(locations, vehicles, stops, name=str(data.get("name", Path(path).stem)))


def read_vrplib(path: str | Path, *, dimension: str = "weight") -> PlanRequest:
    """A VRPLIB (CVRP, optionally with windows) instance; distances from its edge weights."""
    data = vrplib.read_instance(str(path))
    weights = data["edge_weight"]
    n = len(weights)
    depots = [int(d) for d in data.get("depot", [0])]
    depot = depots[0]
    name = str(data.get("name", Path(path).stem))
    fleet = data.get("vehicles")
    if fleet is None:
        match = re.search(r"-k(\d+)", name)
        fleet = int(match.group(1)) if match else n - 1
    windows = data.get("time_window")
    service = data.get("service_time")
    horizon = float(windows[depot][1]) if windows is not None else 1e9
    matrix = tuple(tuple(float(v) for v in row) for row in weights.tolist())
    coords = data.get("node_coord")
    locations = tuple(
        Location(str(i), float(coords[i][0]), float(coords[i][1]))
        if coords is not None
        else Location(str(i))
        for i in range(n)
    )
    vehicles = tuple(
        Vehicle(f"v{k + 1}", {dimension: int(data["capacity"])}, depot, depot, 0.0, horizon)
        for k in range(int(fleet))
    )
    stops = tuple(
        Stop(
            id=str(i),
            location=i,
            demand={dimension: int(data["demand"][i])},
            windows=(TimeWindow(float(windows[i][0]), float(windows[i][1])),)
            if windows is not None
            else (),
            service_minutes=float(service[i]) if service is not None else 0.0,
        )
        for i in range(n)
        if i not in depots
    )
    travel = TravelModel(kind="matrix", distance_km=matrix, time_minutes=matrix)
    return PlanRequest(locations, vehicles, stops, travel=travel, name=name)


def _looks_like_solomon(text: str) -> bool:
    return "CUSTOMER" in text and "VEHICLE" in text and ":" not in text.split("\n", 1)[0]


def load_request(path: str | Path) -> PlanRequest:
    """Read a request from JSON (``.json``), Solomon or VRPLIB, by content."""
    file = Path(path)
    if not file.is_file():
        raise PlanRequestError("file", f"{file} does not exist or is not a file")
    text = file.read_text(encoding="utf-8", errors="replace")
    if file.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return read_json_request(file)
    try:
        if _looks_like_solomon(text):
            return read_solomon(file)
        return read_vrplib(file)
    except PlanRequestError:
        raise
    except Exception as err:  # vrplib raises many kinds of errors on malformed files
        raise PlanRequestError(
            "file", f"cannot read {file.name} as Solomon/VRPLIB: {err}"
        ) from None
