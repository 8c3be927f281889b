"""Parsing the file formats the ledger takes in: orders CSV and pings JSONL.

Parsing checks every row before anything is recorded; a file with any bad row is refused
whole (`BatchRejected` lists every problem: row or line, column, reason).

Orders CSV: one row per order line, header required. Columns: reference, sku, quantity,
ship_to_name, ship_to_address, ship_to_lat, ship_to_lon, window_start, window_end (ISO 8601
with offset); optional weight_kg, volume_m3 (totals of the line), service_minutes,
service_level (standard | expedited | appointment), notes. Rows sharing a reference are the
lines of one order and must agree on ship-to and window.

Pings JSONL: one JSON object per line with device_id, seq (int or null), occurred_at (ISO 8601
with offset), lat, lon, speed_kph, heading, odometer_km (numbers or null), source (gps | eld).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.application import OrderDraft
from ledger.drivers import DutyInput, DutyOrigin, DutyStatus
from ledger.errors import BatchRejected, LedgerError
from ledger.telematics import PingInput, PingSource
from ledger.values import GeoPoint, OrderLine, ServiceLevel, TimeWindow

__all__ = [
    "OPTIONAL_ORDER_COLUMNS",
    "ORDER_COLUMNS",
    "parse_duty_jsonl",
    "parse_orders_csv",
    "parse_pings_jsonl",
    "ship_to_code",
]

ORDER_COLUMNS = (
    "reference",
    "sku",
    "quantity",
    "ship_to_name",
    "ship_to_address",
    "ship_to_lat",
    "ship_to_lon",
    "window_start",
    "window_end",
)
OPTIONAL_ORDER_COLUMNS = ("weight_kg", "volume_m3", "service_minutes", "service_level", "notes")
PING_KEYS = (
    "device_id",
    "seq",
    "occurred_at",
    "lat",
    "lon",
    "speed_kph",
    "heading",
    "odometer_km",
    "source",
)
REQUIRED_PING_KEYS = ("device_id", "occurred_at", "lat", "lon")


class _Bad(Exception):
    def __init__(self, column: str, reason: str):
        self.column = column
        self.reason = reason


def ship_to_code(tenant: str, name: str, address: str) -> str:
    """The natural key of a ship-to location: the tenant with its name and address."""
    key = "\x1f".join((tenant, " ".join(name.lower().split()), " ".join(address.lower().split())))
    return "ST-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_time(value: str, column: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Bad(column, f"{value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise _Bad(column, f"{value!r} has no UTC offset (naive date-times are refused)")
    return moment


def _int(value: str, column: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise _Bad(column, f"{value!r} is not a whole number") from None


def _decimal(value: str, column: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise _Bad(column, f"{value!r} is not a number") from None
    if not number.is_finite():
        raise _Bad(column, f"{value!r} is not a finite number")
    return number


def _float(value: str, column: str) -> float:
    return float(_decimal(value, column))


@dataclass
class _Row:
    number: int
    reference: str
    line: OrderLine
    ship_to: tuple[str, str, GeoPoint]
    window: TimeWindow
    service_minutes: int
    service_level: ServiceLevel
    notes: str


def parse_orders_csv(text: str, tenant: str) -> list[OrderDraft]:
    """Parses an orders CSV into drafts, or raises `BatchRejected` naming every bad row."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames
    problems: list[tuple[int, str, str]] = []
    if not header:
        raise BatchRejected(
            "orders CSV", [(1, "header", "the file is empty; a header is required")]
        )
    header = [h.strip() for h in header]
    for column in header:
        if column not in ORDER_COLUMNS and column not in OPTIONAL_ORDER_COLUMNS:
            problems.append((1, column, "unknown column"))
    for column in ORDER_COLUMNS:
        if column not in header:
            problems.append((1, column, "required column is missing"))
    if problems:
        raise BatchRejected("orders CSV", problems)
    rows: list[_Row] = []
    line_numbers: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        record = {(k or "").strip(): (v or "") for k, v in raw.items()}
        if None in raw:
            problems.append((number, "", "more fields than the header has columns"))
            continue
        try:
            rows.append(_parse_order_row(number, record, line_numbers))
        except _Bad as bad:
            problems.append((number, bad.column, bad.reason))
        except LedgerError as error:
            problems.append((number, error.field or "", error.message))
    if not rows and not problems:
        problems.append((2, "", "the file has no order rows"))
    problems.extend(_check_orders_agree(rows))
    if problems:
        raise BatchRejected("orders CSV", problems)
    return _drafts(rows, tenant)


def _parse_order_row(number: int, record: dict[str, str], lines: dict[str, int]) -> _Row:
    for column in ORDER_COLUMNS:
        if not record.get(column, "").strip():
            raise _Bad(column, "a value is required")
    reference = record["reference"].strip()
    quantity = _int(record["quantity"], "quantity")
    if quantity <= 0:
        raise _Bad("quantity", f"must be positive, got {quantity}")
    weight = _decimal(record.get("weight_kg") or "0", "weight_kg")
    volume = _decimal(record.get("volume_m3") or "0", "volume_m3")
    if weight < 0:
        raise _Bad("weight_kg", "must not be negative")
    if volume < 0:
        raise _Bad("volume_m3", "must not be negative")
    lines[reference] = lines.get(reference, 0) + 1
    line = OrderLine(lines[reference], record["sku"].strip(), quantity, weight, volume)
    point = GeoPoint(
        _float(record["ship_to_lat"], "ship_to_lat"), _float(record["ship_to_lon"], "ship_to_lon")
    )
    start = parse_time(record["window_start"], "window_start")
    end = parse_time(record["window_end"], "window_end")
    if end < start:
        raise _Bad("window_end", "must not be before window_start")
    service_minutes = _int(record.get("service_minutes") or "15", "service_minutes")
    if service_minutes < 0:
        raise _Bad("service_minutes", "must not be negative")
    level_text = (record.get("service_level") or "standard").strip().lower()
    try:
        level = ServiceLevel(level_text)
    except ValueError:
        allowed = ", ".join(s.value for s in ServiceLevel)
        raise _Bad("service_level", f"{level_text!r} is not one of {allowed}") from None
    return _Row(
        number=number,
        reference=reference,
        line=line,
        ship_to=(record["ship_to_name"].strip(), record["ship_to_address"].strip(), point),
        window=TimeWindow(start, end),
        service_minutes=service_minutes,
        service_level=level,
        notes=(record.get("notes") or "").strip(),
    )


