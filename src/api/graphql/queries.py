"""Reads: the board with cursor pagination, a load now or at a viewpoint (bitemporal),
stock, vehicle positions, KPIs and the exceptions queue — each kept to the caller's tenant."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Any
from uuid import UUID

import strawberry
from graphql import GraphQLError

from api.errors import ApiError
from api.graphql.context import GqlInfo, off_loop
from api.graphql.fields import field
from api.graphql.loaders import BOARD_COLUMNS, EXCEPTION_COLUMNS, POSITION_COLUMNS, Row
from api.graphql.permissions import (
    AnyRole,
    Authenticated,
    Staff,
    StaffOrCarrier,
    member_of,
    row_visible,
    tenant_scope,
)
from api.graphql.results import query_error
from api.graphql.scalars import LogPosition
from api.graphql.types import (
    ExceptionKind,
    InventoryPosition,
    Kpi,
    Load,
    LoadConnection,
    LoadEdge,
    LoadStatus,
    Node,
    OpenException,
    PageInfo,
    VehiclePosition,
    decode_global_id,
)
from api.keys import Principal, Role
from api.routes.common import visible_load
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.history import load_history
from ledger.loads import Load as LoadAggregate

__all__ = ["MAX_PAGE", "Query", "board_rows", "decode_cursor", "encode_cursor"]

#: The largest page `loads(first:)` serves.
MAX_PAGE = 500

_INVENTORY_COLUMNS = (
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
    "position",
)
_KPI_STOP_COLUMNS = (
    "day",
    "carrier_code",
    "customer",
    "stops",
    "pickups",
    "pickups_on_time",
    "deliveries",
    "deliveries_on_time",
    "dwell_minutes",
    "dwell_stops",
    "detention_minutes",
)
_KPI_LOAD_COLUMNS = (
    "day",
    "carrier_code",
    "customer",
    "loads",
    "tenders",
    "tenders_accepted",
    "exceptions",
)


def encode_cursor(reference: str) -> str:
    return base64.urlsafe_b64encode(f"ref:{reference}".encode()).decode()


def decode_cursor(cursor: str) -> str:
    """The reference a cursor stands for; a cursor not made here is refused."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("ref:"):
        raise query_error(InvalidInput("after is not a cursor from this API", field="after"))
    return text[len("ref:") :]


def _principal(info: GqlInfo) -> Principal:
    principal = info.context.principal
    assert principal is not None, "root fields are behind Authenticated"
    return principal


async def _query(info: GqlInfo, columns: tuple[str, ...], sql: str, params: list[Any]) -> list[Row]:
    rows = await off_loop(info.context.services.db.query, sql, params)
    return [dict(zip(columns, row, strict=True)) for row in rows]


async def _wait_for(info: GqlInfo, position: LogPosition | None) -> None:
    """Read-your-writes: the views reach `position` before the read (they run meanwhile)."""
    try:
        await off_loop(info.context.services.wait_for, position)
    except ApiError as error:
        raise GraphQLError(str(error), extensions={"code": "VIEWS_BEHIND"}) from None


async def board_rows(
    info: GqlInfo, where: str = "", params: list[Any] | None = None, tail: str = ""
) -> list[Row]:
    """Board rows the caller may see (`where` is ANDed after the tenant scope)."""
    principal = _principal(info)
    scope, scope_params = tenant_scope(principal)
    sql = f"SELECT {', '.join(BOARD_COLUMNS)} FROM load_board WHERE 1 = 1{scope}{where}{tail}"
    rows = await _query(info, BOARD_COLUMNS, sql, [*scope_params, *(params or [])])
    return [row for row in rows if _visible(principal, row)]  # the SQL said so; Python agrees


def _visible(principal: Principal, row: Row) -> bool:
    return row_visible(principal, str(row["tenants"]), row["carrier_code"])


def _not_for_shippers(info: GqlInfo, argument: str) -> None:
    """Filtering by a field outside the customer-safe view would reveal it."""
    if _principal(info).role is Role.SHIPPER:
        raise GraphQLError(
            f"a shipper key may not filter by {argument}",
            extensions={"code": "FORBIDDEN", "field": argument},
        )


