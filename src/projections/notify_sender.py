"""The notification sender: delivers the outbox at least once, signed, with backoff.

Each round claims a few due rows (a lease: `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite, so two senders never hold the same row), logs the attempt as
started, POSTs the stored body, and records the outcome: delivered on a 2xx; otherwise the
next attempt after an exponential backoff with jitter, capped; dead-lettered after the last
attempt (support can redeliver). A sender killed mid-send leaves its attempt unfinished and
its lease runs out: the row is due again and the receiver may see the same id twice, never
a new id for the same fact.

Every request carries the notification id (`Shipledger-Id`, also in the body) and
`Shipledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed with the
subscription's secret; `verify_signature` is the receiver's check (the timestamp inside the
signature stops replays older than the tolerance).

A webhook must not reach into our own network: the subscription's URL is checked when it is
made (`api.routes.notifications`), and its host is resolved again at every send; a host with
any loopback, private, link-local or reserved address is refused (the attempt fails, naming
the address), and the request goes to the address checked — no second lookup that DNS could
rebind — with the host name kept in `Host` and, for https, in the TLS server name. Set
`SHIPLEDGER_WEBHOOK_ALLOW_PRIVATE=1` for a receiver on the same host or network.

Run one: `python -m projections.notify_sender --db URL` (see `--help`).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

import httpx

from projections.db import Database, OperationalErrors
from projections.migrations import migrate
from projections.view import iso

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "EVENT_HEADER",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "NotificationSender",
    "RetryPolicy",
    "allow_private_from_env",
    "resolve_destinations",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "Shipledger-Signature"
ID_HEADER = "Shipledger-Id"
EVENT_HEADER = "Shipledger-Event"
#: How old a signature's timestamp may be before a receiver refuses it, by default.
DEFAULT_TOLERANCE = 300
#: Set to 1 to let webhooks reach loopback and private addresses (a receiver on the same host,
#: the tests); refused otherwise, when a subscription is made and at every send.
ALLOW_PRIVATE_ENV = "SHIPLEDGER_WEBHOOK_ALLOW_PRIVATE"

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def allow_private_from_env() -> bool:
    """Whether `SHIPLEDGER_WEBHOOK_ALLOW_PRIVATE` lets webhooks reach private addresses."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").lower() in ("1", "true", "yes")


