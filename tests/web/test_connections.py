"""Slow clients under the real server: stalled sockets cost only their sender, and time out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import urllib.request

from musicvae.web.app import create_app
from musicvae.web.connections import Guards
from musicvae.web.limits import ClientLimit
from musicvae.web.server import BackgroundServer

PARTIAL = b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(PARTIAL)
    return s


def _read_all(s: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes (b"" for a silent close); fails on no close."""
    s.settimeout(timeout)
    chunks = []
    try:
        while chunk := s.recv(4096):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


class _Trickle(threading.Thread):
    """One more header byte on every socket every 0.2 s, as a slowloris client sends."""

    def __init__(self, socks: list[socket.socket]) -> None:
        super().__init__(daemon=True)
        self.socks, self.done = socks, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            for s in self.socks:
                with contextlib.suppress(OSError):  # closed by the server: the point
                    s.send(b"x")


def test_stalled_sockets_do_not_lock_out_a_normal_request(studio_models):
    guards = Guards(header_timeout=2.0, waiting_per_client=8, stall_grace=0.5)
    with BackgroundServer(create_app(studio_models), guards=guards) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [_connect(port) for _ in range(80)]
        trickle = _Trickle(socks)
        trickle.start()
        try:
            time.sleep(0.3)
            t0 = time.monotonic()
            with urllib.request.urlopen(url + "/api/info", timeout=5) as r:
                assert r.status == 200 and "tools" in json.loads(r.read())
            assert time.monotonic() - t0 < 3
            # The oldest were evicted silently once they had stalled for stall_grace; the
            # newest still wait.
            assert _read_all(socks[0], 1.0) == b""
            t0 = time.monotonic()
            answer = _read_all(socks[-1], 5.0)
            waited = time.monotonic() - t0
        finally:
            trickle.done.set()
            for s in socks:
                s.close()
    # Still trickling, so the header deadline (not the keep-alive one) closed it, with a reason.
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"request headers not received within 2 s" in answer
    assert waited < 2.5


def test_a_stalled_body_times_out_with_408(studio_models):
    guards = Guards(body_timeout=1.0)
    with BackgroundServer(create_app(studio_models), guards=guards) as url:
        port = int(url.rsplit(":", 1)[1])
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = (
            b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        s.sendall(head)
        t0 = time.monotonic()
        answer = _read_all(s, 5.0)
        s.close()
        assert 0.8 < time.monotonic() - t0 < 3
        with urllib.request.urlopen(url + "/api/info", timeout=5) as r:
            assert r.status == 200  # the server itself carries on
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request body not received within 1 s" in answer


def test_client_limit_caps_requests_in_progress_per_client_and_in_all():
    async def scenario() -> tuple[list[int], list[str]]:
        release = asyncio.Event()

        async def app(scope, receive, send):
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        limited = ClientLimit(app, per_client=2, total=3)
        statuses: list[int] = []
        details: list[str] = []

        async def call(client: str) -> None:
            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                elif message.get("body") and message["body"] != b"ok":
                    details.append(json.loads(message["body"])["detail"])

            scope = {"type": "http", "method": "GET", "path": "/", "client": (client, 1)}
            await limited(scope, receive, send)

        held = [asyncio.create_task(call(c)) for c in ("10.0.0.1", "10.0.0.1", "10.0.0.2")]
        await asyncio.sleep(0)
        await call("10.0.0.1")  # a third from one client: 429 at once
        await call("10.0.0.3")  # a fourth in all: 503 at once
        release.set()
        await asyncio.gather(*held)
        await call("10.0.0.1")  # all done: served again
        assert limited.count == 0 and limited.active == {}
        return statuses, details

    statuses, details = asyncio.run(scenario())
    assert statuses == [429, 503, 200, 200, 200, 200]
    assert details == [
        "too many requests at once from 10.0.0.1 (at most 2)",
        "the studio is busy (3 requests in progress)",
    ]
