"""One stream's events with their global log positions.

The library selects a stream's events without their positions; bitemporal reads ("as the
system knew it at position P") need both, so this asks the events table directly through
the library's own datastore (no driver imported here).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

__all__ = ["stream_notifications"]


def stream_notifications(
    app: Application[UUID], stream: UUID, *, after_version: int = 0, limit: int = 500
) -> list[Notification]:
    """Up to `limit` events of `stream` after `after_version`, each with its log position."""
    recorder: Any = app.recorder
    table = recorder.events_table_name
    datastore = recorder.datastore
    if hasattr(datastore, "schema"):  # PostgreSQL
        sql = (
            f"SELECT notification_id AS position, originator_id, originator_version, topic, "
            f'state FROM "{datastore.schema}"."{table}" WHERE originator_id = %s '
            f"AND originator_version > %s ORDER BY originator_version LIMIT %s"
        )
        params: tuple[Any, ...] = (stream, after_version, limit)
    else:  # SQLite stores the id as hex text and the position as the rowid
        sql = (
            f"SELECT rowid AS position, originator_id, originator_version, topic, state "
            f"FROM {table} WHERE originator_id = ? AND originator_version > ? "
            f"ORDER BY originator_version LIMIT ?"
        )
        params = (stream.hex, after_version, limit)
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        Notification(
            id=row["position"],
            originator_id=stream,
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        for row in rows
    ]
