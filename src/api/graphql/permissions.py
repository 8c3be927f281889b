"""Who may read or do what, field by field, and which rows each tenant may see.

Every root field carries `Authenticated` (no key, or an unknown one: an authentication
error) and one role class (the wrong role: a forbidden error). Fields a customer must not
see (carrier, driver, internal owners and notes, sources, rates) carry `hidden_from_shippers()`
and read as null for shipper keys. Tenant rows follow the REST rules exactly: a shipper sees
loads whose `tenants` include its account, a carrier those with its `carrier_code`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission, PermissionExtension

from api.keys import Principal, Role

__all__ = [
    "AnyRole",
    "Authenticated",
    "Billing",
    "Dispatching",
    "DispatchingOrCarrier",
    "NotShipper",
    "Staff",
    "StaffOrCarrier",
    "hidden_from_shippers",
    "member_of",
    "row_visible",
    "tenant_scope",
]

STAFF = frozenset({Role.ADMIN, Role.DISPATCHER, Role.FINANCE, Role.AUDITOR, Role.SUPPORT})


def _principal(info: Any) -> Principal | None:
    principal: Principal | None = info.context.principal
    return principal


class Authenticated(BasePermission):
    message = "a valid API key is required (Authorization: Bearer …)"

    def __init__(self) -> None:
        self.error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return _principal(info) is not None


class _RoleRequired(BasePermission):
    roles: ClassVar[frozenset[Role]] = frozenset()

    def __init__(self) -> None:
        self.error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = _principal(info)
        return principal is not None and principal.role in self.roles


class AnyRole(_RoleRequired):
    message = "this key may not read this"
    roles = frozenset(Role)


class Staff(_RoleRequired):
    message = "only staff keys (admin, dispatcher, finance, auditor, support) may read this"
    roles = STAFF


class StaffOrCarrier(_RoleRequired):
    message = "only staff and carrier keys may read this"
    roles = STAFF | {Role.CARRIER}


class Dispatching(_RoleRequired):
    message = "only dispatcher (or admin) keys may do this"
    roles = frozenset({Role.ADMIN, Role.DISPATCHER})


class DispatchingOrCarrier(_RoleRequired):
    message = "only dispatcher, carrier (or admin) keys may do this"
    roles = frozenset({Role.ADMIN, Role.DISPATCHER, Role.CARRIER})


class Billing(_RoleRequired):
    message = "only finance, auditor (or admin) keys may read billing lines"
    roles = frozenset({Role.ADMIN, Role.FINANCE, Role.AUDITOR})


class NotShipper(_RoleRequired):
    message = "not part of the customer-safe view"
    roles = frozenset(r for r in Role if r is not Role.SHIPPER)


def hidden_from_shippers() -> PermissionExtension:
    """A field outside the customer-safe view: null (or empty) for shipper keys."""
    return PermissionExtension(permissions=[NotShipper()], fail_silently=True)


def member_of(tenants: str, account: str) -> tuple[str, list[object]]:
    """SQL: the comma-separated `tenants` column lists `account` (wildcards escaped)."""
    escaped = account.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f" AND (',' || {tenants} || ',') LIKE %s ESCAPE '\\'", [f"%,{escaped},%"]


def tenant_scope(principal: Principal, tenants: str = "tenants") -> tuple[str, list[object]]:
    """The SQL condition (to AND into a WHERE) that keeps a tenant to its own rows."""
    if principal.role is Role.SHIPPER:
        return member_of(tenants, principal.tenant or "")
    if principal.role is Role.CARRIER:
        return " AND carrier_code = %s", [principal.tenant]
    return "", []


def row_visible(principal: Principal, tenants: str, carrier_code: str | None) -> bool:
    """The same rule on one row already read (`api.routes.common.visible_load` on a view)."""
    if principal.role is Role.SHIPPER:
        return principal.tenant in tenants.split(",")
    if principal.role is Role.CARRIER:
        return carrier_code == principal.tenant
    return True
