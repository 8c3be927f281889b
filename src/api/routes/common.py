"""What the routers share: position responses, load visibility by role and tenant."""

from __future__ import annotations

from uuid import UUID

from fastapi import Request
from pydantic import BaseModel

from api.deps import Services
from api.keys import Principal, Role
from ledger.errors import NotFound
from ledger.loads import Load

__all__ = ["Recorded", "load_for", "raw_text", "visible_load"]


class Recorded(BaseModel):
    """A write's result: the log position of its last event (wait for it on reads)."""

    position: int


def visible_load(principal: Principal, load: Load) -> bool:
    """Shippers see their own loads, carriers the loads tendered to them; staff see all."""
    if principal.role is Role.SHIPPER:
        return principal.tenant in load.tenants
    if principal.role is Role.CARRIER:
        return load.carrier_code == principal.tenant
    return True


def load_for(services: Services, principal: Principal, load: str) -> Load:
    """A load by id or reference, as not found when the caller may not see it."""
    try:
        found = services.ledger.load(UUID(load))
    except ValueError:
        found = services.ledger.load_by_reference(load)
    if not visible_load(principal, found):
        raise NotFound("load", load)
    return found


async def raw_text(request: Request, limit: int = 20 * 1024 * 1024) -> str:
    body = await request.body()
    if len(body) > limit:
        from ledger.errors import InvalidInput

        raise InvalidInput(f"the body is larger than {limit} bytes", field="body")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        from ledger.errors import InvalidInput

        raise InvalidInput("the body is not UTF-8 text", field="body") from None
