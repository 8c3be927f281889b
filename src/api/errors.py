"""One place maps ledger refusals to HTTP: one JSON shape, the field or row at fault.

{"code": "...", "message": "...", "field": "...", "rule": "...", "problems": [...]}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    BatchRejected,
    ConcurrencyConflict,
    InvalidInput,
    LedgerError,
    NotFound,
    RuleViolation,
)

__all__ = ["ErrorBody", "ProblemRow", "install_error_handlers", "status_for"]


class ProblemRow(BaseModel):
    row: int
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every refusal has this shape."""

    code: str
    message: str
    field: str | None = None
    rule: str | None = None
    problems: list[ProblemRow] = []


def status_for(error: LedgerError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, RuleViolation | ConcurrencyConflict):
        return 409
    return 400


def error_body(error: LedgerError) -> dict[str, Any]:
    body: dict[str, Any] = {**error.as_dict(), "problems": []}
    if isinstance(error, BatchRejected):
        body["problems"] = [
            {"row": row, "field": field, "reason": reason} for row, field, reason in error.problems
        ]
    return body


class ApiError(Exception):
    """A refusal raised by the HTTP layer itself (authentication, permissions, idempotency)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "code": code,
            "message": message,
            "field": field,
            "rule": None,
            "problems": [],
        }


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(_: Request, error: LedgerError) -> JSONResponse:
        return JSONResponse(error_body(error), status_code=status_for(error))

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body, status_code=error.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        body: dict[str, Any] = {
            "code": "http_error",
            "message": str(error.detail),
            "field": None,
            "rule": None,
            "problems": [],
        }
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "row": 0,
                "field": ".".join(str(p) for p in e["loc"] if p != "body"),
                "reason": e["msg"],
            }
            for e in error.errors()
        ]
        first = problems[0] if problems else {"field": None, "reason": "invalid request"}
        body = {
            "code": "invalid_input",
            "message": f"{first['field']}: {first['reason']}",
            "field": first["field"],
            "rule": "schema",
            "problems": problems,
        }
        return JSONResponse(body, status_code=422)
