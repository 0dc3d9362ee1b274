"""Running the studio app under uvicorn: in the foreground (CLI) or in a thread (tests, benchmark)."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from musicvae.errors import MusicVAEError
from musicvae.web.connections import GuardedH11Protocol, Guards, buffered_bytes

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# Connections the kernel queues before the server accepts them (Linux caps it at somaxconn,
# 4096 today): a burst waits there for its answer rather than being reset.
BACKLOG = 2048


def _config(
    app: ASGIApp, host: str, log_level: str, guards: Guards | None = None
) -> uvicorn.Config:
    # No limit_concurrency: it counts open connections, so stalled ones would fill it and
    # refuse everyone. The protocol's deadlines and per-client caps bound connections, and
    # the app's ClientLimit bounds the requests in progress.
    protocol = GuardedH11Protocol.with_guards(guards or Guards())
    return uvicorn.Config(
        app,
        host=host,
        log_level=log_level,
        http=protocol,
        timeout_keep_alive=5,
        backlog=BACKLOG,
    )


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: a free one); ``MusicVAEError`` if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        # Listening now lets clients connect (and wait) before uvicorn has started.
        sock.listen(BACKLOG)
    except OSError as e:
        sock.close()
        raise MusicVAEError(f"{host}:{port}: cannot listen ({e.strerror or e})") from None
    return sock


def serve(app: ASGIApp, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``app`` on a socket from ``listen`` until interrupted."""
    host = sock.getsockname()[0]
    uvicorn.Server(_config(app, host, log_level)).run(sockets=[sock])


class BackgroundServer:
    """``with BackgroundServer(app) as url:`` serves ``app`` on a free loopback port in a thread."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        log_level: str = "warning",
        guards: Guards | None = None,
    ) -> None:
        self.host = host
        self.server = uvicorn.Server(_config(app, host, log_level, guards))
        self.sock = listen(host, 0)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def buffered_bytes(self) -> int:
        """Response bytes the server holds for clients that have not read them yet."""
        return buffered_bytes(self.server.server_state)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the studio server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