def _load_uuid(key: str) -> UUID:
    """A load id, or the id of a load reference."""
    try:
        return UUID(key)
    except ValueError:
        return LoadAggregate.create_id(key)


async def current_load(info: GqlInfo, key: str) -> Load | None:
    row = await info.context.loaders.boards.load(str(_load_uuid(key)))
    return None if row is None else Load.from_row(row)


async def _historic_load(
    info: GqlInfo, key: str, as_of: datetime | None, known_at: int | datetime | None
) -> Load | None:
    ledger = info.context.services.ledger
    load_id = _load_uuid(key)
    try:
        found = await off_loop(ledger.load, load_id)
    except NotFound:
        return None
    if not visible_load(_principal(info), found):
        return None
    try:
        history = await off_loop(load_history, ledger, load_id, as_of=as_of, known_at=known_at)
    except NotFound:
        return None
    except LedgerError as error:
        raise query_error(error) from None
    return Load.from_history(history)


@strawberry.type
class Query:
    @field(
        description="The load board in reference order; pass `endCursor` as `after` for more.",
        permission_classes=[Authenticated, AnyRole],
    )
    async def loads(
        self,
        info: GqlInfo,
        status: LoadStatus | None = None,
        carrier: str | None = None,
        customer: str | None = None,
        day: date | None = None,
        first: int = 50,
        after: str | None = None,
        wait_for: LogPosition | None = None,
    ) -> LoadConnection:
        if not 1 <= first <= MAX_PAGE:
            raise query_error(
                InvalidInput(f"first must be 1 to {MAX_PAGE}", field="first", rule="1..500")
            )
        if carrier is not None:
            _not_for_shippers(info, "carrier")
        await _wait_for(info, wait_for)
        where, params = "", list[object]()
        for column, value in (
            ("status", status.value if status else None),
            ("carrier_code", carrier),
            ("planned_day", day.isoformat() if day else None),
        ):
            if value is not None:
                where += f" AND {column} = %s"
                params.append(value)
        if customer is not None:
            clause, more = member_of("tenants", customer)
            where += clause
            params += more
        if after is not None:
            where += " AND reference > %s"
            params.append(decode_cursor(after))
        rows = await board_rows(info, where, [*params, first + 1], " ORDER BY reference LIMIT %s")
        page = rows[:first]
        edges = [
            LoadEdge(cursor=encode_cursor(str(row["reference"])), node=Load.from_row(row))
            for row in page
        ]
        position = await off_loop(info.context.services.runner.position)
        return LoadConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            view_position=LogPosition(position),
        )

    @field(
        description="A load by id or reference: as the board shows it now, or — given `asOf` "
        "(facts that had happened by then) and/or `asKnownAt` (a log position) or "
        "`asKnownAtTime` (what the ledger had recorded by then) — folded at that viewpoint. "
        "Null when it does not exist or is another tenant's.",
        permission_classes=[Authenticated, AnyRole],
    )
    async def load(
        self,
        info: GqlInfo,
        id: strawberry.ID,
        as_of: datetime | None = None,
        as_known_at: LogPosition | None = None,
        as_known_at_time: datetime | None = None,
        wait_for: LogPosition | None = None,
    ) -> Load | None:
        if as_known_at is not None and as_known_at_time is not None:
            raise query_error(
                InvalidInput(
                    "give asKnownAt or asKnownAtTime, not both",
                    field="asKnownAtTime",
                    rule="one of",
                )
            )
        known_at: int | datetime | None = (
            as_known_at if as_known_at is not None else as_known_at_time
        )
        if as_of is None and known_at is None:
            await _wait_for(info, wait_for)
            return await current_load(info, str(id))
        return await _historic_load(info, str(id), as_of, known_at)

    @field(
        description="An object by its global id (null when unknown or another tenant's).",
        permission_classes=[Authenticated, AnyRole],
    )
    async def node(self, info: GqlInfo, id: strawberry.ID) -> Node | None:
        decoded = decode_global_id(str(id))
        if decoded is None or decoded[0] != "Load":
            return None
        return await current_load(info, decoded[1])

    @field(
        description="Stock per warehouse × sku × lot.",
        permission_classes=[Authenticated, Staff],
    )
    async def inventory_positions(
        self, info: GqlInfo, warehouse: str | None = None, sku: str | None = None
    ) -> list[InventoryPosition]:
        where, params = "", []
        for column, value in (("warehouse", warehouse), ("sku", sku)):
            if value is not None:
                where += f" AND {column} = %s"
                params.append(value)
        sql = (
            f"SELECT {', '.join(_INVENTORY_COLUMNS)} FROM inventory_positions WHERE 1 = 1"
            f"{where} ORDER BY warehouse, sku, lot"
        )
        rows = await _query(info, _INVENTORY_COLUMNS, sql, params)
        return [InventoryPosition.from_row(row) for row in rows]

    @field(
        description="The last known position of each vehicle (a carrier: its own vehicles).",
        permission_classes=[Authenticated, StaffOrCarrier],
    )
    async def vehicle_positions(
        self, info: GqlInfo, vehicle: str | None = None
    ) -> list[VehiclePosition]:
        where, params = "", []
        if vehicle is not None:
            where, params = " AND vehicle_code = %s", [vehicle]
        sql = (
            f"SELECT {', '.join(POSITION_COLUMNS)} FROM vehicle_positions "
            f"WHERE fix_at <> ''{where} ORDER BY vehicle_code, device_id"
        )
        rows = await _query(info, POSITION_COLUMNS, sql, params)
        principal = _principal(info)
        if principal.role is Role.CARRIER:
            owners = await info.context.loaders.vehicles.load_many(
                [str(row["vehicle_code"] or "") for row in rows]
            )
            rows = [
                row
                for row, owner in zip(rows, owners, strict=True)
                if not isinstance(owner, BaseException)
                and owner is not None
                and owner.carrier_code == principal.tenant
            ]
        return [VehiclePosition.from_row(row) for row in rows]

    @field(
        description="KPIs by day, carrier and customer (a carrier: its own scorecard).",
        permission_classes=[Authenticated, StaffOrCarrier],
    )
    async def kpis(
        self,
        info: GqlInfo,
        day: date | None = None,
        carrier: str | None = None,
        customer: str | None = None,
    ) -> list[Kpi]:
        principal = _principal(info)
        where, params = "", list[object]()
        if principal.role is Role.CARRIER:
            where, params = " AND carrier_code = %s", [principal.tenant]
        for column, value in (("day", day.isoformat() if day else None), ("carrier_code", carrier)):
            if value is not None:
                where += f" AND {column} = %s"
                params.append(value)
        if customer is not None:
            clause, more = member_of("customer", customer)
            where += clause
            params += more
        stops = await _query(
            info,
            _KPI_STOP_COLUMNS,
            f"SELECT {', '.join(_KPI_STOP_COLUMNS)} FROM kpi_daily WHERE 1 = 1{where}",
            params,
        )
        loads = await _query(
            info,
            _KPI_LOAD_COLUMNS,
            f"SELECT {', '.join(_KPI_LOAD_COLUMNS)} FROM kpi_loads_daily WHERE 1 = 1{where}",
            params,
        )

        def key(row: Row) -> tuple[str, str, str]:
            return (str(row["day"]), str(row["carrier_code"] or ""), str(row["customer"]))

        by_stops = {key(row): row for row in stops}
        by_loads = {key(row): row for row in loads}
        return [
            Kpi.from_row(k, by_stops.get(k), by_loads.get(k))
            for k in sorted(by_stops.keys() | by_loads.keys())
        ]

    @field(
        description="Open exceptions, oldest first, with their age and owner.",
        permission_classes=[Authenticated, AnyRole],
    )
    async def exceptions_queue(
        self, info: GqlInfo, owner: str | None = None, kind: ExceptionKind | None = None
    ) -> list[OpenException]:
        if owner is not None:
            _not_for_shippers(info, "owner")
        scope, params = tenant_scope(_principal(info))
        for column, value in (("owner", owner), ("kind", kind.value if kind else None)):
            if value is not None:
                scope += f" AND {column} = %s"
                params.append(value)
        sql = (
            f"SELECT {', '.join(EXCEPTION_COLUMNS)} FROM exceptions_queue WHERE 1 = 1{scope} "
            "ORDER BY raised_at, exception_id"
        )
        rows = await _query(info, EXCEPTION_COLUMNS, sql, params)
        return [OpenException.from_row(row) for row in rows]
