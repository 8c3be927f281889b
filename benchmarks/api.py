"""The API's performance on PostgreSQL, against same-run baselines.

1. Ping batches over HTTP — uvicorn on loopback, the client in a separate process — against
   the in-process ingestion use case on the same batches. Target: HTTP ≥ 0.5 × in-process.
2. The dispatcher's board query over GraphQL (first 50 active loads with their stops, ETA and
   open exceptions) with 10,000 loads and 50,000 stops: p50 and p99 latency. Target p99 < 50 ms.

Usage: python benchmarks/api.py [--pings 100000] [--loads 10000] [--queries 300] [--url …]
       (--pings 0 or --loads 0 skips that part)
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named after the package it measures; keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import json
import os
import socket
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from api.keys import create_key
from ledger.application import Caller, Ledger, StopPlan
from ledger.events import Source
from ledger.stops import StopKind
from ledger.store import parse_url
from ledger.telematics import PingInput
from ledger.values import TimeWindow
from projections.db import Database
from projections.migrations import migrate
from projections.runner import Runner

DEFAULT_URL = os.environ.get(
    "SHIPLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ADMIN = Caller("bench", Source.API, "bench")
BOARD = """query($first: Int!) { loads(first: $first, status: PLANNED) { edges { node {
  reference status eta latenessRisk openExceptionCount nextStopSequence
  stops { sequence kind window { start end } arrivedAt departedAt eta }
  exceptions { kind owner note }
} } pageInfo { hasNextPage endCursor } } }"""


def fresh(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(parse_url(base).psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema, f"{base}{'&' if '?' in base else '?'}schema={schema}"


def drop(base: str, schema: str) -> None:
    with psycopg.connect(parse_url(base).psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        "import uvicorn; from api.app import Settings, create_app; "
        f"uvicorn.run(create_app(Settings(database_url={url!r})), host='127.0.0.1', "
        f"port={port}, log_level='warning')"
    )
    server = subprocess.Popen([sys.executable, "-c", code])
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def batches(total: int, size: int) -> list[list[dict[str, object]]]:
    start = datetime.now(UTC) - timedelta(hours=6)
    out = []
    for b in range(0, total, size):
        out.append(
            [
                {
                    "device_id": f"DEV-{(b + i) % 200}",
                    "seq": b + i,
                    "occurred_at": (start + timedelta(seconds=(b + i) // 200 * 30)).isoformat(),
                    "lat": 41.8 + ((b + i) % 97) / 1000,
                    "lon": -87.7 + ((b + i) % 89) / 1000,
                    "speed_kph": 40.0,
                }
                for i in range(min(size, total - b))
            ]
        )
    return out


def client_process(base: str, key: str, path: str) -> None:
    """(Child process) posts every batch from `path`, prints the seconds it took."""
    payloads = json.loads(Path(path).read_text())
    with httpx.Client(
        base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        began = time.perf_counter()
        for payload in payloads:
            response = client.post("/api/v1/telematics/pings", json={"pings": payload})
            response.raise_for_status()
        print(time.perf_counter() - began)


def bench_pings(base_url: str, total: int, size: int, tmp: Path) -> None:
    payloads = batches(total, size)
    schema, url = fresh(base_url)
    try:
        ledger = Ledger(url)
        began = time.perf_counter()
        for payload in payloads:
            pings = [
                PingInput(
                    p["device_id"],
                    p["seq"],
                    datetime.fromisoformat(str(p["occurred_at"])),  # type: ignore[arg-type]
                    p["lat"],
                    p["lon"],
                    p["speed_kph"],
                )
                for p in payload
            ]  # type: ignore[arg-type]
            ledger.ingest_pings(ADMIN, pings)
        in_process = time.perf_counter() - began
    finally:
        drop(base_url, schema)
    schema, url = fresh(base_url)
    server = None
    try:
        Ledger(url).close()
        db = Database(url)
        migrate(db)
        key = create_key(db, "dispatcher")
        server, base = start_server(url)
        path = tmp / "payloads.json"
        path.write_text(json.dumps(payloads))
        out = subprocess.run(
            [sys.executable, __file__, "--client", base, key, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        over_http = float(out.stdout.split()[-1])
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        drop(base_url, schema)
    print(f"1. {total:,} pings in batches of {size} from 200 devices")
    print(f"   in-process ingest_pings: {total / in_process:10,.0f} pings/s")
    print(f"   over HTTP (loopback)   : {total / over_http:10,.0f} pings/s")
    print(f"   ratio HTTP/in-process  : {in_process / over_http:.2f}  (target >= 0.50)")


def bench_board(base_url: str, loads: int, queries: int) -> None:
    schema, url = fresh(base_url)
    server = None
    try:
        ledger = Ledger(url)
        ledger.open_account(ADMIN, "ACME", "Acme")
        for n in range(20):
            ledger.register_location(
                ADMIN,
                f"L{n}",
                name=f"Place {n}",
                address=f"{n} St",
                lat=41.8 + n / 100,
                lon=-87.7 + n / 100,
            )
        day = datetime(2026, 11, 20, 14, tzinfo=UTC)
        began = time.perf_counter()
        for n in range(loads):
            stops = [
                StopPlan(
                    StopKind.PICKUP if i == 0 else StopKind.DELIVERY,
                    f"L{(n + i) % 20}",
                    TimeWindow(day + timedelta(hours=i), day + timedelta(hours=i + 2)),
                )
                for i in range(5)
            ]
            ledger.plan_load(ADMIN, f"LOAD-{n:05d}", stops, customer="ACME", planned_km=100)
            if n % 10 == 0:
                ledger.raise_exception(
                    ADMIN,
                    ledger.load_by_reference(f"LOAD-{n:05d}").id,
                    __import__("ledger.loads").loads.ExceptionKind.DELAYED,
                    owner="dispatch",
                    note="traffic",
                )
        db = Database(url)
        migrate(db)
        Runner(ledger, db, batch_size=2000).catch_up()
        print(
            f"2. {loads:,} loads and {loads * 5:,} stops built in "
            f"{time.perf_counter() - began:.0f} s"
        )
        key = create_key(db, "dispatcher")
        server, base = start_server(url)
        timings = []
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            for i in range(queries + 20):
                t = time.perf_counter()
                body = client.post("/graphql", json={"query": BOARD, "variables": {"first": 50}})
                elapsed = time.perf_counter() - t
                data = body.json()
                assert "errors" not in data, data["errors"]
                assert len(data["data"]["loads"]["edges"]) == 50
                if i >= 20:  # warm-up excluded
                    timings.append(elapsed * 1000)
        timings.sort()
        p99 = timings[int(0.99 * (len(timings) - 1))]
        print(
            f"   board query (50 loads with stops and exceptions) over HTTP, {queries} runs: "
            f"p50 {statistics.median(timings):.1f} ms, p99 {p99:.1f} ms "
            f"(target p99 < 50 ms)"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        drop(base_url, schema)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_process(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--pings", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"shipledger-bench-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    if args.pings:
        bench_pings(args.url, args.pings, args.batch, tmp)
    if args.loads:
        bench_board(args.url, args.loads, args.queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
