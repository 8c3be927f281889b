"""X12 EDI 214 (transportation carrier shipment status) → stop facts and exceptions.

Supported: ISA/GS/ST envelopes, B10 (B1002 = our load reference), LX loops with AT7
(AT701 status code, AT702 reason, AT705 date CCYYMMDD, AT706 time HHMM[SS], AT707 time
code), L11 with qualifier QN (stop sequence number), SE/GE/IEA. The separator is read from
the ISA segment (element: the 4th character; segment: after ISA16), or `*` and `~`.

| AT7 code | fact |
|---|---|
| X3, X8 | arrived at pickup |
| AF | departed pickup |
| X1, X5 | arrived at delivery |
| D1 | unloading completed / delivered |
| CD | departed delivery |
| SD | delayed (reason from AT702) — an exception |
| AH, AP | delivery attempted / not completed |
| A7 | refused by consignee |
| A9 | damaged — an exception |
| X2, AG | estimated arrival / delivery (updates ETA; not a state change) |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ledger.errors import BatchRejected
from ledger.stops import StopFact, StopKind

__all__ = ["AT7", "StatusMessage", "parse_214"]

#: AT701 → (fact, the kind of stop it is about); None for exceptions.
AT7: dict[str, tuple[StopFact | None, StopKind | None, str]] = {
    "X3": (StopFact.ARRIVED, StopKind.PICKUP, "arrived at pickup"),
    "X8": (StopFact.ARRIVED, StopKind.PICKUP, "arrived at pickup"),
    "AF": (StopFact.DEPARTED, StopKind.PICKUP, "departed pickup"),
    "X1": (StopFact.ARRIVED, StopKind.DELIVERY, "arrived at delivery"),
    "X5": (StopFact.ARRIVED, StopKind.DELIVERY, "arrived at delivery"),
    "D1": (StopFact.UNLOADING_COMPLETED, StopKind.DELIVERY, "delivered"),
    "CD": (StopFact.DEPARTED, StopKind.DELIVERY, "departed delivery"),
    "SD": (None, None, "delayed"),
    "AH": (StopFact.DELIVERY_ATTEMPTED, StopKind.DELIVERY, "delivery attempted"),
    "AP": (StopFact.DELIVERY_ATTEMPTED, StopKind.DELIVERY, "delivery not completed"),
    "A7": (StopFact.REFUSED, StopKind.DELIVERY, "refused by consignee"),
    "A9": (None, None, "damaged"),
    "X2": (StopFact.ETA_REPORTED, StopKind.DELIVERY, "estimated arrival"),
    "AG": (StopFact.ETA_REPORTED, StopKind.DELIVERY, "estimated delivery"),
}

_ZONES = {
    "UT": 0,
    "GM": 0,
    "ET": -5,
    "ES": -5,
    "ED": -4,
    "CT": -6,
    "CS": -6,
    "CD": -5,
    "MT": -7,
    "MS": -7,
    "MD": -6,
    "PT": -8,
    "PS": -8,
    "PD": -7,
}


@dataclass(frozen=True)
class StatusMessage:
    """One AT7 status of one shipment."""

    segment: int  # the AT7 segment's number in the document, for error messages
    load_reference: str
    code: str
    reason: str
    occurred_at: datetime
    stop_sequence: int | None


def _separators(text: str) -> tuple[str, str]:
    stripped = text.lstrip()
    if stripped.startswith("ISA") and len(stripped) > 106:
        element = stripped[3]
        return element, stripped[105]
    return "*", "~"


def parse_214(text: str) -> list[StatusMessage]:
    """Every status in the document, or `BatchRejected` naming each bad segment."""
    element, terminator = _separators(text)
    segments = [s.strip() for s in text.split(terminator) if s.strip()]
    problems: list[tuple[int, str, str]] = []
    messages: list[StatusMessage] = []
    reference: str | None = None
    pending: list[tuple[int, list[str]]] = []
    sequence: int | None = None

    def flush() -> None:
        nonlocal pending, sequence
        for number, fields in pending:
            try:
                messages.append(_status(number, fields, reference, sequence))
            except ValueError as error:
                problems.append((number, "AT7", str(error)))
        pending, sequence = [], None

    for number, segment in enumerate(segments, start=1):
        fields = segment.split(element)
        tag = fields[0]
        if tag == "B10":
            flush()
            reference = fields[2] if len(fields) > 2 and fields[2] else None
            if reference is None:
                problems.append((number, "B10", "B1002 (shipment id = load reference) is empty"))
        elif tag == "LX":
            flush()
        elif tag == "AT7":
            pending.append((number, fields))
        elif tag == "L11" and len(fields) > 2 and fields[2] == "QN":
            try:
                sequence = int(fields[1])
            except ValueError:
                problems.append((number, "L11", f"stop sequence {fields[1]!r} is not a number"))
        elif tag in ("SE", "GE", "IEA"):
            flush()
    flush()
    if not messages and not problems:
        problems.append((1, "AT7", "the document has no AT7 status segment"))
    if problems:
        raise BatchRejected("EDI 214", problems)
    return messages


def _status(
    number: int, fields: list[str], reference: str | None, sequence: int | None
) -> StatusMessage:
    if reference is None:
        raise ValueError("AT7 before any B10 shipment segment")
    code = fields[1] if len(fields) > 1 else ""
    if code not in AT7:
        raise ValueError(f"status code {code!r} in AT701 is not supported")
    reason = fields[2] if len(fields) > 2 else ""
    day = fields[5] if len(fields) > 5 else ""
    clock = fields[6] if len(fields) > 6 else ""
    zone = fields[7] if len(fields) > 7 else ""
    if zone not in _ZONES:
        raise ValueError(f"AT707 time code {zone!r} is missing or unknown (naive times refused)")
    try:
        moment = datetime.strptime(day + clock[:4], "%Y%m%d%H%M")
    except ValueError:
        raise ValueError(f"AT705/AT706 {day!r} {clock!r} is not CCYYMMDD HHMM") from None
    moment = moment.replace(tzinfo=timezone(timedelta(hours=_ZONES[zone])))
    return StatusMessage(number, reference, code, reason, moment, sequence)
