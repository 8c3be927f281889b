"""`create_app(settings)`: REST under /api/v1, GraphQL at /graphql, health at /healthz and
/readyz — one FastAPI app over one ledger and its views."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response

from api import tracking
from api.board import board_router
from api.deps import Services
from api.errors import ErrorBody, install_error_handlers
from api.idempotency import IdempotencyMiddleware
from api.nul import RefuseNul
from api.routes import (
    billing,
    edi,
    health,
    loads,
    notifications,
    orders,
    plans,
    stock,
    telematics,
)
from ledger.application import Ledger
from projections.db import Database
from projections.migrations import migrate
from projections.runner import Runner

__all__ = ["Settings", "create_app"]

ERRORS = {
    400: {"model": ErrorBody, "description": "A body that is not the declared media type"},
    401: {"model": ErrorBody, "description": "No API key, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "The key's role may not do this"},
    404: {"model": ErrorBody, "description": "Not found (or another tenant's)"},
    409: {
        "model": ErrorBody,
        "description": "Refused by a business rule, or a concurrent duplicate",
    },
    422: {"model": ErrorBody, "description": "Bad input: the field, row and rule at fault"},
    503: {"model": ErrorBody, "description": "The views did not reach `wait_for` in time"},
}


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    graphiql: bool = True
    introspection: bool = True


def create_app(settings: Settings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What start-up built (schema, routes, the library's classes) lives as long as the
        # process: move it out of the collector's sight, so a full collection walks only
        # what requests create and the board's p99 is not a collector pause.
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()  # an app that stops (tests start many) leaves its objects collectable
        app.state.services.db.close()

    app = FastAPI(
        title="shipledger",
        version="1",
        summary="An event-sourced shipment ledger: orders, stock, loads, stops and telematics.",
        lifespan=lifespan,
    )
    the_ledger = ledger or Ledger(settings.database_url)
    db = Database(settings.database_url)
    migrate(db)
    app.state.services = Services(
        ledger=the_ledger,
        db=db,
        runner=Runner(the_ledger, db),
        graphiql=settings.graphiql,
        introspection=settings.introspection,
    )
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RefuseNul)  # added last: runs first, before a key or a body is kept

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = request.headers.get("x-request-id") or f"req-{uuid.uuid4()}"
        response = await call_next(request)
        response.headers["x-request-id"] = request.state.request_id
        return response

    app.include_router(health.router)
    for module in (orders, stock, telematics, edi, loads, billing, plans, notifications):
        app.include_router(module.router, prefix="/api/v1", responses=ERRORS)  # type: ignore[arg-type]
    app.include_router(tracking.router)  # public: /track/{token}
    app.include_router(board_router)  # the dispatcher's board: /board
    _mount_graphql(app)
    return app


def _mount_graphql(app: FastAPI) -> None:
    try:
        from api.graphql.router import graphql_router
    except ImportError:  # the GraphQL schema is optional until it lands
        return
    # GraphQL documents itself (introspection, GraphiQL); it stays out of the OpenAPI file
    app.include_router(
        graphql_router(app.state.services), prefix="/graphql", include_in_schema=False
    )
