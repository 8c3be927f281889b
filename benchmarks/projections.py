"""Read-side performance on PostgreSQL, each figure against a same-run baseline.

1. Rebuild every view from a log of N events (default 1,000,000; mostly pings from 250
   devices uploading two fixes a minute, plus loads, stops and stock) against a raw
   page-by-page read and decode of the same log. Target: rebuild ≥ 0.3 × raw.
2. Peak memory of the rebuild (a child process' max RSS) for the first half of the log and
   for the whole log. Target: ≤ 500 MB and flat when the log doubles.
3. Under a sustained ingest of 2,000 pings/s, the time from appending a late block of pings
   to the corrected arrival being visible in `stop_times`: p50 and p99. Target p99 < 1 s.

Usage: python benchmarks/projections.py [--events 1000000] [--probes 30] [--url …]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named after the package it measures; keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import math
import os
import random
import resource
import statistics
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from ledger.application import Caller, Ledger, StopPlan
from ledger.events import Source
from ledger.stops import StopKind
from ledger.store import parse_url
from ledger.telematics import PingInput
from ledger.values import TimeWindow
from projections.db import Database
from projections.migrations import migrate
from projections.runner import Runner
from projections.view import iso
from projections.worker import Worker

DEFAULT_URL = os.environ.get(
    "SHIPLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
ADMIN = Caller("bench", Source.API, "bench")
CENTER = (41.85, -87.65)


def fresh_schema(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(parse_url(base).psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema, f"{base}{'&' if '?' in base else '?'}schema={schema}"


def drop_schema(base: str, schema: str) -> None:
    with psycopg.connect(parse_url(base).psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- 1 and 2: the log, the raw read, the rebuild ----------------------------------------------


def business(ledger: Ledger, loads: int) -> None:
    ledger.register_carrier(ADMIN, "FAST", "Fast Freight")
    ledger.register_driver(ADMIN, "D0", first_name="A", last_name="B", carrier_code="FAST")
    for n in range(loads):
        ledger.register_vehicle(
            ADMIN,
            f"T{n}",
            carrier_code="FAST",
            capacity_kg=Decimal(9000),
            capacity_m3=Decimal(50),
            pallets=20,
            device_id=f"DEV-{n}",
        )
    for code in ("A", "B", "C"):
        lat, lon = CENTER[0] + random.uniform(-0.1, 0.1), CENTER[1] + random.uniform(-0.1, 0.1)
        ledger.register_location(ADMIN, code, name=code, address=code, lat=lat, lon=lon)
    for sku in range(20):
        ledger.receive_stock(ADMIN, warehouse="W1", sku=f"S{sku}", quantity=500)
    window = TimeWindow(START, START + timedelta(hours=10))
    for n in range(loads):
        ledger.plan_load(
            ADMIN,
            f"L{n}",
            [
                StopPlan(StopKind.PICKUP, "A", window),
                StopPlan(StopKind.DELIVERY, "B", window),
                StopPlan(StopKind.DELIVERY, "C", window),
            ],
        )
        load = ledger.load_by_reference(f"L{n}")
        ledger.tender_load(ADMIN, load.id, "FAST")
        ledger.accept_tender(ADMIN, load.id)
        ledger.dispatch_load(ADMIN, load.id, "D0", f"T{n}")


def fill_log(ledger: Ledger, events: int, devices: int) -> None:
    """Pings from `devices` devices, each event a device's upload of two fixes."""
    rng = random.Random(1)
    where = {
        d: [CENTER[0] + rng.uniform(-0.3, 0.3), CENTER[1] + rng.uniform(-0.3, 0.3)]
        for d in range(devices)
    }
    minute = 0
    while ledger.position < events:
        batch = []
        for d in range(devices):
            for half in (0, 1):
                at = START + timedelta(minutes=minute, seconds=30 * half)
                where[d][0] += rng.uniform(-0.002, 0.002)
                where[d][1] += rng.uniform(-0.002, 0.002)
                batch.append(
                    PingInput(
                        f"DEV-{d}",
                        minute * 2 + half,
                        at,
                        where[d][0],
                        where[d][1],
                        rng.uniform(0, 80),
                        90.0,
                    )
                )
        ledger.ingest_pings(ADMIN, batch)
        minute += 1
        if minute % 200 == 0:
            print(f"    … {ledger.position:,} events", flush=True)


