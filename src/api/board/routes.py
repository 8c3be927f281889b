"""The dispatcher's web board: `/board` and its static assets, read from the installed package.

The page is plain HTML, CSS and JavaScript (no build step, nothing from another origin). It
reads GraphQL at `/graphql` on the same origin and follows `boardChanges` over
graphql-transport-ws; the API key lives in the tab's sessionStorage, never in a URL.
Every response carries a strict Content-Security-Policy: this origin only, no inline code.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "board_router"]

#: Only these files are served (by name; nothing else in the package is reachable).
ASSETS = {
    "board.css": "text/css; charset=utf-8",
    "board.js": "text/javascript; charset=utf-8",
    "gqlws.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}

#: Same origin only; no inline script or style, no plugins, no framing, no form posts.
#: (`connect-src 'self'` also admits the same-origin ws:/wss: of the subscription.)
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

board_router = APIRouter(include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    return (files("api.board") / "static" / name).read_bytes()


@board_router.get("/board")
def board_page() -> Response:
    """The live board (loads, exceptions, stop times, vehicle positions)."""
    return Response(
        _read("board.html"),
        media_type="text/html; charset=utf-8",
        headers={**_HEADERS, "Cache-Control": "no-store"},
    )


@board_router.get("/board/static/{name}")
def board_asset(name: str) -> Response:
    """One of the board's own files; any other name is not found."""
    media_type = ASSETS.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain", headers=_HEADERS)
    return Response(
        _read(name),
        media_type=media_type,
        headers={**_HEADERS, "Cache-Control": "no-cache"},
    )
