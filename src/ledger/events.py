"""The envelope every event carries, and the transcodings of every value type events use.

Every event has a `meta: Meta`: when it happened in the world (`occurred_at`), who said so
(`actor`), through which channel (`source`), why (`reason`), and the ids that tie it to a
request (`correlation_id`), to the event that caused it (`causation_id`) and to the shipper
account that owns it (`tenant`). The record time is the event's log position (and, for
display, the library's `timestamp`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder, Transcoding

from ledger.errors import InvalidInput, ReasonRequired

__all__ = [
    "BACKDATE_TOLERANCE",
    "Clock",
    "LedgerEvent",
    "LedgerTranscoder",
    "Meta",
    "Source",
    "aware",
    "register_transcoding",
    "register_value_type",
]

#: A human command dated further back than this needs a reason.
BACKDATE_TOLERANCE = timedelta(minutes=15)


class Source(enum.StrEnum):
    """The channel a fact or command came through (PRODUCT §2.5)."""

    API = "api"
    CSV = "csv"
    EDI = "edi"
    ELD = "eld"
    GPS = "gps"
    DRIVER_APP = "driver_app"
    OPERATOR = "operator"
    PLANNER = "planner"
    SCHEDULER = "scheduler"
    SYSTEM = "system"


def aware(value: datetime, field: str = "occurred_at") -> datetime:
    """Refuses naive datetimes: every time in the ledger carries its offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be timezone-aware (ISO 8601 with offset), got {value.isoformat()}",
            field=field,
            rule="timezone_required",
        )
    return value


@dataclass(frozen=True)
class Meta:
    """Provenance of one event: both clocks' world side, actor, source, reason and ids."""

    occurred_at: datetime
    actor: str
    source: Source
    reason: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    tenant: str | None = None

    def __post_init__(self) -> None:
        aware(self.occurred_at)
        if not self.actor:
            raise InvalidInput("actor must not be empty", field="actor", rule="required")

    def require_reason(self, what: str) -> None:
        if not (self.reason and self.reason.strip()):
            raise ReasonRequired(what)

    def check_backdating(self, now: datetime) -> None:
        """A human command dated in the past beyond tolerance must say why."""
        if now - self.occurred_at > BACKDATE_TOLERANCE and self.source in _HUMAN_SOURCES:
            self.require_reason(f"a command back-dated to {self.occurred_at.isoformat()}")

    def caused_by(self, causation_id: str) -> Meta:
        return dataclasses.replace(self, causation_id=causation_id)


_HUMAN_SOURCES = frozenset({Source.API, Source.OPERATOR, Source.CSV})


class LedgerEvent(Aggregate.Event):
    """Base of every event in the ledger: it carries its envelope.

    Each aggregate's creation event subclasses both its `Event` and `Aggregate.Created`;
    the library annotates `originator_id` differently on those two bases, which mypy
    reports as `misc` on every such class: those lines carry `type: ignore[misc]`.
    """

    meta: Meta


# --- transcodings ---------------------------------------------------------------------------

_V = TypeVar("_V")
_value_types: dict[str, type[Any]] = {}


_custom_transcodings: list[Transcoding] = []


def register_value_type(cls: type[_V]) -> type[_V]:
    """Class decorator: a frozen dataclass or enum that events may carry as a value."""
    _value_types[cls.__qualname__] = cls
    return cls


def register_transcoding(transcoding: Transcoding, *, rows: str | None = None) -> Transcoding:
    """A value type with its own compact encoding (for values stored in great numbers).

    With `rows`, a tuple made only of this type is stored as one object under that name,
    holding each value's encoding as a row: one encoder call per tuple, not one per value.
    """
    _value_types.pop(transcoding.type.__qualname__, None)
    _custom_transcodings.append(transcoding)
    if rows is not None:
        _row_transcodings[transcoding.type] = _Rows(rows, transcoding)
        _custom_transcodings.append(_row_transcodings[transcoding.type])
    return transcoding


class _Rows(Transcoding):
    """A tuple of one value type, stored as a list of its rows (see `register_transcoding`)."""

    def __init__(self, name: str, item: Transcoding):
        self.type = _Rows  # never chosen by type: `_tag_tuples` boxes such tuples itself
        self.name = name
        self.item = item

    def encode(self, obj: tuple[Any, ...]) -> list[Any]:
        encode = self.item.encode
        return [encode(value) for value in obj]

    def decode(self, data: list[Any]) -> tuple[Any, ...]:
        decode = self.item.decode
        return tuple(decode(row) for row in data)


_row_transcodings: dict[type, _Rows] = {}


