"""The import rules that keep each package in its room (STYLE.md habit 6)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
WEB_AND_DRIVERS = {
    "fastapi",
    "starlette",
    "strawberry",
    "psycopg",
    "psycopg_pool",
    "ortools",
    "uvicorn",
    "apscheduler",
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("ledger"), ids=lambda p: p.name)
def test_ledger_imports_no_web_driver_solver_or_other_package(path: Path) -> None:
    forbidden = WEB_AND_DRIVERS | {"projections", "api", "planner"}

    assert imported_roots(path) & forbidden == set()


@pytest.mark.parametrize("package", ["ledger", "projections", "api", "planner"])
def test_only_the_solver_imports_ortools(package: str) -> None:
    offenders = [
        p.relative_to(SRC).as_posix()
        for p in modules(package)
        if "ortools" in imported_roots(p) and p.relative_to(SRC).as_posix() != "planner/solver.py"
    ]

    assert offenders == []


def test_projections_do_not_import_the_api_or_planner() -> None:
    offenders = [p.name for p in modules("projections") if imported_roots(p) & {"api", "planner"}]

    assert offenders == []
