"""Subscriptions, the outbox as support and shippers read it, and tracking links.

Subscriptions and links are configuration kept beside the views (like API keys), not facts
in the log. A subscription's secret is kept in the clear because the sender signs with it;
it is returned once, when the subscription is created, and never listed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.db import Database
from projections.notifications import DEFAULT_ETA_THRESHOLD_MINUTES, MILESTONES
from projections.view import iso

__all__ = [
    "NOTIFICATION_STATUSES",
    "SubscriptionRecord",
    "TokenRecord",
    "create_subscription",
    "create_token",
    "delete_subscription",
    "delivery_log",
    "get_notification",
    "get_subscription",
    "list_notifications",
    "list_subscriptions",
    "list_tokens",
    "order_load_ids",
    "redeliver",
    "revoke_token",
    "revoke_tokens",
    "token_order",
]

NOTIFICATION_STATUSES = ("pending", "delivered", "dead", "cancelled")


@dataclass(frozen=True)
class SubscriptionRecord:
    subscription_id: str
    tenant: str
    url: str
    milestones: tuple[str, ...]
    eta_threshold_minutes: int
    since_position: int
    created_at: str
    created_by: str
    deleted_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "tenant": self.tenant,
            "url": self.url,
            "milestones": list(self.milestones),
            "eta_threshold_minutes": self.eta_threshold_minutes,
            "since_position": self.since_position,
            "created_at": self.created_at,
            "deleted_at": self.deleted_at,
        }


_SUB_COLUMNS = (
    "subscription_id, tenant, url, milestones, eta_threshold_minutes, since_position, "
    "created_at, created_by, deleted_at"
)


def _subscription(row: Sequence[Any]) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=str(row[0]),
        tenant=str(row[1]),
        url=str(row[2]),
        milestones=tuple(str(row[3]).split(",")),
        eta_threshold_minutes=int(row[4]),
        since_position=int(row[5]),
        created_at=str(row[6]),
        created_by=str(row[7]),
        deleted_at=None if row[8] is None else str(row[8]),
    )


def create_subscription(
    db: Database,
    *,
    tenant: str,
    url: str,
    milestones: Sequence[str] = MILESTONES,
    eta_threshold_minutes: int = DEFAULT_ETA_THRESHOLD_MINUTES,
    since_position: int,
    actor: str,
    now: datetime,
) -> tuple[SubscriptionRecord, str]:
    """Subscribes `url` to the milestones of facts recorded after `since_position` (the log
    head now); returns the subscription and its signing secret (the only time it is shown)."""
    unknown = set(milestones) - set(MILESTONES)
    if unknown or not milestones:
        raise ValueError(f"unknown milestones: {', '.join(sorted(unknown)) or '(none given)'}")
    chosen = tuple(m for m in MILESTONES if m in set(milestones))
    subscription_id = f"sub_{secrets.token_hex(10)}"
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    with db.transaction() as cursor:
        cursor.execute(
            "INSERT INTO notification_subscriptions (subscription_id, tenant, url, milestones, "
            "eta_threshold_minutes, secret, since_position, created_at, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                subscription_id,
                tenant,
                url,
                ",".join(chosen),
                eta_threshold_minutes,
                secret,
                since_position,
                iso(now),
                actor,
            ),
        )
    found = get_subscription(db, subscription_id)
    assert found is not None
    return found, secret


def get_subscription(db: Database, subscription_id: str) -> SubscriptionRecord | None:
    rows = db.query(
        f"SELECT {_SUB_COLUMNS} FROM notification_subscriptions WHERE subscription_id = %s",
        (subscription_id,),
    )
    return _subscription(rows[0]) if rows else None


def list_subscriptions(db: Database, tenant: str | None = None) -> list[SubscriptionRecord]:
    """Live subscriptions (of one tenant, or all), oldest first."""
    sql = f"SELECT {_SUB_COLUMNS} FROM notification_subscriptions WHERE deleted_at IS NULL"
    params: list[object] = []
    if tenant is not None:
        sql += " AND tenant = %s"
        params.append(tenant)
    return [_subscription(row) for row in db.query(sql + " ORDER BY created_at", params)]


def delete_subscription(
    db: Database, subscription_id: str, *, until_position: int, actor: str, now: datetime
) -> bool:
    """Ends a subscription: it hears of nothing recorded after `until_position`, and what
    was still waiting to be sent to it is cancelled."""
    with db.transaction() as cursor:
        cursor.execute(
            "UPDATE notification_subscriptions SET deleted_at = %s, deleted_by = %s, "
            "until_position = %s WHERE subscription_id = %s AND deleted_at IS NULL",
            (iso(now), actor, until_position, subscription_id),
        )
        if cursor.rowcount != 1:
            return False
        cursor.execute(
            "UPDATE notification_outbox SET status = 'cancelled', lease_until = NULL, "
            "lease_token = NULL WHERE subscription_id = %s AND status IN ('pending', 'dead')",
            (subscription_id,),
        )
    return True


# --- the outbox, as people read it ---------------------------------------------------------

_NOTE_COLUMNS = (
    "notification_id",
    "subscription_id",
    "tenant",
    "milestone",
    "corrects",
    "status",
    "attempts",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "delivered_at",
    "dead_at",
    "recorded_at",
    "position",
)


def _note(row: Sequence[Any]) -> dict[str, Any]:
    note = dict(zip(_NOTE_COLUMNS, row, strict=True))
    note["attempts"] = int(note["attempts"])
    note["position"] = int(note["position"])
    return note


def list_notifications(
    db: Database,
    *,
    tenant: str | None = None,
    status: str | None = None,
    subscription_id: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Notifications in the order they were enqueued (by log position, then id); `after` is
    the position of the last one seen."""
    sql = f"SELECT {', '.join(_NOTE_COLUMNS)} FROM notification_outbox WHERE 1 = 1"
    params: list[object] = []
    for column, value in (
        ("tenant", tenant),
        ("status", status),
        ("subscription_id", subscription_id),
    ):
        if value is not None:
            sql += f" AND {column} = %s"
            params.append(value)
    if after is not None:
        sql += " AND position > %s"
        params.append(after)
    rows = db.query(sql + " ORDER BY position, notification_id LIMIT %s", [*params, limit])
    return [_note(row) for row in rows]


