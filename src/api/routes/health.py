"""Health: the process (/healthz) and whether it can serve (/readyz: store reachable, lag)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Svc

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: Svc) -> JSONResponse:
    """The store answers, and how far behind the log each view is."""
    try:
        head = services.ledger.position
        views = [
            {"view": s.name, "position": s.position, "lag_events": s.lag_events}
            for s in services.runner.status()
        ]
    except Exception as error:
        return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, 503)
    body: dict[str, Any] = {"status": "ready", "head": head, "views": views}
    return JSONResponse(body)
