"""The core property: any arrival order of the same facts, duplicates included, gives the
same views, stop times and Hours-of-Service states as the facts in event order."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.drivers import DutyInput
from ledger.log import iter_log
from ledger.telematics import PingInput
from ledger.timeline import fold_driver
from projections.db import Database
from projections.migrations import migrate
from projections.reconciler import Reconciler
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN
from support.scenario import DAY, plan_day

SEMANTIC_QUERIES = {
    "stop_times": "SELECT sequence, kind, arrived_at, arrival_source, departed_at, "
    "departure_source, dwell_minutes, detention_minutes, on_time FROM stop_times "
    "ORDER BY sequence",
    "load_board": "SELECT reference, status, stops_done, next_stop_sequence, lateness_risk, "
    "open_exceptions, conflicts FROM load_board",
    "vehicle_positions": "SELECT device_id, lat, lon, fix_at, ping_id FROM vehicle_positions",
    "exceptions_queue": "SELECT kind, owner FROM exceptions_queue ORDER BY kind",
    "driver_hos": "SELECT driver_code, status, status_since, as_of, drive_remaining_minutes, "
    "window_remaining_minutes, until_break_minutes, cycle_remaining_minutes, violations, "
    "violation_kinds FROM driver_hos",
    "kpi_daily": "SELECT * FROM kpi_daily ORDER BY day, carrier_code, customer",
}


EXPECTED: dict[str, dict[str, object]] = {}


def run_day(
    url: str,
    batches: list[tuple[list[PingInput], list[DutyInput]]],
) -> dict[str, object]:
    clock = Clock(DAY + timedelta(hours=1))
    ledger = Ledger(url, clock=clock)
    db = Database(url)
    migrate(db)
    runner, reconciler = Runner(ledger, db), Reconciler(ledger)
    plan_day(ledger)
    clock.advance(days=1)
    for pings, duty in batches:
        if pings:
            ledger.ingest_pings(ADMIN, pings)
        if duty:
            ledger.ingest_duty(ADMIN, duty)
        reconciler.catch_up()
        runner.catch_up()
    reconciler.catch_up()
    runner.catch_up()
    result: dict[str, object] = {n: db.query(q) for n, q in SEMANTIC_QUERIES.items()}
    duty_records = list(iter_log(ledger))
    for hours in (2, 5, 9):
        state = fold_driver(duty_records, DAY + timedelta(hours=hours))
        result[f"hos+{hours}h"] = (
            state.status,
            state.drive_remaining,
            state.window_remaining,
            state.until_break,
            state.cycle_remaining,
            state.violations,
        )
    ledger.close()
    db.close()
    return result


def in_order(
    pings: list[PingInput], duty: list[DutyInput]
) -> list[tuple[list[PingInput], list[DutyInput]]]:
    ordered = sorted(pings, key=lambda p: p.occurred_at)
    return [(ordered[i : i + 120], duty if i == 0 else []) for i in range(0, len(ordered), 120)]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    batch=st.sampled_from([25, 90, 400]),
    duplicates=st.floats(0, 0.2),
    late_share=st.floats(0, 0.3),
)
def test_views_are_identical_when_facts_arrive_in_any_order_with_duplicates(
    store_factory: Callable[[], str],
    seed: int,
    batch: int,
    duplicates: float,
    late_share: float,
) -> None:
    from support.scenario import drive, duty_day

    pings, _, _ = drive()
    duty = duty_day()
    rng = random.Random(seed)
    arrival = list(pings)
    arrival += [p for p in pings if rng.random() < duplicates]
    rng.shuffle(arrival)
    late = [p for p in arrival if rng.random() < late_share]  # held back, sent at the end
    on_time = [p for p in arrival if p not in late]
    stream = on_time + late
    duty_shuffled = [*duty, duty[1]]  # a duplicate duty change too
    rng.shuffle(duty_shuffled)
    batches = [
        (stream[i : i + batch], duty_shuffled if i == batch else [])
        for i in range(0, len(stream), batch)
    ]
    if len(batches) < 2:
        batches.append(([], duty_shuffled))

    url = store_factory()
    backend = url.split(":", 1)[0]
    if backend not in EXPECTED:  # the in-order day, once per backend
        EXPECTED[backend] = run_day(store_factory(), in_order(pings, duty))
    expected = EXPECTED[backend]
    actual = run_day(url, batches)

    assert actual == expected
