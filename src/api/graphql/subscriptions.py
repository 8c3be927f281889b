"""Live board: `boardChanges(afterPosition:)` yields each board row whose view position moves
past the one given — resumable from any log position, kept to the caller's tenant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from api.deps import Services
from api.graphql.context import GqlInfo, off_loop
from api.graphql.fields import subscription
from api.graphql.permissions import AnyRole, Authenticated
from api.graphql.queries import board_rows
from api.graphql.scalars import LogPosition
from api.graphql.types import BoardChange, Load

__all__ = ["POLL_SECONDS", "Subscription", "board_position"]

#: How often a subscription looks for board changes.
POLL_SECONDS = 0.3


def board_position(services: Services) -> int:
    """The log position the board view has reached (its rows are complete up to it)."""
    rows = services.db.query(
        "SELECT position FROM projection_positions WHERE name = %s", ["load_board"]
    )
    return int(rows[0][0]) if rows else 0


@strawberry.type
class Subscription:
    @subscription(
        description="Board rows as they change, oldest change first. Without `afterPosition` "
        "it starts from now; with it, it first replays every row that moved after it. "
        "Resume with the last `position` received.",
        permission_classes=[Authenticated, AnyRole],
    )
    async def board_changes(
        self, info: GqlInfo, after_position: LogPosition | None = None
    ) -> AsyncGenerator[BoardChange, None]:
        services = info.context.services
        seen: int
        if after_position is None:
            seen = await off_loop(board_position, services)
        else:
            seen = after_position
        while True:
            # Drive the projections too: a server without a separate worker stays live.
            await off_loop(services.runner.attempt)
            reached = await off_loop(board_position, services)
            if reached > seen:
                rows = await board_rows(
                    info,
                    " AND position > %s AND position <= %s",
                    [seen, reached],
                    " ORDER BY position, reference",
                )
                for row in rows:
                    info.context.refresh_loaders()  # each event reads the views afresh
                    yield BoardChange(
                        position=LogPosition(int(row["position"])), load=Load.from_row(row)
                    )
                seen = reached
            await asyncio.sleep(POLL_SECONDS)
