"""Guards for the whole app, enforced before any route parses anything.

- :class:`BodyLimit`: Starlette's multipart parser would otherwise spool a large upload to a
  temporary file, and a JSON body would be read whole into memory; here a body is buffered up to
  the cap and refused with 413 past it, whether or not the client sent a Content-Length.
- :class:`SameOrigin`: a page on another site the user happens to visit can still POST to a
  server on 127.0.0.1 (a "simple" no-cors request needs no preflight). Browsers say where a
  request comes from (``Sec-Fetch-Site``, ``Origin``); a state-changing request from another
  site gets 403. Clients that are not browsers (curl, scripts) send neither and are served.
- :class:`ClientLimit`: requests in progress at once, per client address (429 past it) and in
  all (503), so one client's burst of heavy calls cannot take every worker thread. Connections
  that never finish their headers are the protocol's job (:mod:`musicvae.web.connections`).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: HTTP request bodies over ``max_bytes`` get ``413 {"detail": ...}``."""

    def __init__(self, app: ASGIApp, max_bytes: int, message: str | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = message or f"request body is larger than {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as a server would

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await refuse(send, 413, self.message)


class ClientLimit:
    """ASGI middleware: at most ``per_client`` requests in progress per client address (then
    ``429``) and ``total`` in all (then ``503``)."""

    def __init__(self, app: ASGIApp, per_client: int = 16, total: int = 64) -> None:
        self.app = app
        self.per_client = per_client
        self.total = total
        self.active: dict[str, int] = {}
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("",))[0]
        mine = self.active.get(client, 0)
        if mine >= self.per_client:
            await refuse(
                send, 429, f"too many requests at once from {client} (at most {self.per_client})"
            )
            return
        if self.count >= self.total:
            await refuse(send, 503, f"the studio is busy ({self.total} requests in progress)")
            return
        # One event loop runs every call, so these counts need no lock.
        self.active[client] = mine + 1
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1
            left = self.active[client] - 1
            if left:
                self.active[client] = left
            else:
                del self.active[client]


class SameOrigin:
    """ASGI middleware: POST, PUT, PATCH and DELETE from another site get ``403``."""

    UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in self.UNSAFE:
            reason = cross_site(dict(scope.get("headers") or []))
            if reason:
                await refuse(send, 403, f"cross-site request refused ({reason})")
                return
        await self.app(scope, receive, send)


def cross_site(headers: dict[bytes, bytes]) -> str | None:
    """Why a request with these headers comes from another site, or None."""
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
    if site and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get(b"origin", b"").decode("latin-1")
    if origin and origin != "null":
        host = headers.get(b"host", b"").decode("latin-1")
        if urlsplit(origin).netloc != host:
            return f"Origin {origin} is not this studio"
    elif origin == "null":
        return "Origin: null"
    return None


async def refuse(send: Send, status: int, message: str) -> None:
    """A JSON ``{"detail": message}`` response that closes the connection."""
    body = json.dumps({"detail": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
