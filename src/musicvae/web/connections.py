"""Connection guards under uvicorn, so that slow clients cannot lock everyone else out.

uvicorn's h11 protocol waits for request headers and bodies as long as a client likes, and its
``limit_concurrency`` counts open connections: 64 sockets trickling one header byte a second gave
every other user 503 until they closed. Those connections never reach the ASGI app (there are no
headers yet), so the guard has to sit in the protocol. :class:`GuardedH11Protocol` adds:

- a deadline for the request headers (from the connection, or from the end of the previous
  response on a kept-alive one) and one for the body, after which the connection is closed
  (with a 408 when part of a request came);
- a cap on the connections that are waiting on their client (headers or body still to come,
  idle keep-alive included), per client address and in all. Past it, that client's oldest
  connection that has waited ``stall_grace`` seconds is closed, so a burst of stalled sockets
  only ever costs their own sender: the next normal request, even from the same address (every
  local client is 127.0.0.1), is served. A connection younger than that is never closed for the
  cap: a burst of requests opens its connections before the server has read any of their
  headers, and every one of them gets an answer (200, or 429/503 from
  :class:`musicvae.web.limits.ClientLimit`), where closing the oldest lost half of 16 to resets;
- a bound on the response bytes buffered for clients that do not read them (an asyncio
  transport keeps whatever its socket will not take, also after it is closed): a connection
  whose buffered bytes have not gone down for ``write_timeout`` seconds is dropped, and when
  one client's buffers (or everyone's) pass ``buffered_per_client`` (``buffered_total``), the
  connections that have gone longest without progress are dropped, never the one whose
  response has just been written. A client that never read 2 GB of answers pinned them before.

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
    """The limits of one server (seconds, connections, bytes)."""

    header_timeout: float = 10.0
    # A 1 MB upload in 30 s is 35 KB/s: far slower than any link a studio is used over.
    body_timeout: float = 30.0
    waiting_per_client: int = 8  # browsers open at most 6 connections to a host
    waiting_total: int = 256
    # How long a new connection may wait for its headers before the caps above may close it.
    stall_grace: float = 1.0
    # The longest WAV (512 steps at 20 qpm) is 34 MB: one client may have two in flight.
    write_timeout: float = 30.0
    buffered_per_client: int = 64 << 20
    buffered_total: int = 256 << 20


class _Registry:
    """One server's connections that wait on their client (oldest first), and those with
    response bytes their client has not taken yet."""

    def __init__(self) -> None:
        self.all: dict[GuardedH11Protocol, None] = {}
        self.by_client: dict[str, dict[GuardedH11Protocol, None]] = {}
        self.writers: dict[GuardedH11Protocol, None] = {}

    def add(self, conn: GuardedH11Protocol) -> None:
        self.remove(conn)
        self.by_client.setdefault(conn.client_host, {})[conn] = None
        self.all[conn] = None
        self.trim(conn)

    def trim(self, conn: GuardedH11Protocol) -> None:
        """Close the oldest stalled connections of ``conn``'s client, and then of all, past the
        caps (a connection waiting less than ``stall_grace`` is not stalled yet)."""
        guards = conn.guards
        mine = self.by_client.get(conn.client_host, {})
        for group, cap in ((mine, guards.waiting_per_client), (self.all, guards.waiting_total)):
            while len(group) > cap:
                oldest = next(iter(group))
                if not oldest.stalled():
                    break
                oldest.evict()

    def remove(self, conn: GuardedH11Protocol) -> None:
        self.all.pop(conn, None)
        mine = self.by_client.get(conn.client_host)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.by_client[conn.client_host]

    def buffered(self) -> int:
        """Response bytes waiting for their clients to read them."""
        return sum(c.buffered() for c in self.writers)

    def bound_writes(self, conn: GuardedH11Protocol) -> None:
        """Past a cap on buffered bytes (``conn``'s client's, then everyone's), drop the
        writers that have gone longest without progress, ``conn`` itself excepted."""
        guards = conn.guards
        mine = [c for c in self.writers if c.client_host == conn.client_host]
        for group, cap in (
            (mine, guards.buffered_per_client),
            (list(self.writers), guards.buffered_total),
        ):
            total = sum(c.buffered() for c in group)
            for other in sorted(group, key=lambda c: c.progress_at):
                if total <= cap:
                    break
                if other is not conn and other in self.writers:
                    total -= other.buffered()
                    other.drop()


# One registry per server (tests run several in one process); the key is uvicorn's ServerState.
_REGISTRIES: weakref.WeakKeyDictionary[object, _Registry] = weakref.WeakKeyDictionary()


def buffered_bytes(server_state: object) -> int:
    """The response bytes that a server (by its uvicorn ``ServerState``) holds for clients."""
    registry = _REGISTRIES.get(server_state)
    return registry.buffered() if registry is not None else 0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and caps of ``guards`` (see the module doc)."""

    guards = Guards()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registry = _REGISTRIES.setdefault(self.server_state, _Registry())
        self._phase: str | None = None  # "headers" or "body" while waiting on the client
        self._timer: asyncio.TimerHandle | None = None
        self._aged: asyncio.TimerHandle | None = None  # when a wait for headers turns stalled
        self._waiting_since = 0.0
        self._partial = False  # bytes of the awaited part have come
        self._write_timer: asyncio.TimerHandle | None = None
        self._last_buffered = 0
        self._resumed = False  # the transport took bytes since the last write check
        self.progress_at = 0.0

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
        if self.buffered():  # the rest of the response may never be read
            self._watch_writes()
        self._sync()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writes()
        self._registry.bound_writes(self)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._resumed = True
        self.progress_at = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_phase(None)
        self._stop_watching_writes()
        super().connection_lost(exc)

    def stalled(self) -> bool:
        """Waiting on the client for at least ``stall_grace`` seconds."""
        return self.loop.time() - self._waiting_since >= self.guards.stall_grace

    def buffered(self) -> int:
        """Response bytes the transport holds because the client has not taken them."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    # ------------------------------------------------------------ waiting on the client

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
        for timer in (self._timer, self._aged):
            if timer is not None:
                timer.cancel()
        self._timer = self._aged = None
        if phase is None:
            self._registry.remove(self)
            return
        timeout = self.guards.header_timeout if phase == "headers" else self.guards.body_timeout
        self._timer = self.loop.call_later(timeout, self._timed_out)
        if phase == "headers":  # a new wait: this connection is now the client's newest
            self._waiting_since = self.loop.time()
            self._registry.add(self)
            self._aged = self.loop.call_later(self.guards.stall_grace, self._registry.trim, self)

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

    # ------------------------------------------------------------ bytes the client has not read

    def _watch_writes(self) -> None:
        """Check every ``write_timeout`` seconds that the client takes its bytes."""
        if self._write_timer is None:
            self._last_buffered, self._resumed = self.buffered(), False
            if self not in self._registry.writers:
                self.progress_at = self.loop.time()
            self._registry.writers[self] = None
            self._write_timer = self.loop.call_later(self.guards.write_timeout, self._check_writes)

    def _check_writes(self) -> None:
        self._write_timer = None
        size = self.buffered()
        if not size:
            self._registry.writers.pop(self, None)
        elif self._resumed or size < self._last_buffered:
            self.progress_at = self.loop.time()
            self._watch_writes()
        else:
            self.drop()

    def _stop_watching_writes(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._registry.writers.pop(self, None)

    def drop(self) -> None:
        """Close at once, discarding what the client has not read."""
        self._stop_watching_writes()
        self._set_phase(None)
        if self.transport is not None:
            self.transport.abort()
