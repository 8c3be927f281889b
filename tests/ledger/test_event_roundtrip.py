"""Every event class survives the real mapper and the real store unchanged, on both backends."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import pkgutil
import types
import typing
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import ledger as ledger_package
from ledger.application import Ledger
from ledger.events import LedgerEvent, Meta, Source
from ledger.stops import FactDetail
from ledger.values import GeoPoint, OrderLine, Rates, TimeWindow

MOMENT = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)


def all_event_classes() -> list[type[LedgerEvent]]:
    found: dict[str, type[LedgerEvent]] = {}
    for module_info in pkgutil.iter_modules(ledger_package.__path__):
        module = importlib.import_module(f"ledger.{module_info.name}")
        for aggregate in vars(module).values():
            if not inspect.isclass(aggregate) or aggregate.__module__ != module.__name__:
                continue
            for name, member in vars(aggregate).items():
                if inspect.isclass(member) and issubclass(member, LedgerEvent) and name != "Event":
                    found[f"{aggregate.__qualname__}.{name}"] = member
    return [found[k] for k in sorted(found)]


def sample(annotation: Any) -> Any:
    """A representative, non-default value for a field's type."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return sample(options[0])
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return (sample(args[0]), sample(args[0]))
        return tuple(sample(a) for a in args)
    samples: dict[Any, Any] = {
        str: "sample text é",
        int: 7,
        float: 41.93512,
        bool: True,
        Decimal: Decimal("1234.50"),
        datetime: MOMENT,
        date: date(2027, 3, 1),
        timedelta: timedelta(minutes=95),
        uuid.UUID: uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Meta: Meta(
            occurred_at=MOMENT,
            actor="tester",
            source=Source.GPS,
            reason="why",
            correlation_id="corr-1",
            causation_id="cause-1",
            tenant="ACME",
        ),
        TimeWindow: TimeWindow(MOMENT, MOMENT + timedelta(hours=2)),
        GeoPoint: GeoPoint(41.9, -87.6),
        OrderLine: OrderLine(1, "SKU-1", 3, Decimal("2.5"), Decimal("0.01")),
        Rates: Rates(accessorials=(("LIFTGATE", Decimal("75.00")),)),
        FactDetail: FactDetail(
            confidence=Decimal("0.8"),
            signer="J. Doe",
            document_hash="ab12",
            derived_from=("ping-1", "ping-2"),
            supersedes="fact-1",
            note="n",
        ),
    }
    if annotation in samples:
        return samples[annotation]
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return list(annotation)[-1]
    return annotation(**{name: sample(hint) for name, hint in field_types(annotation).items()})


def field_types(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, localns=vars(importlib.import_module(cls.__module__)))
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


EVENT_CLASSES = all_event_classes()


def test_every_aggregate_family_has_events() -> None:
    families = {cls.__qualname__.split(".")[0] for cls in EVENT_CLASSES}
    assert {
        "Order",
        "StockItem",
        "Load",
        "Stop",
        "PingLog",
        "DutyLog",
        "Location",
        "Vehicle",
        "Driver",
        "Carrier",
        "RateCard",
        "Account",
        "Device",
    } <= families


@pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_event_is_unchanged_when_stored_and_read_back(
    ledger: Ledger, event_class: type[LedgerEvent]
) -> None:
    hints = field_types(event_class)
    values = {
        name: sample(hint)
        for name, hint in hints.items()
        if name not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
    values.update(originator_id=uuid.uuid4(), originator_version=1, timestamp=MOMENT)
    if "originator_topic" in hints:
        values["originator_topic"] = "ledger.reference:Account"
    original = event_class(**values)

    ledger.events.put([original])
    (restored,) = ledger.events.get(original.originator_id)

    assert type(restored) is event_class
    assert vars(restored) == vars(original)
    for name, value in vars(original).items():
        assert type(getattr(restored, name)) is type(value), name
