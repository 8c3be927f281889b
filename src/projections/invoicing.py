"""The nightly invoice run and the finance export.

The run invoices every load that is ready to invoice, one invoice per customer per run, and
issues the adjustments that charges changed since their invoice call for. Running it twice
issues nothing twice: an invoiced load cannot be invoiced again, and an adjustment is the
difference between the charges now and what the invoice already billed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

from ledger.application import Caller, Ledger
from ledger.errors import InvalidInput, InvalidTransition
from ledger.log import LogRecord, iter_log
from projections.billing import EXPORT_COLUMNS, charges_at
from projections.db import Database
from projections.runner import Runner

__all__ = ["InvoiceRunReport", "export_lines", "invoice_run"]


@dataclass
class InvoiceRunReport:
    invoices: list[str] = field(default_factory=list)
    loads: int = 0
    adjustments: list[tuple[str, str]] = field(default_factory=list)  # (invoice, load ref)


def _streams(ledger: Ledger, upto: int) -> Callable[[UUID], list[LogRecord]]:
    cache: dict[UUID, list[LogRecord]] = {}

    def streams(stream_id: UUID) -> list[LogRecord]:
        if stream_id not in cache:
            cache[stream_id] = list(iter_log(ledger, stream=stream_id, stop=upto))
        return cache[stream_id]

    return streams


def invoice_run(ledger: Ledger, db: Database, caller: Caller, *, on: date) -> InvoiceRunReport:
    """Invoices ready loads per customer and issues pending adjustments."""
    runner = Runner(ledger, db)
    runner.catch_up()
    report = InvoiceRunReport()
    upto = ledger.position
    streams = _streams(ledger, upto)
    ready = db.query(
        "SELECT load_id, tenants FROM load_board WHERE status = 'ready_to_invoice' "
        "ORDER BY reference"
    )
    by_tenant: dict[str, list[UUID]] = {}
    for load_id, tenants in ready:
        customer = str(tenants).split(",")[0]
        if customer:  # a load with no customer cannot be invoiced to anyone
            by_tenant.setdefault(customer, []).append(UUID(str(load_id)))
    for tenant, load_ids in sorted(by_tenant.items()):
        charges = {load_id: charges_at(streams, load_id, upto)[0] for load_id in load_ids}
        charges = {k: v for k, v in charges.items() if v}  # unpriced loads wait for a card
        if not charges:
            continue
        number = _next_number(ledger, tenant, on)
        try:
            ledger.issue_invoice(
                caller, number=number, tenant=tenant, issued_on=on, charges=charges
            )
        except InvalidTransition:
            continue  # another run invoiced these loads first
        report.invoices.append(number)
        report.loads += len(charges)
    pending = db.query(
        "SELECT DISTINCT load_id, load_reference, invoice_number FROM billing_lines "
        "WHERE valid_to IS NULL AND status = 'adjustment_pending' ORDER BY load_reference"
    )
    for load_id, reference, number in pending:
        charges_now = charges_at(streams, UUID(str(load_id)), upto)[0]
        before = ledger.invoice(str(number)).version
        ledger.issue_adjustment(caller, str(number), UUID(str(load_id)), charges_now)
        if ledger.invoice(str(number)).version != before:
            report.adjustments.append((str(number), str(reference)))
    runner.catch_up()
    return report


def _next_number(ledger: Ledger, tenant: str, on: date) -> str:
    n = 1
    while ledger.find_invoice(f"INV-{tenant}-{on:%Y%m%d}-{n}") is not None:
        n += 1
    return f"INV-{tenant}-{on:%Y%m%d}-{n}"


def export_lines(
    db: Database,
    runner: Runner,
    *,
    at: int | None = None,
    since: int | None = None,
    fmt: str = "csv",
) -> tuple[int, str]:
    """Billing lines as they stood at log position `at` (default: the view's position),
    optionally only those that appeared after `since`. The same arguments always give the
    same bytes."""
    position = runner.positions()["billing_lines"]
    if at is None:
        at = position
    if at > position:
        raise InvalidInput(
            f"the billing view is at position {position}; it cannot export at {at} yet",
            field="at",
            rule="at <= billing view position",
        )
    if at < 0 or (since is not None and not 0 <= since <= at):
        raise InvalidInput("positions must satisfy 0 <= since <= at", field="since")
    sql = (
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM billing_lines "
        "WHERE valid_from <= %s AND (valid_to IS NULL OR valid_to > %s)"
    )
    params: list[object] = [at, at]
    if since is not None:
        sql += " AND valid_from > %s"
        params.append(since)
    rows = db.query(sql + " ORDER BY load_reference, line_id", params)
    records = [
        dict(zip(EXPORT_COLUMNS, (None if v is None else str(v) for v in row), strict=True))
        for row in rows
    ]
    if fmt == "json":
        body = {"position": at, "since": since, "lines": records}
        return at, json.dumps(body, indent=2, sort_keys=False) + "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("as_of_position", *EXPORT_COLUMNS))
    for record in records:
        writer.writerow((at, *(record[c] or "" for c in EXPORT_COLUMNS)))
    return at, out.getvalue()
