"""What a view is, and the context a batch of log records is applied in.

A view owns its tables and SQL. The runner hands it the records of one batch inside one
transaction; the view writes its rows there, and the runner writes the view's position in
the same transaction (exactly once: a crash loses the whole batch, never half of it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from ledger.application import Ledger
from ledger.log import LogRecord, iter_log
from ledger.timeline import StopState, fold_stop
from projections.db import Cursor

__all__ = ["Batch", "View", "iso"]


def iso(moment: datetime | None) -> str | None:
    """Times in views are UTC ISO 8601 text: they sort the same on both backends."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Batch:
    """One transaction's worth of records, and shared, memoised reads of the log up to it."""

    def __init__(self, ledger: Ledger, cursor: Cursor, upto: int):
        self.ledger = ledger
        self.cursor = cursor
        self.upto = upto
        self._stops: dict[UUID, StopState | None] = {}
        self._streams: dict[UUID, list[LogRecord]] = {}

    def stream(self, stream_id: UUID) -> list[LogRecord]:
        """A stream's records as the log stood at the end of this batch."""
        if stream_id not in self._streams:
            self._streams[stream_id] = list(iter_log(self.ledger, stream=stream_id, stop=self.upto))
        return self._streams[stream_id]

    def stop_state(self, stop_id: UUID) -> StopState | None:
        if stop_id not in self._stops:
            self._stops[stop_id] = fold_stop(self.stream(stop_id))
        return self._stops[stop_id]


class View(ABC):
    """A read model: its name, its tables, and how a batch of records changes them."""

    name: str
    tables: Sequence[str]

    @abstractmethod
    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        """Writes the rows these records change, through `batch.cursor`."""

    def clear(self, cursor: Cursor) -> None:
        for table in self.tables:
            cursor.execute(f"DELETE FROM {table}")
