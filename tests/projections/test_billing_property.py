"""Property: whatever happens after an invoice (late pings that move detention, accessorials
recorded or corrected, invoice runs at any time), the original and adjustment lines of a load
add up to the charges a fresh computation from all facts gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.log import iter_log
from ledger.values import Rates
from projections.billing import charges_at
from projections.db import Database
from projections.invoicing import invoice_run
from projections.migrations import migrate
from projections.reconciler import Reconciler
from projections.runner import Runner
from support.clock import Clock
from support.factories import ADMIN
from support.scenario import DAY, plan_day

RATES = Rates(fuel_surcharge_pct=Decimal("12.5"), accessorials=(("LIFTGATE", Decimal("45")),))

operation = st.one_of(
    st.tuples(st.just("release"), st.integers(0, 2)),
    st.tuples(st.just("accessorial"), st.sampled_from(["LIFTGATE", "INSIDE", "LUMPER"])),
    st.tuples(st.just("correct"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("run"), st.just(0)),
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    withheld=st.tuples(*(st.integers(0, 40) for _ in range(3))),
    operations=st.lists(operation, min_size=1, max_size=6),
)
def test_original_plus_adjustments_equal_a_fresh_computation(
    store_factory: Callable[[], str],
    withheld: tuple[int, int, int],
    operations: list[tuple[object, ...]],
) -> None:
    url = store_factory()
    clock = Clock(DAY + timedelta(hours=1))
    ledger = Ledger(url, clock=clock)
    db = Database(url)
    migrate(db)
    runner, reconciler = Runner(ledger, db), Reconciler(ledger)
    ledger.publish_rates(ADMIN, "RC", RATES, effective_from=DAY - timedelta(days=1))
    day = plan_day(ledger, rate_card="RC", planned_km=480.0)
    clock.advance(days=1)
    blocks = [
        [p for p in day.pings if a <= p.occurred_at < a + timedelta(minutes=w)]
        for a, w in zip(day.arrivals, withheld, strict=True)
    ]
    held = {id(p) for block in blocks for p in block}
    ledger.ingest_pings(ADMIN, [p for p in day.pings if id(p) not in held])

    def settle() -> None:
        reconciler.catch_up()
        runner.catch_up()

    settle()
    ledger.start_transit(ADMIN, day.load_id)
    ledger.deliver_load(ADMIN, day.load_id)
    ledger.receive_pod(
        ADMIN, day.stop_ids[-1], signer="R. Lee", document_hash="h", occurred_at=clock.now
    )
    ledger.mark_ready_to_invoice(ADMIN, day.load_id)
    accessorials: list[str] = []
    for op in operations:
        kind = op[0]
        if kind == "release" and blocks[int(op[1])]:  # type: ignore[call-overload]
            ledger.ingest_pings(ADMIN, blocks[int(op[1])])  # type: ignore[call-overload]
        elif kind == "accessorial":
            code = str(op[1])
            amount = Decimal("60.25") if code == "LUMPER" else None
            ledger.record_accessorial(ADMIN, day.load_id, code, amount=amount, receipt="r-1")
            accessorials.append(f"L-DAY-A{len(accessorials) + 1}")
        elif kind == "correct" and accessorials:
            target = accessorials[int(op[1]) % len(accessorials)]  # type: ignore[call-overload]
            ledger.correct_accessorial(
                ADMIN,
                day.load_id,
                target,
                quantity=Decimal(int(op[2])),  # type: ignore[call-overload]
                amount=None,
                reason="counted again",
            )
        elif kind == "run":
            invoice_run(ledger, db, ADMIN, on=clock.now.date())
        settle()

        fresh = sum(c.amount for c in charges_at(_streams(ledger), day.load_id, ledger.position)[0])
        shown = db.query(
            "SELECT amount FROM billing_lines WHERE valid_to IS NULL AND load_id = %s",
            (str(day.load_id),),
        )
        assert sum(Decimal(str(a)) for (a,) in shown) == fresh

    invoice_run(ledger, db, ADMIN, on=clock.now.date())
    settle()
    fresh = sum(c.amount for c in charges_at(_streams(ledger), day.load_id, ledger.position)[0])
    invoice = ledger.invoice(ledger.load(day.load_id).invoice_number or "")
    assert sum(x.amount for x in invoice.lines) == fresh
    assert db.query(
        "SELECT COUNT(*) FROM billing_lines WHERE valid_to IS NULL "
        "AND status IN ('pending', 'adjustment_pending')"
    ) == [(0,)]
    ledger.close()
    db.close()


def _streams(ledger: Ledger) -> Callable[[object], list[object]]:
    return lambda stream: list(iter_log(ledger, stream=stream))  # type: ignore[arg-type]
