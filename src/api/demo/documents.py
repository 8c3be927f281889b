"""The documents partners send, written as text: a shipper's orders CSV and a carrier's
X12 EDI 214. The demo feeds them through the same parsers the CLI and the API use."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from api.demo.world import CHICAGO, OrderSpec, World, local
from ledger.imports import OPTIONAL_ORDER_COLUMNS, ORDER_COLUMNS

__all__ = ["EdiStatus", "edi_214", "orders_csv"]


def orders_csv(world: World, orders: Sequence[OrderSpec]) -> str:
    """One row per order line, every column the import knows, windows in local time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*ORDER_COLUMNS, *OPTIONAL_ORDER_COLUMNS))
    for order in orders:
        site = order.customer.site
        (start_h, start_m), (end_h, end_m) = order.customer.window
        for sku_code, quantity in order.lines:
            sku = world.sku(sku_code)
            writer.writerow(
                (
                    order.reference,
                    sku_code,
                    quantity,
                    site.name,
                    site.address,
                    f"{site.lat:.6f}",
                    f"{site.lon:.6f}",
                    local((start_h, start_m)).isoformat(),
                    local((end_h, end_m)).isoformat(),
                    (sku.case_kg * quantity).quantize(Decimal("0.1")),
                    (sku.case_m3 * quantity).quantize(Decimal("0.001")),
                    order.service_minutes,
                    order.service_level,
                    order.notes,
                )
            )
    return out.getvalue()


@dataclass(frozen=True)
class EdiStatus:
    """One AT7 status about one stop of a load (the stop by its sequence number)."""

    code: str
    reason: str
    at: datetime
    stop_sequence: int


def edi_214(
    sender: str, control: int, sent: datetime, shipments: Sequence[tuple[str, Sequence[EdiStatus]]]
) -> str:
    """An interchange with one 214 per shipment (load reference), times in Central time."""
    when = sent.astimezone(CHICAGO)
    isa = "*".join(
        (
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            "02",
            f"{sender:<15}",
            "ZZ",
            f"{'SHIPLEDGER':<15}",
            f"{when:%y%m%d}",
            f"{when:%H%M}",
            "U",
            "00401",
            f"{control:09d}",
            "0",
            "P",
            ">",
        )
    )
    segments = [isa, f"GS*QM*{sender}*SHIPLEDGER*{when:%Y%m%d}*{when:%H%M}*{control}*X*004010"]
    for n, (load_reference, statuses) in enumerate(shipments, start=1):
        body = [f"ST*214*{n:04d}", f"B10*PRO{control:06d}{n:03d}*{load_reference}*{sender}"]
        for k, status in enumerate(statuses, start=1):
            at = status.at.astimezone(CHICAGO)
            body += [
                f"LX*{k}",
                f"AT7*{status.code}*{status.reason}***{at:%Y%m%d}*{at:%H%M}*CT",
                f"L11*{status.stop_sequence}*QN",
            ]
        body.append(f"SE*{len(body) + 1}*{n:04d}")
        segments += body
    segments += [f"GE*{len(shipments)}*{control}", f"IEA*1*{control:09d}"]
    return "~\n".join(segments) + "~\n"
