"""`shipledger verify` and `shipledger checkpoint`: exit codes, messages, signed files."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api import audit_cmd, cli
from ledger.application import Ledger
from ledger.telematics import PingInput
from projections.audit import KEY_ENV
from projections.db import Database
from support.clock import Clock
from support.factories import ADMIN, reference_data

KEY = "cli-test-key-0123456789abcdef"
NOW = datetime(2026, 11, 20, 14, tzinfo=UTC)
Run = Callable[..., tuple[int, str, str]]


def _with_audit(
    build: Callable[[], argparse.ArgumentParser],
) -> Callable[[], argparse.ArgumentParser]:
    """The main parser with `verify` and `checkpoint` (a no-op once cli.py registers them)."""

    def build_parser() -> argparse.ArgumentParser:
        parser = build()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "verify" not in commands.choices:
            audit_cmd.add_parser(commands)
        return parser

    return build_parser


@pytest.fixture
def run(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Run]:
    monkeypatch.setattr(cli, "build_parser", _with_audit(cli.build_parser))
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["--db", store_url, *args])
        captured = capsys.readouterr()
        assert KEY not in captured.out + captured.err  # the key is never shown
        return code, captured.out, captured.err

    yield run


@pytest.fixture
def head(store_url: str) -> int:
    """A small log (reference data and ping uploads); its head position."""
    ledger = Ledger(store_url, clock=Clock(NOW))
    try:
        reference_data(ledger)
        for n in range(6):
            at = NOW - timedelta(hours=2) + timedelta(minutes=n)
            ledger.ingest_pings(ADMIN, [PingInput("DEV-1", n, at, 41.85, -87.65 + n / 1000)])
        return ledger.position
    finally:
        ledger.close()


def tamper(url: str, sql: str, params: tuple[object, ...] = ()) -> None:
    db = Database(url)
    table, pos = (
        ("stored_events", "rowid") if db.sqlite else ("shipledger_events", "notification_id")
    )
    with db.transaction() as cursor:
        cursor.execute(sql.format(table=table, pos=pos), params)
    db.close()


def test_verify_exits_0_with_the_head_position_and_hash_when_the_log_is_untouched(
    run: Run, head: int
) -> None:
    code, out, err = run("verify")

    assert code == 0, err
    assert f"up to position {head} ({head} event(s))" in out
    hash_line = next(line for line in out.splitlines() if line.startswith("head hash: "))
    assert len(hash_line.removeprefix("head hash: ")) == 64
    assert "unchained" not in out  # verify linked the new events first


def test_verify_exits_1_naming_the_position_and_reason_when_an_event_was_changed(
    run: Run, head: int, store_url: str
) -> None:
    assert run("verify")[0] == 0
    tamper(store_url, "UPDATE {table} SET topic = topic || '!' WHERE {pos} = %s", (head - 2,))

    code, out, _ = run("verify")

    assert code == audit_cmd.EXIT_TAMPERED == 1
    assert out.startswith(f"TAMPERED at position {head - 2}: changed")
    assert f"verified up to position {head - 3}" in out


def test_verify_json_names_the_first_bad_position_when_an_event_was_deleted(
    run: Run, head: int, store_url: str
) -> None:
    assert run("verify")[0] == 0
    tamper(store_url, "DELETE FROM {table} WHERE {pos} = %s", (3,))

    code, out, _ = run("verify", "--json")

    result = json.loads(out)
    assert code == 1
    assert result["ok"] is False
    assert result["problem"]["position"] == 3
    assert result["problem"]["reason"] == "missing"
    assert result["position"] == 2


def test_log_verifies_against_the_checkpoint_when_the_command_wrote_it_to_a_file(
    run: Run, head: int, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"

    code, out, _ = run("checkpoint", "--out", str(path))
    verified = run("verify", "--checkpoint", str(path))

    document = json.loads(path.read_text())
    assert code == 0
    assert f"checkpoint at position {head} written to {path}" in out
    assert set(document) == {"position", "hash", "time", "signature"}
    assert document["position"] == head
    assert verified[0] == 0
    assert f"extends the checkpoint at position {head}" in verified[1]


def test_checkpoint_goes_to_standard_output_when_no_file_is_given(run: Run, head: int) -> None:
    code, out, _ = run("checkpoint")

    assert code == 0
    assert json.loads(out)["position"] == head


def test_checkpoint_is_refused_with_exit_2_when_the_key_is_unset(
    run: Run, head: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)

    code, out, err = run("checkpoint")

    assert code == 2
    assert out == ""
    assert f"refused [{KEY_ENV}]: {KEY_ENV} is not set" in err


def test_verify_refuses_with_exit_1_when_the_checkpoint_was_forged(
    run: Run, head: int, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"
    run("checkpoint", "--out", str(path))
    document = json.loads(path.read_text())
    document["position"] -= 1
    path.write_text(json.dumps(document))

    code, out, err = run("verify", "--checkpoint", str(path))

    assert code == 1
    assert out == ""
    assert "checkpoint signature does not match" in err


def test_verify_exits_1_with_truncated_when_the_tail_was_cut_after_a_checkpoint(
    run: Run, head: int, store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoint.json"
    run("checkpoint", "--out", str(path))
    tamper(store_url, "DELETE FROM {table} WHERE {pos} > %s", (head - 3,))
    tamper(store_url, "DELETE FROM ledger_chain WHERE position > %s", (head - 3,))
    assert run("verify")[0] == 0  # without the checkpoint the cut is invisible

    code, out, _ = run("verify", "--checkpoint", str(path))

    assert code == 1
    assert out.startswith(f"TAMPERED at position {head - 2}: truncated")


@pytest.mark.parametrize("content", ["not json", "[]", '{"position": 1}'])
def test_verify_refuses_with_exit_2_when_the_checkpoint_file_is_not_a_checkpoint(
    run: Run, head: int, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_text(content)

    code, _, err = run("verify", "--checkpoint", str(path))

    assert code == 2
    assert err.startswith("refused")


def test_verify_refuses_with_exit_2_when_the_checkpoint_file_is_missing(
    run: Run, tmp_path: Path
) -> None:
    code, _, err = run("verify", "--checkpoint", str(tmp_path / "nowhere.json"))

    assert code == 2
    assert "file not found" in err
