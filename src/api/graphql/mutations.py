"""Writes: every dispatcher action, as the REST routes do it (same visibility, same ledger
calls). Each returns a `CommandResult`: `Recorded { position }` or the typed refusal; the
actor recorded is the key's principal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import strawberry

from api.deps import Services
from api.graphql.context import GqlInfo, off_loop
from api.graphql.fields import mutation
from api.graphql.permissions import Authenticated, Dispatching, DispatchingOrCarrier
from api.graphql.results import CommandResult, Recorded, refusal
from api.graphql.scalars import LogPosition
from api.graphql.types import ExceptionKind, FactSource, StopFactKind, StopKind
from api.keys import Principal
from api.routes.common import load_for
from ledger.application import Caller, StopPlan
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.events import Source
from ledger.loads import ExceptionKind as LedgerExceptionKind
from ledger.loads import Load
from ledger.stops import FactDetail, StopFact
from ledger.stops import StopKind as LedgerStopKind
from ledger.values import TimeWindow

__all__ = ["Mutation", "PlanLoadInput", "StopInput", "WindowInput"]

#: What a command does in a worker thread: its log position and the load it was about.
Command = Callable[[Caller], tuple[int, UUID | None]]


@strawberry.input
class WindowInput:
    start: datetime
    end: datetime


@strawberry.input
class StopInput:
    kind: StopKind
    location_code: str
    window: WindowInput
    service_minutes: int = 30
    appointment: WindowInput | None = None
    order_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class PlanLoadInput:
    reference: str
    stops: list[StopInput]
    planned_km: float = 0.0
    customer: str | None = None


def _uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput(f"{field} must be an id (a UUID)", field=field, rule="uuid") from None


def _stop_id(services: Services, who: Principal, stop: str) -> UUID:
    """A stop on a load the caller may see; another tenant's stop is not found."""
    found = services.ledger.stop(_uuid(stop, "stop"))
    try:
        load_for(services, who, str(found.load_id))
    except NotFound:
        raise NotFound("stop", stop) from None
    return found.id


async def _run(info: GqlInfo, command: Command, source: Source = Source.API) -> CommandResult:
    try:
        position, load_id = await off_loop(command, info.context.caller(source))
    except LedgerError as error:
        return refusal(error)
    return Recorded(
        position=LogPosition(position),
        load_id=None if load_id is None else strawberry.ID(str(load_id)),
    )


def _who(info: GqlInfo) -> Principal:
    principal = info.context.principal
    assert principal is not None, "mutations are behind Authenticated"
    return principal


def _on_load(info: GqlInfo, load: str, action: Callable[[Caller, UUID], int]) -> Command:
    services, who = info.context.services, _who(info)

    def command(caller: Caller) -> tuple[int, UUID | None]:
        found = load_for(services, who, load)
        return action(caller, found.id), found.id

    return command


def _on_stop(info: GqlInfo, stop: str, action: Callable[[Caller, UUID], int]) -> Command:
    services, who = info.context.services, _who(info)

    def command(caller: Caller) -> tuple[int, UUID | None]:
        stop_id = _stop_id(services, who, stop)
        return action(caller, stop_id), services.ledger.stop(stop_id).load_id

    return command


DISPATCH = [Authenticated, Dispatching]
DISPATCH_OR_CARRIER = [Authenticated, DispatchingOrCarrier]


