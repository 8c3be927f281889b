"""`shipledger serve`: the API, GraphQL, the board, the projection worker and the scheduler in
one process. The worker runs in a supervised thread (restarted if it dies); the jobs run on
APScheduler 3. SIGTERM: uvicorn finishes in-flight requests, then the worker commits its
batch and stops, and the scheduler waits for a running job."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from types import FrameType

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from api.app import Settings, create_app
from api.keys import create_key, has_keys
from ledger.application import Ledger
from ledger.store import parse_url
from planner.eta_travel import model_travel
from planner.jobs import TRAVEL
from projections.db import Database
from projections.eta_policy import EtaPolicy
from projections.jobs import run_job
from projections.migrations import migrate
from projections.notify_sender import NotificationSender
from projections.worker import Worker

__all__ = ["SCHEDULE", "serve"]

log = logging.getLogger("shipledger.serve")

#: seconds between runs (the invoice run is nightly, at 02:00 UTC)
SCHEDULE = {
    "sla_monitor": 60,
    "detention_watcher": 60,
    "hos_watcher": 300,
    "audit_checkpoint": 3600,
}


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM once it has shut down; `serve` still has the worker
    and the scheduler to stop, so the signal ends here and the process exits 0 after them."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def _supervise(url: str, stop: threading.Event) -> None:
    """Runs the projection worker until `stop`, restarting it after a failure."""
    while not stop.is_set():
        try:
            Worker(Ledger(url), Database(url)).follow(stop)
        except Exception:
            log.exception("projection worker failed; restarting in 2 s")
            stop.wait(2)


def _send_notifications(url: str, stop: threading.Event) -> None:
    """Delivers the outbox's webhooks until `stop`, restarting the sender after a failure."""
    while not stop.is_set():
        db = Database(url)
        sender = NotificationSender(db)
        try:
            sender.run(stop, poll=1.0)
        except Exception:
            log.exception("notification sender failed; restarting in 2 s")
            stop.wait(2)
        finally:
            sender.close()
            db.close()


def _predict_etas(url: str, stop: threading.Event) -> None:
    """Keeps the remaining stops' ETAs recorded as facts, until `stop`."""
    while not stop.is_set():
        try:
            db = Database(url)
            policy = EtaPolicy(Ledger(url), model_travel(TRAVEL), db=db)
            while not stop.is_set():
                if not policy.run_once():
                    stop.wait(1.0)
        except Exception:
            log.exception("ETA policy failed; restarting in 2 s")
            stop.wait(2)


def _job(url: str, name: str) -> None:
    ledger, db = Ledger(url), Database(url)
    try:
        run_job(name, ledger, db, datetime.now(UTC))
    except Exception:
        log.exception("job %s failed", name)
    finally:
        db.close()
        ledger.close()


def serve(url: str | None, host: str = "127.0.0.1", port: int = 8000) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ledger = Ledger(url)
    db = Database(url)
    migrate(db)
    if not has_keys(db):
        key = create_key(db, "admin", label="created by the first serve")
        print(f"admin API key (shown once): {key}", flush=True)
    url = url or parse_url(None).url
    app = create_app(Settings(database_url=url), ledger=ledger)
    stop = threading.Event()
    worker = threading.Thread(target=_supervise, args=(url, stop), name="projections")
    worker.start()
    sender = threading.Thread(target=_send_notifications, args=(url, stop), name="webhooks")
    sender.start()
    predictor = threading.Thread(target=_predict_etas, args=(url, stop), name="etas")
    predictor.start()
    scheduler = BackgroundScheduler(timezone=UTC)
    for name, seconds in SCHEDULE.items():
        scheduler.add_job(
            _job,
            "interval",
            seconds=seconds,
            args=(url, name),
            id=name,
            max_instances=1,
            coalesce=True,
        )
    scheduler.add_job(
        _job,
        "cron",
        hour=2,
        minute=0,
        args=(url, "nightly_invoices"),
        id="nightly_invoices",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    base = f"http://{host}:{port}"
    print(f"shipledger serving {parse_url(url).redacted()} on {base}", flush=True)
    print(f"  board:    {base}/board", flush=True)
    print(f"  GraphiQL: {base}/graphql", flush=True)
    print(f"  REST:     {base}/docs", flush=True)
    try:
        _Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run()
    finally:
        stop.set()
        scheduler.shutdown(wait=True)
        worker.join(timeout=30)
        sender.join(timeout=30)
        predictor.join(timeout=30)
    log.info("stopped: requests finished, the worker committed its batch, no job running")
    return 0
