"""The studio under a burst, on a real uvicorn on loopback: every request gets an HTTP answer,
unread responses are bounded, and nothing in an answer names the server's insides."""

from __future__ import annotations

import collections
import json
import socket
import threading
import time

import pytest

from musicvae.errors import MusicVAEError
from musicvae.web.app import INTERNAL_ERROR, create_app
from musicvae.web.connections import Guards
from musicvae.web.server import BackgroundServer

HOST = b"Host: 127.0.0.1\r\n"


def _request(method: str, path: str, body: dict | None = None, close: bool = True) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\n".encode() + HOST
    if body is not None:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + data


def _status(answer: bytes) -> str:
    """'200', '429', ... or what came instead of an HTTP answer."""
    if not answer:
        return "closed without an answer"
    return answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "garbage"


def _burst(port: int, requests: list[bytes]) -> collections.Counter:
    """Send every request at once, each on its own connection, and read every answer."""
    ready = threading.Barrier(len(requests))
    got: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def one(request: bytes) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                ready.wait()  # all connected (none read yet by the server), then all send
                s.sendall(request)
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
            outcome = _status(b"".join(chunks))
        except OSError as e:  # a reset: the failure this test is about
            outcome = type(e).__name__
        with lock:
            got[outcome] += 1

    threads = [threading.Thread(target=one, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return got


def test_a_burst_of_16_requests_from_one_address_is_all_answered(studio_models):
    requests = [_request("GET", "/api/info")] * 8
    requests += [_request("POST", "/api/generate", {"n": 2, "seed": i}) for i in range(8)]
    with BackgroundServer(create_app(studio_models)) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(3):  # closing the oldest waiting connections lost about half of them
            got = _burst(port, requests)
            assert set(got) <= {"200", "429", "503"}, got
            assert sum(got.values()) == 16
        # Past the 16 requests in progress a client may have, the rest are told: 429.
        got = _burst(port, [_request("POST", "/api/generate", {"n": 4, "seed": 1})] * 40)
        assert set(got) <= {"200", "429", "503"} and sum(got.values()) == 40, got


def _wav_request(steps: int = 256, qpm: float = 60.0) -> bytes:
    """A WAV download of a ``steps``-step groove: 64 s of audio at these defaults, 5.7 MB."""
    hits = [[int(r == 0 and t % 4 == 0) for t in range(steps)] for r in range(9)]
    groove = {
        "qpm": qpm,
        "hits": hits,
        "velocities": [[0.8 * h for h in row] for row in hits],
        "offsets": [[0.0] * steps for _ in range(9)],
    }
    return _request("POST", "/api/audio", groove, close=False)


def test_responses_nobody_reads_are_bounded_and_then_dropped(studio_models):
    cap, timeout = 12 << 20, 2.0
    guards = Guards(buffered_per_client=cap, buffered_total=cap, write_timeout=timeout)
    request = _wav_request()
    wav = 5_719_814  # bytes in one answer (its body; the head is a few hundred more)
    server = BackgroundServer(create_app(studio_models), guards=guards)
    with server as url:
        port = int(url.rsplit(":", 1)[1])
        socks = []
        for _ in range(8):  # 8 connections x 2 pipelined downloads: 91 MB that nobody reads
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(request + request)
            socks.append(s)
        peak, t0 = 0, time.monotonic()
        seen_some = False
        while time.monotonic() - t0 < 20:
            held = server.buffered_bytes()
            peak = max(peak, held)
            seen_some = seen_some or held > wav
            if seen_some and held == 0:
                break
            time.sleep(0.01)
        left = server.buffered_bytes()
        # The server still answers everyone else.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(_request("GET", "/api/info"))
            answer = s.makefile("rb").read()
        for s in socks:
            s.close()
    assert 16 * wav > 7 * cap  # what the clients asked for is far over the cap
    assert seen_some and wav < peak <= cap + wav + 4096, peak
    assert left == 0  # the stalled writers were dropped after `timeout` without progress
    assert _status(answer) == "200"


def test_a_slow_reader_is_not_dropped(studio_models):
    """Progress, however slow, keeps a download alive past write_timeout."""
    guards = Guards(write_timeout=0.5)
    with BackgroundServer(create_app(studio_models), guards=guards) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(_wav_request(steps=128))
            got, t0 = 0, time.monotonic()
            s.settimeout(10)
            while chunk := s.recv(256 << 10):
                got += len(chunk)
                # 1.5 MB/s: the 2.9 MB file takes about 2 s, the server waits on it throughout.
                time.sleep(max(0.0, t0 + got / 1.5e6 - time.monotonic()))
    assert got > 2_800_000 and time.monotonic() - t0 > 2 * guards.write_timeout


def test_info_and_errors_name_no_server_path(studio_models, tmp_path):
    secret = tmp_path / "private" / "models"
    main = studio_models["generate"]
    main_source = main.source
    main.source = str(secret / "groovae_4bar.safetensors")

    def missing():
        raise MusicVAEError(f"{secret / 'groovae_2bar_tap.safetensors'}: not installed")

    models = {"generate": main, "groove": studio_models["groove"], "drumify": missing}
    try:
        with BackgroundServer(create_app(models)) as url:
            port = int(url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(_request("GET", "/api/info"))
                info_answer = s.makefile("rb").read()
            tap = {"groove": {"hits": [[0] * 32] * 9, "velocities": [[0.0] * 32] * 9}}
            tap["groove"]["offsets"] = [[0.0] * 32] * 9
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(_request("POST", "/api/drumify", tap))
                drumify_answer = s.makefile("rb").read()
    finally:
        main.source = main_source
    assert _status(info_answer) == "200" and _status(drumify_answer) == "501"
    for answer in (info_answer, drumify_answer):
        assert str(tmp_path).encode() not in answer and b"private" not in answer
    info = json.loads(info_answer.split(b"\r\n\r\n", 1)[1])
    assert {m["source"] for m in info["models"]} >= {"groovae_4bar.safetensors"}
    assert info["tools"]["generate"]["source"] == "groovae_4bar.safetensors"
    reason = info["tools"]["drumify"]["reason"]
    assert reason == "groovae_2bar_tap.safetensors: not installed"
    assert b"groovae_2bar_tap.safetensors: not installed" in drumify_answer


def test_an_internal_error_answers_500_naming_nothing_internal(studio_models, monkeypatch):
    app = create_app(studio_models)

    def boom(*args, **kwargs):
        raise KeyError("/srv/secret/config.json")

    monkeypatch.setattr(app.state.studio, "generate", boom)
    with BackgroundServer(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(_request("POST", "/api/generate", {"n": 1}))
            answer = s.makefile("rb").read()
    head, body = answer.split(b"\r\n\r\n", 1)
    assert _status(answer) == "500"
    assert json.loads(body) == {"detail": INTERNAL_ERROR}
    for inside in (b"KeyError", b"secret", b"Traceback", b"musicvae/"):
        assert inside not in answer


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/home/me/musicvae/assets/x.safetensors: not installed", "x.safetensors: not installed"),
        ("C:\\Users\\me\\m.pt: bad", "m.pt: bad"),
        ("~/models/m.pt and runs/g4", "m.pt and runs/g4"),
        ("a 4/4 time signature, http://127.0.0.1:8000/api", None),
    ],
)
def test_no_paths(text, shown):
    from musicvae.web.app import no_paths

    assert no_paths(text) == (text if shown is None else shown)
