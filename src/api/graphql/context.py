"""The per-request context: who is calling (from the Bearer key), the services, and a fresh
set of DataLoaders — never shared between requests, so no tenant ever reads another's cache."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from api.deps import Services, caller_for, principal_from
from api.errors import ApiError
from api.graphql.loaders import Loaders
from api.keys import Principal
from ledger.application import Caller
from ledger.events import Source

__all__ = ["GqlInfo", "GraphQLContext", "authenticate_params", "context_getter", "off_loop"]

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Runs a blocking ledger or database call in the worker threads REST endpoints use."""
    return await run_in_threadpool(function, *args, **kwargs)


class GraphQLContext(BaseContext):
    """What every resolver reads through: one per HTTP request or WebSocket connection."""

    def __init__(self, services: Services, principal: Principal | None, correlation_id: str):
        super().__init__()
        self.services = services
        self.principal = principal
        self.correlation_id = correlation_id
        self.loaders = Loaders(services, principal)

    def refresh_loaders(self) -> None:
        """A new set of loaders: each operation (and each subscription event) reads afresh."""
        self.loaders = Loaders(self.services, self.principal)

    def authenticate(self, principal: Principal) -> None:
        self.principal = principal
        self.refresh_loaders()

    def caller(self, source: Source = Source.API) -> Caller:
        """The ledger caller: the key's principal, one correlation id per request."""
        assert self.principal is not None, "resolvers that write are behind Authenticated"
        if isinstance(self.request, Request):
            return caller_for(self.principal, self.request, source)
        return Caller(actor=self.principal.actor, source=source, correlation_id=self.correlation_id)


GqlInfo = Info[GraphQLContext, None]


def _principal_or_none(services: Services, authorization: str | None) -> Principal | None:
    if not authorization:
        return None
    try:
        return principal_from(services, authorization)
    except ApiError:
        return None


def context_getter(services: Services) -> Callable[[HTTPConnection], Any]:
    """A FastAPI dependency building the context from the `Authorization: Bearer` header.

    A missing or unknown key leaves the principal empty: the GraphiQL page still loads, and
    every field then refuses with an authentication error (see `permissions`).
    """

    async def get_context(connection: HTTPConnection) -> GraphQLContext:
        principal = await off_loop(
            _principal_or_none, services, connection.headers.get("authorization")
        )
        correlation = (
            connection.headers.get("x-correlation-id")
            or getattr(connection.state, "request_id", None)
            or f"ws-{uuid.uuid4()}"
        )
        return GraphQLContext(services, principal, correlation)

    return get_context


def authenticate_params(services: Services, params: Mapping[str, Any]) -> Principal | None:
    """The principal of a `connection_init` payload `{"Authorization": "Bearer …"}`."""
    value = params.get("Authorization", params.get("authorization"))
    return _principal_or_none(services, value if isinstance(value, str) else None)