def raw_read(ledger: Ledger) -> float:
    began = time.perf_counter()
    cursor = 0
    count = 0
    while True:
        page = ledger.recorder.select_notifications(cursor, 1000, inclusive_of_start=False)
        if not page:
            break
        for notification in page:
            ledger.mapper.to_domain_event(notification)
        count += len(page)
        cursor = page[-1].id
    return count / (time.perf_counter() - began)


def rebuild_child(url: str, upto: int) -> None:
    """(Child process) rebuilds every view up to `upto`; prints rate and peak RSS."""
    ledger = Ledger(url)
    db = Database(url)
    migrate(db)
    runner = Runner(ledger, db, batch_size=1000)
    with db.transaction() as cursor:
        for view in runner.views:
            view.clear(cursor)
        cursor.execute("DELETE FROM projection_positions")
    began = time.perf_counter()
    while runner.position() < upto and runner.run_once():
        pass
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{runner.position()} {seconds} {peak_mb}")


def rebuild(url: str, upto: int) -> tuple[int, float, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--rebuild-child", url, "--upto", str(upto)],
        capture_output=True,
        text=True,
        check=True,
    )
    position, seconds, peak = out.stdout.split()[-3:]
    return int(position), float(seconds), float(peak)


# --- 3: latency of a late block under sustained ingest ----------------------------------------


def probe_route(n: int, base: datetime) -> tuple[list[PingInput], datetime, tuple[float, float]]:
    """A probe truck drives 20 min to its stop, dwells 60 min, leaves."""
    stop = (CENTER[0] + 0.05 * math.cos(n), CENTER[1] + 0.05 * math.sin(n))
    pings = []
    for i in range(200):
        at = base + timedelta(seconds=30 * i)
        if i < 40:
            f = i / 40
            point = (stop[0] - 0.05 * (1 - f) - 0.005, stop[1])  # outside the fence
            speed = 40.0
        elif i < 160:
            point, speed = stop, 0.0
        else:
            point, speed = (stop[0] + 0.01 * (i - 159), stop[1]), 40.0
        pings.append(PingInput(f"PROBE-{n}", i, at, point[0], point[1], speed, 0.0))
    return pings, base + timedelta(seconds=30 * 40), stop


