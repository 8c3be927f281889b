"""Reading and writing requests: JSON round trip, Solomon, and errors that name the field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from planner.model import PlanRequestError
from planner.travel import build_travel
from planner.vrplib_io import (
    fingerprint,
    load_request,
    read_json_request,
    read_solomon,
    request_from_json,
    request_to_json,
)

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "plan_request.json"
C101 = HERE / "data" / "C101.txt"


def _minimal() -> dict[str, object]:
    return {
        "travel": {"kind": "euclidean"},
        "locations": [{"id": "d", "x": 0, "y": 0}, {"id": "a", "x": 3, "y": 4}],
        "vehicles": [{"id": "v", "start": "d", "capacity": {"weight": 10}}],
        "stops": [{"id": "s", "location": "a", "demand": {"weight": 1}, "windows": [[0, 100]]}],
    }


def test_request_survives_a_json_round_trip_when_written_and_read() -> None:
    request = read_json_request(EXAMPLE)

    again = request_from_json(json.loads(json.dumps(request_to_json(request))))

    assert again == request


def test_example_request_has_every_feature_when_loaded() -> None:
    request = load_request(EXAMPLE)

    assert request.pairs and any(v.hos for v in request.vehicles)
    assert any(len(s.windows) > 1 for s in request.stops)
    assert {"weight", "volume", "pallets"} <= set(request.vehicles[0].capacity)


def test_solomon_file_becomes_a_request_with_its_fleet_when_read() -> None:
    request = read_solomon(C101)

    assert len(request.stops) == 100 and len(request.vehicles) == 25
    assert request.vehicles[0].capacity == {"weight": 200}
    assert request.stops[0].windows[0].start == 912 and request.stops[0].service_minutes == 90
    travel = build_travel(request)
    assert math.isclose(travel.distance[0, 1], math.hypot(45 - 40, 68 - 50))
    assert travel.time[0, 1] == travel.distance[0, 1]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("stops", 0, "windows"), [[50, 10]], "stops[0].windows[0]"),
        (("vehicles", 0, "capacity", "weight"), "heavy", "vehicles[0].capacity.weight"),
        (("stops", 0, "service_minutes"), "ten", "stops[0].service_minutes"),
        (("vehicles", 0, "start"), "nowhere", "vehicles[0].start"),
        (("objective",), "fastest", "objective"),
        (("stops", 0, "demand", "weight"), 1.5, "stops[0].demand.weight"),
    ],
)
def test_error_names_the_field_when_a_value_is_wrong(
    path: tuple[object, ...], value: object, field: str
) -> None:
    document = _minimal()
    target: object = document
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]  # walking nested JSON
    target[path[-1]] = value  # type: ignore[index]  # walking nested JSON

    with pytest.raises(PlanRequestError) as caught:
        request_from_json(document)

    assert caught.value.field == field


def test_error_names_the_line_when_the_json_is_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"locations": [\n  {"id": "d",}\n]}')

    with pytest.raises(PlanRequestError) as caught:
        load_request(bad)

    assert caught.value.field == "json" and "line 2" in caught.value.message


def test_error_names_the_file_when_it_is_missing(tmp_path: Path) -> None:
    with pytest.raises(PlanRequestError) as caught:
        load_request(tmp_path / "nope.json")

    assert caught.value.field == "file"


TINY_CVRP = """NAME : tiny-n4-k2
TYPE : CVRP
DIMENSION : 4
CAPACITY : 10
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
1 0 0
2 3 4
3 6 8
4 -3 -4
DEMAND_SECTION
1 0
2 5
3 5
4 5
DEPOT_SECTION
1
-1
EOF
"""


def test_vrplib_file_becomes_a_request_with_the_fleet_from_its_name(tmp_path: Path) -> None:
    path = tmp_path / "tiny.vrp"
    path.write_text(TINY_CVRP)

    request = load_request(path)

    assert len(request.vehicles) == 2 and len(request.stops) == 3
    assert request.vehicles[0].capacity == {"weight": 10}
    assert build_travel(request).distance[0, 2] == pytest.approx(10.0)


def test_fingerprint_changes_only_when_the_inputs_change() -> None:
    request = read_json_request(EXAMPLE)
    same = request_from_json(request_to_json(request))
    other = request_from_json({**request_to_json(request), "objective": "distance"})

    assert fingerprint(request) == fingerprint(same) != fingerprint(other)
