"""Billing rules (PRODUCT §6): the charge lines of a load, from its reconciled facts.

Pure: given a load's state, its stops' reconciled states and the rate-card version that
applied, return the lines. The billing view, the invoice run and the tests all call this.
Money is Decimal, rounded half-up to cents; every line names its rate card version and the
log positions it was computed from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from ledger.loads import LoadStatus
from ledger.log import LogRecord
from ledger.reference import RateCard
from ledger.timeline import LoadState, StopState
from ledger.values import Rates

__all__ = [
    "KM_PER_MILE",
    "ChargeLine",
    "RateVersion",
    "load_charges",
    "money",
    "rate_versions",
    "rates_in_force",
]

CENT = Decimal("0.01")
KM_PER_MILE = Decimal("1.609344")
_TENTH = Decimal("0.1")


def money(amount: Decimal) -> Decimal:
    """Rounded half-up to cents."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RateVersion:
    """One published version of a rate card."""

    card: str
    version: int
    effective_from: datetime
    rates: Rates
    position: int


def rate_versions(records: Iterable[LogRecord]) -> list[RateVersion]:
    """The published versions of one rate card, from its stream."""
    code = ""
    versions: list[RateVersion] = []
    for record in sorted(records, key=lambda r: r.position):
        event = record.event
        if isinstance(event, RateCard.Created):
            code = event.code
        elif isinstance(event, RateCard.Published):
            versions.append(
                RateVersion(
                    code, len(versions) + 1, event.effective_from, event.rates, record.position
                )
            )
    return versions


def rates_in_force(versions: Sequence[RateVersion], moment: datetime) -> RateVersion | None:
    """The version in force at `moment`: the latest effective, then the latest published."""
    best: RateVersion | None = None
    for v in versions:
        if v.effective_from <= moment and (
            best is None or (v.effective_from, v.version) >= (best.effective_from, best.version)
        ):
            best = v
    return best


@dataclass(frozen=True)
class ChargeLine:
    """One charge of a load. `key` is its identity within the load across recomputations."""

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


def load_charges(
    load: LoadState, stops: Sequence[StopState], card: RateVersion | None
) -> list[ChargeLine]:
    """The charge lines of a load as its facts stand; none without a rate card."""
    if card is None:
        return []
    r = card.rates
    base = (card.card, card.version)

    def line(
        key: str,
        code: str,
        quantity: Decimal,
        unit: str,
        rate: Decimal,
        amount: Decimal,
        sources: Sequence[int],
        stop_id: UUID | None = None,
    ) -> ChargeLine:
        return ChargeLine(
            key,
            code,
            stop_id,
            quantity,
            unit,
            rate,
            money(amount),
            *base,
            (*sorted(set(sources)), card.position),
        )

    if load.status is LoadStatus.CANCELLED:
        if not load.tonu:
            return []
        return [line("TONU", "TONU", Decimal(1), "load", r.tonu, r.tonu, load.computed_from[-1:])]
    planned = load.computed_from[:1]
    lines: list[ChargeLine] = []
    miles = (Decimal(str(load.planned_km)) / KM_PER_MILE).quantize(_TENTH, ROUND_HALF_UP)
    linehaul = max(money(miles * r.per_mile), r.minimum)
    unit = "mile" if miles * r.per_mile >= r.minimum else "mile (minimum charge)"
    lines.append(line("LINEHAUL", "LINEHAUL", miles, unit, r.per_mile, linehaul, planned))
    if r.fuel_surcharge_pct:
        fuel = linehaul * r.fuel_surcharge_pct / 100
        lines.append(
            line("FUEL", "FUEL", linehaul, "% of linehaul", r.fuel_surcharge_pct, fuel, planned)
        )
    ordered = sorted(stops, key=lambda s: s.sequence)
    extra = max(0, len(ordered) - 2)  # beyond the first pickup and the final delivery
    if extra:
        lines.append(
            line(
                "STOP_OFF",
                "STOP_OFF",
                Decimal(extra),
                "stop",
                r.stop_off,
                r.stop_off * extra,
                planned,
            )
        )
    previous: StopState | None = None
    for stop in ordered:
        minutes = stop.detention_minutes(r.detention_free_minutes, r.detention_increment_minutes)
        if minutes and stop.arrival and stop.departure:
            hours = Decimal(minutes) / 60
            lines.append(
                line(
                    f"DETENTION:{stop.sequence}",
                    "DETENTION",
                    hours,
                    "hour",
                    r.detention_hourly,
                    hours * r.detention_hourly,
                    (stop.arrival.position, stop.departure.position),
                    stop.stop_id,
                )
            )
        nights = _overnights(previous, stop)
        if nights:
            lines.append(
                line(
                    f"LAYOVER:{stop.sequence}",
                    "LAYOVER",
                    Decimal(nights),
                    "night",
                    r.layover,
                    r.layover * nights,
                    stop.computed_from[:1],
                    stop.stop_id,
                )
            )
        previous = stop
    priced = dict(r.accessorials)
    for acc in load.accessorials:
        if acc.quantity <= 0:
            continue
        if acc.amount is not None:  # paid out, passed through (a lumper receipt)
            lines.append(
                line(
                    f"ACC:{acc.accessorial_id}",
                    acc.code,
                    acc.quantity,
                    "receipt",
                    acc.amount,
                    acc.amount,
                    acc.positions,
                    acc.stop_id,
                )
            )
        else:
            rate = priced.get(acc.code, Decimal(0))
            unit = "each" if acc.code in priced else "each, not on the rate card"
            lines.append(
                line(
                    f"ACC:{acc.accessorial_id}",
                    acc.code,
                    acc.quantity,
                    unit,
                    rate,
                    rate * acc.quantity,
                    acc.positions,
                    acc.stop_id,
                )
            )
    return lines


def _overnights(previous: StopState | None, stop: StopState) -> int:
    """Nights the stop's appointment forces after the previous stop was left."""
    if previous is None or stop.appointment is None:
        return 0
    left = previous.departure or previous.arrival
    since = left.occurred_at if left else previous.window.end
    return max(0, (stop.appointment.start.date() - since.date()).days)
