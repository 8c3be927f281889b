"""Verification speed on PostgreSQL against a same-run raw baseline (PRODUCT §7, §11).

Builds a log of N events (default 1,000,000: ping uploads from 250 devices through the real
ledger, plus reference data), links it into the hash chain, then times, alternately and
`--rounds` times each:

- raw: a page-by-page read of the same rows (same query shape, page size and binary cursor)
  plus SHA-256 of each row's bytes — the floor any verification must pay;
- verify: `projections.audit.verify` — the same read, the chain's rows, canonical encoding,
  the linked hash and the comparison.

Target: verify ≥ 0.5 × the raw rate. Also prints the process' peak RSS before the timed rounds
and after them (verification reads in pages: it should not raise the peak).

Usage: python benchmarks/verify.py [--events 1000000] [--rounds 3] [--url …] [--keep]
"""

from __future__ import annotations

import os
import sys

# `benchmarks/projections.py` would shadow the package of that name: run as a script, this
# folder is the first entry of the path; take it off before importing the project.
sys.path.remove(os.path.dirname(os.path.realpath(__file__)))

import argparse
import hashlib
import random
import resource
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from ledger.application import Caller, Ledger
from ledger.events import Source
from ledger.store import parse_url
from ledger.telematics import PingInput
from projections.audit import verify
from projections.chain import Chainer, EventsTable
from projections.db import Database
from projections.migrations import migrate

DEFAULT_URL = os.environ.get(
    "SHIPLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ADMIN = Caller("bench", Source.API, "bench")
START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
PAGE = 2000


def fill(ledger: Ledger, events: int, devices: int = 250) -> None:
    """Uploads of two fixes per device per call: one event per device and call."""
    rng = random.Random(7)
    where = {
        d: [41.85 + rng.uniform(-0.3, 0.3), -87.65 + rng.uniform(-0.3, 0.3)] for d in range(devices)
    }
    minute = 0
    while ledger.position < events:
        batch = []
        for d in range(devices):
            for half in (0, 1):
                where[d][0] += rng.uniform(-0.002, 0.002)
                where[d][1] += rng.uniform(-0.002, 0.002)
                at = START + timedelta(minutes=minute, seconds=30 * half)
                batch.append(
                    PingInput(
                        f"DEV-{d}", 2 * minute + half, at, where[d][0], where[d][1], 50.0, 90.0
                    )
                )
        ledger.ingest_pings(ADMIN, batch)
        minute += 1
        if minute % 400 == 0:
            print(f"    … {ledger.position:,} events", flush=True)


def raw(events: EventsTable) -> tuple[int, float]:
    """Reads every row in pages and hashes its bytes: (rows, seconds)."""
    began = time.perf_counter()
    count = 0
    after: int | None = None
    while True:
        page = events.page(after, PAGE)
        for _position, originator_id, _version, topic, state in page:
            hashlib.sha256(originator_id + topic.encode() + state).digest()
        count += len(page)
        if len(page) < PAGE:
            return count, time.perf_counter() - began
        after = page[-1][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (a schema is made)")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    conninfo = parse_url(args.url).psycopg_conninfo()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{args.url}{'&' if '?' in args.url else '?'}schema={schema}"
    try:
        ledger = Ledger(url, clock=lambda: START + timedelta(days=30))
        db = Database(url)
        migrate(db)
        print(f"building a log of {args.events:,} events in schema {schema} …", flush=True)
        began = time.perf_counter()
        fill(ledger, args.events)
        built = time.perf_counter() - began
        head = ledger.position
        print(f"  built {head:,} events in {built:.1f} s ({head / built:,.0f} events/s)")
        began = time.perf_counter()
        linked = Chainer(ledger, db).catch_up()
        chained = time.perf_counter() - began
        print(f"  chained {linked:,} events in {chained:.1f} s ({linked / chained:,.0f} events/s)")
        with db.transaction() as cursor:
            cursor.execute("ANALYZE ledger_chain")

        events = EventsTable(ledger, db)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        raw_rates, verify_rates = [], []
        for round_ in range(1, args.rounds + 1):
            rows, seconds = raw(events)
            raw_rates.append(rows / seconds)
            began = time.perf_counter()
            result = verify(ledger, db, page_size=PAGE)
            took = time.perf_counter() - began
            assert result.ok and result.checked == rows == head, result
            verify_rates.append(result.checked / took)
            print(
                f"  round {round_}: raw {rows:,} rows in {seconds:.2f} s "
                f"({raw_rates[-1]:,.0f} rows/s); verify {result.checked:,} in {took:.2f} s "
                f"({verify_rates[-1]:,.0f} rows/s)",
                flush=True,
            )
        best_raw, best_verify = max(raw_rates), max(verify_rates)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print()
        print(f"events verified:         {head:,}")
        print(f"raw read + SHA-256:      {best_raw:,.0f} rows/s (best of {args.rounds})")
        print(f"verify:                  {best_verify:,.0f} rows/s (best of {args.rounds})")
        print(f"ratio verify / raw:      {best_verify / best_raw:.2f}  (target ≥ 0.50)")
        print(f"peak RSS:                {before:,.0f} MB built and chained, {peak:,.0f} MB after")
        db.close()
        ledger.close()
    finally:
        if not args.keep:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
