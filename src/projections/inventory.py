"""Inventory positions: per warehouse × sku × lot, on hand, reserved, picked, staged,
quarantined and available (the same `timeline.stock_delta` the stock fold adds up)."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.log import LogRecord
from ledger.stock import StockItem
from ledger.timeline import stock_delta
from projections.view import Batch, View

__all__ = ["InventoryPositions"]

_INSERT = """
INSERT INTO inventory_positions (stock_id, warehouse, sku, lot, expiry, on_hand, reserved,
    picked, staged, quarantined, available, position)
VALUES (%s, %s, %s, %s, %s, 0, 0, 0, 0, 0, 0, %s)
ON CONFLICT (stock_id) DO NOTHING
"""
_MOVE = """
UPDATE inventory_positions SET on_hand = on_hand + %s, reserved = reserved + %s,
    picked = picked + %s, staged = staged + %s, quarantined = quarantined + %s,
    available = available + %s, position = %s
WHERE stock_id = %s
"""


class InventoryPositions(View):
    name = "inventory_positions"
    tables = ("inventory_positions",)

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        for record in records:
            event = record.event
            if isinstance(event, StockItem.Registered):
                expiry = event.expiry.isoformat() if event.expiry else None
                batch.cursor.execute(
                    _INSERT,
                    (
                        str(record.stream),
                        event.warehouse,
                        event.sku,
                        event.lot,
                        expiry,
                        record.position,
                    ),
                )
                continue
            delta = stock_delta(event)
            if not delta:
                continue
            d = [
                delta.get(b, 0) for b in ("on_hand", "reserved", "picked", "staged", "quarantined")
            ]
            available = d[0] - d[1] - d[2] - d[3] - d[4]
            batch.cursor.execute(_MOVE, (*d, available, record.position, str(record.stream)))
