"""Ingestion throughput on PostgreSQL against raw psycopg in the same run.

1. Pings through `Ledger.ingest_pings` (200 devices, batches of 1,000, 3 % out of order,
   1 % duplicates) vs a raw `executemany` of the same rows into a plain table.
   Target: ledger ≥ 0.5 × raw.
2. Single commands (place order: one event per save) through the use case vs the
   library's bare `save()` of the same kind of event. Target: ≥ 0.8 ×.

Usage: python benchmarks/ingest.py [--pings 200000] [--orders 2000] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from ledger.application import Caller, Ledger, OrderDraft
from ledger.events import Meta, Source
from ledger.orders import Order
from ledger.store import parse_url
from ledger.telematics import PingInput
from ledger.values import GeoPoint, OrderLine, TimeWindow

DEFAULT_URL = os.environ.get(
    "SHIPLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def make_pings(total: int, devices: int, seed: int) -> list[PingInput]:
    """Arrival-ordered pings: every device every 30 s, 3 % late, 1 % sent twice."""
    rng = random.Random(seed)
    per_device = total // devices
    live: list[tuple[float, PingInput]] = []
    for d in range(devices):
        lat, lon = 41.6 + rng.random() * 0.5, -88.0 + rng.random() * 0.6
        for s in range(per_device):
            at = START + timedelta(seconds=30 * s + d % 30)
            lat += rng.uniform(-0.001, 0.001)
            lon += rng.uniform(-0.001, 0.001)
            ping = PingInput(
                device_id=f"DEV-{d:04d}",
                seq=s,
                occurred_at=at,
                lat=lat,
                lon=lon,
                speed_kph=rng.uniform(0, 90),
                heading=rng.uniform(0, 359),
                odometer_km=1000 + s * 0.4,
            )
            arrival = (at - START).total_seconds()
            if rng.random() < 0.03:  # late by seconds to minutes
                arrival += rng.uniform(5, 600)
            live.append((arrival, ping))
            if rng.random() < 0.01:  # a re-send
                live.append((arrival + rng.uniform(1, 300), ping))
    live.sort(key=lambda pair: pair[0])
    return [ping for _, ping in live]


def bench_pings(url: str, pings: list[PingInput], batch: int) -> tuple[float, float, int]:
    ledger = Ledger(url, clock=lambda: START + timedelta(days=1))
    caller = Caller("bench", Source.GPS, "bench")
    accepted = duplicates = 0
    began = time.perf_counter()
    for i in range(0, len(pings), batch):
        report = ledger.ingest_pings(caller, pings[i : i + batch])
        accepted += report.accepted
        duplicates += report.duplicates
    ledger_seconds = time.perf_counter() - began
    ledger.close()

    config = parse_url(url)
    unique = list({(p.device_id, p.seq): p for p in pings}.values())
    with psycopg.connect(config.psycopg_conninfo()) as conn:
        conn.execute(f'SET search_path TO "{config.schema}"')
        conn.execute(
            "CREATE TABLE raw_pings (device_id text, seq int, occurred_at timestamptz, "
            "lat float8, lon float8, speed_kph float8, heading float8, odometer_km float8, "
            "source text)"
        )
        conn.commit()
        began = time.perf_counter()
        for i in range(0, len(unique), batch):
            rows = [
                (
                    p.device_id,
                    p.seq,
                    p.occurred_at,
                    p.lat,
                    p.lon,
                    p.speed_kph,
                    p.heading,
                    p.odometer_km,
                    p.source.value,
                )
                for p in unique[i : i + batch]
            ]
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO raw_pings VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows
                )
            conn.commit()
        raw_seconds = time.perf_counter() - began
    assert accepted == len(unique), (accepted, len(unique))
    print(f"  pings offered {len(pings)}, accepted {accepted}, duplicates {duplicates}")
    return ledger_seconds, raw_seconds, accepted


def draft(n: int) -> OrderDraft:
    window = TimeWindow(START, START + timedelta(hours=4))
    return OrderDraft(
        reference=f"PO-{n}",
        lines=(OrderLine(1, "SKU-1", 3, Decimal(3)),),
        ship_to_code="DOCK-1",
        ship_to_name="Dock",
        ship_to_address="1 Main St",
        ship_to=GeoPoint(41.9, -87.6),
        window=window,
    )


def bench_orders(url: str, count: int) -> tuple[float, float]:
    ledger = Ledger(url, clock=lambda: START)
    caller = Caller("bench", Source.API, "bench")
    ledger.open_account(caller, "ACME", "Acme")
    ledger.place_order(caller, "ACME", draft(-1))  # creates the ship-to location
    ship_to = ledger.order_by_reference("ACME", "PO--1").ship_to
    began = time.perf_counter()
    for n in range(count):
        ledger.place_order(caller, "ACME", draft(n))
    use_case = time.perf_counter() - began

    meta = Meta(occurred_at=START, actor="bench", source=Source.API, tenant="ACME")
    began = time.perf_counter()
    for n in range(count):
        d = draft(count + n)
        order = Order.place(
            meta,
            tenant="ACME",
            reference=d.reference,
            lines=d.lines,
            ship_to=ship_to,
            window=d.window,
        )
        ledger.save(order)
    bare = time.perf_counter() - began
    ledger.close()
    return use_case, bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--pings", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    base = parse_url(args.url)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{args.url}{'&' if '?' in args.url else '?'}schema={schema}"
    try:
        pings = make_pings(args.pings, args.devices, args.seed)
        print(f"ingest: {len(pings)} pings, {args.devices} devices, batches of {args.batch}")
        ledger_s, raw_s, rows = bench_pings(url, pings, args.batch)
        ratio = raw_s / ledger_s
        print(f"  ledger ingest_pings : {rows / ledger_s:10.0f} pings/s ({ledger_s:.1f} s)")
        print(f"  raw executemany     : {rows / raw_s:10.0f} rows/s  ({raw_s:.1f} s)")
        print(f"  ratio ledger/raw    : {ratio:.2f}  (target >= 0.50)")

        print(f"single commands: {args.orders} orders, one event per save")
        use_case_s, bare_s = bench_orders(url, args.orders)
        ratio2 = bare_s / use_case_s
        print(f"  place_order use case: {args.orders / use_case_s:10.0f} commands/s")
        print(f"  bare library save() : {args.orders / bare_s:10.0f} saves/s")
        print(f"  ratio use case/bare : {ratio2:.2f}  (target >= 0.80)")
    finally:
        with psycopg.connect(base.psycopg_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
