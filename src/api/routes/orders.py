"""Orders: intake as JSON or CSV (all or nothing, every bad row listed), and reading one."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import Svc, caller_for, require
from api.keys import Principal, Role
from api.routes.common import raw_text
from ledger.application import OrderDraft
from ledger.errors import InvalidInput, NotFound
from ledger.events import Source
from ledger.imports import parse_orders_csv, ship_to_code
from ledger.log import iter_log
from ledger.orders import Order
from ledger.timeline import fold_order
from ledger.values import GeoPoint, OrderLine, ServiceLevel, TimeWindow

router = APIRouter(tags=["orders"])
Placer = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.SHIPPER))]
Reader = Annotated[
    Principal, Depends(require(Role.DISPATCHER, Role.SHIPPER, Role.AUDITOR, Role.SUPPORT))
]


class LineIn(BaseModel):
    sku: str = Field(min_length=1, examples=["SKU-COFFEE-1KG"])
    quantity: int = Field(gt=0, le=1_000_000_000, examples=[40])
    weight_kg: Decimal = Field(default=Decimal(0), ge=0)
    volume_m3: Decimal = Field(default=Decimal(0), ge=0)


class ShipToIn(BaseModel):
    name: str = Field(min_length=1, examples=["Lakeview Grocers"])
    address: str = Field(min_length=1, examples=["2900 N Broadway, Chicago IL"])
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class WindowIn(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


class OrderIn(BaseModel):
    reference: str = Field(min_length=1, examples=["PO-1001"])
    tenant: str | None = Field(default=None, description="the shipper account (staff keys only)")
    lines: list[LineIn] = Field(min_length=1)
    ship_to: ShipToIn
    window: WindowIn
    service_level: Literal["standard", "expedited", "appointment"] = "standard"
    service_minutes: int = Field(default=15, ge=0)
    notes: str = ""


class OrderPlaced(BaseModel):
    order_id: str
    position: int


class Imported(BaseModel):
    recorded: int
    unchanged: int
    position: int


def _tenant(who: Principal, requested: str | None) -> str:
    if who.role is Role.SHIPPER:
        if requested not in (None, who.tenant):
            raise NotFound("account", requested, field="tenant")
        assert who.tenant is not None
        return who.tenant
    if not requested:
        raise InvalidInput("tenant is required for a staff key", field="tenant", rule="required")
    return requested


@router.post("/orders", response_model=OrderPlaced, status_code=201)
def place_order(order: OrderIn, request: Request, services: Svc, who: Placer) -> OrderPlaced:
    """Place one order; placing the same reference again with the same content is a no-op."""
    tenant = _tenant(who, order.tenant)
    services.ledger.account(tenant)
    draft = OrderDraft(
        reference=order.reference,
        lines=tuple(
            OrderLine(i, x.sku, x.quantity, x.weight_kg, x.volume_m3)
            for i, x in enumerate(order.lines, start=1)
        ),
        ship_to_code=ship_to_code(tenant, order.ship_to.name, order.ship_to.address),
        ship_to_name=order.ship_to.name,
        ship_to_address=order.ship_to.address,
        ship_to=GeoPoint(order.ship_to.lat, order.ship_to.lon),
        window=TimeWindow(order.window.start, order.window.end),
        service_level=ServiceLevel(order.service_level),
        service_minutes=order.service_minutes,
        notes=order.notes,
    )
    position = services.ledger.place_order(caller_for(who, request), tenant, draft)
    return OrderPlaced(order_id=str(Order.create_id(tenant, order.reference)), position=position)


@router.post("/orders/csv", response_model=Imported, status_code=201)
async def import_orders(
    request: Request,
    services: Svc,
    who: Placer,
    tenant: Annotated[str | None, Query()] = None,
    _body: Annotated[str, Body(media_type="text/csv", description="orders CSV")] = "",
) -> Imported:
    """Import an orders CSV (see README for the columns): every row is checked first; one bad
    row refuses the file, listing every bad row, and nothing is written."""
    account = _tenant(who, tenant)
    text = await raw_text(request)
    drafts = parse_orders_csv(text, account)
    services.ledger.account(account)
    report = services.ledger.import_orders(caller_for(who, request, Source.CSV), account, drafts)
    return Imported(recorded=report.recorded, unchanged=report.unchanged, position=report.position)


class OrderOut(BaseModel):
    order_id: str
    tenant: str
    reference: str
    status: str
    on_hold: bool
    allocated_lines: list[int]
    backordered: list[list[int]]
    load_id: str | None


@router.get("/orders/{reference}", response_model=OrderOut)
def get_order(
    reference: str,
    services: Svc,
    who: Reader,
    tenant: Annotated[str | None, Query()] = None,
) -> OrderOut:
    """One order as its facts stand (another tenant's reads as not found)."""
    account = _tenant(who, tenant)
    state = fold_order(iter_log(services.ledger, stream=Order.create_id(account, reference)))
    if state is None:
        raise NotFound("order", reference)
    return OrderOut(
        order_id=str(state.order_id),
        tenant=state.tenant,
        reference=state.reference,
        status=state.status.value,
        on_hold=state.on_hold,
        allocated_lines=list(state.allocated_lines),
        backordered=[list(x) for x in state.backordered],
        load_id=str(state.load_id) if state.load_id else None,
    )
