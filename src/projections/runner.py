"""The projection runner: follows the global log and keeps the views, exactly once.

Each batch: read up to `batch_size` records after the lowest view position (a page of the
log, never the whole of it), let every view write its rows, and move each view's position
— all in one transaction. A crash at any instant loses the batch and nothing else; a second
runner on the same views finds the positions moved and backs off. It wakes on PostgreSQL's
NOTIFY from the log's insert path and polls on SQLite; a lost connection is reopened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.application import Ledger
from ledger.log import iter_log
from projections.billing import BillingLines
from projections.db import Database, OperationalErrors
from projections.driver_hos import DriverHos
from projections.exceptions import ExceptionsQueue
from projections.inventory import InventoryPositions
from projections.load_board import LoadBoard
from projections.notifications import NotificationOutbox
from projections.orders import Fleet, Orders
from projections.stop_times import StopTimes
from projections.vehicles import VehiclePositions
from projections.view import Batch, View

__all__ = ["PositionMoved", "Runner", "ViewStatus", "all_views"]

log = logging.getLogger(__name__)


def all_views() -> list[View]:
    """Every view, in the order a batch is applied (stop times before the board uses them)."""
    return [
        StopTimes(),
        VehiclePositions(),
        InventoryPositions(),
        ExceptionsQueue(),
        DriverHos(),
        LoadBoard(),
        BillingLines(),
        Orders(),
        Fleet(),
        NotificationOutbox(),
    ]


class PositionMoved(Exception):
    """Another runner advanced a view while this one was working: its batch is dropped."""


@dataclass(frozen=True)
class ViewStatus:
    name: str
    position: int
    lag_events: int
    lag_seconds: float | None


class Runner:
    def __init__(
        self,
        ledger: Ledger,
        db: Database,
        views: Sequence[View] | None = None,
        *,
        batch_size: int = 1000,
    ):
        self.ledger = ledger
        self.db = db
        self.views = list(views) if views is not None else all_views()
        self.batch_size = batch_size

    # --- positions ------------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        rows = self.db.query("SELECT name, position FROM projection_positions")
        known = dict((str(name), int(position)) for name, position in rows)
        return {view.name: known.get(view.name, 0) for view in self.views}

    def position(self) -> int:
        """The position every view has reached."""
        return min(self.positions().values(), default=0)

    def status(self) -> list[ViewStatus]:
        head = self.ledger.position
        head_time = self._recorded_at(head)
        statuses = []
        for name, position in self.positions().items():
            lag_seconds = None
            if head_time is not None:
                at = self._recorded_at(position) if position else None
                lag_seconds = (
                    0.0 if position >= head else ((head_time - at).total_seconds() if at else None)
                )
            statuses.append(ViewStatus(name, position, head - position, lag_seconds))
        return statuses

    def _recorded_at(self, position: int) -> datetime | None:
        if position <= 0:
            return None
        for record in iter_log(self.ledger, after=position - 1, limit=1):
            return record.recorded_at
        return None

    # --- running --------------------------------------------------------------------------

    def run_once(self) -> int:
        """Applies one batch; returns how many records it covered (0 when caught up)."""
        positions = self.positions()
        start = min(positions.values(), default=0)
        records = list(iter_log(self.ledger, after=start, limit=self.batch_size))
        if not records:
            return 0
        upto = records[-1].position
        now = datetime.now(UTC).isoformat()
        with self.db.transaction() as cursor:
            batch = Batch(self.ledger, cursor, upto)
            for view in self.views:
                mine = [r for r in records if r.position > positions[view.name]]
                if mine:
                    view.apply(batch, mine)
            for view in self.views:
                self._move(cursor, view.name, positions[view.name], upto, now)
        return len(records)

    @staticmethod
    def _move(cursor: object, name: str, old: int, new: int, now: str) -> None:
        from projections.db import Cursor

        assert isinstance(cursor, Cursor)
        if old == 0:
            cursor.execute(
                "INSERT INTO projection_positions (name, position, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, new, now),
            )
            if cursor.rowcount == 1:
                return
        cursor.execute(
            "UPDATE projection_positions SET position = %s, updated_at = %s "
            "WHERE name = %s AND position = %s",
            (new, now, name, old),
        )
        if cursor.rowcount != 1:
            raise PositionMoved(name)

    def catch_up(self) -> int:
        """Runs batches until the views reach the head of the log; returns records covered."""
        total = 0
        while True:
            done = self._attempt()
            total += done
            if done == 0:
                return total

    def attempt(self) -> int:
        """One batch, surviving a moved position or a lost connection (0 when caught up)."""
        return self._attempt()

    def _attempt(self) -> int:
        try:
            return self.run_once()
        except PositionMoved:
            return 0 if self.position() >= self.ledger.position else 1
        except OperationalErrors as error:
            log.warning("projection runner lost the database (%s); reconnecting", error)
            self.db.reset()
            time.sleep(0.5)
            return 1

    def wait_for(self, position: int, timeout: float = 30.0) -> bool:
        """Blocks until every view has reached `position` (read-your-writes, no sleeping
        guesses); runs batches itself while it waits."""
        deadline = time.monotonic() + timeout
        while self.position() < position:
            if self._attempt() == 0 and self.position() < position:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
        return True

    def follow(
        self,
        stop: threading.Event,
        *,
        poll: float = 0.25,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """Keeps the views up to date until `stop` is set."""
        channel = getattr(self.ledger.recorder, "channel_name", "")
        while not stop.is_set():
            done = self._attempt()
            if done:
                if on_batch is not None:
                    on_batch(done)
                continue
            try:
                self.db.wait_for_notify(channel, poll)
            except OperationalErrors as error:
                log.warning("lost the notification connection (%s); polling", error)
                self.db.reset()
                time.sleep(poll)

    def rebuild(self, names: Sequence[str] | None = None) -> int:
        """Drops the named views (all by default) and replays the log into them."""
        chosen = [v for v in self.views if names is None or v.name in names]
        unknown = set(names or ()) - {v.name for v in self.views}
        if unknown:
            raise KeyError(f"no such view: {', '.join(sorted(unknown))}")
        with self.db.transaction() as cursor:
            for view in chosen:
                view.clear(cursor)
                cursor.execute("DELETE FROM projection_positions WHERE name = %s", (view.name,))
        rebuilding = Runner(self.ledger, self.db, chosen, batch_size=self.batch_size)
        return rebuilding.catch_up()
