"""NUL characters are refused at the door: PostgreSQL text cannot hold them, so a value with
one would be recorded in the log (JSON in bytea) and then stop every view that copies it into
a text column. A request carrying one — in a query parameter, or in the body as a raw byte or
a JSON `\\u0000` escape — gets 422 naming the parameter (or `body`), and nothing is written."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RefuseNul"]

#: A JSON `\u0000` escape: preceded by an even number of backslashes (an odd one would make
#: it the text `\u0000`, which is fine).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _refusal(field: str) -> Message:
    return {
        "code": "invalid_input",
        "message": f"{field} contains a NUL character (\\u0000), which is not accepted in text",
        "field": field,
        "rule": "no_nul_characters",
        "problems": [],
    }


class RefuseNul:
    """Pure ASGI middleware: reads the body once, checks it, hands it on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            names = [k for k, v in parse_qsl(query.decode("latin-1")) if "\x00" in k + v]
            await _respond(send, _refusal(f"query.{names[0]}" if names else "query"))
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"\x00" in body or (b"\\u0000" in body and _ESCAPED_NUL.search(body)):
            await _respond(send, _refusal("body"))
            return
        await self.app(scope, _replay({"type": "http.request", "body": body}, receive), send)


def _replay(first: Message, receive: Receive) -> Receive:
    """The body as one message, then the client's own stream (which tells a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()

    return replay


async def _respond(send: Send, body: Message) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
