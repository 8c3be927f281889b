"""Stock: receipts, movements on a lot, and inventory positions."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import Svc, caller_for, position_query, require
from api.keys import Principal, Role
from api.routes.common import Recorded
from ledger.errors import InvalidInput

router = APIRouter(tags=["stock"])
Warehouse = Annotated[Principal, Depends(require(Role.DISPATCHER))]
Reader = Annotated[
    Principal, Depends(require(Role.DISPATCHER, Role.AUDITOR, Role.SUPPORT, Role.FINANCE))
]
POSITION_COLUMNS = (
    "stock_id",
    "warehouse",
    "sku",
    "lot",
    "expiry",
    "on_hand",
    "reserved",
    "picked",
    "staged",
    "quarantined",
    "available",
)


class ReceiptIn(BaseModel):
    warehouse: str = Field(min_length=1, examples=["WH-CHI-1"])
    sku: str = Field(min_length=1)
    lot: str = ""
    quantity: int = Field(gt=0, le=1_000_000_000)
    expiry: date | None = None
    occurred_at: AwareDatetime | None = None
    reason: str | None = None


@router.post("/stock/receipts", response_model=Recorded, status_code=201)
def receive(body: ReceiptIn, request: Request, services: Svc, who: Warehouse) -> Recorded:
    """Receive stock into a warehouse lot (back-dated receipts need a reason)."""
    return Recorded(
        position=services.ledger.receive_stock(
            caller_for(who, request),
            warehouse=body.warehouse,
            sku=body.sku,
            lot=body.lot,
            quantity=body.quantity,
            expiry=body.expiry,
            occurred_at=body.occurred_at,
            reason=body.reason,
        )
    )


class MovementIn(BaseModel):
    kind: Literal["reserve", "release", "adjust", "quarantine", "release_quarantine", "damage"]
    quantity: int = Field(
        ge=-1_000_000_000,
        le=1_000_000_000,
        description="units; for adjust, the signed change of on hand",
    )
    order_id: UUID | None = None
    reason: str | None = None
    from_quarantine: bool = False


@router.post("/stock/{stock_id}/movements", response_model=Recorded, status_code=201)
def move(
    stock_id: UUID, body: MovementIn, request: Request, services: Svc, who: Warehouse
) -> Recorded:
    """A movement on one lot; reservations never oversell, adjustments need a reason."""
    ledger, caller = services.ledger, caller_for(who, request)
    if body.kind in ("reserve", "release") and body.order_id is None:
        raise InvalidInput(f"{body.kind} needs order_id", field="order_id", rule="required")
    if body.kind == "reserve":
        assert body.order_id is not None
        position = ledger.reserve_stock(caller, stock_id, body.order_id, body.quantity)
    elif body.kind == "release":
        assert body.order_id is not None
        position = ledger.release_reservation(caller, stock_id, body.order_id, body.quantity)
    elif body.kind == "adjust":
        position = ledger.adjust_stock(caller, stock_id, body.quantity, body.reason or "")
    elif body.kind == "quarantine":
        position = ledger.quarantine_stock(caller, stock_id, body.quantity, body.reason or "")
    elif body.kind == "release_quarantine":
        position = ledger.release_quarantine(caller, stock_id, body.quantity)
    else:
        position = ledger.record_damage(
            caller, stock_id, body.quantity, body.reason or "", from_quarantine=body.from_quarantine
        )
    return Recorded(position=position)


@router.get("/stock/positions")
def positions(
    services: Svc,
    who: Reader,
    warehouse: Annotated[str | None, Query()] = None,
    sku: Annotated[str | None, Query()] = None,
    wait_for: Annotated[int | None, position_query()] = None,
) -> dict[str, Any]:
    """Inventory positions per warehouse × sku × lot."""
    services.wait_for(wait_for)
    sql = f"SELECT {', '.join(POSITION_COLUMNS)} FROM inventory_positions WHERE 1 = 1"
    params: list[object] = []
    if warehouse:
        sql += " AND warehouse = %s"
        params.append(warehouse)
    if sku:
        sql += " AND sku = %s"
        params.append(sku)
    rows = services.db.query(sql + " ORDER BY warehouse, sku, lot", params)
    return {
        "positions": [dict(zip(POSITION_COLUMNS, r, strict=True)) for r in rows],
        "view_position": services.runner.position(),
    }
