"""StockItem against an independent model: any sequence of movements, valid or not, on both stores.

Each hypothesis example gets a warehouse of its own (so it starts from empty stock items) with
two lots of one sku: one without an expiry and one that expires a few days from the example's
start. Commands go through the real `Ledger` and the real store; after every step the stock
items reloaded from the store must equal a model kept here in plain ints and dicts, and every
refused command must have written nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.application import Ledger
from ledger.errors import (
    InsufficientStock,
    InvalidInput,
    InvalidTransition,
    LedgerError,
    NotAllocatable,
    NotFound,
    ReasonRequired,
)
from ledger.events import Meta
from ledger.log import iter_log
from ledger.stock import StockItem
from support.clock import Clock
from support.factories import ADMIN, order_draft, reference_data

SKU = "SKU-PROP"
PLAIN = ""  # the lot without an expiry
DATED = "LOT-EXP"  # the lot that expires during the example
LOTS = (PLAIN, DATED)
ORDERS = tuple(uuid.uuid5(uuid.NAMESPACE_URL, f"shipledger-test-order-{i}") for i in range(2))


def quantities(limit: int) -> st.SearchStrategy[int]:
    """Mostly quantities that fit `limit`, sometimes zero, negative or too large."""
    fitting = st.integers(1, max(limit, 1))
    invalid = st.sampled_from([0, -1, -7])
    too_large = st.integers(limit + 1, limit + 60)
    return st.integers(0, 9).flatmap(
        lambda k: fitting if k < 7 else invalid if k == 7 else too_large
    )


reasons = st.sampled_from(["cycle count", "found on the dock", "broken pallet", "", "   "])

Refusal = type[LedgerError] | None


@dataclass
class LotModel:
    """What one stock item should hold, computed without `StockItem`."""

    expiry: date | None
    exists: bool = False
    on_hand: int = 0
    quarantined: int = 0
    reserved: dict[UUID, int] = field(default_factory=dict)
    picked: dict[UUID, int] = field(default_factory=dict)
    staged: dict[UUID, int] = field(default_factory=dict)

    @property
    def available(self) -> int:
        committed = sum(self.reserved.values()) + sum(self.picked.values())
        return self.on_hand - committed - sum(self.staged.values()) - self.quarantined

    def expired_on(self, day: date) -> bool:
        return self.expiry is not None and day > self.expiry

    def state(self) -> tuple[object, ...]:
        return (
            self.expiry,
            self.on_hand,
            self.quarantined,
            _nonzero(self.reserved),
            _nonzero(self.picked),
            _nonzero(self.staged),
        )


@dataclass
class OrderModel:
    """An order placed and allocated against this example's warehouse."""

    status: str
    quantity: int
    allocations: list[tuple[str, int]] = field(default_factory=list)  # (lot, quantity)


def _nonzero(bucket: dict[UUID, int]) -> dict[UUID, int]:
    return {k: v for k, v in bucket.items() if v}


def _move(source: dict[UUID, int], target: dict[UUID, int] | None, key: UUID, n: int) -> None:
    source[key] -= n
    if target is not None:
        target[key] = target.get(key, 0) + n


def _item_state(item: StockItem) -> tuple[object, ...]:
    return (
        item.expiry,
        item.on_hand,
        item.quarantined,
        _nonzero(item.reserved),
        _nonzero(item.picked),
        _nonzero(item.staged),
    )


