"""Concurrent writers, each with its own `Ledger` (own connections, as separate processes).

Reservations against one stock item never oversell and lose or invent nothing; pings
ingested by two ledgers at once are stored once each. Both run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

import pytest

from ledger.application import IngestReport, Ledger
from ledger.errors import ConcurrencyConflict, InsufficientStock
from ledger.log import iter_log
from ledger.stock import StockItem
from ledger.telematics import PingInput, PingLog, ping_key
from support.clock import Clock
from support.factories import ADMIN

THREADS = 8
RECEIVED = 100
T = TypeVar("T")


@dataclass
class Reserver:
    """What one thread was told: the reservations it made and the quantity finally refused."""

    done: list[tuple[UUID, int]] = field(default_factory=list)
    refused_last: int | None = None


def run_together(
    workers: list[Callable[[], T]], warm_up: Callable[[int], object], timeout: float = 120
) -> list[T]:
    """Runs each worker on its own thread, all released at once once warmed up.

    Returns their results in order; re-raises the first error a worker raised.
    """
    barrier = threading.Barrier(len(workers))
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            warm_up(i)  # connections open before the start, so no thread gets a head start
            barrier.wait()
            results[i] = workers[i]()
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a worker is stuck"
    if errors:
        raise errors[0]
    return [results[i] for i in range(len(workers))]


def reserve_until_refused(ledger: Ledger, stock_id: UUID, seed: int) -> Reserver:
    """Reserves 1..7 at a time, each for a new order, until a reservation is refused."""
    rng = random.Random(seed)
    seen = Reserver()
    while True:
        quantity = rng.randint(1, 7)
        order_id = uuid.uuid4()
        try:
            ledger.reserve_stock(ADMIN, stock_id, order_id, quantity)
        except InsufficientStock:
            seen.refused_last = quantity
            return seen
        except ConcurrencyConflict:  # refused whole, nothing written: a client tries again
            continue
        seen.done.append((order_id, quantity))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reservations_never_oversell_nor_lose_writes_when_eight_ledgers_reserve_at_once(
    store_url: str, clock: Clock, seed: int
) -> None:
    setup = Ledger(store_url, clock=clock)
    warehouse = f"WH-{uuid.uuid4().hex[:8]}"
    setup.receive_stock(ADMIN, warehouse=warehouse, sku="SKU-HOT", quantity=RECEIVED)
    stock_id = StockItem.create_id(warehouse, "SKU-HOT", "")
    ledgers = [Ledger(store_url, clock=clock) for _ in range(THREADS)]  # one by one: tables exist
    try:
        threads = run_together(
            [
                lambda i=i: reserve_until_refused(ledgers[i], stock_id, seed * 100 + i)
                for i in range(THREADS)
            ],
            warm_up=lambda i: ledgers[i].stock_item(warehouse, "SKU-HOT"),
        )
        counted = Counter(dict(move for s in threads for move in s.done))
        events = [r.event for r in iter_log(setup, stream=stock_id)]
        positions = [r.position for r in iter_log(setup)]
        reloaded = setup.stock_item(warehouse, "SKU-HOT")
    finally:
        for ledger in ledgers:
            ledger.close()
        setup.close()

    received = [e for e in events if isinstance(e, StockItem.Received)]
    reserved = [e for e in events if isinstance(e, StockItem.Reserved)]
    recorded = Counter({e.order_id: e.quantity for e in reserved})
    # A sequential fold of what was recorded: receipts add, reservations commit.
    folded_on_hand = sum(e.quantity for e in received)
    folded_reserved = sum(e.quantity for e in reserved)
    total = sum(counted.values())
    assert 0 < total <= RECEIVED
    assert len(reserved) == sum(len(s.done) for s in threads), "lost or phantom writes"
    assert recorded == counted, "what the threads were told differs from what was recorded"
    assert folded_reserved == total
    assert reloaded.on_hand == folded_on_hand == RECEIVED
    assert sum(reloaded.reserved.values()) == folded_reserved
    assert reloaded.available == folded_on_hand - folded_reserved >= 0
    assert reloaded.version == 1 + len(received) + len(reserved) == len(events)
    # Writes refused for a conflict took no positions: the log has no gaps.
    assert positions == list(range(1, len(positions) + 1))
    # Each thread stopped on a refusal that was right when it came: stock only shrinks.
    assert all(s.refused_last is not None and reloaded.available < s.refused_last for s in threads)


def ping(device: str, seq: int | None, at: datetime) -> PingInput:
    return PingInput(device_id=device, seq=seq, occurred_at=at, lat=41.8, lon=-87.6)


def test_pings_are_stored_once_when_two_ledgers_ingest_overlapping_batches_at_once(
    store_url: str, clock: Clock
) -> None:
    rng = random.Random(20261120)
    late_evening = clock.now.replace(hour=23, minute=0)  # the pings cross midnight: two
    devices = ("DEV-A", "DEV-B", "DEV-C")  # device-days (streams) per device
    # Two feeds (say, a carrier's relay and the ELD vendor) that overlap: every ping is in
    # one or both, some without a sequence number, and each feed repeats a few of its own.
    universe = [
        ping(d, seq, late_evening + timedelta(minutes=seq)) for d in devices for seq in range(120)
    ]
    universe += [
        ping(d, None, late_evening + timedelta(seconds=30 + 120 * m))
        for d in devices
        for m in range(40)
    ]
    feeds: list[list[PingInput]] = [[], []]
    for p in universe:
        for feed in rng.choice([[0], [1], [0, 1], [0, 1]]):
            feeds[feed].append(p)
    for feed in feeds:
        feed.extend(rng.sample(feed, 25))
        rng.shuffle(feed)
    received_at = late_evening + timedelta(hours=3)
    first = Ledger(store_url, clock=clock)
    second = Ledger(store_url, clock=clock)
    ledgers = (first, second)

    def ingest(i: int) -> list[IngestReport]:
        reports = []
        for start in range(0, len(feeds[i]), 15):
            batch = feeds[i][start : start + 15]
            while True:
                try:
                    report = ledgers[i].ingest_pings(ADMIN, batch, received_at=received_at)
                except ConcurrencyConflict:  # refused whole, nothing written: send it again
                    continue
                reports.append(report)
                break
        return reports

    try:
        results = run_together(
            [lambda i=i: ingest(i) for i in range(2)],
            warm_up=lambda i: ledgers[i].position,
        )
        stored = [
            (r.event.device_id, fix.key)
            for r in iter_log(first)
            if isinstance(r.event, PingLog.PingsRecorded)
            for fix in r.event.pings
        ]
    finally:
        first.close()
        second.close()

    reports = [report for result in results for report in result]
    distinct = {(p.device_id, ping_key(p.seq, p.occurred_at)) for p in universe}
    keys = Counter(stored)
    assert all(report.refused == [] for report in reports)
    assert len(stored) == len(distinct)
    assert set(keys) == distinct and max(keys.values()) == 1, "a ping was stored twice"
    assert sum(report.accepted for report in reports) == len(distinct)
    assert sum(r.accepted + r.duplicates for r in reports) == sum(len(f) for f in feeds)
