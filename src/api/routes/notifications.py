"""Customer notifications and tracking links: webhook subscriptions (a shipper's own, or
staff acting for a tenant), the outbox with each notification's delivery log, dead letters
and redelivery (support), and the public tracking links of an order."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import Svc, position_query, require
from api.errors import ApiError
from api.keys import Principal, Role
from ledger.errors import InvalidInput, NotFound
from projections import notify_store as store
from projections.notifications import DEFAULT_ETA_THRESHOLD_MINUTES, MILESTONES
from projections.notify_sender import allow_private_from_env

router = APIRouter(tags=["notifications"])

Manager = Annotated[Principal, Depends(require(Role.SHIPPER, Role.DISPATCHER, Role.SUPPORT))]
Reader = Annotated[
    Principal, Depends(require(Role.SHIPPER, Role.DISPATCHER, Role.SUPPORT, Role.AUDITOR))
]
Support = Annotated[Principal, Depends(require(Role.SUPPORT))]

Milestone = Literal[
    "order.allocated",
    "load.dispatched",
    "stop.eta_changed",
    "stop.arrived",
    "stop.delivered",
    "exception.raised",
    "exception.resolved",
]
assert set(get_args(Milestone)) == set(MILESTONES), "the API names every milestone"

_NUMERIC_LABEL = re.compile(r"\d*|0x[0-9a-f]*", re.IGNORECASE)


def _now() -> datetime:
    return datetime.now(UTC)


def _tenant(who: Principal, requested: str | None) -> str:
    """The tenant acted for: a shipper's own; staff name one."""
    if who.role is Role.SHIPPER:
        if requested not in (None, who.tenant):
            raise NotFound("account", requested, field="tenant")
        assert who.tenant is not None
        return who.tenant
    if not requested:
        raise InvalidInput("tenant is required for a staff key", field="tenant", rule="required")
    return requested


def _scope(who: Principal, requested: str | None) -> str | None:
    """The tenant a read is limited to (None: staff reading every tenant)."""
    if who.role is Role.SHIPPER:
        return _tenant(who, requested)
    return requested


def _visible(who: Principal, tenant: str) -> bool:
    return who.role is not Role.SHIPPER or who.tenant == tenant


