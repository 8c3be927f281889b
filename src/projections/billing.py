"""Billing lines: per load, the charges of `ledger.billing.load_charges`, and once invoiced,
the frozen invoice lines, the issued adjustments, and the adjustments still to issue.

Lines keep their history (valid from / to a log position) so a finance export pinned to a
position is exact and byte-identical however many events arrive after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from uuid import UUID

from ledger.billing import ChargeLine, load_charges, rate_versions, rates_in_force
from ledger.invoices import Invoice, InvoiceLine
from ledger.loads import Load
from ledger.log import LogRecord
from ledger.reference import RateCard
from ledger.stops import Stop
from ledger.timeline import fold_load, fold_stop
from projections.view import Batch, View

__all__ = ["EXPORT_COLUMNS", "BillingLines", "charges_at", "desired_lines"]

Streams = Callable[[UUID], list[LogRecord]]

COLUMNS = (
    "line_id",
    "load_id",
    "load_reference",
    "tenant",
    "charge_key",
    "code",
    "stop_id",
    "quantity",
    "unit",
    "rate",
    "amount",
    "currency",
    "rate_card",
    "rate_version",
    "sources",
    "status",
    "invoice_number",
    "adjusts",
)
EXPORT_COLUMNS = (
    "line_id",
    "load_reference",
    "tenant",
    "status",
    "invoice_number",
    "adjusts",
    "code",
    "charge_key",
    "stop_id",
    "quantity",
    "unit",
    "rate",
    "amount",
    "currency",
    "rate_card",
    "rate_version",
    "sources",
)


def charges_at(streams: Streams, load_id: UUID, upto: int) -> tuple[list[ChargeLine], str]:
    """A load's charges from the log up to position `upto` (and its rate card's currency)."""
    load = fold_load(_upto(streams(load_id), upto))
    if load is None:
        return [], "USD"
    stops = [fold_stop(_upto(streams(s), upto)) for s in load.stop_ids]
    card = None
    currency = "USD"
    if load.rate_card is not None:
        versions = rate_versions(_upto(streams(RateCard.create_id(load.rate_card)), upto))
        moment = load.tendered_at or load.status_since
        card = rates_in_force(versions, moment)
        currency = card.rates.currency if card else currency
    charges = load_charges(load, [s for s in stops if s is not None], card)
    return charges, currency


def _upto(records: list[LogRecord], upto: int) -> list[LogRecord]:
    return [r for r in records if r.position <= upto]


def desired_lines(streams: Streams, load_id: UUID, upto: int) -> list[tuple[object, ...]]:
    """The rows a load should have in `billing_lines` as the log stood at `upto`."""
    load = fold_load(_upto(streams(load_id), upto))
    if load is None:
        return []
    charges, currency = charges_at(streams, load_id, upto)
    tenant = ",".join(load.tenants)
    ref = load.reference

    def row(
        line_id: str,
        c: ChargeLine | InvoiceLine,
        status: str,
        number: str | None,
        adjusts: str | None,
        quantity: Decimal,
        amount: Decimal,
    ) -> tuple[object, ...]:
        return (
            line_id,
            str(load_id),
            ref,
            tenant,
            c.key,
            c.code,
            str(c.stop_id) if c.stop_id else None,
            str(quantity),
            c.unit,
            str(c.rate),
            str(amount),
            currency,
            c.rate_card,
            c.rate_version,
            ",".join(str(s) for s in c.sources),
            status,
            number,
            adjusts,
        )

    number = load.invoice_number
    if number is None:
        return [
            row(f"{ref}/{c.key}", c, "pending", None, None, c.quantity, c.amount) for c in charges
        ]
    issued: list[InvoiceLine] = []
    for record in _upto(streams(Invoice.create_id(number)), upto):
        event = record.event
        if isinstance(event, Invoice.Issued | Invoice.Adjusted):
            issued.extend(line for line in event.lines if line.load_id == load_id)
    rows = [
        row(
            x.line_id,
            x,
            "adjustment" if x.adjusts else "invoiced",
            number,
            x.adjusts,
            x.quantity,
            x.amount,
        )
        for x in issued
    ]
    billed: dict[str, tuple[InvoiceLine, Decimal, Decimal]] = {}
    for x in issued:
        head, so_far, total = billed.get(x.key, (x, Decimal(0), Decimal(0)))
        billed[x.key] = (head if x.adjusts else x, so_far + x.quantity, total + x.amount)
    current = {c.key: c for c in charges}
    for key in sorted(set(billed) | set(current)):
        first: InvoiceLine | None
        first, quantity, amount = billed.get(key) or (None, Decimal(0), Decimal(0))
        charge = current.get(key)
        delta = (charge.amount if charge else Decimal(0)) - amount
        if not delta:
            continue
        template = charge or first
        assert template is not None
        original = first.line_id if first else None
        rows.append(
            row(
                f"{original or f'{ref}/{key}'}/pending",
                template,
                "adjustment_pending",
                number,
                original,
                (charge.quantity if charge else Decimal(0)) - quantity,
                delta,
            )
        )
    return rows


class BillingLines(View):
    name = "billing_lines"
    tables = ("billing_lines", "billing_loads")

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        for record in records:
            for load_id in self._loads_touched(batch, record):
                self._refresh(batch, load_id, record.position)

    def _loads_touched(self, batch: Batch, record: LogRecord) -> list[UUID]:
        event = record.event
        if isinstance(event, Load.Event):
            if isinstance(event, Load.Tendered):
                batch.cursor.execute(
                    "INSERT INTO billing_loads (load_id, rate_card) VALUES (%s, %s) "
                    "ON CONFLICT (load_id) DO UPDATE SET rate_card = excluded.rate_card",
                    (str(record.stream), event.rate_card),
                )
            return [record.stream]
        if isinstance(event, Stop.Event):
            state = batch.stop_state(record.stream)
            return [state.load_id] if state else []
        if isinstance(event, Invoice.Issued | Invoice.Adjusted):
            return list(dict.fromkeys(line.load_id for line in event.lines))
        if isinstance(event, RateCard.Published):
            card = fold_card_code(batch.stream(record.stream))
            rows = batch.cursor.execute(
                "SELECT load_id FROM billing_loads WHERE rate_card = %s ORDER BY load_id", (card,)
            ).fetchall()
            return [UUID(str(r[0])) for r in rows]
        return []

    def _refresh(self, batch: Batch, load_id: UUID, position: int) -> None:
        wanted = {r[0]: r for r in desired_lines(batch.stream, load_id, position)}
        current = {
            r[0]: r
            for r in batch.cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM billing_lines "
                "WHERE load_id = %s AND valid_to IS NULL",
                (str(load_id),),
            ).fetchall()
        }
        for line_id, row in current.items():
            if _normal(wanted.get(line_id)) != _normal(row):
                batch.cursor.execute(
                    "UPDATE billing_lines SET valid_to = %s "
                    "WHERE line_id = %s AND valid_to IS NULL",
                    (position, line_id),
                )
        inserts = [
            (*row, position)
            for line_id, row in wanted.items()
            if _normal(current.get(line_id)) != _normal(row)
        ]
        batch.cursor.executemany(
            f"INSERT INTO billing_lines ({', '.join(COLUMNS)}, valid_from) "
            f"VALUES ({', '.join(['%s'] * (len(COLUMNS) + 1))})",
            inserts,
        )


def _normal(row: tuple[object, ...] | None) -> tuple[object, ...] | None:
    return None if row is None else tuple(None if v is None else str(v) for v in row)


def fold_card_code(records: list[LogRecord]) -> str:
    for record in records:
        if isinstance(record.event, RateCard.Created):
            return record.event.code
    return ""
