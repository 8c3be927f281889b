"""API keys: `sl_<id>_<secret>`, bound to a role and (for carriers and shippers) a tenant.

Only a SHA-256 of the secret is stored; the key is shown once, when it is created.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.errors import InvalidInput
from projections.db import Database

__all__ = ["Principal", "Role", "authenticate", "create_key", "has_keys", "revoke_key"]


class Role(enum.StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    FINANCE = "finance"
    AUDITOR = "auditor"
    SUPPORT = "support"
    CARRIER = "carrier"
    SHIPPER = "shipper"


#: Roles whose keys are bound to one tenant (a carrier code or a shipper account).
TENANT_ROLES = {Role.CARRIER, Role.SHIPPER}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the actor recorded on every event they cause."""

    key_id: str
    role: Role
    tenant: str | None

    @property
    def actor(self) -> str:
        scope = f"{self.role.value}:{self.tenant}" if self.tenant else self.role.value
        return f"key:{self.key_id}({scope})"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: Database, role: str, tenant: str | None = None, label: str = "") -> str:
    """Creates a key and returns it; this is the only time the secret exists in the clear."""
    try:
        chosen = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role {role!r} is not one of {allowed}", field="role") from None
    if chosen in TENANT_ROLES and not tenant:
        raise InvalidInput(f"a {chosen.value} key needs --tenant", field="tenant")
    if chosen not in TENANT_ROLES and tenant:
        raise InvalidInput(f"a {chosen.value} key is not bound to a tenant", field="tenant")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with db.transaction() as cursor:
        cursor.execute(
            "INSERT INTO api_keys (key_id, secret_hash, role, tenant, label, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (key_id, _hash(secret), chosen.value, tenant, label, datetime.now(UTC).isoformat()),
        )
    return f"sl_{key_id}_{secret}"


def revoke_key(db: Database, key_id: str) -> bool:
    with db.transaction() as cursor:
        cursor.execute(
            "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
            (datetime.now(UTC).isoformat(), key_id),
        )
        return cursor.rowcount == 1


def has_keys(db: Database) -> bool:
    return bool(db.query("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1"))


def authenticate(db: Database, token: str) -> Principal | None:
    """The principal of a presented key, or None (unknown, malformed or revoked)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "sl":
        return None
    _, key_id, secret = parts
    rows = db.query(
        "SELECT secret_hash, role, tenant FROM api_keys WHERE key_id = %s AND revoked_at IS NULL",
        (key_id,),
    )
    if not rows or not hmac.compare_digest(str(rows[0][0]), _hash(secret)):
        return None
    return Principal(key_id, Role(str(rows[0][1])), None if rows[0][2] is None else str(rows[0][2]))