def _allow_private(request: Request) -> bool:
    """`app.state.webhook_allow_private` when set, else `SHIPLEDGER_WEBHOOK_ALLOW_PRIVATE`."""
    configured = getattr(request.app.state, "webhook_allow_private", None)
    if configured is not None:
        return bool(configured)
    return allow_private_from_env()


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """An absolute http(s) URL without credentials; not a loopback, private, link-local or
    reserved address unless allowed (a webhook must not reach into our own network)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  # raises on a bad port
    except ValueError:
        raise InvalidInput("url is not a valid URL", field="url", rule="http(s) URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput("url must be an absolute http(s) URL", field="url", rule="http(s) URL")
    if parts.username or parts.password:
        raise InvalidInput("url must not carry credentials", field="url", rule="no userinfo")
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidInput("url must not point at this host", field="url", rule="public host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if all(_NUMERIC_LABEL.fullmatch(label) for label in host.split(".")):
            # 127.1, 2130706433, 0x7f.0.0.1: resolvers read these as addresses
            raise InvalidInput(
                "url must name a host or a dotted IP address", field="url", rule="public host"
            ) from None
        return  # a host name
    if not address.is_global:
        raise InvalidInput(
            f"url must not point at a non-public address ({address})",
            field="url",
            rule="public host",
        )


# --- subscriptions ---------------------------------------------------------------------------


class SubscriptionIn(BaseModel):
    url: str = Field(
        min_length=1, max_length=2048, examples=["https://hooks.example.com/shipledger"]
    )
    milestones: list[Milestone] | None = Field(
        default=None, min_length=1, description="the milestones to be told of (all by default)"
    )
    eta_threshold_minutes: int = Field(
        default=DEFAULT_ETA_THRESHOLD_MINUTES,
        ge=1,
        le=24 * 60,
        description="an ETA is told again when it moves by more than this",
    )
    tenant: str | None = Field(default=None, description="the shipper account (staff keys only)")


class SubscriptionOut(BaseModel):
    subscription_id: str
    tenant: str
    url: str
    milestones: list[str]
    eta_threshold_minutes: int
    since_position: int
    created_at: str
    deleted_at: str | None


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="signs every notification (HMAC-SHA256); shown this once, keep it safe"
    )


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]


def _subscription_for(services: Svc, who: Principal, subscription_id: str) -> str:
    found = store.get_subscription(services.db, subscription_id)
    if found is None or found.deleted_at is not None or not _visible(who, found.tenant):
        raise NotFound("subscription", subscription_id)
    return found.subscription_id


@router.post("/notifications/subscriptions", response_model=SubscriptionCreated, status_code=201)
def subscribe(
    body: SubscriptionIn, request: Request, services: Svc, who: Manager
) -> SubscriptionCreated:
    """Subscribe a webhook URL to milestones; the signing secret is in this answer only."""
    tenant = _tenant(who, body.tenant)
    services.ledger.account(tenant)
    check_webhook_url(body.url, allow_private=_allow_private(request))
    record, secret = store.create_subscription(
        services.db,
        tenant=tenant,
        url=body.url,
        milestones=body.milestones or MILESTONES,
        eta_threshold_minutes=body.eta_threshold_minutes,
        since_position=services.ledger.position,
        actor=who.actor,
        now=_now(),
    )
    return SubscriptionCreated(**record.as_dict(), secret=secret)


@router.get("/notifications/subscriptions", response_model=SubscriptionList)
def subscriptions(
    services: Svc, who: Reader, tenant: Annotated[str | None, Query()] = None
) -> SubscriptionList:
    """The live subscriptions (a shipper's own; staff: all, or one tenant's)."""
    found = store.list_subscriptions(services.db, _scope(who, tenant))
    return SubscriptionList(subscriptions=[SubscriptionOut(**s.as_dict()) for s in found])


@router.delete("/notifications/subscriptions/{subscription_id}", status_code=204)
def unsubscribe(subscription_id: str, services: Svc, who: Manager) -> Response:
    """Delete a subscription: nothing more is sent to it, what was waiting is cancelled."""
    found = _subscription_for(services, who, subscription_id)
    store.delete_subscription(
        services.db,
        found,
        until_position=services.ledger.position,
        actor=who.actor,
        now=_now(),
    )
    return Response(status_code=204)


# --- the outbox ------------------------------------------------------------------------------


class NotificationOut(BaseModel):
    notification_id: str
    subscription_id: str
    tenant: str
    milestone: str
    corrects: str | None = Field(description="the notification this one corrects")
    status: Literal["pending", "delivered", "dead", "cancelled"]
    attempts: int = Field(description="attempts in the current round of retries")
    next_attempt_at: str
    last_status_code: int | None
    last_error: str | None
    delivered_at: str | None
    dead_at: str | None
    recorded_at: str
    position: int


class DeliveryOut(BaseModel):
    attempt: int
    started_at: str
    finished_at: str | None
    status_code: int | None
    error: str | None
    latency_ms: int | None
    sender: str


class NotificationDetail(NotificationOut):
    payload: dict[str, Any] = Field(description="the body, exactly as it is sent")
    deliveries: list[DeliveryOut]


class NotificationPage(BaseModel):
    """A page of notifications; pass `next_cursor` as `after` for the next one."""

    notifications: list[NotificationOut]
    next_cursor: int | None


class Redelivery(BaseModel):
    notification_id: str
    status: str


def _page(rows: list[dict[str, Any]], limit: int) -> NotificationPage:
    page = rows[:limit]
    cursor = page[-1]["position"] if len(rows) > limit else None
    return NotificationPage(notifications=[NotificationOut(**r) for r in page], next_cursor=cursor)


def _notification_for(services: Svc, who: Principal, notification_id: str) -> dict[str, Any]:
    found = store.get_notification(services.db, notification_id)
    if found is None or not _visible(who, str(found["tenant"])):
        raise NotFound("notification", notification_id)
    return found


@router.get("/notifications", response_model=NotificationPage)
def notifications(
    services: Svc,
    who: Reader,
    status: Annotated[Literal["pending", "delivered", "dead", "cancelled"] | None, Query()] = None,
    subscription_id: Annotated[str | None, Query()] = None,
    tenant: Annotated[str | None, Query()] = None,
    after: Annotated[int | None, position_query("cursor: the last position seen")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NotificationPage:
    """Notifications in the order they were enqueued, with their delivery state."""
    rows = store.list_notifications(
        services.db,
        tenant=_scope(who, tenant),
        status=status,
        subscription_id=subscription_id,
        after=after,
        limit=limit + 1,
    )
    return _page(rows, limit)


@router.get("/notifications/dead-letters", response_model=NotificationPage)
def dead_letters(
    services: Svc,
    who: Support,
    tenant: Annotated[str | None, Query()] = None,
    after: Annotated[int | None, position_query("cursor: the last position seen")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NotificationPage:
    """Notifications whose every attempt failed, for support to look into and redeliver."""
    rows = store.list_notifications(
        services.db, tenant=tenant, status="dead", after=after, limit=limit + 1
    )
    return _page(rows, limit)


@router.get("/notifications/{notification_id}", response_model=NotificationDetail)
def notification(notification_id: str, services: Svc, who: Reader) -> NotificationDetail:
    """One notification: its body as sent and its delivery log."""
    return NotificationDetail(**_notification_for(services, who, notification_id))


@router.get("/notifications/{notification_id}/deliveries", response_model=list[DeliveryOut])
def deliveries(notification_id: str, services: Svc, who: Reader) -> list[DeliveryOut]:
    """The delivery log: every attempt, its status code or error, and its latency."""
    found = _notification_for(services, who, notification_id)
    return [DeliveryOut(**d) for d in found["deliveries"]]


@router.post("/notifications/{notification_id}/redeliver", response_model=Redelivery)
def redeliver(notification_id: str, services: Svc, who: Support) -> Redelivery:
    """Send a dead-lettered (or delivered) notification again, same id, fresh retries."""
    found = _notification_for(services, who, notification_id)
    if not store.redeliver(services.db, notification_id, actor=who.actor, now=_now()):
        raise ApiError(
            409,
            "not_redeliverable",
            f"the notification is {found['status']}: only dead or delivered ones are sent again",
        )
    return Redelivery(notification_id=notification_id, status="pending")


# --- tracking links --------------------------------------------------------------------------


class TrackingLink(BaseModel):
    token: str
    url: str = Field(description="the public page; no key needed")
    order: str
    origin: Literal["placed", "api"]
    created_at: str


class TrackingLinks(BaseModel):
    links: list[TrackingLink]


class Revoked(BaseModel):
    revoked: int


def _order_id(services: Svc, who: Principal, reference: str, tenant: str | None) -> UUID:
    order = services.ledger.order_by_reference(_tenant(who, tenant), reference)
    return order.id


def _link(request: Request, record: store.TokenRecord) -> TrackingLink:
    base = str(request.base_url).rstrip("/")
    return TrackingLink(
        token=record.token,
        url=f"{base}/track/{record.token}",
        order=record.reference,
        origin="placed" if record.origin == "placed" else "api",
        created_at=record.created_at,
    )


@router.post("/orders/{reference}/tracking", response_model=TrackingLink, status_code=201)
def create_link(
    reference: str,
    request: Request,
    services: Svc,
    who: Manager,
    tenant: Annotated[str | None, Query(description="the order's account (staff keys)")] = None,
) -> TrackingLink:
    """A new public tracking link for an order (share it with the consignee)."""
    account = _tenant(who, tenant)
    order = services.ledger.order_by_reference(account, reference)
    record = store.create_token(
        services.db,
        order_id=order.id,
        tenant=account,
        reference=order.reference,
        actor=who.actor,
        now=_now(),
    )
    return _link(request, record)


@router.get("/orders/{reference}/tracking", response_model=TrackingLinks)
def links(
    reference: str,
    request: Request,
    services: Svc,
    who: Reader,
    tenant: Annotated[str | None, Query(description="the order's account (staff keys)")] = None,
) -> TrackingLinks:
    """The order's tracking links that still work."""
    order_id = _order_id(services, who, reference, tenant)
    return TrackingLinks(
        links=[_link(request, r) for r in store.list_tokens(services.db, order_id)]
    )


@router.delete("/orders/{reference}/tracking/{token}", status_code=204)
def revoke_link(
    reference: str,
    token: str,
    services: Svc,
    who: Manager,
    tenant: Annotated[str | None, Query(description="the order's account (staff keys)")] = None,
) -> Response:
    """Revoke one tracking link: its page answers 404 from now on."""
    order_id = _order_id(services, who, reference, tenant)
    if not store.revoke_token(services.db, order_id, token, actor=who.actor, now=_now()):
        raise NotFound("tracking link", token)
    return Response(status_code=204)


@router.delete("/orders/{reference}/tracking", response_model=Revoked)
def revoke_links(
    reference: str,
    services: Svc,
    who: Manager,
    tenant: Annotated[str | None, Query(description="the order's account (staff keys)")] = None,
) -> Revoked:
    """Revoke every tracking link of an order."""
    order_id = _order_id(services, who, reference, tenant)
    return Revoked(revoked=store.revoke_tokens(services.db, order_id, actor=who.actor, now=_now()))
