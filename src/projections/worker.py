"""One process's share of the read side: the GPS reconciler and the views, following the log.

The reconciler runs first in each round, so the facts it derives reach the views in the
same round. Each part keeps its own position, moved in the same transaction as its writes.
"""

from __future__ import annotations

import logging
import threading
import time

from ledger.application import Ledger
from projections.db import Database, OperationalErrors
from projections.migrations import migrate
from projections.reconciler import Reconciler
from projections.runner import Runner

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, ledger: Ledger, db: Database, *, batch_size: int = 1000):
        migrate(db)
        self.ledger = ledger
        self.db = db
        self.reconciler = Reconciler(ledger, batch_size=batch_size)
        self.runner = Runner(ledger, db, batch_size=batch_size)

    def step(self) -> int:
        """One round: a batch of the policy, then a batch of the views."""
        try:
            done = self.reconciler.run_once()
        except OperationalErrors as error:
            log.warning("reconciler lost the database (%s); retrying", error)
            time.sleep(0.5)
            done = 1
        return done + self.runner.attempt()

    def catch_up(self) -> int:
        total = 0
        while done := self.step():
            total += done
        return total

    def follow(self, stop: threading.Event, *, poll: float = 0.25) -> None:
        channel = getattr(self.ledger.recorder, "channel_name", "")
        while not stop.is_set():
            if self.step():
                continue
            try:
                self.db.wait_for_notify(channel, poll)
            except OperationalErrors as error:
                log.warning("lost the notification connection (%s); polling", error)
                self.db.reset()
                time.sleep(poll)