def delivery_log(db: Database, notification_id: str) -> list[dict[str, Any]]:
    """Every attempt to deliver a notification: when, the status code or the error, and
    how long it took (an attempt never finished was interrupted: its sender died)."""
    rows = db.query(
        "SELECT attempt, started_at, finished_at, status_code, error, latency_ms, sender "
        "FROM notification_attempts WHERE notification_id = %s ORDER BY attempt",
        (notification_id,),
    )
    return [
        {
            "attempt": int(row[0]),
            "started_at": row[1],
            "finished_at": row[2],
            "status_code": None if row[3] is None else int(row[3]),
            "error": row[4] if row[2] is not None else "interrupted (the sender stopped)",
            "latency_ms": None if row[5] is None else int(row[5]),
            "sender": row[6],
        }
        for row in rows
    ]


def get_notification(db: Database, notification_id: str) -> dict[str, Any] | None:
    """One notification with its body (as sent) and its delivery log."""
    rows = db.query(
        f"SELECT {', '.join(_NOTE_COLUMNS)}, payload FROM notification_outbox "
        "WHERE notification_id = %s",
        (notification_id,),
    )
    if not rows:
        return None
    note = _note(rows[0][:-1])
    note["payload"] = json.loads(str(rows[0][-1]))
    note["deliveries"] = delivery_log(db, notification_id)
    return note


