"""Loads and stops: the board, a load with its stops, dispatcher actions, stop facts, POD
and the timeline with both clocks."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import Auth, Svc, caller_for, position_query, require
from api.errors import ApiError
from api.keys import Principal, Role
from api.routes.common import Recorded, load_for
from ledger.application import StopPlan
from ledger.errors import NotFound
from ledger.events import Source
from ledger.history import customer_view, load_timeline
from ledger.loads import ExceptionKind
from ledger.stops import FactDetail, StopFact, StopKind
from ledger.values import TimeWindow

router = APIRouter(tags=["loads"])
Dispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER))]
CarrierOrDispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.CARRIER))]

BOARD_COLUMNS = (
    "load_id",
    "reference",
    "tenants",
    "status",
    "status_since",
    "carrier_code",
    "driver_code",
    "vehicle_code",
    "stops_total",
    "stops_done",
    "next_stop_id",
    "next_stop_sequence",
    "next_window_end",
    "next_eta",
    "lateness_risk",
    "open_exceptions",
    "next_action_owner",
    "conflicts",
    "planned_day",
)
STOP_COLUMNS = (
    "stop_id",
    "sequence",
    "kind",
    "location_id",
    "window_start",
    "window_end",
    "appointment_start",
    "appointment_end",
    "arrived_at",
    "arrival_source",
    "departed_at",
    "departure_source",
    "dwell_minutes",
    "detention_minutes",
    "on_time",
    "eta",
)


class BoardPage(BaseModel):
    """A page of the board; pass `next_cursor` as `after` for the next one."""

    loads: list[dict[str, Any]]
    next_cursor: str | None
    position: int


def _scope(who: Principal) -> tuple[str, list[object]]:
    if who.role is Role.SHIPPER:
        return " AND (',' || tenants || ',') LIKE %s", [f"%,{who.tenant},%"]
    if who.role is Role.CARRIER:
        return " AND carrier_code = %s", [who.tenant]
    return "", []


@router.get("/loads", response_model=BoardPage)
def list_loads(
    services: Svc,
    who: Auth,
    status: Annotated[str | None, Query()] = None,
    carrier: Annotated[str | None, Query()] = None,
    customer: Annotated[str | None, Query()] = None,
    day: Annotated[str | None, Query(description="planned day, YYYY-MM-DD")] = None,
    after: Annotated[str | None, Query(description="cursor: the last reference seen")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    wait_for: Annotated[int | None, position_query("a log position to wait for")] = None,
) -> BoardPage:
    """The load board (active and recent loads), filtered, in reference order."""
    services.wait_for(wait_for)
    sql = f"SELECT {', '.join(BOARD_COLUMNS)} FROM load_board WHERE 1 = 1"
    params: list[object] = []
    scope, scope_params = _scope(who)
    sql += scope
    params += scope_params
    for column, value in (("status", status), ("carrier_code", carrier), ("planned_day", day)):
        if value is not None:
            sql += f" AND {column} = %s"
            params.append(value)
    if customer is not None:
        sql += " AND (',' || tenants || ',') LIKE %s"
        params.append(f"%,{customer},%")
    if after is not None:
        sql += " AND reference > %s"
        params.append(after)
    rows = services.db.query(sql + " ORDER BY reference LIMIT %s", [*params, limit + 1])
    loads = [dict(zip(BOARD_COLUMNS, row, strict=True)) for row in rows[:limit]]
    cursor = str(loads[-1]["reference"]) if len(rows) > limit else None
    return BoardPage(loads=loads, next_cursor=cursor, position=services.runner.position())


@router.get("/loads/{load}")
def get_load(
    load: str,
    services: Svc,
    who: Auth,
    wait_for: Annotated[int | None, position_query()] = None,
) -> dict[str, Any]:
    """A load with its stops (reconciled times, dwell, detention), open exceptions and last
    known position; shippers get the customer-safe view."""
    services.wait_for(wait_for)
    found = load_for(services, who, load)
    if who.role is Role.SHIPPER:
        return customer_view(services.ledger, found.id)
    board = services.db.query(
        f"SELECT {', '.join(BOARD_COLUMNS)} FROM load_board WHERE load_id = %s", [str(found.id)]
    )
    stops = services.db.query(
        f"SELECT {', '.join(STOP_COLUMNS)} FROM stop_times WHERE load_id = %s ORDER BY sequence",
        [str(found.id)],
    )
    exceptions = services.db.query(
        "SELECT exception_id, kind, owner, note, raised_at, stop_id FROM exceptions_queue "
        "WHERE load_id = %s ORDER BY raised_at",
        [str(found.id)],
    )
    position = None
    if found.vehicle_code:
        device = services.ledger.vehicle(found.vehicle_code).device_id
        rows = services.db.query(
            "SELECT lat, lon, fix_at FROM vehicle_positions WHERE device_id = %s", [device]
        )
        position = dict(zip(("lat", "lon", "fix_at"), rows[0], strict=True)) if rows else None
    return {
        "load": dict(zip(BOARD_COLUMNS, board[0], strict=True)) if board else None,
        "stops": [dict(zip(STOP_COLUMNS, row, strict=True)) for row in stops],
        "exceptions": [
            dict(
                zip(
                    ("exception_id", "kind", "owner", "note", "raised_at", "stop_id"),
                    row,
                    strict=True,
                )
            )
            for row in exceptions
        ],
        "last_position": position,
        "view_position": services.runner.position(),
    }


class WindowIn(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


class StopIn(BaseModel):
    kind: Literal["pickup", "delivery"]
    location_code: str = Field(min_length=1)
    window: WindowIn
    service_minutes: int = Field(default=30, ge=0)
    appointment: WindowIn | None = None
    order_ids: list[UUID] = []


class PlanIn(BaseModel):
    reference: str = Field(min_length=1, examples=["L-2026-11-20-001"])
    stops: list[StopIn] = Field(min_length=2)
    planned_km: float = Field(default=0, ge=0)
    customer: str | None = None


@router.post("/loads", response_model=Recorded, status_code=201)
def plan_load(plan: PlanIn, request: Request, services: Svc, who: Dispatcher) -> Recorded:
    """Plan a load with its stops (locations and orders must exist)."""
    stops = [
        StopPlan(
            StopKind(s.kind),
            s.location_code,
            TimeWindow(s.window.start, s.window.end),
            s.service_minutes,
            TimeWindow(s.appointment.start, s.appointment.end) if s.appointment else None,
            tuple(s.order_ids),
        )
        for s in plan.stops
    ]
    position = services.ledger.plan_load(
        caller_for(who, request),
        plan.reference,
        stops,
        planned_km=plan.planned_km,
        customer=plan.customer,
    )
    return Recorded(position=position)


class TenderIn(BaseModel):
    carrier_code: str
    rate_card: str | None = None


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1)


class DispatchIn(BaseModel):
    driver_code: str
    vehicle_code: str


class ExceptionIn(BaseModel):
    kind: Literal["delayed", "short", "over", "damaged", "refused", "attempted", "held", "claim"]
    owner: str = Field(min_length=1)
    note: str = ""
    stop_id: UUID | None = None


class ResolveIn(BaseModel):
    resolution: str = Field(min_length=1)


class AccessorialIn(BaseModel):
    code: str = Field(min_length=1, examples=["LIFTGATE"])
    quantity: Decimal = Field(default=Decimal(1), gt=0)
    amount: Decimal | None = Field(default=None, ge=0)
    stop_id: UUID | None = None
    receipt: str = ""


@router.post("/loads/{load}/tender", response_model=Recorded)
def tender(load: str, body: TenderIn, request: Request, services: Svc, who: Dispatcher) -> Recorded:
    """Tender the load to a carrier (planned, rejected or expired loads)."""
    found = load_for(services, who, load)
    return Recorded(
        position=services.ledger.tender_load(
            caller_for(who, request), found.id, body.carrier_code, body.rate_card
        )
    )


@router.post("/loads/{load}/accept", response_model=Recorded)
def accept(load: str, request: Request, services: Svc, who: CarrierOrDispatcher) -> Recorded:
    """Accept a tender (the carrier it was tendered to, or dispatch on its behalf)."""
    found = load_for(services, who, load)
    return Recorded(position=services.ledger.accept_tender(caller_for(who, request), found.id))


@router.post("/loads/{load}/reject", response_model=Recorded)
def reject(
    load: str, body: ReasonIn, request: Request, services: Svc, who: CarrierOrDispatcher
) -> Recorded:
    """Reject a tender, saying why."""
    found = load_for(services, who, load)
    return Recorded(
        position=services.ledger.reject_tender(caller_for(who, request), found.id, body.reason)
    )


@router.post("/loads/{load}/dispatch", response_model=Recorded)
def dispatch(
    load: str, body: DispatchIn, request: Request, services: Svc, who: Dispatcher
) -> Recorded:
    """Dispatch an accepted load with a driver and a vehicle."""
    found = load_for(services, who, load)
    return Recorded(
        position=services.ledger.dispatch_load(
            caller_for(who, request), found.id, body.driver_code, body.vehicle_code
        )
    )


@router.post("/loads/{load}/cancel", response_model=Recorded)
def cancel(load: str, body: ReasonIn, request: Request, services: Svc, who: Dispatcher) -> Recorded:
    """Cancel before delivery (after dispatch the carrier is owed a TONU)."""
    found = load_for(services, who, load)
    return Recorded(
        position=services.ledger.cancel_load(caller_for(who, request), found.id, body.reason)
    )


@router.post("/loads/{load}/exceptions", response_model=Recorded, status_code=201)
def raise_exception(
    load: str, body: ExceptionIn, request: Request, services: Svc, who: CarrierOrDispatcher
) -> Recorded:
    """Raise an exception overlay on the load or one of its stops, with an owner."""
    found = load_for(services, who, load)
    return Recorded(
        position=services.ledger.raise_exception(
            caller_for(who, request),
            found.id,
            ExceptionKind(body.kind),
            owner=body.owner,
            note=body.note,
            stop_id=body.stop_id,
        )
    )


@router.post("/loads/{load}/exceptions/{exception_id}/resolve", response_model=Recorded)
def resolve_exception(
    load: str,
    exception_id: str,
    body: ResolveIn,
    request: Request,
    services: Svc,
    who: Dispatcher,
) -> Recorded:
    """Resolve an open exception, saying what was done."""
    found = load_for(services, who, load)
    return Recorded(
        position=services.ledger.resolve_exception(
            caller_for(who, request), found.id, exception_id, body.resolution
        )
    )


@router.post("/loads/{load}/accessorials", response_model=Recorded, status_code=201)
def accessorial(
    load: str, body: AccessorialIn, request: Request, services: Svc, who: CarrierOrDispatcher
) -> Recorded:
    """Record an accessorial as performed (a lumper needs its receipt and amount)."""
    found = load_for(services, who, load)
    return Recorded(
        position=services.ledger.record_accessorial(
            caller_for(who, request),
            found.id,
            body.code,
            quantity=body.quantity,
            amount=body.amount,
            stop_id=body.stop_id,
            receipt=body.receipt,
        )
    )


class FactIn(BaseModel):
    fact: Literal[
        "arrived",
        "departed",
        "loading_completed",
        "unloading_completed",
        "delivery_attempted",
        "refused",
        "eta_reported",
    ]
    occurred_at: AwareDatetime
    source: Literal["api", "driver_app", "operator", "edi", "eld", "gps"] = "api"
    reason: str | None = None
    supersedes: str | None = None
    note: str = ""


def _stop_load(services: Svc, who: Principal, stop_id: UUID) -> UUID:
    stop = services.ledger.stop(stop_id)
    load_for(services, who, str(stop.load_id))  # not found when not the caller's
    return stop.id


@router.post("/stops/{stop_id}/facts", response_model=Recorded, status_code=201)
def record_fact(
    stop_id: UUID, body: FactIn, request: Request, services: Svc, who: CarrierOrDispatcher
) -> Recorded:
    """Record a fact about a stop (late facts too); an operator fact is an override and
    needs a reason."""
    stop = _stop_load(services, who, stop_id)
    source = Source(body.source)
    if who.role is Role.CARRIER and source is Source.OPERATOR:
        raise ApiError(403, "forbidden", "only staff may record operator overrides", "source")
    position = services.ledger.record_stop_fact(
        caller_for(who, request, source),
        stop,
        StopFact(body.fact),
        occurred_at=body.occurred_at,
        detail=FactDetail(supersedes=body.supersedes, note=body.note),
        reason=body.reason,
        source=source,
    )
    return Recorded(position=position)


class PodIn(BaseModel):
    signer: str = Field(min_length=1)
    document_hash: str = Field(min_length=1, examples=["sha256:9f2c…"])
    occurred_at: AwareDatetime


@router.post("/stops/{stop_id}/pod", response_model=Recorded, status_code=201)
def proof_of_delivery(
    stop_id: UUID, body: PodIn, request: Request, services: Svc, who: CarrierOrDispatcher
) -> Recorded:
    """Record a proof of delivery (signer, document hash) at a stop."""
    stop = _stop_load(services, who, stop_id)
    return Recorded(
        position=services.ledger.receive_pod(
            caller_for(who, request, Source.DRIVER_APP),
            stop,
            signer=body.signer,
            document_hash=body.document_hash,
            occurred_at=body.occurred_at,
        )
    )


@router.get("/loads/{load}/timeline")
def timeline(
    load: str,
    services: Svc,
    who: Auth,
    as_of: Annotated[
        AwareDatetime | None, Query(description="facts that had happened by T")
    ] = None,
    as_known_at: Annotated[
        int | None,
        position_query("facts the ledger had recorded by this log position"),
    ] = None,
) -> dict[str, Any]:
    """Every fact about the load with both clocks, actor, source and reason, and the state
    they derive — as it happened at `as_of`, as the ledger knew it at `as_known_at`."""
    found = load_for(services, who, load)
    if who.role in (Role.SHIPPER, Role.CARRIER):
        return customer_view(services.ledger, found.id, known_at=as_known_at)
    try:
        return load_timeline(services.ledger, found.id, as_of, as_known_at).as_dict()
    except NotFound:
        raise NotFound("load", load) from None


# Registered last: its {action} segment must not shadow the named actions above.
@router.post("/loads/{load}/{action}", response_model=Recorded)
def simple_action(
    load: str,
    action: Literal["start-transit", "deliver", "ready-to-invoice", "expire-tender"],
    request: Request,
    services: Svc,
    who: Dispatcher,
) -> Recorded:
    """Move a load along: start transit, deliver, mark ready to invoice, expire the tender."""
    found = load_for(services, who, load)
    caller = caller_for(who, request)
    use_case = {
        "start-transit": services.ledger.start_transit,
        "deliver": services.ledger.deliver_load,
        "ready-to-invoice": services.ledger.mark_ready_to_invoice,
        "expire-tender": services.ledger.expire_tender,
    }[action]
    return Recorded(position=use_case(caller, found.id))