def stock_machine(ledger: Ledger, clock: Clock) -> type[RuleBasedStateMachine]:
    """A state machine class bound to one ledger (one store) and its clock."""
    start = clock.now

    class StockMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            clock.now = start  # examples must not depend on where the previous one left time
            self.warehouse = f"WH-{uuid.uuid4().hex[:12]}"
            self.lots = {PLAIN: LotModel(None), DATED: LotModel(None)}
            self.orders: dict[UUID, OrderModel] = {}

        # --- plumbing -----------------------------------------------------------------

        def stock_id(self, lot: str) -> UUID:
            return StockItem.create_id(self.warehouse, SKU, lot)

        def stored(self) -> dict[str, object]:
            """Every stream this example touches, as stored: version and state."""
            snapshot: dict[str, object] = {"head": ledger.position}
            for lot in LOTS:
                try:
                    item = ledger.stock_item(self.warehouse, SKU, lot)
                except NotFound:
                    snapshot[f"lot:{lot}"] = None
                else:
                    snapshot[f"lot:{lot}"] = (item.version, _item_state(item))
            for order_id in self.orders:
                order = ledger.order(order_id)
                snapshot[f"order:{order_id}"] = (order.version, order.status.value)
            return snapshot

        def attempt(self, expected: Refusal, command: Callable[[], Any]) -> bool:
            """Runs a command; a refusal must be the predicted one and must write nothing."""
            before = self.stored()
            try:
                result = command()
            except LedgerError as error:
                assert expected is not None, f"refused, the model expected success: {error!r}"
                assert isinstance(error, expected), f"expected {expected.__name__}: {error!r}"
                assert self.stored() == before, "a refused command changed the store"
                return False
            assert expected is None, f"accepted, the model expected {expected.__name__}"
            if isinstance(result, int):
                assert result == ledger.position >= before["head"]  # type: ignore[operator]
            return True

        def movement(
            self, lot: str, command: Callable[[StockItem, Meta], None]
        ) -> Callable[[], object]:
            """A movement the Ledger has no item-level use case for: load, command, save."""

            def run() -> object:
                item = ledger.stock_item(self.warehouse, SKU, lot)
                command(item, ledger.meta(ADMIN))
                return ledger.save(item)

            return run

        def draw_order(self, data: st.DataObject, bucket: dict[UUID, int] | None = None) -> UUID:
            """An order id, most often one that holds something in `bucket`."""
            everyone = [*ORDERS, *self.orders]  # in a stable order: ids of placed orders are random
            holding = [k for k in everyone if (bucket or {}).get(k, 0) > 0]
            choice = st.sampled_from(everyone)
            if holding:
                choice = st.one_of(st.sampled_from(holding), choice)
            return data.draw(choice, label="order")

        # --- rules --------------------------------------------------------------------

        @initialize(
            expires_in_days=st.integers(0, 3),
            opening=st.tuples(st.integers(0, 60), st.integers(0, 60)),
        )
        def open_lots(self, expires_in_days: int, opening: tuple[int, int]) -> None:
            """The dated lot's expiry; most examples start with some stock in both lots."""
            self.lots[DATED].expiry = clock.now.date() + timedelta(days=expires_in_days)
            for lot, quantity in zip(LOTS, opening, strict=True):
                if quantity > 5:
                    self.do_receive(lot, quantity, wrong_expiry=False)

        @rule(lot=st.sampled_from(LOTS), data=st.data(), wrong_expiry=st.booleans())
        def receive(self, lot: str, data: st.DataObject, wrong_expiry: bool) -> None:
            self.do_receive(lot, data.draw(quantities(40), label="quantity"), wrong_expiry)

        def do_receive(self, lot: str, quantity: int, wrong_expiry: bool) -> None:
            model = self.lots[lot]
            expiry = model.expiry
            if wrong_expiry and model.exists:
                expiry = (model.expiry or clock.now.date()) + timedelta(days=30)
            expected: Refusal = None
            if expiry != model.expiry or quantity <= 0:
                expected = InvalidInput
            command = lambda: ledger.receive_stock(  # noqa: E731
                ADMIN, warehouse=self.warehouse, sku=SKU, lot=lot, quantity=quantity, expiry=expiry
            )
            if self.attempt(expected, command):
                model.exists = True
                model.on_hand += quantity

        @rule(lot=st.sampled_from(LOTS), data=st.data())
        def reserve(self, lot: str, data: st.DataObject) -> None:
            model = self.lots[lot]
            order = self.draw_order(data)
            quantity = data.draw(quantities(model.available), label="quantity")
            expected: Refusal = None
            if not model.exists:
                expected = NotFound
            elif quantity <= 0:
                expected = InvalidInput
            elif model.expired_on(clock.now.date()):
                expected = NotAllocatable
            elif quantity > model.available:
                expected = InsufficientStock
            stock_id = self.stock_id(lot)
            if self.attempt(
                expected, lambda: ledger.reserve_stock(ADMIN, stock_id, order, quantity)
            ):
                model.reserved[order] = model.reserved.get(order, 0) + quantity

        @precondition(lambda self: self.lots[DATED].exists)
        @rule(data=st.data())
        def reserve_expired_lot(self, data: st.DataObject) -> None:
            model = self.lots[DATED]
            while not model.expired_on(clock.now.date()):
                clock.advance(hours=6)
            order = self.draw_order(data)
            quantity = data.draw(st.integers(1, max(model.available, 1)), label="quantity")
            stock_id = self.stock_id(DATED)
            self.attempt(
                NotAllocatable, lambda: ledger.reserve_stock(ADMIN, stock_id, order, quantity)
            )

        def draw_take(self, data: st.DataObject, bucket: str) -> tuple[str, UUID, int, Refusal]:
            """A lot, an order and a quantity to move out of a bucket, and the model's verdict."""
            holding = [lot for lot in LOTS if any(getattr(self.lots[lot], bucket).values())]
            lots = st.sampled_from(LOTS)
            lot = data.draw(st.one_of(st.sampled_from(holding), lots) if holding else lots)
            held: dict[UUID, int] = getattr(self.lots[lot], bucket)
            order = self.draw_order(data, held)
            quantity = data.draw(quantities(held.get(order, 0)), label="quantity")
            expected: Refusal = None
            if not self.lots[lot].exists:
                expected = NotFound
            elif quantity <= 0:
                expected = InvalidInput
            elif quantity > held.get(order, 0):
                expected = InsufficientStock
            return lot, order, quantity, expected

        def holds(self, bucket: str) -> bool:
            return any(any(getattr(m, bucket).values()) for m in self.lots.values())

        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            lot, order, quantity, expected = self.draw_take(data, "reserved")
            model, stock_id = self.lots[lot], self.stock_id(lot)
            if self.attempt(
                expected, lambda: ledger.release_reservation(ADMIN, stock_id, order, quantity)
            ):
                _move(model.reserved, None, order, quantity)

        @precondition(lambda self: self.holds("reserved"))
        @rule(data=st.data())
        def pick(self, data: st.DataObject) -> None:
            lot, order, quantity, expected = self.draw_take(data, "reserved")
            model = self.lots[lot]
            if self.attempt(
                expected, self.movement(lot, lambda item, meta: item.pick(meta, order, quantity))
            ):
                _move(model.reserved, model.picked, order, quantity)

        @precondition(lambda self: self.holds("picked"))
        @rule(data=st.data())
        def stage(self, data: st.DataObject) -> None:
            lot, order, quantity, expected = self.draw_take(data, "picked")
            model = self.lots[lot]
            if self.attempt(
                expected, self.movement(lot, lambda item, meta: item.stage(meta, order, quantity))
            ):
                _move(model.picked, model.staged, order, quantity)

        @precondition(lambda self: self.holds("staged"))
        @rule(data=st.data())
        def ship(self, data: st.DataObject) -> None:
            lot, order, quantity, expected = self.draw_take(data, "staged")
            model = self.lots[lot]
            if self.attempt(
                expected, self.movement(lot, lambda item, meta: item.ship(meta, order, quantity))
            ):
                _move(model.staged, None, order, quantity)
                model.on_hand -= quantity

        @rule(lot=st.sampled_from(LOTS), data=st.data(), reason=reasons)
        def adjust(self, lot: str, data: st.DataObject, reason: str) -> None:
            model = self.lots[lot]
            shrink = quantities(model.available).map(lambda n: -n)
            delta = data.draw(st.one_of(st.integers(1, 30), shrink), label="delta")
            expected: Refusal = None
            if not model.exists:
                expected = NotFound
            elif not reason.strip():
                expected = ReasonRequired
            elif delta == 0:
                expected = InvalidInput
            elif delta < 0 and -delta > model.available:
                expected = InsufficientStock
            stock_id = self.stock_id(lot)
            if self.attempt(expected, lambda: ledger.adjust_stock(ADMIN, stock_id, delta, reason)):
                model.on_hand += delta

        @rule(lot=st.sampled_from(LOTS), data=st.data(), reason=reasons)
        def quarantine(self, lot: str, data: st.DataObject, reason: str) -> None:
            model = self.lots[lot]
            quantity = data.draw(quantities(model.available), label="quantity")
            expected: Refusal = None
            if not model.exists:
                expected = NotFound
            elif not reason.strip():
                expected = ReasonRequired
            elif quantity <= 0:
                expected = InvalidInput
            elif quantity > model.available:
                expected = InsufficientStock
            stock_id = self.stock_id(lot)
            if self.attempt(
                expected, lambda: ledger.quarantine_stock(ADMIN, stock_id, quantity, reason)
            ):
                model.quarantined += quantity

        @rule(lot=st.sampled_from(LOTS), data=st.data())
        def release_quarantine(self, lot: str, data: st.DataObject) -> None:
            model = self.lots[lot]
            quantity = data.draw(quantities(model.quarantined), label="quantity")
            expected: Refusal = None
            if not model.exists:
                expected = NotFound
            elif quantity <= 0:
                expected = InvalidInput
            elif quantity > model.quarantined:
                expected = InsufficientStock
            stock_id = self.stock_id(lot)
            if self.attempt(expected, lambda: ledger.release_quarantine(ADMIN, stock_id, quantity)):
                model.quarantined -= quantity

        @rule(
            lot=st.sampled_from(LOTS), data=st.data(), from_quarantine=st.booleans(), reason=reasons
        )
        def damage(self, lot: str, data: st.DataObject, from_quarantine: bool, reason: str) -> None:
            model = self.lots[lot]
            limit = model.quarantined if from_quarantine else model.available
            quantity = data.draw(quantities(limit), label="quantity")
            expected: Refusal = None
            if not model.exists:
                expected = NotFound
            elif not reason.strip():
                expected = ReasonRequired
            elif quantity <= 0:
                expected = InvalidInput
            elif quantity > limit:
                expected = InsufficientStock
            stock_id = self.stock_id(lot)
            if self.attempt(
                expected,
                lambda: ledger.record_damage(
                    ADMIN, stock_id, quantity, reason, from_quarantine=from_quarantine
                ),
            ):
                model.on_hand -= quantity
                if from_quarantine:
                    model.quarantined -= quantity

        @rule(days=st.integers(0, 2), hours=st.integers(0, 23))
        def time_passes(self, days: int, hours: int) -> None:
            clock.advance(days=days, hours=hours)

        # --- the order path: allocation (first-expiring lot first), pick, pack ---------

        def allocation_plan(self, quantity: int) -> list[tuple[str, int]] | None:
            """Which lots an allocation takes from; None when it must be backordered."""
            today = clock.now.date()
            usable = sorted(
                (
                    lot
                    for lot, m in self.lots.items()
                    if m.exists and not m.expired_on(today) and m.available > 0
                ),
                key=lambda lot: (self.lots[lot].expiry or date.max, lot),
            )
            if sum(self.lots[lot].available for lot in usable) < quantity:
                return None
            plan, need = [], quantity
            for lot in usable:
                take = min(need, self.lots[lot].available)
                plan.append((lot, take))
                need -= take
                if need == 0:
                    break
            return plan

        def allocate(self, order_id: UUID) -> None:
            order = self.orders[order_id]
            plan = self.allocation_plan(order.quantity)
            self.attempt(None, lambda: ledger.allocate_order(ADMIN, order_id, self.warehouse))
            if plan is None:
                order.status = "backordered"
                return
            for lot, n in plan:
                reserved = self.lots[lot].reserved
                reserved[order_id] = reserved.get(order_id, 0) + n
            order.status, order.allocations = "allocated", plan

        @rule(quantity=st.integers(1, 15))
        def allocate_new_order(self, quantity: int) -> None:
            reference = f"SO-{uuid.uuid4().hex[:12]}"
            ledger.place_order(ADMIN, "ACME", order_draft(reference, clock.now, (SKU, quantity)))
            order_id = ledger.order_by_reference("ACME", reference).id
            self.orders[order_id] = OrderModel("placed", quantity)
            self.allocate(order_id)

        @precondition(lambda self: any(o.status == "backordered" for o in self.orders.values()))
        @rule(data=st.data())
        def allocate_backordered_order(self, data: st.DataObject) -> None:
            waiting = [k for k, o in self.orders.items() if o.status == "backordered"]
            self.allocate(data.draw(st.sampled_from(waiting), label="order"))

        def draw_placed_order(self, data: st.DataObject, status: str) -> UUID:
            """A placed order, most often one in `status`."""
            ready = [k for k, o in self.orders.items() if o.status == status]
            choice = st.sampled_from(list(self.orders))
            if ready:
                choice = st.one_of(st.sampled_from(ready), choice)
            return data.draw(choice, label="order")

        @precondition(lambda self: bool(self.orders))
        @rule(data=st.data())
        def pick_order(self, data: st.DataObject) -> None:
            order_id = self.draw_placed_order(data, "allocated")
            order = self.orders[order_id]
            expected: Refusal = None
            if order.status != "allocated":
                expected = InvalidTransition
            elif any(self.lots[lot].reserved.get(order_id, 0) < n for lot, n in order.allocations):
                expected = InsufficientStock
            if self.attempt(expected, lambda: ledger.pick_order(ADMIN, order_id)):
                for lot, n in order.allocations:
                    _move(self.lots[lot].reserved, self.lots[lot].picked, order_id, n)
                order.status = "picked"

        @precondition(lambda self: bool(self.orders))
        @rule(data=st.data())
        def pack_order(self, data: st.DataObject) -> None:
            order_id = self.draw_placed_order(data, "picked")
            order = self.orders[order_id]
            expected: Refusal = None
            if order.status != "picked":
                expected = InvalidTransition
            elif any(self.lots[lot].picked.get(order_id, 0) < n for lot, n in order.allocations):
                expected = InsufficientStock
            if self.attempt(expected, lambda: ledger.pack_order(ADMIN, order_id)):
                for lot, n in order.allocations:
                    _move(self.lots[lot].picked, self.lots[lot].staged, order_id, n)
                order.status = "packed"

        @precondition(lambda self: bool(self.orders))
        @rule(data=st.data())
        def cancel_order(self, data: st.DataObject) -> None:
            """Cancelling gives back what the order holds reserved, picked or staged."""
            order_id = self.draw_placed_order(data, "allocated")
            order = self.orders[order_id]
            expected: Refusal = None
            if order.status not in ("placed", "allocated", "backordered", "picked", "packed"):
                expected = InvalidTransition
            run = lambda: ledger.cancel_order(ADMIN, order_id, "customer cancelled")  # noqa: E731
            if self.attempt(expected, run):
                for lot, _ in order.allocations:
                    self.lots[lot].reserved.pop(order_id, None)
                    self.lots[lot].picked.pop(order_id, None)
                    self.lots[lot].staged.pop(order_id, None)
                order.status = "cancelled"

        # --- invariants -----------------------------------------------------------------

        @invariant()
        def stored_stock_equals_the_model(self) -> None:
            for lot, model in self.lots.items():
                try:
                    item = ledger.stock_item(self.warehouse, SKU, lot)
                except NotFound:
                    assert not model.exists, f"lot {lot!r} vanished from the store"
                    continue
                assert model.exists, f"lot {lot!r} exists though every receipt was refused"
                assert _item_state(item) == model.state()
                assert item.available == model.available >= 0
                assert item.on_hand >= 0 and item.quarantined >= 0
                for bucket in (item.reserved, item.picked, item.staged):
                    assert all(n >= 0 for n in bucket.values())

        @invariant()
        def orders_have_the_modelled_status(self) -> None:
            for order_id, model in self.orders.items():
                assert ledger.order(order_id).status.value == model.status

        def teardown(self) -> None:
            # The log itself: folding the stored movements gives the model's quantities, and
            # no reservation of the dated lot was recorded after its expiry.
            for lot, model in self.lots.items():
                if not model.exists:
                    continue
                on_hand = reserved = 0
                for record in iter_log(ledger, stream=self.stock_id(lot)):
                    event = record.event
                    if isinstance(event, StockItem.Received):
                        on_hand += event.quantity
                    elif isinstance(event, StockItem.Adjusted):
                        on_hand += event.delta
                    elif isinstance(event, StockItem.Shipped | StockItem.Damaged):
                        on_hand -= event.quantity
                    elif isinstance(event, StockItem.Reserved):
                        reserved += event.quantity
                        if model.expiry is not None:
                            assert event.meta.occurred_at.date() <= model.expiry
                    elif isinstance(event, StockItem.ReservationReleased | StockItem.Picked):
                        reserved -= event.quantity
                assert on_hand == model.on_hand
                assert reserved == sum(model.reserved.values())

    return StockMachine


def test_stock_matches_an_independent_model_when_movements_run_in_any_order(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    machine = stock_machine(ledger, clock)

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


@pytest.mark.parametrize("packed", [False, True], ids=["picked", "packed"])
def test_stock_is_available_again_when_a_picked_order_is_cancelled(
    ledger: Ledger, clock: Clock, packed: bool
) -> None:
    reference_data(ledger)
    ledger.receive_stock(ADMIN, warehouse="WH-1", sku=SKU, quantity=10)
    ledger.place_order(ADMIN, "ACME", order_draft("SO-1", clock.now, (SKU, 4)))
    order_id = ledger.order_by_reference("ACME", "SO-1").id
    ledger.allocate_order(ADMIN, order_id, "WH-1")
    ledger.pick_order(ADMIN, order_id)
    if packed:
        ledger.pack_order(ADMIN, order_id)

    ledger.cancel_order(ADMIN, order_id, "customer cancelled")

    item = ledger.stock_item("WH-1", SKU)
    assert ledger.order(order_id).status.value == "cancelled"
    assert (item.reserved, item.picked, item.staged) == ({}, {}, {})
    assert item.available == item.on_hand == 10
