"""The demo's report: what the day produced, read back from the views and the ledger.

Every figure that a view holds (loads, stops, on-time, exceptions, detention, billing) is read
from that view, so the report and the board agree; the rest (pings, plan, scenario) comes from
what the simulation did. Money is Decimal and printed as text. Nothing here depends on the
wall clock or on the store's location, so two runs with the same seed print the same report.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from api.demo.simulate import JOBS, DayFacts
from api.demo.world import CHICAGO, DAY
from ledger.application import Ledger
from ledger.events import Source
from ledger.loads import Load
from ledger.orders import Order
from ledger.stops import Stop
from projections.db import Database
from projections.reconciler import ACTOR as RECONCILER

__all__ = ["BOARD", "build_report", "render_text", "verify_ledger"]

BOARD = {
    "run": "make run",
    "board": "http://127.0.0.1:8000/board",
    "graphiql": "http://127.0.0.1:8000/graphql",
}
_TENTH = Decimal("0.1")


def verify_ledger(ledger: Ledger, db: Database) -> dict[str, Any]:
    """Links the log into its hash chain and verifies it, when the audit module is there."""
    try:
        from projections.audit import verify
        from projections.chain import Chainer
    except ImportError:
        return {"available": False, "ok": None, "position": None, "checked": None, "problem": None}
    Chainer(ledger, db).catch_up()
    result = verify(ledger, db)
    problem = result.problem
    return {
        "available": True,
        "ok": result.ok,
        "position": result.position,
        "checked": result.checked,
        "problem": None if problem is None else f"{problem.reason} at {problem.position}",
    }


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _pct(part: int, whole: int) -> str | None:
    if not whole:
        return None
    return str((Decimal(100 * part) / Decimal(whole)).quantize(_TENTH, rounding=ROUND_HALF_UP))


def _count_by(rows: Iterable[tuple[Any, ...]]) -> dict[str, int]:
    return {str(key): int(count) for key, count in sorted(rows, key=lambda r: str(r[0]))}


def _stop_facts(ledger: Ledger, facts: DayFacts) -> dict[str, int]:
    """Stop facts by who said them; the reconciler's corrections are the late facts it
    reconciled (each names the fact it supersedes)."""
    gps = corrections = edi = app = 0
    for ref in sorted(facts.loads):
        load_id = Load.create_id(ref)
        for sequence in range(1, len(facts.loads[ref].stops) + 2):
            stop = ledger.stop(Stop.create_id(load_id, sequence))
            for _, _, meta, detail in stop.facts:
                if meta.actor == RECONCILER:
                    gps += 1
                    corrections += detail.supersedes is not None
                elif meta.source is Source.EDI:
                    edi += 1
                elif meta.source is Source.DRIVER_APP:
                    app += 1
    return {"gps": gps, "corrections": corrections, "edi": edi, "driver_app": app}


def _order_statuses(ledger: Ledger, facts: DayFacts) -> dict[str, int]:
    counts: dict[str, int] = {}
    for order in facts.world.orders:
        status = ledger.order(Order.create_id(order.tenant, order.reference)).status.value
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))


def _after(later: datetime, earlier: datetime) -> str:
    minutes = int((later - earlier) / timedelta(minutes=1))
    return f"{minutes // 60} h {minutes % 60:02d} min"


def build_report(
    ledger: Ledger, db: Database, facts: DayFacts, verified: dict[str, Any]
) -> dict[str, Any]:
    """The report as one JSON-ready document with stable keys."""
    world, plan, tele, s = facts.world, facts.plan, facts.telemetry, facts.scenario
    board = _count_by(db.query("SELECT status, COUNT(*) FROM load_board GROUP BY status"))
    stop_rows = db.query(
        "SELECT kind, COUNT(*), "
        "SUM(CASE WHEN arrived_at IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN on_time = 1 THEN 1 ELSE 0 END), "
        "SUM(detention_minutes), "
        "SUM(CASE WHEN detention_minutes > 0 THEN 1 ELSE 0 END) "
        "FROM stop_times GROUP BY kind ORDER BY kind"
    )
    stops = {str(r[0]): [int(v or 0) for v in r[1:]] for r in stop_rows}
    total = [sum(col) for col in zip(*stops.values(), strict=True)] or [0] * 5
    exceptions = _count_by(db.query("SELECT kind, COUNT(*) FROM exception_log GROUP BY kind"))
    open_now = int(db.query("SELECT COUNT(*) FROM exceptions_queue")[0][0])
    lines = db.query(
        "SELECT code, amount, currency FROM billing_lines WHERE valid_to IS NULL "
        "ORDER BY load_reference, line_id"
    )
    by_code: dict[str, Decimal] = {}
    for code, amount, _ in lines:
        by_code[str(code)] = by_code.get(str(code), Decimal(0)) + Decimal(str(amount))
    currencies = sorted({str(c) for _, _, c in lines}) or ["USD"]
    invoices = []
    for number in facts.invoice_run.invoices:
        invoice = ledger.invoice(number)
        invoices.append(
            {
                "number": number,
                "customer": invoice.tenant,
                "loads": len({line.load_id for line in invoice.lines}),
                "total": _money(sum((line.amount for line in invoice.lines), Decimal(0))),
            }
        )
    said = _stop_facts(ledger, facts)
    late = None
    if s.late_edi is not None:
        ref, first, sent = s.late_edi
        late = {
            "load": ref,
            "sent_at": sent.astimezone(CHICAGO).isoformat(),
            "after_first_fact": _after(sent, first),
        }
    offline = None
    if s.offline is not None:
        ref, device, begin, back, upload = s.offline
        offline = {
            "load": ref,
            "device": device,
            "offline_from": begin.astimezone(CHICAGO).isoformat(),
            "back_online": back.astimezone(CHICAGO).isoformat(),
            "backfill_at": upload.astimezone(CHICAGO).isoformat(),
            "pings": tele.backfilled,
        }
    return {
        "demo": {
            "seed": facts.options.seed,
            "day": DAY.isoformat(),
            "timezone": "America/Chicago",
            "vehicles": facts.options.vehicles,
            "orders": facts.options.orders,
        },
        "reference": {
            "shippers": len(world.accounts),
            "carriers": len(world.carriers),
            "rate_cards": len(world.rate_cards),
            "warehouses": len(world.warehouses),
            "customer_docks": len(world.customers),
            "vehicles": len(world.vehicles),
            "drivers": len(world.drivers),
            "stock_lots": facts.stock_lots,
            "stock_units": facts.stock_units,
            "expired_lots": facts.expired_lots,
            "damaged_in_warehouse": facts.damaged_units,
        },
        "orders": {
            "placed": facts.imported,
            "csv_files": facts.csv_files,
            "reimport_unchanged": facts.reimport_unchanged,
            "by_status": _order_statuses(ledger, facts),
            "backordered": list(facts.backordered),
            "unplanned": sum(len(stop.orders) for stop in plan.unassigned),
        },
        "planner": {
            "requests": len(plan.sweeps),
            "routes": len(plan.routes),
            "stops": sum(len(r.stops) for r in plan.routes),
            "unassigned_stops": len(plan.unassigned),
            "planned_km": str(
                sum((Decimal(str(r.planned_km)) for r in plan.routes), Decimal(0)).quantize(_TENTH)
            ),
            "search": "cheapest arc, then greedy descent to a local optimum (deterministic)",
            "hit_time_limit": sum(1 for sweep in plan.sweeps if sweep.hit_time_limit),
        },
        "loads": {
            "count": sum(board.values()),
            "by_status": board,
            "tender_rejected": s.rejected_tender,
        },
        "stops": {
            "count": total[0],
            "pickups": stops.get("pickup", [0])[0],
            "deliveries": stops.get("delivery", [0])[0],
            "arrived": total[1],
            "on_time": total[2],
            "on_time_pct": _pct(total[2], total[1]),
        },
        "exceptions": {"raised": sum(exceptions.values()), "by_kind": exceptions, "open": open_now},
        "detention": {
            "stops": total[4],
            "minutes": total[3],
            "charges": _money(by_code.get("DETENTION", Decimal(0))),
        },
        "billing": {
            "currency": ",".join(currencies),
            "total": _money(sum(by_code.values(), Decimal(0))),
            "lines": len(lines),
            "by_code": {code: _money(by_code[code]) for code in sorted(by_code)},
            "invoices": invoices,
            "adjustments": len(facts.invoice_run.adjustments),
        },
        "reconciliation": {
            "gps_stop_facts": said["gps"],
            "late_facts_reconciled": said["corrections"],
            "driver_app_facts": said["driver_app"],
            "edi_facts": said["edi"],
            "late_edi_214": late,
            "offline_backfill": offline,
        },
        "telematics": {
            "pings_sent": tele.pings_sent,
            "accepted": tele.accepted,
            "duplicates": tele.duplicates,
            "refused": tele.refused,
            "refused_device": s.skewed[1] if s.skewed else None,
            "out_of_order": tele.out_of_order,
            "backfilled": tele.backfilled,
            "flagged": tele.flagged,
        },
        "eld": {
            "duty_changes_sent": tele.duty_sent,
            "accepted": tele.duty_accepted,
            "duplicates": tele.duty_duplicates,
            "refused": tele.duty_refused,
        },
        "jobs": {
            "rounds": facts.job_rounds,
            **{name: facts.jobs[name] for name in JOBS},
            "read_side_catch_ups": facts.worker_rounds,
        },
        "verify": verified,
        "log": {"events": ledger.position},
        "board": dict(BOARD),
    }


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def render_text(report: dict[str, Any]) -> str:
    """The same report for people."""
    d, ref, o, p = report["demo"], report["reference"], report["orders"], report["planner"]
    loads, st, ex, det = report["loads"], report["stops"], report["exceptions"], report["detention"]
    bill, rec, tel, eld = (
        report["billing"],
        report["reconciliation"],
        report["telematics"],
        report["eld"],
    )
    jobs, ver, board = report["jobs"], report["verify"], report["board"]
    cur = bill["currency"]
    out = [
        f"shipledger demo — seed {d['seed']}, {d['day']} ({d['timezone']}; the ledger keeps UTC)",
        "",
        f"reference   {ref['shippers']} shippers, {ref['carriers']} carriers (a rate card "
        f"each), {ref['warehouses']} warehouses, {ref['customer_docks']} customer docks, "
        f"{ref['vehicles']} vehicles, {ref['drivers']} drivers",
        f"stock       {ref['stock_lots']} lots received ({ref['stock_units']} cases, "
        f"{ref['expired_lots']} lot(s) past expiry); {ref['damaged_in_warehouse']} case(s) "
        "written off as damaged in the warehouse",
        f"orders      {o['placed']} placed by CSV import ({o['csv_files']} files; the re-sent file "
        f"changed nothing: {o['reimport_unchanged']} unchanged); "
        + ", ".join(f"{n} {k}" for k, n in o["by_status"].items())
        + (f"; backordered: {', '.join(o['backordered'])}" if o["backordered"] else "")
        + (f"; {o['unplanned']} not planned" if o["unplanned"] else ""),
        f"planner     {p['requests']} request(s) → {p['routes']} routes, {p['stops']} stops, "
        f"{p['unassigned_stops']} unassigned, {p['planned_km']} km loaded; {p['search']}",
        f"loads       {loads['count']}: "
        + (", ".join(f"{n} {k}" for k, n in loads["by_status"].items()) or "none")
        + (
            f" (the first tender of {loads['tender_rejected']} was rejected, then re-tendered)"
            if loads["tender_rejected"]
            else ""
        ),
        f"stops       {st['count']} ({st['pickups']} pickups, {st['deliveries']} deliveries); "
        f"arrived {st['arrived']}, on time {st['on_time']} ({st['on_time_pct'] or '-'} %)",
        f"exceptions  {ex['raised']} raised: "
        + (", ".join(f"{k} {n}" for k, n in ex["by_kind"].items()) or "none")
        + f"; {ex['open']} still open",
        f"detention   {det['minutes']} min over free time at {det['stops']} stop(s); "
        f"charged {cur} {det['charges']}",
        f"billing     {cur} {bill['total']} over {bill['lines']} lines ("
        + ", ".join(f"{k} {v}" for k, v in bill["by_code"].items())
        + ")",
    ]
    for invoice in bill["invoices"]:
        out.append(
            f"            invoice {invoice['number']} to {invoice['customer']}: "
            f"{_plural(invoice['loads'], 'load')}, {cur} {invoice['total']}"
        )
    out += [
        f"reconciled  {rec['gps_stop_facts']} stop facts from GPS geofences, "
        f"{rec['late_facts_reconciled']} late facts reconciled (corrections), "
        f"{rec['driver_app_facts']} from drivers' app, {rec['edi_facts']} from EDI 214",
    ]
    if rec["late_edi_214"]:
        late = rec["late_edi_214"]
        out.append(
            f"            late EDI 214 for {late['load']} sent {late['sent_at']}, "
            f"{late['after_first_fact']} after the first status it reports"
        )
    if rec["offline_backfill"]:
        off = rec["offline_backfill"]
        out.append(
            f"            {off['device']} ({off['load']}) offline {off['offline_from'][11:16]}–"
            f"{off['back_online'][11:16]}, {off['pings']} pings backfilled at "
            f"{off['backfill_at'][11:16]}"
        )
    out += [
        f"pings       {tel['pings_sent']} sent: {tel['accepted']} accepted, "
        f"{tel['duplicates']} duplicates, {tel['refused']} refused"
        + (f" ({tel['refused_device']}'s clock runs ahead)" if tel["refused_device"] else "")
        + f"; {tel['out_of_order']} arrived out of order, {tel['backfilled']} backfilled",
        f"ELD         {eld['duty_changes_sent']} duty-status changes: {eld['accepted']} accepted, "
        f"{eld['duplicates']} duplicates, {eld['refused']} refused",
        f"jobs        {jobs['rounds']} hourly rounds: "
        + ", ".join(f"{name} {jobs[name]}" for name in JOBS)
        + f"; the reconciler and views caught up {jobs['read_side_catch_ups']} more times",
    ]
    if ver["available"]:
        state = "ok" if ver["ok"] else f"FAILED ({ver['problem']})"
        out.append(
            f"verify      {state}: the log matches its hash chain up to position "
            f"{ver['position']} ({ver['checked']} events)"
        )
    else:
        out.append("verify      not available (the audit module is not installed)")
    out += [
        f"log         {report['log']['events']} events",
        "",
        f"open the board: `{board['run']}`, then {board['board']} "
        f"(GraphiQL: {board['graphiql']})",
    ]
    return "\n".join(out) + "\n"