class _EnumTranscoding(Transcoding):
    def __init__(self, cls: type[enum.Enum]):
        self.type = cls
        self.name = f"enum:{cls.__qualname__}"

    def encode(self, obj: enum.Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> enum.Enum:
        return self.type(data)  # type: ignore[no-any-return]  # enum lookup by value


class _DataclassTranscoding(Transcoding):
    def __init__(self, cls: type[Any]):
        self.type = cls
        self.name = f"vo:{cls.__qualname__}"
        self._names = tuple(f.name for f in dataclasses.fields(cls))

    def encode(self, obj: Any) -> Any:
        return {n: _tag_tuples(getattr(obj, n)) for n in self._names}

    def decode(self, data: Any) -> Any:
        return self.type(**data)


class _MetaAsList(Transcoding):
    """Every event carries one: a positional list keeps the stored bytes small and fast."""

    type = Meta
    name = "meta"

    def encode(self, obj: Meta) -> list[Any]:
        return [
            obj.occurred_at.isoformat(),
            obj.actor,
            obj.source.value,
            obj.reason,
            obj.correlation_id,
            obj.causation_id,
            obj.tenant,
        ]

    def decode(self, data: list[Any]) -> Meta:
        occurred_at, actor, source, reason, correlation_id, causation_id, tenant = data
        return Meta(
            datetime.fromisoformat(occurred_at),
            actor,
            Source(source),
            reason,
            correlation_id,
            causation_id,
            tenant,
        )


class _DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class _TimedeltaAsSeconds(Transcoding):
    type = timedelta
    name = "timedelta_s"

    def encode(self, obj: timedelta) -> float:
        return obj.total_seconds()

    def decode(self, data: float) -> timedelta:
        return timedelta(seconds=data)


class _TupleAsList(Transcoding):
    type = tuple
    name = "tuple"

    def encode(self, obj: tuple[Any, ...]) -> list[Any]:
        return list(obj)

    def decode(self, data: list[Any]) -> tuple[Any, ...]:
        return tuple(data)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _tag_tuples(value: Any) -> Any:
    """Boxes tuples and enums, which `json` would otherwise write as plain arrays and strings."""
    if type(value) in _PLAIN:
        return value
    if type(value) is tuple:
        if value and (rows := _row_transcodings.get(type(value[0]))) is not None:
            first = type(value[0])
            if all(type(v) is first for v in value):
                return _RowsBox(rows, value)
        return _TupleBox(tuple(_tag_tuples(v) for v in value))
    if isinstance(value, enum.Enum):
        return _EnumBox(value)
    if type(value) is list:
        return [_tag_tuples(v) for v in value]
    if type(value) is dict:
        return {k: _tag_tuples(v) for k, v in value.items()}
    return value


class _TupleBox:
    """Holds a tuple so the JSON encoder hands it to the tuple transcoding."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Any, ...]):
        self.items = items


class _RowsBox:
    """Holds a tuple of one value type that is stored as rows."""

    __slots__ = ("items", "rows")

    def __init__(self, rows: _Rows, items: tuple[Any, ...]):
        self.rows = rows
        self.items = items


class _EnumBox:
    """Holds an enum member so a `StrEnum` is not written as a bare string."""

    __slots__ = ("member",)

    def __init__(self, member: enum.Enum):
        self.member = member


class LedgerTranscoder(JSONTranscoder):
    """The library's JSON transcoder, plus tuples that come back as tuples.

    `json` writes tuples as arrays without asking, so the event state is walked once and each
    tuple is boxed; the box is encoded as a tagged list and decoded back into a tuple.
    """

    def __init__(self) -> None:
        super().__init__()
        tuple_transcoding = _TupleAsList()
        self.names[tuple_transcoding.name] = tuple_transcoding
        self.encoder = json.JSONEncoder(
            default=self._encode_boxed, separators=(",", ":"), ensure_ascii=False
        )

    def encode(self, obj: Any) -> bytes:
        return self.encoder.encode(_tag_tuples(obj)).encode("utf8")

    def _encode_boxed(self, o: Any) -> Any:
        if type(o) is _TupleBox:
            return {"_type_": "tuple", "_data_": list(o.items)}
        if type(o) is _RowsBox:
            return {"_type_": o.rows.name, "_data_": o.rows.encode(o.items)}
        if type(o) is _EnumBox:
            return self._encode_obj(o.member)
        return self._encode_obj(o)

    def register_ledger_types(self) -> None:
        self.register(_DateAsISO())
        self.register(_TimedeltaAsSeconds())
        self.register(_MetaAsList())
        self.register(_EnumTranscoding(Source))
        for cls in _value_types.values():
            if isinstance(cls, type) and issubclass(cls, enum.Enum):
                self.register(_EnumTranscoding(cls))
            else:
                self.register(_DataclassTranscoding(cls))
        for transcoding in _custom_transcodings:
            self.register(transcoding)


#: Time is injected: aggregates never read the clock.
Clock = Callable[[], datetime]
