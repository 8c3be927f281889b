"""Customer notifications: the outbox projection (PRODUCT §8 Customers, §2.6 exactly once).

For each milestone a fact reaches, and each subscription of a tenant the fact concerns, the
projection enqueues one notification row: a deterministic id (uuid5 of the subscription, the
milestone and the fact it is about), the customer-safe JSON body exactly as it will be sent,
and `corrects`, the id of the earlier notification it supersedes when a late fact moved a
milestone already told. The rows are written in the runner's transaction together with the
view's position, and the id is the primary key: a crash, a replay or a rebuild enqueues
nothing twice. The sender (`notify_sender`) delivers them.

Milestones:

    order.allocated      every line of an order is reserved
    load.dispatched      the load carrying the tenant's orders is dispatched (driver first name)
    stop.eta_changed     a stop's ETA: the first one, then each move beyond the subscription's
                         threshold from the last one told
    stop.arrived         the reconciled arrival at a stop; a late fact that moves it sends a
                         correction naming the notification it corrects
    stop.delivered       proof of delivery at a delivery stop (signer and time); corrected alike
    exception.raised     an exception a customer is told of (not internal ones)
    exception.resolved

Each fact is judged as the ledger knew it at that fact's position, never as of the batch, so
live runs, replays and rebuilds in batches of any size enqueue the same rows. A subscription
hears of facts recorded after it was created and up to its deletion (by log position).

The projection also hands out a tracking token when an order is placed (kept across
rebuilds: a link once given keeps working until revoked) and indexes which loads carry an
order, for the tracking page.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from ledger.loads import Load
from ledger.log import LogRecord
from ledger.orders import Order
from ledger.stops import Stop, StopFact, StopKind
from ledger.timeline import LoadState, ResolvedFact, fold_load, fold_order
from projections.db import Cursor
from projections.notify_view import (
    CUSTOMER_EXCEPTIONS,
    StopView,
    at_or_before,
    customer_time,
    first_name,
    stop_public,
    stop_view,
)
from projections.view import Batch, View, iso

__all__ = [
    "DEFAULT_ETA_THRESHOLD_MINUTES",
    "MILESTONES",
    "NotificationOutbox",
    "Subscription",
    "notification_id",
]

MILESTONES = (
    "order.allocated",
    "load.dispatched",
    "stop.eta_changed",
    "stop.arrived",
    "stop.delivered",
    "exception.raised",
    "exception.resolved",
)
DEFAULT_ETA_THRESHOLD_MINUTES = 30
_NAMESPACE = UUID("0b8f5a3e-6c2d-4e71-9a40-5d1f7c3b2e90")
_ACTOR = "projection:notification_outbox"

_ENQUEUE = """
INSERT INTO notification_outbox (notification_id, subscription_id, tenant, milestone, subject,
    fact, corrects, milestone_at, payload, position, recorded_at, status, attempts,
    next_attempt_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s)