def _check_orders_agree(rows: Iterable[_Row]) -> list[tuple[int, str, str]]:
    first: dict[str, _Row] = {}
    problems = []
    for row in rows:
        head = first.setdefault(row.reference, row)
        if row.ship_to != head.ship_to:
            reason = f"differs from row {head.number} of order {row.reference}"
            problems.append((row.number, "ship_to_name", reason))
        elif row.window != head.window:
            reason = f"differs from row {head.number} of order {row.reference}"
            problems.append((row.number, "window_start", reason))
    return problems


def _drafts(rows: list[_Row], tenant: str) -> list[OrderDraft]:
    grouped: dict[str, list[_Row]] = {}
    for row in rows:
        grouped.setdefault(row.reference, []).append(row)
    drafts = []
    for reference, group in grouped.items():
        head = group[0]
        name, address, point = head.ship_to
        drafts.append(
            OrderDraft(
                reference=reference,
                lines=tuple(r.line for r in group),
                ship_to_code=ship_to_code(tenant, name, address),
                ship_to_name=name,
                ship_to_address=address,
                ship_to=point,
                window=head.window,
                service_level=head.service_level,
                service_minutes=head.service_minutes,
                notes=head.notes,
            )
        )
    return drafts


def _number(value: Any, key: str, *, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(key, f"must be a number{' or null' if nullable else ''}, got {value!r}")
    return float(value)


def _parse_ping(obj: Any) -> PingInput:
    if not isinstance(obj, dict):
        raise _Bad("", "each line must be a JSON object")
    for key in obj:
        if key not in PING_KEYS:
            raise _Bad(key, "unknown field")
    for key in REQUIRED_PING_KEYS:
        if obj.get(key) is None:
            raise _Bad(key, "a value is required")
    device_id = obj["device_id"]
    if not isinstance(device_id, str):
        raise _Bad("device_id", "must be a string")
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise _Bad("seq", f"must be an integer or null, got {seq!r}")
    if not isinstance(obj["occurred_at"], str):
        raise _Bad("occurred_at", "must be an ISO 8601 string")
    source_text = obj.get("source") or "gps"
    try:
        source = PingSource(source_text)
    except ValueError:
        raise _Bad("source", f"{source_text!r} is not gps or eld") from None
    lat = _number(obj["lat"], "lat", nullable=False)
    lon = _number(obj["lon"], "lon", nullable=False)
    assert lat is not None and lon is not None
    return PingInput(
        device_id=device_id,
        seq=seq,
        occurred_at=parse_time(obj["occurred_at"], "occurred_at"),
        lat=lat,
        lon=lon,
        speed_kph=_number(obj.get("speed_kph"), "speed_kph", nullable=True),
        heading=_number(obj.get("heading"), "heading", nullable=True),
        odometer_km=_number(obj.get("odometer_km"), "odometer_km", nullable=True),
        source=source,
    )


def parse_pings_jsonl(lines: Iterable[str]) -> list[tuple[int, PingInput]]:
    """Parses pings, one per line, or raises `BatchRejected` naming every malformed line."""
    return _parse_jsonl(lines, _parse_ping, "pings JSONL")


def _parse_duty(obj: Any) -> DutyInput:
    if not isinstance(obj, dict):
        raise _Bad("", "each line must be a JSON object")
    allowed = ("driver_code", "occurred_at", "status", "origin", "vehicle_code", "note")
    for key in obj:
        if key not in allowed:
            raise _Bad(key, "unknown field")
    for key in ("driver_code", "occurred_at", "status"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise _Bad(key, "a string value is required")
    try:
        status = DutyStatus(obj["status"])
    except ValueError:
        raise _Bad("status", f"{obj['status']!r} is not a duty status") from None
    try:
        origin = DutyOrigin(obj.get("origin") or "automatic")
    except ValueError:
        raise _Bad("origin", f"{obj.get('origin')!r} is not a duty-status origin") from None
    return DutyInput(
        driver_code=obj["driver_code"],
        occurred_at=parse_time(obj["occurred_at"], "occurred_at"),
        status=status,
        origin=origin,
        vehicle_code=obj.get("vehicle_code"),
        note=obj.get("note") or "",
    )


def parse_duty_jsonl(lines: Iterable[str]) -> list[tuple[int, DutyInput]]:
    """Parses duty-status changes, one per line, or raises `BatchRejected`."""
    return _parse_jsonl(lines, _parse_duty, "duty JSONL")


def _parse_jsonl(lines: Iterable[str], parse: Any, what: str) -> list[Any]:
    parsed = []
    problems: list[tuple[int, str, str]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append((number, "", f"not valid JSON: {error.msg}"))
            continue
        try:
            parsed.append((number, parse(obj)))
        except _Bad as bad:
            problems.append((number, bad.column, bad.reason))
        except LedgerError as error:
            problems.append((number, error.field or "", error.message))
    if problems:
        raise BatchRejected(what, problems)
    return parsed