def resolve_destinations(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses a webhook for `host` may be sent to, in the resolver's order. Raises
    ValueError naming the address when any of them is loopback, private, link-local or
    reserved (unless `allow_private`): a name that resolves into our own network is refused
    even when it also resolves outside it."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as failure:
        raise ValueError(f"cannot resolve {host}: {failure}") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise ValueError(f"cannot resolve {host}: no address")
    if not allow_private:
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise ValueError(f"{host} resolves to a non-public address ({address})")
    return list(dict.fromkeys(addresses))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """Whether `header` signs exactly `body` with `secret`, at a time within `tolerance`
    seconds of `now` (a receiver's check; any one `v1` may match, for secret rotation)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    moment = time.time() if now is None else now
    if abs(moment - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split(",v1=", 1)[1]
    return any(hmac.compare_digest(expected, c) for c in candidates)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long between them: exponential from `base_delay`,
    capped at `cap`, with jitter (each wait is between half and all of its step)."""

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= timedelta(0) or self.cap < self.base_delay:
            raise ValueError("need 0 < base_delay <= cap")

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        """The wait after failed attempt number `attempt` (1-based)."""
        growth = 2.0 ** min(max(attempt - 1, 0), 60)  # floats: no overflow, capped below
        step = min(self.cap.total_seconds(), self.base_delay.total_seconds() * growth)
        return timedelta(seconds=step / 2 + step * rng.random() / 2)


@dataclass(frozen=True)
class _Claimed:
    notification_id: str
    milestone: str
    payload: str
    attempt: int  # in this round of retries
    url: str
    secret: str
    lease_token: str


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None
    latency_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class NotificationSender:
    """Delivers due notifications; many may run against one store."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime] = _utcnow,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 10,
        rng: random.Random | None = None,
        name: str | None = None,
        allow_private: bool | None = None,
    ):
        if lease.total_seconds() <= batch_size * timeout:
            raise ValueError("the lease must outlast a whole batch of timed-out requests")
        self.db = db
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.batch_size = batch_size
        self.rng = rng or random.Random()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.allow_private = allow_private_from_env() if allow_private is None else allow_private
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    def close(self) -> None:
        self._client.close()

    # --- one round ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claims and sends one batch of due notifications; returns how many it handled."""
        claimed = self._claim()
        for item in claimed:
            self._finish(item, self._send(item))
        return len(claimed)

    def run(self, stop: threading.Event, *, poll: float = 1.0) -> None:
        """Sends until `stop` is set, resting `poll` seconds when nothing is due."""
        while not stop.is_set():
            try:
                if self.run_once():
                    continue
            except OperationalErrors as error:
                log.warning("notification sender lost the database (%s); reconnecting", error)
                self.db.reset()
            stop.wait(poll)

    # --- claim, send, record --------------------------------------------------------------

    def _claim(self) -> list[_Claimed]:
        now = iso(self.clock())
        lease_until = iso(self.clock() + self.lease)
        token = uuid.uuid4().hex
        lock = "" if self.db.sqlite else " FOR UPDATE SKIP LOCKED"
        with self.db.transaction() as cursor:
            due = cursor.execute(
                "SELECT notification_id FROM notification_outbox WHERE status = 'pending' "
                "AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until <= %s) "
                "ORDER BY next_attempt_at, position, notification_id LIMIT %s" + lock,
                (now, now, self.batch_size),
            ).fetchall()
            for (notification_id,) in due:
                cursor.execute(
                    "UPDATE notification_outbox SET lease_until = %s, lease_token = %s, "
                    "attempts = attempts + 1 WHERE notification_id = %s",
                    (lease_until, token, notification_id),
                )
                row = cursor.execute(
                    "SELECT COALESCE(MAX(attempt), 0) FROM notification_attempts "
                    "WHERE notification_id = %s",
                    (notification_id,),
                ).fetchone()
                number = int(row[0]) + 1 if row else 1
                cursor.execute(
                    "INSERT INTO notification_attempts (notification_id, attempt, lease_token, "
                    "sender, started_at) VALUES (%s, %s, %s, %s, %s)",
                    (notification_id, number, token, self.name, now),
                )
            rows = cursor.execute(
                "SELECT o.notification_id, o.milestone, o.payload, o.attempts, s.url, s.secret, "
                "s.deleted_at FROM notification_outbox o LEFT JOIN notification_subscriptions s "
                "ON s.subscription_id = o.subscription_id WHERE o.lease_token = %s",
                (token,),
            ).fetchall()
            found = {str(row[0]): row for row in rows}
            claimed = []
            for (notification_id,) in due:
                row = found[str(notification_id)]
                if row[4] is None or row[6] is not None:  # the subscription is gone
                    cursor.execute(
                        "UPDATE notification_outbox SET status = 'cancelled', lease_until = NULL, "
                        "lease_token = NULL WHERE notification_id = %s",
                        (row[0],),
                    )
                    cursor.execute(
                        "UPDATE notification_attempts SET finished_at = %s, "
                        "error = 'subscription deleted: not sent' "
                        "WHERE notification_id = %s AND lease_token = %s",
                        (now, row[0], token),
                    )
                    continue
                claimed.append(
                    _Claimed(
                        notification_id=str(row[0]),
                        milestone=str(row[1]),
                        payload=str(row[2]),
                        attempt=int(row[3]),
                        url=str(row[4]),
                        secret=str(row[5]),
                        lease_token=token,
                    )
                )
        return claimed

    def _send(self, item: _Claimed) -> _Outcome:
        body = item.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shipledger-webhooks/1",
            ID_HEADER: item.notification_id,
            EVENT_HEADER: item.milestone,
            SIGNATURE_HEADER: sign(item.secret, body, int(self.clock().timestamp())),
        }
        started = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            url = httpx.URL(item.url)
            host = url.raw_host.decode("ascii")  # IDNA-encoded
            port = url.port or (443 if url.scheme == "https" else 80)
            addresses = resolve_destinations(host, port, allow_private=self.allow_private)
        except (ValueError, httpx.InvalidURL) as refusal:
            return _Outcome(None, f"refused: {refusal}"[:500], 0)
        # to the addresses checked, in turn while none accepts the connection; the name goes
        # in Host and in the TLS server name
        headers["Host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        try:
            for n, address in enumerate(addresses, start=1):
                try:
                    with self._client.stream(
                        "POST",
                        url.copy_with(host=address),
                        content=body,
                        headers=headers,
                        extensions=extensions,
                    ) as reply:
                        code = reply.status_code  # not read: receivers answer with a code
                    break
                except httpx.ConnectError:
                    if n == len(addresses):
                        raise
        except httpx.TimeoutException as failure:
            error = f"timeout ({type(failure).__name__})"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:500]
        latency = round((time.monotonic() - started) * 1000)
        if code is not None and not 200 <= code < 300:
            error = f"HTTP {code}"
        return _Outcome(code, error, latency)

    def _finish(self, item: _Claimed, outcome: _Outcome) -> None:
        now = self.clock()
        with self.db.transaction() as cursor:
            cursor.execute(
                "UPDATE notification_attempts SET finished_at = %s, status_code = %s, "
                "error = %s, latency_ms = %s WHERE notification_id = %s AND lease_token = %s",
                (
                    iso(now),
                    outcome.status_code,
                    outcome.error,
                    outcome.latency_ms,
                    item.notification_id,
                    item.lease_token,
                ),
            )
            common = (outcome.status_code, outcome.error)
            where = " WHERE notification_id = %s AND lease_token = %s"
            key = (item.notification_id, item.lease_token)
            if outcome.delivered:
                cursor.execute(
                    "UPDATE notification_outbox SET status = 'delivered', delivered_at = %s, "
                    "lease_until = NULL, lease_token = NULL, last_status_code = %s, "
                    "last_error = %s" + where,
                    (iso(now), *common, *key),
                )
            elif item.attempt >= self.policy.max_attempts:
                log.warning("notification %s dead-lettered: %s", item.notification_id, outcome)
                cursor.execute(
                    "UPDATE notification_outbox SET status = 'dead', dead_at = %s, "
                    "lease_until = NULL, lease_token = NULL, last_status_code = %s, "
                    "last_error = %s" + where,
                    (iso(now), *common, *key),
                )
            else:
                later = now + self.policy.delay(item.attempt, self.rng)
                cursor.execute(
                    "UPDATE notification_outbox SET next_attempt_at = %s, lease_until = NULL, "
                    "lease_token = NULL, last_status_code = %s, last_error = %s" + where,
                    (iso(later), *common, *key),
                )


# --- a sender process ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m projections.notify_sender", description="Delivers the outbox."
    )
    parser.add_argument("--db", default=os.environ.get("SHIPLEDGER_DATABASE_URL"))
    parser.add_argument("--max-attempts", type=int, default=8)
    parser.add_argument("--base-delay", type=float, default=30.0, help="seconds")
    parser.add_argument("--cap", type=float, default=3600.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--lease", type=float, default=300.0, help="seconds")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds when idle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    db = Database(args.db)
    migrate(db)
    sender = NotificationSender(
        db,
        policy=RetryPolicy(
            args.max_attempts, timedelta(seconds=args.base_delay), timedelta(seconds=args.cap)
        ),
        timeout=args.timeout,
        lease=timedelta(seconds=args.lease),
        batch_size=args.batch_size,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"notification sender {sender.name} running", flush=True)
    try:
        sender.run(stop, poll=args.poll)
    finally:
        sender.close()
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
