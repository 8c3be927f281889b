"""Per-request dependencies: the services, the authenticated principal, role checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from api.errors import ApiError
from api.keys import Principal, Role, authenticate
from ledger.application import Caller, Ledger
from ledger.events import Source
from projections.db import Database
from projections.runner import Runner

__all__ = [
    "MAX_POSITION",
    "Auth",
    "Services",
    "Svc",
    "caller_for",
    "position_query",
    "require",
]


#: The largest log position (a 64-bit signed integer on both backends); larger is refused.
MAX_POSITION = 2**63 - 1


def position_query(description: str | None = None) -> Any:
    """A query parameter holding a log position: refused (422) outside 0..2^63-1."""
    return Query(description=description, ge=0, le=MAX_POSITION)


@dataclass
class Services:
    """What every request reads and writes through, built once per app."""

    ledger: Ledger
    db: Database
    runner: Runner
    graphiql: bool = True
    introspection: bool = True

    def wait_for(self, position: int | None, timeout: float = 10.0) -> None:
        """Read-your-writes: block until the views reach `position` (which must exist)."""
        if position is None or position <= 0:
            return
        head = self.ledger.position
        if position > head:
            raise ApiError(
                422,
                "invalid_input",
                f"wait_for {position} is beyond the log head {head}",
                "wait_for",
            )
        if not self.runner.wait_for(position, timeout):
            raise ApiError(503, "views_behind", f"views did not reach position {position} in time")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(get_services)]


def principal_from(services: Services, authorization: str | None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(401, "unauthenticated", "an API key is required (Authorization: Bearer …)")
    principal = authenticate(services.db, authorization.split(" ", 1)[1].strip())
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API key is unknown or revoked")
    return principal


def get_principal(request: Request, services: Svc) -> Principal:
    return principal_from(services, request.headers.get("authorization"))


Auth = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only the given roles (admin always)."""
    allowed = {Role.ADMIN, *roles}

    def check(principal: Auth) -> Principal:
        if principal.role not in allowed:
            raise ApiError(403, "forbidden", f"the {principal.role.value} role may not do this")
        return principal

    return check


def caller_for(principal: Principal, request: Request, source: Source = Source.API) -> Caller:
    """The ledger caller for a request: the key's principal, one correlation id per request."""
    correlation = request.headers.get("x-correlation-id") or request.state.request_id
    return Caller(actor=principal.actor, source=source, correlation_id=correlation)
