"""Re-planning from the command line (``shipledger plan replan``) and over REST
(``POST /api/v1/plans/replan``): recorded once, refused with the field at fault, on both
backends."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from replan_world import DAY, PREVIOUS, World, at, build_world

from api import cli
from api.app import Settings, create_app
from api.keys import create_key
from ledger.application import Ledger
from planner import replan_cmd
from support.clock import Clock

T = at(14, 30)


@pytest.fixture
def world(ledger: Ledger, clock: Clock, store_url: str) -> Iterator[World]:
    """The day driven until 14:30 (TRK-1 between C-0 and C-2)."""
    built = build_world(ledger, clock, store_url, until=T)
    yield built
    built.db.close()


def test_replan_is_recorded_and_printed_as_json_when_run_from_the_command_line(
    world: World,
    store_url: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(replan_cmd, "Ledger", lambda url: Ledger(url, clock=clock))
    argv = ["--db", store_url, "plan", "replan", "--day", DAY.isoformat(), "--at", T.isoformat()]
    options = ["--warehouse", "WH-1", "--time-limit", "1", "--workers", "1", "--json"]

    code = cli.main([*argv, *options])

    assert code == 0
    (document,) = json.loads(capsys.readouterr().out)
    assert document["replaces"] == [PREVIOUS] and document["starts"]["TRK-1"]["source"] == "ping"
    assert document["plan"]["feasible"] is True
    record = world.ledger.find_plan(document["plan_id"])
    assert record is not None and record.replaces == (PREVIOUS,)


def test_command_refuses_naming_the_field_when_at_is_before_the_last_fact(
    world: World,
    store_url: str,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(replan_cmd, "Ledger", lambda url: Ledger(url, clock=clock))
    head = world.ledger.position
    early = at(14)  # TRK-1 left C-0 at 14:14:30

    code = cli.main(
        ["--db", store_url, "plan", "replan", "--at", early.isoformat(), "--time-limit", "1"]
    )

    assert code == 1
    assert "refused [at]:" in capsys.readouterr().err
    assert world.ledger.position == head


def test_replan_is_recorded_over_rest_and_refused_with_409_when_stale(
    world: World, ledger: Ledger, store_url: str
) -> None:
    app = create_app(Settings(database_url=store_url), ledger=ledger)
    keys = {role: create_key(app.state.services.db, role) for role in ("dispatcher", "finance")}
    body: dict[str, object] = {
        "day": DAY.isoformat(),
        "warehouse": "WH-1",
        "at": T.isoformat(),
        "time_limit_seconds": 1,
    }
    stale = {**body, "at": at(14).isoformat()}  # TRK-1 left C-0 at 14:14:30

    with TestClient(app) as client:
        finance = {"Authorization": f"Bearer {keys['finance']}"}
        forbidden = client.post("/api/v1/plans/replan", json=body, headers=finance)
        headers = {"Authorization": f"Bearer {keys['dispatcher']}", "Idempotency-Key": "rp-1"}
        first = client.post("/api/v1/plans/replan", json=body, headers=headers)
        again = client.post("/api/v1/plans/replan", json=body, headers=headers)
        head = ledger.position
        refused = client.post(
            "/api/v1/plans/replan",
            json=stale,
            headers={"Authorization": f"Bearer {keys['dispatcher']}"},
        )
        shown = client.get(
            f"/api/v1/plans/{first.json()['plan_id']}",
            headers={"Authorization": f"Bearer {keys['dispatcher']}"},
        )

    assert forbidden.status_code == 403
    assert first.status_code == 201, first.text
    assert first.json()["replaces"] == [PREVIOUS] and first.json()["routes"]
    assert again.json() == first.json()
    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["field"]) == ("replan_before_last_fact", "at")
    assert ledger.position == head
    assert shown.json()["replaces"] == [PREVIOUS]
