"""A load and its stops against an independent model of PRODUCT §3, on both stores.

Each hypothesis example plans a fresh load (pickup at WH-1, delivery at CUST-1) and drives
it with any sequence of dispatcher commands, world facts and operator overrides, many of
them invalid in the state they arrive in. After every step the load and its stops reloaded
from the store must match the model: its status (by a transition table written here, not
taken from `Load`), TONU, open exceptions, and every fact recorded on each stop. Every
refused command must have written nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

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
    InvalidInput,
    InvalidTransition,
    LedgerError,
    NotFound,
    ReasonRequired,
)
from ledger.events import Source
from ledger.loads import ExceptionKind, Load
from ledger.stops import FactDetail, StopFact
from support.clock import Clock
from support.factories import ADMIN, OPERATOR, plan_simple_load, reference_data

Refusal = type[LedgerError] | None

BEFORE_DELIVERY = frozenset(
    {"planned", "tendered", "accepted", "rejected", "expired", "dispatched", "in_transit"}
)
#: command → (statuses it is allowed from, status it leads to); PRODUCT §3, written out.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "tender": (frozenset({"planned", "rejected", "expired"}), "tendered"),
    "accept": (frozenset({"tendered"}), "accepted"),
    "reject": (frozenset({"tendered"}), "rejected"),
    "expire": (frozenset({"tendered"}), "expired"),
    "dispatch": (frozenset({"accepted"}), "dispatched"),
    "start_transit": (frozenset({"dispatched"}), "in_transit"),
    "deliver": (frozenset({"in_transit"}), "delivered"),
    "receive_pod": (frozenset({"delivered"}), "pod_received"),
    "ready_to_invoice": (frozenset({"pod_received"}), "ready_to_invoice"),
    "invoice": (frozenset({"ready_to_invoice"}), "invoiced"),
    "cancel": (BEFORE_DELIVERY, "cancelled"),
}
AFTER_DISPATCH = frozenset({"dispatched", "in_transit"})

reasons = st.sampled_from(["carrier has no capacity", "customer called", "", "   "])
world_sources = st.sampled_from(
    [Source.GPS, Source.EDI, Source.ELD, Source.DRIVER_APP, Source.OPERATOR]
)
world_facts = st.sampled_from([f for f in StopFact if f is not StopFact.POD_RECEIVED])
#: Facts arrive late (hours or days back-dated), on time, or a little early.
offsets = st.integers(-48 * 60, 90).map(lambda minutes: timedelta(minutes=minutes))


@dataclass(frozen=True)
class FactModel:
    fact: StopFact
    source: Source
    occurred_at: datetime
    reason: str | None
    supersedes: str | None


@dataclass(frozen=True)
class ExceptionModel:
    kind: ExceptionKind
    stop_id: UUID | None
    owner: str


def _stored_load(load: Load) -> tuple[object, ...]:
    exceptions = {k: (e.kind, e.stop_id, e.owner) for k, e in load.exceptions.items()}
    return (
        load.version,
        load.status.value,
        load.tonu,
        load.carrier_code,
        load.driver_code,
        load.vehicle_code,
        load.invoice_number,
        exceptions,
    )


def load_machine(ledger: Ledger, clock: Clock) -> type[RuleBasedStateMachine]:
    """A state machine class bound to one ledger (one store) and its clock."""
    start = clock.now

    class LoadMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            clock.now = start  # examples must not depend on where the previous one left time
            self.reference = f"LD-{uuid.uuid4().hex[:12]}"
            self.load_id = plan_simple_load(ledger, self.reference, start + timedelta(hours=2))
            self.stop_ids = ledger.load(self.load_id).stop_ids
            self.status = "planned"
            self.tonu = False
            self.load_events = 1  # Planned
            self.carrier: str | None = None
            self.driver: str | None = None
            self.vehicle: str | None = None
            self.invoice_number: str | None = None
            self.raised = 0
            self.open: dict[str, ExceptionModel] = {}
            self.resolved: list[str] = []
            self.facts: dict[UUID, list[FactModel]] = {s: [] for s in self.stop_ids}

        # --- plumbing -----------------------------------------------------------------

        def stored(self) -> dict[str, object]:
            """The load's and the stops' streams as stored, and the head of the log."""
            snapshot: dict[str, object] = {
                "head": ledger.position,
                "load": _stored_load(ledger.load(self.load_id)),
            }
            for stop_id in self.stop_ids:
                stop = ledger.stop(stop_id)
                snapshot[str(stop_id)] = (stop.version, len(stop.facts), stop.appointment)
            return snapshot

        def attempt(self, expected: Refusal, command: Callable[[], Any]) -> bool:
            """Runs a command; a refusal must be the predicted one and must write nothing."""
            before = self.stored()
            try:
                position = command()
            except LedgerError as error:
                assert expected is not None, f"refused, the model expected success: {error!r}"
                assert isinstance(error, expected), f"expected {expected.__name__}: {error!r}"
                assert self.stored() == before, "a refused command changed the store"
                return False
            assert expected is None, f"accepted, the model expected {expected.__name__}"
            assert position == ledger.position > before["head"]  # type: ignore[operator]
            return True

        def transition(self, command: str, run: Callable[[], Any], refusal: Refusal = None) -> None:
            """A lifecycle command: refused by the table unless an earlier check refuses it."""
            allowed, target = TRANSITIONS[command]
            if refusal is None and self.status not in allowed:
                refusal = InvalidTransition
            if self.attempt(refusal, run):
                self.status = target
                self.load_events += 1

        def draw_stop(self, data: st.DataObject) -> UUID:
            return data.draw(st.sampled_from(self.stop_ids), label="stop")

        def occurred_at(self, data: st.DataObject) -> datetime:
            return clock.now + data.draw(offsets, label="offset")

        def fact_ids(self, stop_id: UUID) -> list[str]:
            # A fact's id is its stop and the stop's version after it (Scheduled is version 1).
            return [f"{stop_id}:{version}" for version in range(2, len(self.facts[stop_id]) + 2)]

        def draw_supersedes(self, data: st.DataObject, stop_id: UUID) -> str | None:
            ids = [*self.fact_ids(stop_id), f"{stop_id}:999", f"{uuid.uuid4()}:2"]
            return data.draw(st.one_of(st.none(), st.sampled_from(ids)), label="supersedes")

        def record_fact(self, stop_id: UUID, fact: FactModel, refusal: Refusal) -> None:
            if fact.supersedes is not None and fact.supersedes not in self.fact_ids(stop_id):
                refusal = refusal or InvalidInput
            if self.attempt(refusal, lambda: self.send_fact(stop_id, fact)):
                self.facts[stop_id].append(fact)

        def send_fact(self, stop_id: UUID, fact: FactModel) -> int:
            if fact.source is Source.OPERATOR and fact.supersedes is not None:
                return ledger.override_stop_fact(
                    OPERATOR,
                    stop_id,
                    fact.fact,
                    occurred_at=fact.occurred_at,
                    reason=fact.reason or "",
                    supersedes=fact.supersedes,
                )
            return ledger.record_stop_fact(
                ADMIN,
                stop_id,
                fact.fact,
                occurred_at=fact.occurred_at,
                reason=fact.reason,
                source=fact.source,
                detail=FactDetail(supersedes=fact.supersedes),
            )

        # --- the lifecycle: one method per command, arguments good or bad --------------

        def tender(self, carrier: str) -> None:
            refusal: Refusal = NotFound if carrier == "NOPE" else None
            if self.status in TRANSITIONS["tender"][0] and refusal is None:
                self.carrier = carrier
            run = lambda: ledger.tender_load(ADMIN, self.load_id, carrier)  # noqa: E731
            self.transition("tender", run, refusal)

        def accept(self) -> None:
            self.transition("accept", lambda: ledger.accept_tender(ADMIN, self.load_id))

        def reject(self, reason: str) -> None:
            refusal: Refusal = None
            if self.status in TRANSITIONS["reject"][0] and not reason.strip():
                refusal = ReasonRequired
            run = lambda: ledger.reject_tender(ADMIN, self.load_id, reason)  # noqa: E731
            self.transition("reject", run, refusal)

        def expire(self) -> None:
            self.transition("expire", lambda: ledger.expire_tender(ADMIN, self.load_id))

        def dispatch(self, driver: str, vehicle: str) -> None:
            refusal: Refusal = NotFound if "404" in driver + vehicle else None
            if self.status in TRANSITIONS["dispatch"][0] and refusal is None:
                self.driver, self.vehicle = driver, vehicle
            run = lambda: ledger.dispatch_load(ADMIN, self.load_id, driver, vehicle)  # noqa: E731
            self.transition("dispatch", run, refusal)

        def start_transit(self) -> None:
            self.transition("start_transit", lambda: ledger.start_transit(ADMIN, self.load_id))

        def deliver(self) -> None:
            self.transition("deliver", lambda: ledger.deliver_load(ADMIN, self.load_id))

        def receive_pod(self, data: st.DataObject, signer: str) -> None:
            """A POD is a fact on the stop; on a delivered load it also moves the load on."""
            stop_id = self.draw_stop(data)
            at = self.occurred_at(data)
            fact = FactModel(StopFact.POD_RECEIVED, ADMIN.source, at, None, None)
            refusal: Refusal = None if signer else InvalidInput
            run = lambda: ledger.receive_pod(  # noqa: E731
                ADMIN, stop_id, signer=signer, document_hash="sha256:abc", occurred_at=at
            )
            if self.attempt(refusal, run):
                self.facts[stop_id].append(fact)
                if self.status in TRANSITIONS["receive_pod"][0]:
                    self.status = TRANSITIONS["receive_pod"][1]
                    self.load_events += 1

        def mark_ready_to_invoice(self) -> None:
            run = lambda: ledger.mark_ready_to_invoice(ADMIN, self.load_id)  # noqa: E731
            self.transition("ready_to_invoice", run)

        def mark_invoiced(self) -> None:
            number = f"INV-{self.reference}"
            if self.status in TRANSITIONS["invoice"][0]:
                self.invoice_number = number
            run = lambda: ledger.mark_invoiced(ADMIN, self.load_id, number)  # noqa: E731
            self.transition("invoice", run)

        def cancel(self, reason: str) -> None:
            refusal: Refusal = None
            if self.status in BEFORE_DELIVERY and not reason.strip():
                refusal = ReasonRequired
            tonu = self.status in AFTER_DISPATCH
            was = self.status
            run = lambda: ledger.cancel_load(ADMIN, self.load_id, reason)  # noqa: E731
            self.transition("cancel", run, refusal)
            if self.status == "cancelled" and was != "cancelled":
                self.tonu = tonu

        @rule(data=st.data(), command=st.sampled_from(list(TRANSITIONS)))
        def any_command(self, data: st.DataObject, command: str) -> None:
            """Any lifecycle command with any arguments; most are refused where the load is."""
            draw = data.draw
            commands: dict[str, Callable[[], None]] = {
                "tender": lambda: self.tender(draw(st.sampled_from(["FAST", "FAST", "NOPE"]))),
                "accept": self.accept,
                "reject": lambda: self.reject(draw(reasons, label="reason")),
                "expire": self.expire,
                "dispatch": lambda: self.dispatch(
                    draw(st.sampled_from(["DRV-1", "DRV-1", "DRV-404"]), label="driver"),
                    draw(st.sampled_from(["TRK-1", "TRK-1", "TRK-404"]), label="vehicle"),
                ),
                "start_transit": self.start_transit,
                "deliver": self.deliver,
                "receive_pod": lambda: self.receive_pod(
                    data, draw(st.sampled_from(["J. Doe", "J. Doe", ""]), label="signer")
                ),
                "ready_to_invoice": self.mark_ready_to_invoice,
                "invoice": self.mark_invoiced,
                "cancel": lambda: self.cancel(draw(reasons, label="reason")),
            }
            commands[command]()

        @initialize(data=st.data(), steps=st.integers(0, 10))
        def somewhere_in_the_lifecycle(self, data: st.DataObject, steps: int) -> None:
            """Examples start anywhere on the lifecycle's path, not only at planned."""
            self.progress(data, steps)

        @precondition(lambda self: self.status not in ("invoiced", "cancelled"))
        @rule(data=st.data(), steps=st.integers(1, 3))
        def progress(self, data: st.DataObject, steps: int) -> None:
            """Commands the table allows, with good arguments, mostly along the happy path.

            Most arbitrary commands are refused in most states; this keeps examples moving
            through the whole lifecycle so that the late states are reached too.
            """
            commands: dict[str, Callable[[], None]] = {
                "tender": lambda: self.tender("FAST"),
                "accept": self.accept,
                "reject": lambda: self.reject("carrier has no capacity"),
                "expire": self.expire,
                "dispatch": lambda: self.dispatch("DRV-1", "TRK-1"),
                "start_transit": self.start_transit,
                "deliver": self.deliver,
                "receive_pod": lambda: self.receive_pod(data, "J. Doe"),
                "ready_to_invoice": self.mark_ready_to_invoice,
                "invoice": self.mark_invoiced,
                "cancel": lambda: self.cancel("customer called"),
            }
            for _ in range(steps):
                # The table lists the happy path first: take it most of the time.
                allowed = [c for c, (src, _) in TRANSITIONS.items() if self.status in src]
                if not allowed:
                    return
                detour = data.draw(st.integers(0, 3), label="detour") == 3 and len(allowed) > 1
                command = data.draw(st.sampled_from(allowed[1:])) if detour else allowed[0]
                commands[command]()

        # --- exceptions (overlays, in any status) -------------------------------------

        @rule(
            data=st.data(),
            kind=st.sampled_from(list(ExceptionKind)),
            owner=st.sampled_from(["dispatch", "carrier", ""]),
            where=st.sampled_from(["load", "stop", "stop", "foreign stop"]),
        )
        def raise_exception(
            self, data: st.DataObject, kind: ExceptionKind, owner: str, where: str
        ) -> None:
            ours = self.draw_stop(data)
            stop_id = {"load": None, "stop": ours, "foreign stop": uuid.uuid4()}[where]
            refusal: Refusal = None
            if where == "foreign stop":
                refusal = NotFound
            elif not owner:
                refusal = InvalidInput
            run = lambda: ledger.raise_exception(  # noqa: E731
                ADMIN, self.load_id, kind, owner=owner, note="seen on the board", stop_id=stop_id
            )
            if self.attempt(refusal, run):
                self.raised += 1
                self.open[f"{self.reference}-X{self.raised}"] = ExceptionModel(kind, stop_id, owner)
                self.load_events += 1

        def resolve(self, exception_id: str, resolution: str) -> None:
            refusal: Refusal = None
            if exception_id not in self.open:
                refusal = NotFound
            elif not resolution.strip():
                refusal = InvalidInput
            run = lambda: ledger.resolve_exception(  # noqa: E731
                ADMIN, self.load_id, exception_id, resolution
            )
            if self.attempt(refusal, run):
                del self.open[exception_id]
                self.resolved.append(exception_id)
                self.load_events += 1

        @precondition(lambda self: bool(self.open))
        @rule(data=st.data(), resolution=st.sampled_from(["consignee accepted", "claim paid", ""]))
        def resolve_exception(self, data: st.DataObject, resolution: str) -> None:
            exception_id = data.draw(st.sampled_from(list(self.open)), label="exception")
            self.resolve(exception_id, resolution)

        @rule(data=st.data())
        def resolve_unknown_exception(self, data: st.DataObject) -> None:
            """An id never raised, or already resolved, is not found."""
            never = [f"{self.reference}-X{self.raised + 1}", "no-such-exception"]
            exception_id = data.draw(st.sampled_from([*self.resolved, *never]), label="exception")
            self.resolve(exception_id, "consignee accepted")

        # --- facts from the world, and operator overrides -----------------------------

        @rule(data=st.data(), fact=world_facts, source=world_sources)
        def record_stop_fact(self, data: st.DataObject, fact: StopFact, source: Source) -> None:
            """Recorded in any status, late or contradictory; only a reasonless override fails."""
            stop_id = self.draw_stop(data)
            reason = data.draw(st.sampled_from([None, "driver called in"]), label="reason")
            model = FactModel(
                fact, source, self.occurred_at(data), reason, self.draw_supersedes(data, stop_id)
            )
            refusal: Refusal = None
            if source is Source.OPERATOR and not reason:
                refusal = ReasonRequired
            self.record_fact(stop_id, model, refusal)

        @precondition(lambda self: any(self.facts.values()))
        @rule(data=st.data(), fact=world_facts, reason=reasons)
        def override_stop_fact(self, data: st.DataObject, fact: StopFact, reason: str) -> None:
            stop_id = data.draw(st.sampled_from([s for s in self.stop_ids if self.facts[s]]))
            supersedes = data.draw(st.sampled_from(self.fact_ids(stop_id)), label="supersedes")
            model = FactModel(fact, Source.OPERATOR, self.occurred_at(data), reason, supersedes)
            self.record_fact(stop_id, model, None if reason.strip() else ReasonRequired)

        @rule(hours=st.integers(0, 12))
        def time_passes(self, hours: int) -> None:
            clock.advance(hours=hours)

        # --- invariants -----------------------------------------------------------------

        @invariant()
        def load_matches_the_model(self) -> None:
            load = ledger.load(self.load_id)
            assert load.status.value == self.status
            assert load.version == self.load_events
            assert load.tonu == self.tonu
            assert not load.tonu or load.status.value == "cancelled"
            assert (load.carrier_code, load.driver_code, load.vehicle_code) == (
                self.carrier,
                self.driver,
                self.vehicle,
            )
            assert load.invoice_number == self.invoice_number

        @invariant()
        def open_exceptions_match_the_model(self) -> None:
            load = ledger.load(self.load_id)
            stored = {
                k: ExceptionModel(e.kind, e.stop_id, e.owner) for k, e in load.exceptions.items()
            }
            assert stored == self.open

        @invariant()
        def every_fact_is_recorded(self) -> None:
            for stop_id in self.stop_ids:
                stop = ledger.stop(stop_id)
                stored = [
                    FactModel(fact, meta.source, meta.occurred_at, meta.reason, detail.supersedes)
                    for _, fact, meta, detail in stop.facts
                ]
                assert stored == self.facts[stop_id]
                assert stop.version == 1 + len(stored)

    return LoadMachine


def test_load_follows_the_lifecycle_model_when_commands_and_facts_arrive_in_any_order(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    machine = load_machine(ledger, clock)

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
