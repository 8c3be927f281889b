"""Invoices: issued for a customer over delivered loads; frozen once issued.

A charge that changes after its invoice was issued is never edited: the change is issued
as an adjustment line (a debit or a credit) on the same invoice, naming the line it adjusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidInput
from ledger.events import LedgerEvent, Meta, register_value_type
from ledger.ids import natural_id

__all__ = ["Invoice", "InvoiceLine"]


@register_value_type
@dataclass(frozen=True)
class InvoiceLine:
    """A line as issued. An adjustment names the line it adjusts in `adjusts` (or the
    invoice number, for a charge the invoice did not have)."""

    line_id: str
    load_id: UUID
    load_reference: str
    key: str
    code: str
    stop_id: UUID | None
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal
    rate_card: str | None
    rate_version: int | None
    sources: tuple[int, ...]
    adjusts: str | None = None


class Invoice(Aggregate):
    class Event(LedgerEvent):
        pass

    class Issued(Event, Aggregate.Created):  # type: ignore[misc]  # see LedgerEvent
        number: str
        tenant: str
        issued_on: date
        lines: tuple[InvoiceLine, ...]
        total: Decimal

    class Adjusted(Event):
        lines: tuple[InvoiceLine, ...]
        total: Decimal

    @staticmethod
    def create_id(number: str) -> UUID:
        return natural_id("invoice", number)

    @classmethod
    def issue(
        cls,
        meta: Meta,
        *,
        number: str,
        tenant: str,
        issued_on: date,
        lines: tuple[InvoiceLine, ...],
    ) -> Invoice:
        if not lines:
            raise InvalidInput("an invoice needs at least one line", field="lines")
        issued: Invoice = cls(
            meta=meta,
            number=number,
            tenant=tenant,
            issued_on=issued_on,
            lines=lines,
            total=sum((line.amount for line in lines), Decimal(0)),
        )
        return issued

    @event(Issued)
    def __init__(
        self,
        meta: Meta,
        number: str,
        tenant: str,
        issued_on: date,
        lines: tuple[InvoiceLine, ...],
        total: Decimal,
    ) -> None:
        self.number = number
        self.tenant = tenant
        self.issued_on = issued_on
        self.lines: list[InvoiceLine] = list(lines)

    def adjust(self, meta: Meta, lines: tuple[InvoiceLine, ...]) -> None:
        """Adds adjustment lines; each names the line it adjusts, or the invoice itself for
        a charge the invoice did not have."""
        known = {line.line_id for line in self.lines} | {self.number}
        for line in lines:
            if line.adjusts not in known:
                raise InvalidInput(
                    f"adjustment {line.line_id} must adjust a line of invoice {self.number}",
                    field="adjusts",
                    rule="must_exist",
                )
        if lines:
            self._adjusted(meta, lines, sum((line.amount for line in lines), Decimal(0)))

    @event(Adjusted)
    def _adjusted(self, meta: Meta, lines: tuple[InvoiceLine, ...], total: Decimal) -> None:
        self.lines.extend(lines)

    def billed(self, load_id: UUID) -> dict[str, tuple[str, Decimal, Decimal]]:
        """Per charge key of a load: the original line id, and the quantity and amount
        billed so far (the original line plus its adjustments)."""
        result: dict[str, tuple[str, Decimal, Decimal]] = {}
        for line in self.lines:
            if line.load_id != load_id:
                continue
            original, quantity, amount = result.get(
                line.key, (line.line_id, Decimal(0), Decimal(0))
            )
            result[line.key] = (
                original if line.adjusts else line.line_id,
                quantity + line.quantity,
                amount + line.amount,
            )
        return result
