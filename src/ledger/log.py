"""Reading the global log: pages of decoded records, never the whole log at once."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification

from ledger.events import Meta
from ledger.positions import stream_notifications

__all__ = ["LogRecord", "iter_log", "to_jsonable"]

PAGE_SIZE = 500


@dataclass(frozen=True)
class LogRecord:
    """One stored event with both clocks and its provenance."""

    position: int
    stream: UUID
    version: int
    type: str
    event: DomainEventProtocol[UUID]

    @property
    def meta(self) -> Meta | None:
        meta = getattr(self.event, "meta", None)
        return meta if isinstance(meta, Meta) else None

    @property
    def recorded_at(self) -> datetime:
        """Wall-clock time the event was made, for display; the position is the real order."""
        timestamp = getattr(self.event, "timestamp", None)
        assert isinstance(timestamp, datetime), "every ledger event has a timestamp"
        return timestamp

    def data(self) -> dict[str, Any]:
        skip = {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"}
        return {k: v for k, v in vars(self.event).items() if k not in skip}

    def as_dict(self) -> dict[str, Any]:
        meta = self.meta
        return {
            "position": self.position,
            "recorded_at": to_jsonable(self.recorded_at),
            "occurred_at": to_jsonable(meta.occurred_at if meta else None),
            "type": self.type,
            "stream": str(self.stream),
            "version": self.version,
            "actor": meta.actor if meta else None,
            "source": meta.source.value if meta else None,
            "reason": meta.reason if meta else None,
            "correlation_id": meta.correlation_id if meta else None,
            "causation_id": meta.causation_id if meta else None,
            "tenant": meta.tenant if meta else None,
            "data": to_jsonable(self.data()),
        }


def to_jsonable(value: Any) -> Any:
    """Plain JSON values for any event value (stable: same value, same output)."""
    if value is None or (
        isinstance(value, bool | int | float | str) and not isinstance(value, enum.Enum)
    ):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def _record(app: Application[UUID], notification: Notification) -> LogRecord:
    event = app.mapper.to_domain_event(notification)
    topic = notification.topic
    return LogRecord(
        position=notification.id,
        stream=UUID(str(notification.originator_id)),
        version=notification.originator_version,
        type=topic.split(":", 1)[-1],
        event=event,
    )


def iter_log(
    app: Application[UUID],
    *,
    after: int = 0,
    stop: int | None = None,
    stream: UUID | None = None,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[LogRecord]:
    """Yields log records after `after` (up to `stop`), in pages of `page_size`."""
    if stream is not None:
        yield from _iter_stream(app, stream, after=after, stop=stop, limit=limit)
        return
    yielded = 0
    cursor = after
    while limit is None or yielded < limit:
        want = page_size if limit is None else min(page_size, limit - yielded)
        page = app.recorder.select_notifications(
            start=cursor, limit=want, stop=stop, inclusive_of_start=False
        )
        if not page:
            return
        for notification in page:
            yield _record(app, notification)
        yielded += len(page)
        cursor = page[-1].id
        if len(page) < want:
            return


def _iter_stream(
    app: Application[UUID], stream: UUID, *, after: int, stop: int | None, limit: int | None
) -> Iterator[LogRecord]:
    yielded = 0
    version = 0
    while True:
        page = stream_notifications(app, stream, after_version=version, limit=PAGE_SIZE)
        for notification in page:
            version = notification.originator_version
            if notification.id <= after or (stop is not None and notification.id > stop):
                continue
            yield _record(app, notification)
            yielded += 1
            if limit is not None and yielded >= limit:
                return
        if len(page) < PAGE_SIZE:
            return
