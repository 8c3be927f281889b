"""Billing: the lines per load, and the finance export pinned to a log position."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.deps import Svc, position_query, require
from api.keys import Principal, Role
from api.routes.common import load_for
from projections.billing import EXPORT_COLUMNS
from projections.invoicing import export_lines

router = APIRouter(tags=["billing"])
Finance = Annotated[Principal, Depends(require(Role.FINANCE, Role.AUDITOR))]


@router.get("/billing/loads/{load}/lines")
def load_lines(
    load: str,
    services: Svc,
    who: Finance,
    wait_for: Annotated[int | None, position_query()] = None,
) -> dict[str, Any]:
    """A load's current billing lines: pending, invoiced, adjustments (issued or pending)."""
    services.wait_for(wait_for)
    found = load_for(services, who, load)
    rows = services.db.query(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM billing_lines "
        "WHERE load_id = %s AND valid_to IS NULL ORDER BY line_id",
        [str(found.id)],
    )
    return {
        "lines": [dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in rows],
        "view_position": services.runner.position(),
    }


@router.get(
    "/billing/export",
    responses={
        200: {
            "description": "The lines, pinned at the position in X-Ledger-Position",
            "content": {"application/json": {}, "text/csv": {}},
            "headers": {"X-Ledger-Position": {"schema": {"type": "integer"}}},
        }
    },
)
def export(
    services: Svc,
    who: Finance,
    at: Annotated[int | None, position_query("log position (default: the view's)")] = None,
    since: Annotated[int | None, position_query("only lines that appeared after")] = None,
    format: Annotated[Literal["csv", "json"], Query()] = "json",
) -> Response:
    """Billing lines as they stood at a log position: repeating it is byte-identical."""
    position, body = export_lines(services.db, services.runner, at=at, since=since, fmt=format)
    media = "text/csv" if format == "csv" else "application/json"
    return Response(body, media_type=media, headers={"X-Ledger-Position": str(position)})