def latency(url: str, probes: int, rate: int) -> list[float]:
    clock_now = datetime.now(UTC)
    ledger = Ledger(url)
    business(ledger, 0)
    base = clock_now - timedelta(minutes=105)  # dispatched just before it drove (now)
    window = TimeWindow(base, base + timedelta(hours=4))
    setups = []
    for n in range(probes):
        pings, arrival, stop = probe_route(n, base)
        ledger.register_vehicle(
            ADMIN,
            f"PT{n}",
            carrier_code="FAST",
            capacity_kg=Decimal(9000),
            capacity_m3=Decimal(50),
            pallets=20,
            device_id=f"PROBE-{n}",
        )
        ledger.register_location(ADMIN, f"P{n}", name="p", address="p", lat=stop[0], lon=stop[1])
        ledger.register_location(
            ADMIN, f"Q{n}", name="q", address="q", lat=stop[0] + 0.5, lon=stop[1]
        )
        ledger.plan_load(
            ADMIN,
            f"PL{n}",
            [
                StopPlan(StopKind.PICKUP, f"P{n}", window),
                StopPlan(StopKind.DELIVERY, f"Q{n}", window),
            ],
        )
        load = ledger.load_by_reference(f"PL{n}")
        ledger.tender_load(ADMIN, load.id, "FAST")
        ledger.accept_tender(ADMIN, load.id)
        ledger.dispatch_load(ADMIN, load.id, "D0", f"PT{n}")
        late = [p for p in pings if arrival <= p.occurred_at < arrival + timedelta(minutes=20)]
        ledger.ingest_pings(ADMIN, [p for p in pings if p not in late])
        setups.append((load.stop_ids[0], late, arrival))
    db = Database(url)
    worker = Worker(Ledger(url), db, batch_size=1000)
    worker.catch_up()
    stop = threading.Event()
    following = threading.Thread(target=worker.follow, args=(stop,), kwargs={"poll": 0.05})
    following.start()
    fed = [0]

    def filler() -> None:
        feeder = Ledger(url)
        rng = random.Random(2)
        seq = 0
        period = 0.5
        per_call = int(rate * period)
        while not stop.is_set():
            began = time.monotonic()
            now = datetime.now(UTC)
            feeder.ingest_pings(
                ADMIN,
                [
                    PingInput(
                        f"F{i % 250}",
                        seq + i,
                        now - timedelta(seconds=rng.uniform(0, 20)),
                        41.8 + rng.random() * 0.2,
                        -87.7 + rng.random() * 0.2,
                        30.0,
                        0.0,
                    )
                    for i in range(per_call)
                ],
            )
            seq += per_call
            fed[0] += per_call
            time.sleep(max(0.0, period - (time.monotonic() - began)))

    feeding = threading.Thread(target=filler)
    feeding.start()
    time.sleep(3)
    began_all = time.perf_counter()
    fed_before = fed[0]
    reader = Database(url)
    waits = []
    for stop_id, late, arrival in setups:
        expected = iso(arrival)
        began = time.perf_counter()
        ledger.ingest_pings(ADMIN, late)
        while reader.query(
            "SELECT arrived_at FROM stop_times WHERE stop_id = %s", (str(stop_id),)
        ) != [(expected,)]:
            time.sleep(0.005)
            if time.perf_counter() - began > 30:
                raise RuntimeError("the corrected arrival never became visible")
        waits.append(time.perf_counter() - began)
    achieved = (fed[0] - fed_before) / (time.perf_counter() - began_all)
    stop.set()
    following.join()
    feeding.join()
    print(f"   sustained ingest while probing: {achieved:,.0f} pings/s")
    return waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=250)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--rate", type=int, default=2000, help="sustained pings per second")
    parser.add_argument("--rebuild-child", metavar="URL")
    parser.add_argument("--upto", type=int)
    args = parser.parse_args()
    if args.rebuild_child:
        rebuild_child(args.rebuild_child, args.upto)
        return 0

    schema, url = fresh_schema(args.url)
    try:
        ledger = Ledger(url)
        print(f"1. building a log of {args.events:,} events …", flush=True)
        business(ledger, 50)
        fill_log(ledger, args.events, args.devices)
        total = ledger.position
        raw = raw_read(ledger)
        half_pos, half_s, half_mb = rebuild(url, total // 2)
        full_pos, full_s, full_mb = rebuild(url, total)
        rate = full_pos / full_s
        print(f"   log: {total:,} events")
        print(f"   raw read + decode : {raw:10,.0f} events/s")
        print(f"   rebuild all views : {rate:10,.0f} events/s ({full_s:.0f} s)")
        print(f"   ratio rebuild/raw : {rate / raw:.2f}  (target >= 0.30)")
        print(
            f"2. peak RSS: {half_mb:.0f} MB for {half_pos:,} events, {full_mb:.0f} MB for "
            f"{full_pos:,} (target <= 500 MB, flat)"
        )
    finally:
        drop_schema(args.url, schema)

    schema, url = fresh_schema(args.url)
    try:
        print(f"3. late blocks under {args.rate} pings/s sustained ingest, {args.probes} probes")
        waits = sorted(latency(url, args.probes, args.rate))
        p99 = waits[min(len(waits) - 1, math.ceil(0.99 * len(waits)) - 1)]
        print(
            f"   late ping → corrected stop time visible: p50 {statistics.median(waits):.3f} s, "
            f"p99 {p99:.3f} s, max {waits[-1]:.3f} s  (target p99 < 1 s)"
        )
    finally:
        drop_schema(args.url, schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
