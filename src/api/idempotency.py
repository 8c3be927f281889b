"""Idempotent writes: the same `Idempotency-Key` and body replays the first response; the
same key with a different body is refused (422); a duplicate still in flight gets 409."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from projections.db import Database

__all__ = ["IdempotencyMiddleware"]

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "field": "Idempotency-Key",
        "rule": "idempotency",
        "problems": [],
    }
    return JSONResponse(body, status_code=status)


class IdempotencyMiddleware(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        key = request.headers.get("idempotency-key")
        if request.method not in _WRITES or not key or not request.url.path.startswith("/api/"):
            return await call_next(request)
        db: Database = request.app.state.services.db
        token = request.headers.get("authorization", "")
        principal = hashlib.sha256(token.encode()).hexdigest()[:32]  # never the key itself
        body = await request.body()
        digest = hashlib.sha256(
            request.method.encode()
            + b" "
            + request.url.path.encode()
            + b"?"
            + str(request.url.query).encode()
            + b"\n"
            + body
        ).hexdigest()
        with db.transaction() as cursor:
            row = cursor.execute(
                "SELECT request_hash, status_code, response_body FROM idempotency_keys "
                "WHERE principal = %s AND idempotency_key = %s",
                (principal, key),
            ).fetchone()
            if row is None:
                cursor.execute(
                    "INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, "
                    "created_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (principal, key, digest, datetime.now(UTC).isoformat()),
                )
                claimed = cursor.rowcount == 1
            else:
                claimed = False
        if row is None and not claimed:
            return _refusal(409, "idempotency_in_flight", "the same request is being processed")
        if row is not None:
            if row[0] != digest:
                return _refusal(
                    422,
                    "idempotency_mismatch",
                    "this Idempotency-Key was used with a different request",
                )
            if row[1] is None:
                return _refusal(409, "idempotency_in_flight", "the same request is being processed")
            return Response(
                str(row[2]),
                status_code=int(row[1]),
                media_type="application/json",
                headers={"Idempotency-Replayed": "true"},
            )
        try:
            response = await call_next(request)
        except BaseException:
            self._release(db, principal, key)
            raise
        chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        payload = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        if response.status_code >= 500:
            self._release(db, principal, key)  # a failure is not a result: let a retry run
        else:
            with db.transaction() as cursor:
                cursor.execute(
                    "UPDATE idempotency_keys SET status_code = %s, response_body = %s "
                    "WHERE principal = %s AND idempotency_key = %s",
                    (response.status_code, payload.decode(), principal, key),
                )
        headers = dict(response.headers)
        headers.pop("content-length", None)
        return Response(
            payload,
            status_code=response.status_code,
            headers=headers,
            media_type=response.media_type,
        )

    @staticmethod
    def _release(db: Database, principal: str, key: str) -> None:
        with db.transaction() as cursor:
            cursor.execute(
                "DELETE FROM idempotency_keys WHERE principal = %s AND idempotency_key = %s "
                "AND status_code IS NULL",
                (principal, key),
            )
