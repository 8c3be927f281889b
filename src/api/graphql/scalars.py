"""Scalars of our own. `LogPosition`: GraphQL's `Int` is 32-bit, and a busy ledger's log
passes 2^31 positions (a fleet of 10,000 devices uploading every 30 s writes that many
events in about 75 days), so positions have a 64-bit scalar, written as a JSON number."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from api.deps import MAX_POSITION

__all__ = ["SCALARS", "LogPosition"]

LogPosition = NewType("LogPosition", int)


def _parse_position(value: object) -> LogPosition:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_POSITION:
        raise ValueError(f"a log position is an integer from 0 to 2^63 - 1, got {value!r}")
    return LogPosition(value)


SCALARS: dict[object, ScalarDefinition] = {
    LogPosition: strawberry.scalar(
        name="LogPosition",
        description="A position in the ledger's log: an integer from 0 to 2^63 - 1",
        serialize=int,
        parse_value=_parse_position,
    )
}