ON CONFLICT (notification_id) DO NOTHING
"""
_TOKEN = """
INSERT INTO tracking_tokens (token, order_id, tenant, reference, origin, created_at, created_by)
VALUES (%s, %s, %s, %s, 'placed', %s, %s)
ON CONFLICT DO NOTHING
"""
_ORDER_LOAD = """
INSERT INTO order_loads (order_id, load_id, position) VALUES (%s, %s, %s)
ON CONFLICT (order_id, load_id) DO NOTHING
"""


def notification_id(subscription_id: str, milestone: str, fact: str) -> str:
    """The stable id of what one subscription is told about one fact."""
    return str(uuid5(_NAMESPACE, "\x1f".join((subscription_id, milestone, fact))))


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    tenant: str
    milestones: frozenset[str]
    eta_threshold: timedelta
    since_position: int
    until_position: int | None

    def hears(self, tenant: str, milestone: str, position: int) -> bool:
        return (
            tenant == self.tenant
            and milestone in self.milestones
            and self.since_position < position
            and (self.until_position is None or position <= self.until_position)
        )


@dataclass(frozen=True)
class _Told:
    """The last notification a subscription got about a subject and milestone."""

    notification_id: str
    fact: str
    milestone_at: datetime | None


class NotificationOutbox(View):
    name = "notification_outbox"
    tables = ("notification_outbox", "tracking_tokens", "order_loads")

    def clear(self, cursor: Cursor) -> None:
        """A rebuild keeps the rows: they are what customers were told and the links they
        hold; replaying the log over them inserts nothing (deterministic ids)."""

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        subscriptions = _subscriptions(batch.cursor, min(r.position for r in records))
        run = _Run(batch, subscriptions)
        for record in records:
            event = record.event
            if isinstance(event, Order.Placed):
                run.hand_out_token(record, event)
            elif isinstance(event, Load.Planned):
                for order_id in event.order_ids:
                    batch.cursor.execute(
                        _ORDER_LOAD, (str(order_id), str(record.stream), record.position)
                    )
            elif not subscriptions:
                continue  # nobody to tell: no folds
            elif isinstance(event, Order.LineAllocated):
                run.order_allocated(record)
            elif isinstance(event, Load.Dispatched):
                run.dispatched(record)
            elif isinstance(event, Load.ExceptionRaised | Load.ExceptionResolved):
                run.exception(record, event)
            elif isinstance(event, Stop.FactRecorded):
                run.stop_fact(record, event)


def _subscriptions(cursor: Cursor, first_position: int) -> list[Subscription]:
    rows = cursor.execute(
        "SELECT subscription_id, tenant, milestones, eta_threshold_minutes, since_position, "
        "until_position FROM notification_subscriptions "
        "WHERE until_position IS NULL OR until_position >= %s",
        (first_position,),
    ).fetchall()
    return [
        Subscription(
            subscription_id=str(row[0]),
            tenant=str(row[1]),
            milestones=frozenset(str(row[2]).split(",")),
            eta_threshold=timedelta(minutes=int(row[3])),
            since_position=int(row[4]),
            until_position=None if row[5] is None else int(row[5]),
        )
        for row in rows
    ]


def _parse(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


class _Run:
    """One batch's enqueueing: the facts in log order, each judged at its own position."""

    def __init__(self, batch: Batch, subscriptions: list[Subscription]):
        self.batch = batch
        self.cursor = batch.cursor
        self.subscriptions = subscriptions

    # --- what to say, to whom ---------------------------------------------------------------

    def _listeners(self, tenant: str, milestone: str, position: int) -> list[Subscription]:
        return [s for s in self.subscriptions if s.hears(tenant, milestone, position)]

    def _told(self, sub: Subscription, milestone: str, subject: str, position: int) -> _Told | None:
        row = self.cursor.execute(
            "SELECT notification_id, fact, milestone_at FROM notification_outbox "
            "WHERE subscription_id = %s AND milestone = %s AND subject = %s AND position < %s "
            "ORDER BY position DESC LIMIT 1",
            (sub.subscription_id, milestone, subject, position),
        ).fetchone()
        if row is None:
            return None
        return _Told(str(row[0]), str(row[1]), _parse(row[2]))

    def _enqueue(
        self,
        sub: Subscription,
        record: LogRecord,
        milestone: str,
        subject: str,
        fact: str,
        data: dict[str, Any],
        *,
        at: datetime | None,
        corrects: str | None = None,
    ) -> None:
        nid = notification_id(sub.subscription_id, milestone, fact)
        row = self.cursor.execute(
            "SELECT position FROM notification_outbox WHERE notification_id = %s", (nid,)
        ).fetchone()
        if row is not None and int(row[0]) != record.position:
            # the same fact is the milestone again (it was replaced, then came back): a new
            # notification, still deterministic
            fact = f"{fact}@{record.position}"
            nid = notification_id(sub.subscription_id, milestone, fact)
        body = {
            "id": nid,
            "type": milestone,
            "tenant": sub.tenant,
            "recorded_at": customer_time(record.recorded_at),
            "correction": corrects is not None,
            "corrects": corrects,
            "data": data,
        }
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        recorded = iso(record.recorded_at)
        self.cursor.execute(
            _ENQUEUE,
            (
                nid,
                sub.subscription_id,
                sub.tenant,
                milestone,
                subject,
                fact,
                corrects,
                iso(at),
                payload,
                record.position,
                recorded,
                recorded,
            ),
        )

    # --- orders ---------------------------------------------------------------------------

    def hand_out_token(self, record: LogRecord, event: Order.Placed) -> None:
        self.cursor.execute(
            _TOKEN,
            (
                secrets.token_urlsafe(24),
                str(record.stream),
                event.tenant,
                event.reference,
                iso(record.recorded_at),
                _ACTOR,
            ),
        )

    def order_allocated(self, record: LogRecord) -> None:
        records = self.batch.stream(record.stream)
        placed = next((r.event for r in records if isinstance(r.event, Order.Placed)), None)
        before = fold_order(r for r in records if r.position < record.position)
        after = fold_order(at_or_before(records, record.position))
        if placed is None or before is None or after is None or record.meta is None:
            return
        lines = len(placed.lines)
        if len(after.allocated_lines) < lines or len(before.allocated_lines) == lines:
            return
        data = {
            "order": after.reference,
            "status": "allocated",
            "allocated_at": customer_time(record.meta.occurred_at),
        }
        fact = f"{record.stream}:{record.version}"
        for sub in self._listeners(after.tenant, "order.allocated", record.position):
            self._enqueue(
                sub,
                record,
                "order.allocated",
                str(record.stream),
                fact,
                data,
                at=record.meta.occurred_at,
            )

    # --- loads ----------------------------------------------------------------------------

    def _load(self, load_id: UUID, position: int) -> LoadState | None:
        return fold_load(at_or_before(self.batch.stream(load_id), position))

    def _stops(self, load: LoadState, position: int) -> list[StopView]:
        views = [stop_view(self.batch, stop_id, position) for stop_id in load.stop_ids]
        return sorted((v for v in views if v is not None), key=lambda v: v.state.sequence)

    def dispatched(self, record: LogRecord) -> None:
        load = self._load(record.stream, record.position)
        if load is None or record.meta is None:
            return
        stops = self._stops(load, record.position)
        driver = first_name(self.batch.ledger, load.driver_code)
        fact = f"{record.stream}:{record.version}"
        for tenant in load.tenants:
            mine = [v for v in stops if v.visible_to(tenant)]
            data = {
                "load": load.reference,
                "orders": sorted({ref for v in mine for ref in v.references(tenant)}),
                "driver": {"first_name": driver},
                "dispatched_at": customer_time(record.meta.occurred_at),
                "stops": [stop_public(self.batch.ledger, v, tenant) for v in mine],
            }
            for sub in self._listeners(tenant, "load.dispatched", record.position):
                self._enqueue(
                    sub,
                    record,
                    "load.dispatched",
                    str(record.stream),
                    fact,
                    data,
                    at=record.meta.occurred_at,
                )

    def exception(
        self, record: LogRecord, event: Load.ExceptionRaised | Load.ExceptionResolved
    ) -> None:
        raised = self._raised(record.stream, event.exception_id)
        load = self._load(record.stream, record.position)
        if raised is None or load is None or record.meta is None:
            return
        kind, stop_id = raised.kind, raised.stop_id
        if kind not in CUSTOMER_EXCEPTIONS:
            return  # internal: conflicting facts, detention, hours of service
        stop = stop_view(self.batch, stop_id, record.position) if stop_id else None
        milestone = (
            "exception.raised" if isinstance(event, Load.ExceptionRaised) else "exception.resolved"
        )
        at_key = "raised_at" if milestone == "exception.raised" else "resolved_at"
        stops = [stop] if stop is not None else self._stops(load, record.position)
        for tenant in load.tenants:
            if stop is not None and not stop.visible_to(tenant):
                continue
            data = {
                "load": load.reference,
                "orders": sorted(
                    {ref for v in stops if v.visible_to(tenant) for ref in v.references(tenant)}
                ),
                "exception": {
                    "id": event.exception_id,
                    "kind": kind.value,
                    "text": CUSTOMER_EXCEPTIONS[kind],
                },
                "stop": stop_public(self.batch.ledger, stop, tenant) if stop else None,
                at_key: customer_time(record.meta.occurred_at),
            }
            for sub in self._listeners(tenant, milestone, record.position):
                self._enqueue(
                    sub,
                    record,
                    milestone,
                    f"{record.stream}:{event.exception_id}",
                    event.exception_id,
                    data,
                    at=record.meta.occurred_at,
                )

    def _raised(self, load_id: UUID, exception_id: str) -> Load.ExceptionRaised | None:
        for record in self.batch.stream(load_id):
            event = record.event
            if isinstance(event, Load.ExceptionRaised) and event.exception_id == exception_id:
                return event
        return None

    # --- stops ----------------------------------------------------------------------------

    def stop_fact(self, record: LogRecord, event: Stop.FactRecorded) -> None:
        after = stop_view(self.batch, record.stream, record.position)
        before = stop_view(self.batch, record.stream, record.position - 1)
        if after is None:
            return
        load = self._load(after.state.load_id, record.position)
        if load is None:
            return
        tenants = [t for t in load.tenants if after.visible_to(t)]
        arrival = after.state.arrival
        was = before.state.arrival if before else None
        if arrival is not None and (was is None or was.fact_id != arrival.fact_id):
            for tenant in tenants:
                self._arrived(record, load, after, tenant, arrival)
        if (
            event.fact is StopFact.ETA_REPORTED
            and after.state.eta is not None
            and after.state.arrival is None
        ):
            for tenant in tenants:
                self._eta(record, load, after, tenant, after.state.eta)
        pod = after.state.facts.get(StopFact.POD_RECEIVED)
        had = before.state.facts.get(StopFact.POD_RECEIVED) if before else None
        if (
            after.state.kind is StopKind.DELIVERY
            and pod is not None
            and (had is None or had.fact_id != pod.fact_id)
        ):
            for tenant in tenants:
                self._delivered(record, load, after, tenant, pod)

    def _stop_data(self, load: LoadState, stop: StopView, tenant: str) -> dict[str, Any]:
        return {
            "load": load.reference,
            "orders": stop.references(tenant),
            "stop": stop_public(self.batch.ledger, stop, tenant),
        }

    def _arrived(
        self,
        record: LogRecord,
        load: LoadState,
        stop: StopView,
        tenant: str,
        arrival: ResolvedFact,
    ) -> None:
        subject = str(stop.state.stop_id)
        for sub in self._listeners(tenant, "stop.arrived", record.position):
            told = self._told(sub, "stop.arrived", subject, record.position)
            if told is not None and told.milestone_at == arrival.occurred_at:
                continue  # another fact for the same moment: nothing new to tell
            data = self._stop_data(load, stop, tenant)
            data["arrived_at"] = customer_time(arrival.occurred_at)
            if told is not None:
                data["previous_arrived_at"] = customer_time(told.milestone_at)
            self._enqueue(
                sub,
                record,
                "stop.arrived",
                subject,
                arrival.fact_id,
                data,
                at=arrival.occurred_at,
                corrects=told.notification_id if told else None,
            )

    def _eta(
        self, record: LogRecord, load: LoadState, stop: StopView, tenant: str, eta: datetime
    ) -> None:
        subject = str(stop.state.stop_id)
        for sub in self._listeners(tenant, "stop.eta_changed", record.position):
            told = self._told(sub, "stop.eta_changed", subject, record.position)
            previous = told.milestone_at if told else None
            if previous is not None and abs(eta - previous) <= sub.eta_threshold:
                continue
            data = self._stop_data(load, stop, tenant)
            data["eta"] = customer_time(eta)
            data["previous_eta"] = customer_time(previous)
            self._enqueue(
                sub,
                record,
                "stop.eta_changed",
                subject,
                f"{record.stream}:{record.version}",
                data,
                at=eta,
            )

    def _delivered(
        self, record: LogRecord, load: LoadState, stop: StopView, tenant: str, pod: ResolvedFact
    ) -> None:
        subject = str(stop.state.stop_id)
        for sub in self._listeners(tenant, "stop.delivered", record.position):
            told = self._told(sub, "stop.delivered", subject, record.position)
            if told is not None and told.fact == pod.fact_id:
                continue
            data = self._stop_data(load, stop, tenant)
            data["delivered_at"] = customer_time(pod.occurred_at)
            data["proof_of_delivery"] = {
                "signed_by": pod.signer,
                "signed_at": customer_time(pod.occurred_at),
            }
            self._enqueue(
                sub,
                record,
                "stop.delivered",
                subject,
                pod.fact_id,
                data,
                at=pod.occurred_at,
                corrects=told.notification_id if told else None,
            )
