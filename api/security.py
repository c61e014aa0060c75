"""What every answer of the API carries, and what it refuses before reading: security
headers (a Content-Security-Policy the web app satisfies without ``unsafe-inline``,
``nosniff``, no framing but where a route allows it) and a bound on request bodies.

Written as plain ASGI middleware: Starlette has no body limit of its own, and its
``BaseHTTPMiddleware`` would hold streamed answers (the live push) back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1 << 20
# The base map's tile servers (api/static/app/config.json).
TILE_SOURCES = ("https://data.geopf.fr", "https://tile.openstreetmap.org")


def app_policy(tile_sources: Iterable[str] = TILE_SOURCES) -> str:
    """The web app's Content-Security-Policy: its own scripts, styles and data only, the
    tile servers' images, and no framing."""
    tiles = " ".join(tile_sources)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob: {tiles}; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Adds the headers every answer carries; a route that sets its own
    Content-Security-Policy (the public pages, the documentation) keeps it."""

    def __init__(self, app: ASGIApp, policy: str | None = None) -> None:
        self.app = app
        self.policy = (policy or app_policy()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", self.policy))
                    headers.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuses a request whose body is larger than ``max_bytes`` with 413, before the
    route (and its authentication) reads it: by its Content-Length when it gives one,
    else as it arrives, without keeping more than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(send)
                return
        if declared is None and b"chunked" not in headers.get(b"transfer-encoding", b""):
            await self.app(scope, receive, send)
            return
        # Read the body first (at most max_bytes of it), then hand it to the route.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def inline_script_policy(html: str) -> str:
    """A policy for a page of our own making with inline scripts (the API's
    documentation): each script allowed by its hash, nothing else inline."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
