"""Per-request DataLoaders over the views (and the few reference aggregates the views name).

Each loader batches the keys one resolver pass asks for into one query, so a page of loads
costs one query for all their stops, one for all their exceptions, and so on — never one per
load. A `Loaders` is built for each request (and each subscription event); the caches it
holds are that request's only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from strawberry.dataloader import DataLoader

from api.deps import Services
from api.graphql.permissions import row_visible, tenant_scope
from api.keys import Principal
from ledger.errors import NotFound
from ledger.reference import Driver, Location, Vehicle

__all__ = [
    "BILLING_COLUMNS",
    "BOARD_COLUMNS",
    "EXCEPTION_COLUMNS",
    "POSITION_COLUMNS",
    "STOP_COLUMNS",
    "Loaders",
    "Row",
    "placeholders",
]

Row = dict[str, Any]
K = TypeVar("K")
V = TypeVar("V")

#: The board's columns in the order `projections.load_board.board_row` builds them.
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
    "tenders",
    "tenders_accepted",
    "planned_day",
    "computed_from",
    "position",
)
#: Stop times' columns in the order `projections.stop_times.stop_row` builds them.
STOP_COLUMNS = (
    "stop_id",
    "load_id",
    "sequence",
    "kind",
    "location_id",
    "window_start",
    "window_end",
    "appointment_start",
    "appointment_end",
    "arrived_at",
    "arrival_source",
    "arrival_fact",
    "departed_at",
    "departure_source",
    "departure_fact",
    "dwell_minutes",
    "detention_minutes",
    "on_time",
    "eta",
    "day",
    "computed_from",
    "position",
)
EXCEPTION_COLUMNS = (
    "exception_id",
    "load_id",
    "load_reference",
    "stop_id",
    "kind",
    "owner",
    "note",
    "raised_at",
    "carrier_code",
    "tenants",
    "position",
)
POSITION_COLUMNS = (
    "device_id",
    "vehicle_code",
    "lat",
    "lon",
    "speed_kph",
    "heading",
    "fix_at",
    "ping_id",
    "position",
)
BILLING_COLUMNS = (
    "line_id",
    "load_id",
    "charge_key",
    "code",
    "stop_id",
    "quantity",
    "unit",
    "rate",
    "amount",
    "currency",
    "rate_card",
    "rate_version",
    "sources",
    "status",
    "invoice_number",
    "adjusts",
    "valid_from",
)


def placeholders(count: int) -> str:
    return "(" + ", ".join(["%s"] * count) + ")"


def _grouped(rows: Sequence[Row], key: str, keys: Sequence[str]) -> list[list[Row]]:
    groups: dict[str, list[Row]] = {k: [] for k in keys}
    for row in rows:
        groups.setdefault(str(row[key]), []).append(row)
    return [groups[k] for k in keys]


class Loaders:
    """The loaders of one request; build a new one rather than reuse one across requests."""

    def __init__(self, services: Services, principal: Principal | None):
        self.services = services
        self.principal = principal
        self.boards: DataLoader[str, Row | None] = DataLoader(load_fn=self._boards)
        self.stops: DataLoader[str, list[Row]] = DataLoader(load_fn=self._stops)
        self.exceptions: DataLoader[str, list[Row]] = DataLoader(load_fn=self._exceptions)
        self.position_by_vehicle: DataLoader[str, Row | None] = DataLoader(load_fn=self._positions)
        self.billing: DataLoader[tuple[str, int | None], list[Row]] = DataLoader(
            load_fn=self._billing
        )
        self.drivers: DataLoader[str, Driver | None] = DataLoader(
            load_fn=self._aggregates(self.services.ledger.driver)
        )
        self.vehicles: DataLoader[str, Vehicle | None] = DataLoader(
            load_fn=self._aggregates(self.services.ledger.vehicle)
        )
        self.locations: DataLoader[str, Location | None] = DataLoader(
            load_fn=self._aggregates(lambda key: self.services.ledger.location_by_id(UUID(key)))
        )

    def _rows(self, columns: Sequence[str], sql: str, params: Sequence[object]) -> list[Row]:
        rows = self.services.db.query(sql, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    async def _select(
        self, columns: Sequence[str], table: str, where: str, params: Sequence[object]
    ) -> list[Row]:
        sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {where}"
        return await run_in_threadpool(self._rows, columns, sql, params)

    async def _boards(self, load_ids: list[str]) -> list[Row | None]:
        """Board rows by load id — only those the caller may see (None otherwise)."""
        assert self.principal is not None, "board rows are read for an authenticated caller"
        scope, params = tenant_scope(self.principal)
        rows = await self._select(
            BOARD_COLUMNS,
            "load_board",
            f"load_id IN {placeholders(len(load_ids))}{scope}",
            [*load_ids, *params],
        )
        principal = self.principal
        found = {
            str(row["load_id"]): row
            for row in rows
            if row_visible(principal, str(row["tenants"]), row["carrier_code"])
        }
        return [found.get(load_id) for load_id in load_ids]

    async def _stops(self, load_ids: list[str]) -> list[list[Row]]:
        rows = await self._select(
            STOP_COLUMNS,
            "stop_times",
            f"load_id IN {placeholders(len(load_ids))} ORDER BY load_id, sequence",
            load_ids,
        )
        return _grouped(rows, "load_id", load_ids)

    async def _exceptions(self, load_ids: list[str]) -> list[list[Row]]:
        rows = await self._select(
            EXCEPTION_COLUMNS,
            "exceptions_queue",
            f"load_id IN {placeholders(len(load_ids))} ORDER BY raised_at, exception_id",
            load_ids,
        )
        return _grouped(rows, "load_id", load_ids)

    async def _positions(self, vehicle_codes: list[str]) -> list[Row | None]:
        rows = await self._select(
            POSITION_COLUMNS,
            "vehicle_positions",
            f"vehicle_code IN {placeholders(len(vehicle_codes))} AND fix_at <> '' "
            "ORDER BY fix_at, position",
            vehicle_codes,
        )
        latest = {str(row["vehicle_code"]): row for row in rows}  # the last fix wins
        return [latest.get(code) for code in vehicle_codes]

    async def _billing(self, keys: list[tuple[str, int | None]]) -> list[list[Row]]:
        """Current lines, or the lines as they stood at a log position (their history)."""
        found: dict[tuple[str, int | None], list[Row]] = {}
        for known_at in dict.fromkeys(k for _, k in keys):
            load_ids = list(dict.fromkeys(load_id for load_id, k in keys if k == known_at))
            where = f"load_id IN {placeholders(len(load_ids))}"
            params: list[object] = list(load_ids)
            if known_at is None:
                where += " AND valid_to IS NULL"
            else:
                where += " AND valid_from <= %s AND (valid_to IS NULL OR valid_to > %s)"
                params += [known_at, known_at]
            rows = await self._select(
                BILLING_COLUMNS, "billing_lines", where + " ORDER BY line_id", params
            )
            groups = _grouped(rows, "load_id", load_ids)
            for load_id, group in zip(load_ids, groups, strict=True):
                found[(load_id, known_at)] = group
        return [found[key] for key in keys]

    @staticmethod
    def _aggregates(get: Callable[[str], V]) -> Callable[[list[str]], Any]:
        def fetch(keys: list[str]) -> list[V | None]:
            found: list[V | None] = []
            for key in keys:
                try:
                    found.append(get(key))
                except NotFound:
                    found.append(None)
            return found

        async def load(keys: list[str]) -> list[V | None]:
            return await run_in_threadpool(fetch, keys)

        return load
