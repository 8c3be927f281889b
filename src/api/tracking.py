"""The public tracking page of an order: `/track/{token}` (HTML) and `/track/{token}.json`.

No key: the unguessable token is the permission. The page shows the customer-safe view only
(`projections.notify_view.order_tracking`): status, the expected delivery window, the
milestone history in the customer's words, and the proof of delivery once delivered.
Unknown, malformed and revoked tokens get the same 404 page. Each client address may ask
`rate` times per `per` seconds (a token bucket in this process), then gets 429.
The page needs no script and escapes everything it prints; it is never cached, indexed or
sent on as a referrer (the token is in its URL).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import Svc
from projections.notify_store import order_load_ids, token_order
from projections.notify_view import LogStreams, order_tracking

__all__ = ["RateLimiter", "router"]

router = APIRouter(include_in_schema=False)

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
}


class RateLimiter:
    """A token bucket per client: `rate` requests, refilled evenly over `per` seconds.

    In-process (each server process counts on its own); remembers at most `clients` clients,
    forgetting the longest idle first."""

    def __init__(
        self,
        rate: int = 60,
        per: float = 60.0,
        *,
        clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate = rate
        self.per = per
        self.clients = clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Takes one request for `client`: 0 when allowed, else seconds until it would be."""
        now = self.clock()
        refill = self.rate / self.per
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.rate), now))
            tokens = min(float(self.rate), tokens + (now - last) * refill)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / refill
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.clients:
                self._buckets.popitem(last=False)
        return wait


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter = getattr(state, "tracking_limiter", None)
    if not isinstance(limiter, RateLimiter):
        with _CREATE:
            limiter = getattr(state, "tracking_limiter", None)
            if not isinstance(limiter, RateLimiter):
                limiter = state.tracking_limiter = RateLimiter()
    return limiter


_CREATE = threading.Lock()


def _wants_json(request: Request, token: str) -> bool:
    if token.endswith(".json"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.get("/track/{token}")
def track(token: str, request: Request, services: Svc) -> Response:
    """The tracking page of the order behind a link."""
    as_json = _wants_json(request, token)
    token = token.removesuffix(".json")
    client = request.client.host if request.client else "unknown"
    wait = _limiter(request).take(client)
    if wait > 0:
        headers = {**_HEADERS, "Retry-After": str(max(1, round(wait)))}
        if as_json:
            body = {"code": "rate_limited", "message": "too many requests; try again shortly"}
            return JSONResponse(body, status_code=429, headers=headers)
        return HTMLResponse(_page("Too many requests", _TOO_MANY), status_code=429, headers=headers)
    order_id = token_order(services.db, token) if _TOKEN.match(token) else None
    document = None
    if order_id is not None:
        streams = LogStreams(services.ledger)
        document = order_tracking(streams, order_id, order_load_ids(services.db, order_id))
    if document is None:
        if as_json:
            body = {"code": "not_found", "message": "this tracking link is not valid"}
            return JSONResponse(body, status_code=404, headers=_HEADERS)
        return HTMLResponse(
            _page("Tracking link not valid", _GONE), status_code=404, headers=_HEADERS
        )
    if as_json:
        return JSONResponse(document, headers=_HEADERS)
    return HTMLResponse(render(document), headers=_HEADERS)


# --- the page --------------------------------------------------------------------------------

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
.status{font-size:1.2rem;font-weight:600}ol{padding-left:1.2rem}li{margin:.25rem 0}
time{color:#555;margin-right:.5rem}footer{color:#777;font-size:.85rem;margin-top:2rem}
"""
_GONE = (
    "<p>This tracking link is not valid. It may have been withdrawn; ask the sender for a new one."
    "</p>"
)
_TOO_MANY = "<p>Too many requests from your address. Please try again in a minute.</p>"


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )


def _when(text: Any) -> str:
    """An ISO time as people read it, in a `<time>` element (both escaped)."""
    if not text:
        return ""
    raw = str(text)
    try:
        shown = datetime.fromisoformat(raw).strftime("%d %b %Y, %H:%M UTC")
    except ValueError:
        shown = raw
    return f'<time datetime="{escape(raw)}">{escape(shown)}</time>'


def render(document: dict[str, Any]) -> str:
    """The HTML of a tracking document; every value is escaped."""
    parts = [
        f'<h1>Order <span id="order">{escape(str(document["order"]))}</span></h1>',
        f'<p class="status" id="status">{escape(str(document["status_text"]))}</p>',
        f'<p id="deliver-to">Delivering to {escape(str(document["deliver_to"]))}</p>',
    ]
    if document.get("driver"):
        parts.append(f'<p id="driver">Your driver: {escape(str(document["driver"]))}</p>')
    expected = document.get("expected")
    if expected:
        line = f"Between {_when(expected['start'])} and {_when(expected['end'])}"
        if expected.get("eta"):
            line += f" (estimated arrival {_when(expected['eta'])})"
        else:
            line += f" ({escape(str(expected['basis']))})"
        parts.append(f'<section id="expected"><h2>Expected delivery</h2><p>{line}</p></section>')
    pod = document.get("proof_of_delivery")
    if pod:
        parts.append(
            '<section id="pod"><h2>Proof of delivery</h2>'
            f"<p>Signed by {escape(str(pod['signed_by']))} at {_when(pod['signed_at'])}</p>"
            "</section>"
        )
    items = "".join(
        f"<li>{_when(m['at'])}{escape(str(m['text']))}</li>" for m in document["milestones"]
    )
    parts.append(f'<section id="history"><h2>History</h2><ol>{items}</ol></section>')
    parts.append("<footer>Times are in UTC. This page updates when you reload it.</footer>")
    title = f"Order {document['order']}: {document['status_text']}"
    return _page(title, "".join(parts))
