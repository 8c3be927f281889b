"""Loads (TMS): one vehicle trip, from plan to invoice; exceptions are overlays, not states."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidInput, InvalidTransition, NotFound
from ledger.events import LedgerEvent, Meta, register_value_type
from ledger.ids import natural_id

__all__ = ["ExceptionKind", "Load", "LoadStatus", "OpenException"]


@register_value_type
class LoadStatus(enum.StrEnum):
    PLANNED = "planned"
    TENDERED = "tendered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DISPATCHED = "dispatched"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    POD_RECEIVED = "pod_received"
    READY_TO_INVOICE = "ready_to_invoice"
    INVOICED = "invoiced"
    CANCELLED = "cancelled"


@register_value_type
class ExceptionKind(enum.StrEnum):
    DELAYED = "delayed"
    SHORT = "short"
    OVER = "over"
    DAMAGED = "damaged"
    REFUSED = "refused"
    ATTEMPTED = "attempted"
    HELD = "held"
    CLAIM = "claim"
    CONFLICTING_FACTS = "conflicting_facts"
    DETENTION = "detention"
    HOS_RISK = "hos_risk"


@dataclass(frozen=True)
class OpenException:
    exception_id: str
    kind: ExceptionKind
    stop_id: UUID | None
    owner: str
    note: str


S = LoadStatus
_BEFORE_DELIVERY = {
    S.PLANNED,
    S.TENDERED,
    S.ACCEPTED,
    S.REJECTED,
    S.EXPIRED,
    S.DISPATCHED,
    S.IN_TRANSIT,
}


class Load(Aggregate):
    """A vehicle trip serving stops; its status follows the tender–dispatch–invoice path."""

    class Event(LedgerEvent):
        pass

    class Planned(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        reference: str
        tenants: tuple[str, ...]
        stop_ids: tuple[UUID, ...]
        order_ids: tuple[UUID, ...]
        planned_km: float
        plan_id: str | None

    class Tendered(Event):
        carrier_code: str
        rate_card: str | None

    class TenderAccepted(Event):
        pass

    class TenderRejected(Event):
        pass

    class TenderExpired(Event):
        pass

    class Dispatched(Event):
        driver_code: str
        vehicle_code: str

    class TransitStarted(Event):
        pass

    class Delivered(Event):
        pass

    class PodReceived(Event):
        pass

    class ReadyToInvoice(Event):
        pass

    class Invoiced(Event):
        invoice_number: str

    class Cancelled(Event):
        tonu: bool

    class Replanned(Event):
        plan_id: str
        stop_ids: tuple[UUID, ...]
        order_ids: tuple[UUID, ...]

    class AccessorialRecorded(Event):
        accessorial_id: str
        code: str
        quantity: Decimal
        amount: Decimal | None
        stop_id: UUID | None
        receipt: str

    class AccessorialCorrected(Event):
        accessorial_id: str
        quantity: Decimal
        amount: Decimal | None

    class ExceptionRaised(Event):
        exception_id: str
        kind: ExceptionKind
        stop_id: UUID | None
        owner: str
        note: str

    class ExceptionResolved(Event):
        exception_id: str
        resolution: str

    @staticmethod
    def create_id(reference: str) -> UUID:
        return natural_id("load", reference)

    @event(Planned)
    def __init__(
        self,
        meta: Meta,
        reference: str,
        tenants: tuple[str, ...],
        stop_ids: tuple[UUID, ...],
        order_ids: tuple[UUID, ...],
        planned_km: float,
        plan_id: str | None,
    ) -> None:
        self.reference = reference
        self.tenants = tenants
        self.stop_ids = stop_ids
        self.order_ids = order_ids
        self.planned_km = planned_km
        self.plan_id = plan_id
        self.status = LoadStatus.PLANNED
        self.carrier_code: str | None = None
        self.rate_card: str | None = None
        self.driver_code: str | None = None
        self.vehicle_code: str | None = None
        self.invoice_number: str | None = None
        self.tonu = False
        self.exceptions: dict[str, OpenException] = {}
        self.exceptions_raised = 0
        self.accessorials: dict[str, tuple[str, Decimal, Decimal | None]] = {}

    def _require(self, command: str, *allowed: LoadStatus) -> None:
        if self.status not in allowed:
            raise InvalidTransition("load", self.status.value, command)

    def tender(self, meta: Meta, carrier_code: str, rate_card: str | None) -> None:
        self._require("tender", S.PLANNED, S.REJECTED, S.EXPIRED)
        if not carrier_code:
            raise InvalidInput("carrier_code must not be empty", field="carrier_code")
        self._tendered(meta, carrier_code, rate_card)

    @event(Tendered)
    def _tendered(self, meta: Meta, carrier_code: str, rate_card: str | None) -> None:
        self.status = S.TENDERED
        self.carrier_code = carrier_code
        self.rate_card = rate_card

    def accept_tender(self, meta: Meta) -> None:
        self._require("accept", S.TENDERED)
        self._accepted(meta)

    @event(TenderAccepted)
    def _accepted(self, meta: Meta) -> None:
        self.status = S.ACCEPTED

    def reject_tender(self, meta: Meta) -> None:
        self._require("reject", S.TENDERED)
        meta.require_reason("a tender rejection")
        self._rejected(meta)

    @event(TenderRejected)
    def _rejected(self, meta: Meta) -> None:
        self.status = S.REJECTED

    def expire_tender(self, meta: Meta) -> None:
        self._require("expire", S.TENDERED)
        self._expired(meta)

    @event(TenderExpired)
    def _expired(self, meta: Meta) -> None:
        self.status = S.EXPIRED

    def dispatch(self, meta: Meta, driver_code: str, vehicle_code: str) -> None:
        self._require("dispatch", S.ACCEPTED)
        self._dispatched(meta, driver_code, vehicle_code)

    @event(Dispatched)
    def _dispatched(self, meta: Meta, driver_code: str, vehicle_code: str) -> None:
        self.status = S.DISPATCHED
        self.driver_code = driver_code
        self.vehicle_code = vehicle_code

    def start_transit(self, meta: Meta) -> None:
        self._require("start transit on", S.DISPATCHED)
        self._transit_started(meta)

    @event(TransitStarted)
    def _transit_started(self, meta: Meta) -> None:
        self.status = S.IN_TRANSIT

    def deliver(self, meta: Meta) -> None:
        self._require("deliver", S.IN_TRANSIT)
        self._delivered(meta)

    @event(Delivered)
    def _delivered(self, meta: Meta) -> None:
        self.status = S.DELIVERED

    def receive_pod(self, meta: Meta) -> None:
        self._require("receive POD for", S.DELIVERED)
        self._pod_received(meta)

    @event(PodReceived)
    def _pod_received(self, meta: Meta) -> None:
        self.status = S.POD_RECEIVED

    def mark_ready_to_invoice(self, meta: Meta) -> None:
        self._require("mark ready to invoice", S.POD_RECEIVED)
        self._ready(meta)

    @event(ReadyToInvoice)
    def _ready(self, meta: Meta) -> None:
        self.status = S.READY_TO_INVOICE

    def mark_invoiced(self, meta: Meta, invoice_number: str) -> None:
        self._require("invoice", S.READY_TO_INVOICE)
        self._invoiced(meta, invoice_number)

    @event(Invoiced)
    def _invoiced(self, meta: Meta, invoice_number: str) -> None:
        self.status = S.INVOICED
        self.invoice_number = invoice_number

    def cancel(self, meta: Meta) -> None:
        """Cancel before delivery; after dispatch the carrier is owed a TONU."""
        self._require("cancel", *_BEFORE_DELIVERY)
        meta.require_reason("a cancellation")
        self._cancelled(meta, self.status in (S.DISPATCHED, S.IN_TRANSIT))

    @event(Cancelled)
    def _cancelled(self, meta: Meta, tonu: bool) -> None:
        self.status = S.CANCELLED
        self.tonu = tonu

    def replan(
        self,
        meta: Meta,
        plan_id: str,
        stop_ids: tuple[UUID, ...],
        order_ids: tuple[UUID, ...],
    ) -> None:
        """Takes a re-plan's stop sequence before delivery: every stop and order of the load
        stays on it (new ones may join); the re-plan is named by `plan_id`."""
        self._require("re-plan", *(_BEFORE_DELIVERY - {S.REJECTED, S.EXPIRED}))
        if len(set(stop_ids)) != len(stop_ids):
            raise InvalidInput("a stop appears twice in the sequence", field="stop_ids")
        dropped = [s for s in self.stop_ids if s not in stop_ids]
        if dropped:
            raise InvalidInput(
                f"a re-plan keeps every stop of load {self.reference}; {len(dropped)} missing",
                field="stop_ids",
                rule="keeps_every_stop",
            )
        if any(o not in order_ids for o in self.order_ids):
            raise InvalidInput(
                f"a re-plan keeps every order of load {self.reference}",
                field="order_ids",
                rule="keeps_every_order",
            )
        self._replanned(meta, plan_id, stop_ids, order_ids)

    @event(Replanned)
    def _replanned(
        self,
        meta: Meta,
        plan_id: str,
        stop_ids: tuple[UUID, ...],
        order_ids: tuple[UUID, ...],
    ) -> None:
        self.plan_id = plan_id
        self.stop_ids = stop_ids
        self.order_ids = order_ids

    def record_accessorial(
        self,
        meta: Meta,
        code: str,
        quantity: Decimal,
        amount: Decimal | None,
        stop_id: UUID | None,
        receipt: str,
    ) -> str:
        """An accessorial service as performed (liftgate, inside delivery, a lumper receipt):
        priced from the rate card, or at `amount` when one was paid (LUMPER needs one)."""
        if self.status is S.CANCELLED:
            raise InvalidTransition("load", self.status.value, "record an accessorial on")
        if not code.strip():
            raise InvalidInput("code must not be empty", field="code", rule="required")
        if quantity <= 0:
            raise InvalidInput("quantity must be positive", field="quantity", rule="> 0")
        if amount is not None and amount < 0:
            raise InvalidInput("amount must not be negative", field="amount", rule=">= 0")
        if code.upper() == "LUMPER" and (amount is None or not receipt):
            raise InvalidInput(
                "a lumper charge needs the paid amount and its receipt",
                field="receipt",
                rule="lumper receipt",
            )
        if stop_id is not None and stop_id not in self.stop_ids:
            raise NotFound("stop", stop_id, field="stop_id")
        accessorial_id = f"{self.reference}-A{len(self.accessorials) + 1}"
        self._accessorial(meta, accessorial_id, code.upper(), quantity, amount, stop_id, receipt)
        return accessorial_id

    @event(AccessorialRecorded)
    def _accessorial(
        self,
        meta: Meta,
        accessorial_id: str,
        code: str,
        quantity: Decimal,
        amount: Decimal | None,
        stop_id: UUID | None,
        receipt: str,
    ) -> None:
        self.accessorials[accessorial_id] = (code, quantity, amount)

    def correct_accessorial(
        self, meta: Meta, accessorial_id: str, quantity: Decimal, amount: Decimal | None
    ) -> None:
        """Corrects a recorded accessorial (quantity 0 voids it); the reason is required."""
        meta.require_reason("an accessorial correction")
        if accessorial_id not in self.accessorials:
            raise NotFound("accessorial", accessorial_id, field="accessorial_id")
        if quantity < 0 or (amount is not None and amount < 0):
            raise InvalidInput("quantity and amount must not be negative", field="quantity")
        self._accessorial_corrected(meta, accessorial_id, quantity, amount)

    @event(AccessorialCorrected)
    def _accessorial_corrected(
        self, meta: Meta, accessorial_id: str, quantity: Decimal, amount: Decimal | None
    ) -> None:
        code = self.accessorials[accessorial_id][0]
        self.accessorials[accessorial_id] = (code, quantity, amount)

    def raise_exception(
        self, meta: Meta, kind: ExceptionKind, stop_id: UUID | None, owner: str, note: str
    ) -> str:
        if stop_id is not None and stop_id not in self.stop_ids:
            raise NotFound("stop", stop_id, field="stop_id")
        if not owner:
            raise InvalidInput("an exception needs an owner of the next action", field="owner")
        exception_id = f"{self.reference}-X{self.exceptions_raised + 1}"
        self._exception_raised(meta, exception_id, kind, stop_id, owner, note)
        return exception_id

    @event(ExceptionRaised)
    def _exception_raised(
        self,
        meta: Meta,
        exception_id: str,
        kind: ExceptionKind,
        stop_id: UUID | None,
        owner: str,
        note: str,
    ) -> None:
        self.exceptions_raised += 1
        self.exceptions[exception_id] = OpenException(exception_id, kind, stop_id, owner, note)

    def resolve_exception(self, meta: Meta, exception_id: str, resolution: str) -> None:
        if exception_id not in self.exceptions:
            raise NotFound("open exception", exception_id, field="exception_id")
        if not resolution.strip():
            raise InvalidInput("a resolution must say what was done", field="resolution")
        self._exception_resolved(meta, exception_id, resolution)

    @event(ExceptionResolved)
    def _exception_resolved(self, meta: Meta, exception_id: str, resolution: str) -> None:
        del self.exceptions[exception_id]