@strawberry.type
class Mutation:
    @mutation(
        description="Plan a load with its stops (locations and orders must exist).",
        permission_classes=DISPATCH,
    )
    async def plan_load(self, info: GqlInfo, input: PlanLoadInput) -> CommandResult:
        ledger = info.context.services.ledger

        def command(caller: Caller) -> tuple[int, UUID | None]:
            stops = [
                StopPlan(
                    LedgerStopKind(s.kind.value),
                    s.location_code,
                    TimeWindow(s.window.start, s.window.end),
                    s.service_minutes,
                    TimeWindow(s.appointment.start, s.appointment.end) if s.appointment else None,
                    tuple(_uuid(str(o), f"stops[{i}].orderIds") for o in s.order_ids),
                )
                for i, s in enumerate(input.stops, start=1)
            ]
            position = ledger.plan_load(
                caller,
                input.reference,
                stops,
                planned_km=input.planned_km,
                customer=input.customer,
            )
            return position, Load.create_id(input.reference)

        return await _run(info, command)

    @mutation(
        description="Tender the load to a carrier (planned, rejected or expired loads).",
        permission_classes=DISPATCH,
    )
    async def tender_load(
        self,
        info: GqlInfo,
        load: strawberry.ID,
        carrier_code: str,
        rate_card: str | None = None,
    ) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_load(
                info,
                str(load),
                lambda caller, load_id: ledger.tender_load(
                    caller, load_id, carrier_code, rate_card
                ),
            ),
        )

    @mutation(
        description="Accept a tender (the carrier it was tendered to, or dispatch for it).",
        permission_classes=DISPATCH_OR_CARRIER,
    )
    async def accept_tender(self, info: GqlInfo, load: strawberry.ID) -> CommandResult:
        return await _run(
            info, _on_load(info, str(load), info.context.services.ledger.accept_tender)
        )

    @mutation(description="Reject a tender, saying why.", permission_classes=DISPATCH_OR_CARRIER)
    async def reject_tender(self, info: GqlInfo, load: strawberry.ID, reason: str) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_load(
                info,
                str(load),
                lambda caller, load_id: ledger.reject_tender(caller, load_id, reason),
            ),
        )

    @mutation(description="Expire an unanswered tender.", permission_classes=DISPATCH)
    async def expire_tender(self, info: GqlInfo, load: strawberry.ID) -> CommandResult:
        return await _run(
            info, _on_load(info, str(load), info.context.services.ledger.expire_tender)
        )

    @mutation(
        description="Dispatch an accepted load with a driver and a vehicle.",
        permission_classes=DISPATCH,
    )
    async def dispatch_load(
        self, info: GqlInfo, load: strawberry.ID, driver_code: str, vehicle_code: str
    ) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_load(
                info,
                str(load),
                lambda caller, load_id: ledger.dispatch_load(
                    caller, load_id, driver_code, vehicle_code
                ),
            ),
        )

    @mutation(description="Start transit on a dispatched load.", permission_classes=DISPATCH)
    async def start_transit(self, info: GqlInfo, load: strawberry.ID) -> CommandResult:
        return await _run(
            info, _on_load(info, str(load), info.context.services.ledger.start_transit)
        )

    @mutation(description="Mark a load in transit delivered.", permission_classes=DISPATCH)
    async def deliver_load(self, info: GqlInfo, load: strawberry.ID) -> CommandResult:
        return await _run(
            info, _on_load(info, str(load), info.context.services.ledger.deliver_load)
        )

    @mutation(description="Mark a load with its POD ready to invoice.", permission_classes=DISPATCH)
    async def mark_ready_to_invoice(self, info: GqlInfo, load: strawberry.ID) -> CommandResult:
        return await _run(
            info, _on_load(info, str(load), info.context.services.ledger.mark_ready_to_invoice)
        )

    @mutation(
        description="Cancel before delivery, saying why (after dispatch the carrier is owed a "
        "TONU).",
        permission_classes=DISPATCH,
    )
    async def cancel_load(self, info: GqlInfo, load: strawberry.ID, reason: str) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_load(
                info, str(load), lambda caller, load_id: ledger.cancel_load(caller, load_id, reason)
            ),
        )

    @mutation(
        description="Record a fact about a stop from the world (late facts too).",
        permission_classes=DISPATCH_OR_CARRIER,
    )
    async def record_stop_fact(
        self,
        info: GqlInfo,
        stop: strawberry.ID,
        fact: StopFactKind,
        occurred_at: datetime,
        # a parameter named `source` would collide with the permission check's own
        fact_source: Annotated[FactSource, strawberry.argument(name="source")] = FactSource.API,
        reason: str | None = None,
        supersedes: str | None = None,
        note: str = "",
    ) -> CommandResult:
        ledger = info.context.services.ledger
        origin = Source(fact_source.value)
        return await _run(
            info,
            _on_stop(
                info,
                str(stop),
                lambda caller, stop_id: ledger.record_stop_fact(
                    caller,
                    stop_id,
                    StopFact(fact.value),
                    occurred_at=occurred_at,
                    detail=FactDetail(supersedes=supersedes, note=note),
                    reason=reason,
                    source=origin,
                ),
            ),
            origin,
        )

    @mutation(
        description="An operator's override of a stop fact: outranks every other source; "
        "the reason is required.",
        permission_classes=DISPATCH,
    )
    async def override_stop_fact(
        self,
        info: GqlInfo,
        stop: strawberry.ID,
        fact: StopFactKind,
        occurred_at: datetime,
        reason: str,
        supersedes: str | None = None,
    ) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_stop(
                info,
                str(stop),
                lambda caller, stop_id: ledger.override_stop_fact(
                    caller,
                    stop_id,
                    StopFact(fact.value),
                    occurred_at=occurred_at,
                    reason=reason,
                    supersedes=supersedes,
                ),
            ),
            Source.OPERATOR,
        )

    @mutation(
        description="Record a proof of delivery (signer, document hash) at a stop.",
        permission_classes=DISPATCH_OR_CARRIER,
    )
    async def receive_pod(
        self,
        info: GqlInfo,
        stop: strawberry.ID,
        signer: str,
        document_hash: str,
        occurred_at: datetime,
    ) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_stop(
                info,
                str(stop),
                lambda caller, stop_id: ledger.receive_pod(
                    caller,
                    stop_id,
                    signer=signer,
                    document_hash=document_hash,
                    occurred_at=occurred_at,
                ),
            ),
            Source.DRIVER_APP,
        )

    @mutation(
        description="Raise an exception on the load or one of its stops, with an owner.",
        permission_classes=DISPATCH_OR_CARRIER,
    )
    async def raise_exception(
        self,
        info: GqlInfo,
        load: strawberry.ID,
        kind: ExceptionKind,
        owner: str,
        note: str = "",
        stop: strawberry.ID | None = None,
    ) -> CommandResult:
        ledger = info.context.services.ledger

        def action(caller: Caller, load_id: UUID) -> int:
            if kind is ExceptionKind.CONFLICTING_FACTS:
                raise InvalidInput(
                    "conflicting facts are raised by the ledger itself",
                    field="kind",
                    rule="raised by the system",
                )
            return ledger.raise_exception(
                caller,
                load_id,
                LedgerExceptionKind(kind.value),
                owner=owner,
                note=note,
                stop_id=None if stop is None else _uuid(str(stop), "stop"),
            )

        return await _run(info, _on_load(info, str(load), action))

    @mutation(
        description="Resolve an open exception, saying what was done.",
        permission_classes=DISPATCH,
    )
    async def resolve_exception(
        self, info: GqlInfo, load: strawberry.ID, exception_id: str, resolution: str
    ) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_load(
                info,
                str(load),
                lambda caller, load_id: ledger.resolve_exception(
                    caller, load_id, exception_id, resolution
                ),
            ),
        )

    @mutation(
        description="Record an accessorial as performed (a lumper needs its receipt and amount).",
        permission_classes=DISPATCH_OR_CARRIER,
    )
    async def record_accessorial(
        self,
        info: GqlInfo,
        load: strawberry.ID,
        code: str,
        quantity: Decimal = Decimal(1),
        amount: Decimal | None = None,
        stop: strawberry.ID | None = None,
        receipt: str = "",
    ) -> CommandResult:
        ledger = info.context.services.ledger
        return await _run(
            info,
            _on_load(
                info,
                str(load),
                lambda caller, load_id: ledger.record_accessorial(
                    caller,
                    load_id,
                    code,
                    quantity=quantity,
                    amount=amount,
                    stop_id=None if stop is None else _uuid(str(stop), "stop"),
                    receipt=receipt,
                ),
            ),
        )
