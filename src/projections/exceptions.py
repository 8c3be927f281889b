"""Exceptions queue: open exceptions with their owner, age (at read) and load; and the log
of every exception raised (for the exception-rate KPI)."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.loads import Load
from ledger.log import LogRecord
from ledger.timeline import fold_load
from projections.view import Batch, View, iso

__all__ = ["ExceptionsQueue"]

_RAISE = """
INSERT INTO exceptions_queue (exception_id, load_id, load_reference, stop_id, kind, owner, note,
    raised_at, carrier_code, tenants, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (exception_id) DO NOTHING
"""
_LOG = """
INSERT INTO exception_log (exception_id, load_id, kind, day, position) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (exception_id) DO NOTHING
"""


class ExceptionsQueue(View):
    name = "exceptions_queue"
    tables = ("exceptions_queue", "exception_log")

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        for record in records:
            event = record.event
            if isinstance(event, Load.ExceptionRaised):
                load = fold_load(batch.stream(record.stream))
                assert load is not None and record.meta is not None
                batch.cursor.execute(
                    _RAISE,
                    (
                        event.exception_id,
                        str(record.stream),
                        load.reference,
                        str(event.stop_id) if event.stop_id else None,
                        event.kind.value,
                        event.owner,
                        event.note,
                        iso(record.meta.occurred_at),
                        load.carrier_code,
                        ",".join(load.tenants),
                        record.position,
                    ),
                )
                batch.cursor.execute(
                    _LOG,
                    (
                        event.exception_id,
                        str(record.stream),
                        event.kind.value,
                        record.meta.occurred_at.date().isoformat(),
                        record.position,
                    ),
                )
            elif isinstance(event, Load.ExceptionResolved):
                batch.cursor.execute(
                    "DELETE FROM exceptions_queue WHERE exception_id = %s", (event.exception_id,)
                )
