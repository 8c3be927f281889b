"""The ``plan solve`` command: text and JSON plans, and exit code 2 naming the bad field."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from planner.cli import add_parser

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "plan_request.json"
C101 = HERE / "data" / "C101.txt"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="shipledger")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


def test_solomon_plan_is_printed_as_json_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    code = run("plan", "solve", str(C101), "--time-limit", "1", "--json", "--workers", "1")

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["feasible"] is True
    assert sum(len(r["visits"]) for r in document["routes"]) == 100
    assert document["breakdown"]["vehicles"] == len(document["routes"]) <= 25


def test_example_plan_lists_routes_and_reasons_when_printed_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run("plan", "solve", str(EXAMPLE), "--time-limit", "1")

    out = capsys.readouterr().out
    assert code == 0
    assert "route truck-1" in out and "vehicles used:" in out and "cost:" in out
    assert "o-110: skill" in out and "o-109: window" in out


def test_exit_code_is_2_and_the_field_is_named_when_a_field_has_the_wrong_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["stops"][2]["service_minutes"] = "ten"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))

    code = run("plan", "solve", str(bad))

    err = capsys.readouterr().err
    assert code == 2
    assert "bad.json" in err and "stops[2].service_minutes" in err


def test_exit_code_is_2_when_a_window_ends_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["stops"][0]["windows"] = [[600, 500]]
    bad = tmp_path / "window.json"
    bad.write_text(json.dumps(document))

    code = run("plan", "solve", str(bad))

    assert code == 2
    assert "stops[0].windows[0]" in capsys.readouterr().err


def test_exit_code_is_2_when_the_json_is_malformed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"locations": [}')

    code = run("plan", "solve", str(bad))

    err = capsys.readouterr().err
    assert code == 2 and "broken.json" in err and "line 1" in err


def test_exit_code_is_2_when_the_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("plan", "solve", str(tmp_path / "absent.json"))

    assert code == 2 and "absent.json" in capsys.readouterr().err
