"""The `shipledger` command: imports are all-or-nothing, ingest summarises, events stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main
from ledger.application import Ledger
from ledger.log import iter_log

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEADER = (
    "reference,sku,quantity,ship_to_name,ship_to_address,ship_to_lat,ship_to_lon,"
    "window_start,window_end"
)
GOOD_ROW = (
    "PO-1,SKU-1,5,Dock,1 Main St,41.9,-87.6,2026-11-25T08:00:00-06:00,2026-11-25T12:00:00-06:00"
)


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = main(["--db", url, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def head(url: str) -> int:
    ledger = Ledger(url)
    try:
        return ledger.position
    finally:
        ledger.close()


def test_import_records_orders_and_a_repeat_records_nothing(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(EXAMPLES / "orders.csv")

    code, out, _ = run(capsys, store_url, "import", "orders", path, "--tenant", "ACME")
    position = head(store_url)
    again, out_again, _ = run(capsys, store_url, "import", "orders", path, "--tenant", "ACME")

    assert code == again == 0
    assert "recorded 3 order(s)" in out and f"last log position {position}" in out
    assert "nothing new" in out_again
    assert head(store_url) == position


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([HEADER + ",colour", GOOD_ROW + ",red"], "column colour: unknown column"),
        ([HEADER, GOOD_ROW.replace(",5,", ",-5,")], "row 2, column quantity: must be positive"),
        ([HEADER, GOOD_ROW.replace("-06:00", "")], "row 2, column window_start"),
        ([HEADER, GOOD_ROW.replace(",5,", ",five,")], "row 2, column quantity"),
        ([HEADER, GOOD_ROW.replace("41.9", "141.9")], "row 2, column lat"),
        ([HEADER, GOOD_ROW, GOOD_ROW.replace("1 Main St", "2 Main St")], "row 3, column ship_to"),
        ([HEADER, 'PO-2,"unterminated'], "row 2"),
        (["reference,sku"], "column quantity: required column is missing"),
    ],
    ids=[
        "unknown-column",
        "negative",
        "naive",
        "not-a-number",
        "lat",
        "disagree",
        "bad-csv",
        "missing-column",
    ],
)
def test_import_is_refused_whole_naming_each_bad_row_when_any_row_is_bad(
    store_url: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    rows: list[str],
    expected: str,
) -> None:
    bad = tmp_path / "orders.csv"
    extra = [GOOD_ROW.replace("PO-1", "PO-0")] if rows[0].startswith(HEADER) else []
    bad.write_text("\n".join([*rows, *extra]))
    before = head(store_url)

    code, _, err = run(capsys, store_url, "import", "orders", str(bad), "--tenant", "ACME")

    assert code != 0
    assert expected in err
    assert "nothing was recorded" in err
    assert head(store_url) == before


def test_ingest_prints_a_summary_with_refused_lines(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, store_url, "ingest", "pings", str(EXAMPLES / "pings.jsonl"))

    summary = json.loads(out)
    assert code == 0
    assert (summary["accepted"], summary["duplicates"]) == (4, 1)
    assert [r["line"] for r in summary["refused"]] == [6]
    assert "future" in summary["refused"][0]["reason"]


def test_ingest_is_refused_whole_when_a_line_is_malformed(
    store_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = (
        '{"device_id": "D", "seq": 1, "occurred_at": "2026-11-20T08:00:00+00:00", '
        '"lat": 1, "lon": 2}'
    )
    path = tmp_path / "pings.jsonl"
    path.write_text(
        "\n".join(
            [
                good,
                "{not json",
                good.replace('"seq": 1', '"seq": 2, "altitude": 5'),
                good.replace("+00:00", ""),
                good.replace('"lat": 1', '"lat": "north"'),
            ]
        )
    )

    code, _, err = run(capsys, store_url, "ingest", "pings", str(path))

    assert code == 2
    for expected in (
        "line 2: not valid JSON",
        "line 3, column altitude: unknown field",
        "line 4, column occurred_at",
        "line 5, column lat",
    ):
        assert expected in err
    assert head(store_url) == 0


def test_events_streams_the_log_as_json_lines_with_both_clocks(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, store_url, "import", "orders", str(EXAMPLES / "orders.csv"), "--tenant", "ACME")
    run(capsys, store_url, "ingest", "pings", str(EXAMPLES / "pings.jsonl"))

    code, out, _ = run(capsys, store_url, "events", "--after", "2", "--limit", "4")
    lines = [json.loads(line) for line in out.splitlines()]

    assert code == 0
    assert [line["position"] for line in lines] == [3, 4, 5, 6]
    assert set(lines[0]) >= {
        "position",
        "recorded_at",
        "occurred_at",
        "type",
        "stream",
        "version",
        "actor",
        "source",
        "reason",
        "data",
    }
    assert lines[0]["actor"] == "cli:admin"


def test_events_filters_one_stream_with_its_log_positions(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, store_url, "ingest", "pings", str(EXAMPLES / "pings.jsonl"))
    ledger = Ledger(store_url)
    records = list(iter_log(ledger))
    ledger.close()
    stream = records[-1].stream

    code, out, _ = run(capsys, store_url, "events", "--stream", str(stream))

    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [x["position"] for x in lines] == [r.position for r in records if r.stream == stream]
    assert all(x["stream"] == str(stream) for x in lines)


def test_log_is_read_in_pages_when_it_is_longer_than_a_page(store_url: str) -> None:
    ledger = Ledger(store_url)
    from support.factories import ADMIN

    for n in range(7):
        ledger.open_account(ADMIN, f"T{n}", f"Tenant {n}")

    positions = [r.position for r in iter_log(ledger, page_size=3)]
    limited = [r.position for r in iter_log(ledger, after=2, limit=4, page_size=3)]
    ledger.close()

    assert positions == list(range(1, 8))
    assert limited == [3, 4, 5, 6]


def test_installed_entry_point_runs(tmp_path: Path) -> None:
    env = {**os.environ, "SHIPLEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    exe = Path(sys.executable).with_name("shipledger")

    result = subprocess.run(
        [str(exe), "status"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "log head position: 0" in result.stdout