def redeliver(db: Database, notification_id: str, *, actor: str, now: datetime) -> bool | None:
    """Sends a dead-lettered (or delivered) notification again, same id and body, with a
    fresh set of retries. True when it is queued again, False when it is not dead or
    delivered (pending, or cancelled with its subscription), None when there is none."""
    with db.transaction() as cursor:
        row = cursor.execute(
            "SELECT status FROM notification_outbox WHERE notification_id = %s",
            (notification_id,),
        ).fetchone()
        if row is None:
            return None
        if str(row[0]) not in ("dead", "delivered"):
            return False
        cursor.execute(
            "UPDATE notification_outbox SET status = 'pending', attempts = 0, "
            "next_attempt_at = %s, lease_until = NULL, lease_token = NULL, dead_at = NULL, "
            "redelivered_at = %s, redelivered_by = %s WHERE notification_id = %s",
            (iso(now), iso(now), actor, notification_id),
        )
    return True


# --- tracking links --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    token: str
    order_id: str
    tenant: str
    reference: str
    origin: str
    created_at: str
    revoked_at: str | None


def create_token(
    db: Database, *, order_id: UUID, tenant: str, reference: str, actor: str, now: datetime
) -> TokenRecord:
    """A new unguessable tracking link for an order (192 random bits)."""
    token = secrets.token_urlsafe(24)
    with db.transaction() as cursor:
        cursor.execute(
            "INSERT INTO tracking_tokens (token, order_id, tenant, reference, origin, "
            "created_at, created_by) VALUES (%s, %s, %s, %s, 'api', %s, %s)",
            (token, str(order_id), tenant, reference, iso(now), actor),
        )
    return TokenRecord(token, str(order_id), tenant, reference, "api", iso(now) or "", None)


def list_tokens(db: Database, order_id: UUID) -> list[TokenRecord]:
    """The links of an order that still work, oldest first."""
    rows = db.query(
        "SELECT token, order_id, tenant, reference, origin, created_at, revoked_at "
        "FROM tracking_tokens WHERE order_id = %s AND revoked_at IS NULL ORDER BY created_at",
        (str(order_id),),
    )
    return [
        TokenRecord(
            token=str(row[0]),
            order_id=str(row[1]),
            tenant=str(row[2]),
            reference=str(row[3]),
            origin=str(row[4]),
            created_at=str(row[5]),
            revoked_at=None if row[6] is None else str(row[6]),
        )
        for row in rows
    ]


def revoke_token(db: Database, order_id: UUID, token: str, *, actor: str, now: datetime) -> bool:
    with db.transaction() as cursor:
        cursor.execute(
            "UPDATE tracking_tokens SET revoked_at = %s, revoked_by = %s "
            "WHERE token = %s AND order_id = %s AND revoked_at IS NULL",
            (iso(now), actor, token, str(order_id)),
        )
        return cursor.rowcount == 1


def revoke_tokens(db: Database, order_id: UUID, *, actor: str, now: datetime) -> int:
    """Revokes every link of an order; returns how many worked until now."""
    with db.transaction() as cursor:
        cursor.execute(
            "UPDATE tracking_tokens SET revoked_at = %s, revoked_by = %s "
            "WHERE order_id = %s AND revoked_at IS NULL",
            (iso(now), actor, str(order_id)),
        )
        return cursor.rowcount


def token_order(db: Database, token: str) -> UUID | None:
    """The order a working link shows; None for an unknown or revoked one."""
    rows = db.query(
        "SELECT order_id FROM tracking_tokens WHERE token = %s AND revoked_at IS NULL", (token,)
    )
    return UUID(str(rows[0][0])) if rows else None


def order_load_ids(db: Database, order_id: UUID) -> list[UUID]:
    """The loads planned with an order, in the order they were planned."""
    rows = db.query(
        "SELECT load_id FROM order_loads WHERE order_id = %s ORDER BY position", (str(order_id),)
    )
    return [UUID(str(row[0])) for row in rows]
