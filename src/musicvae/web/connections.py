"""Connection guards under uvicorn, so that slow clients cannot lock everyone else out.

uvicorn's h11 protocol waits for request headers and bodies as long as a client likes, and its
``limit_concurrency`` counts open connections: 64 sockets trickling one header byte a second gave
every other user 503 until they closed. Those connections never reach the ASGI app (there are no
headers yet), so the guard has to sit in the protocol. :class:`GuardedH11Protocol` adds:

- a deadline for the request headers (from the connection, or from the end of the previous
  response on a kept-alive one) and one for the body, after which the connection is closed
  (with a 408 when part of a request came);
- a cap on the connections that are waiting on their client (headers or body still to come,
  idle keep-alive included), per client address and in all. A new connection over the cap
  evicts that client's oldest waiting one rather than being refused, so a burst of stalled
  sockets only ever costs their own sender: the next normal request, even from the same
  address (every local client is 127.0.0.1), is served.

Requests whose headers are complete are then limited by :class:`musicvae.web.limits.ClientLimit`.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class Guards:
    """The limits of one server (seconds, connections)."""

    header_timeout: float = 10.0
    # A 1 MB upload in 30 s is 35 KB/s: far slower than any link a studio is used over.
    body_timeout: float = 30.0
    waiting_per_client: int = 8  # browsers open at most 6 connections to a host
    waiting_total: int = 256


class _Waiting:
    """The connections of one server that wait on their client, oldest first."""

    def __init__(self) -> None:
        self.all: dict[GuardedH11Protocol, None] = {}
        self.by_client: dict[str, dict[GuardedH11Protocol, None]] = {}

    def add(self, conn: GuardedH11Protocol, guards: Guards) -> None:
        self.remove(conn)
        mine = self.by_client.setdefault(conn.client_host, {})
        for group, cap in ((mine, guards.waiting_per_client), (self.all, guards.waiting_total)):
            while len(group) >= cap:
                next(iter(group)).evict()
        mine[conn] = None
        self.all[conn] = None

    def remove(self, conn: GuardedH11Protocol) -> None:
        self.all.pop(conn, None)
        mine = self.by_client.get(conn.client_host)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.by_client[conn.client_host]


# One registry per server (tests run several in one process); the key is uvicorn's ServerState.
_REGISTRIES: weakref.WeakKeyDictionary[object, _Waiting] = weakref.WeakKeyDictionary()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and caps of ``guards`` (see the module doc)."""

    guards = Guards()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registry = _REGISTRIES.setdefault(self.server_state, _Waiting())
        self._phase: str | None = None  # "headers" or "body" while waiting on the client
        self._timer: asyncio.TimerHandle | None = None
        self._partial = False  # bytes of the awaited part have come

    @classmethod
    def with_guards(cls, guards: Guards) -> type[GuardedH11Protocol]:
        return type(cls.__name__, (cls,), {"guards": guards})

    @property
    def client_host(self) -> str:
        return self.client[0] if self.client else ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._sync()

    def data_received(self, data: bytes) -> None:
        if self._phase == "headers":
            self._partial = True
        super().data_received(data)
        self._sync()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._sync()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_phase(None)
        super().connection_lost(exc)

    def _sync(self) -> None:
        """Follow h11's view of the client: waiting for headers, for body, or neither."""
        if self.transport is None or self.transport.is_closing():
            self._set_phase(None)
            return
        state = self.conn.their_state
        self._set_phase(
            "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        )

    def _set_phase(self, phase: str | None) -> None:
        if phase == self._phase:
            return
        self._phase, self._partial = phase, False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if phase is None:
            self._registry.remove(self)
            return
        timeout = self.guards.header_timeout if phase == "headers" else self.guards.body_timeout
        self._timer = self.loop.call_later(timeout, self._timed_out)
        if phase == "headers":  # a new wait: this connection is now the client's newest
            self._registry.add(self, self.guards)

    def _timed_out(self) -> None:
        self._timer = None
        phase = self._phase
        started = self.cycle is not None and self.cycle.response_started
        if phase == "body" or (phase == "headers" and self._partial):
            timeout = self.guards.header_timeout if phase == "headers" else self.guards.body_timeout
            if not (phase == "body" and started):
                self._close(f"request {phase} not received within {timeout:g} s")
                return
        self._close()

    def evict(self) -> None:
        """Close a waiting connection to make room for a newer one of its client."""
        self._close()

    def _close(self, timeout_message: str = "") -> None:
        """Close the connection, first answering 408 with ``timeout_message`` if one is given."""
        self._set_phase(None)
        if self.transport.is_closing():
            return
        if timeout_message:
            # Written raw: h11 has no request to answer while headers are incomplete.
            body = json.dumps({"detail": timeout_message}).encode()
            head = (
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
        self.transport.close()
