"""The studio's WAV downloads as loops: ``?loop=fold|cut`` gives exactly the music's steps (a 4-bar
groove at 120 BPM: 8.000 s), for a groove and a melody; without it, the render as before."""

from __future__ import annotations

import io
import wave

import pytest
from fastapi.testclient import TestClient

from musicvae.audio import SAMPLE_RATE
from musicvae.web.app import create_app


@pytest.fixture(scope="module")
def client(studio_models):
    with TestClient(create_app(studio_models)) as c:
        yield c


def _groove(steps: int = 64, qpm: float = 120.0) -> dict:
    """A crash on the last step: the longest ring, well past the end."""
    hits = [[0] * steps for _ in range(9)]
    hits[0][0] = hits[7][steps - 1] = 1
    return {
        "name": "loop me",
        "qpm": qpm,
        "hits": hits,
        "velocities": [[0.8 * h for h in row] for row in hits],
        "offsets": [[0.0] * steps for _ in range(9)],
    }


def _frames(content: bytes) -> int:
    with wave.open(io.BytesIO(content)) as w:
        return w.getnframes()


@pytest.mark.parametrize("loop", ["fold", "cut"])
def test_a_loop_wav_is_exactly_the_grooves_length(client, loop):
    r = client.post(f"/api/audio?loop={loop}", json=_groove())
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.headers["content-disposition"] == 'attachment; filename="loop_me.wav"'
    assert _frames(r.content) == 8 * SAMPLE_RATE  # 4 bars at 120 BPM: 8.000 s
    # Its steps, not its notes: a 1-bar groove at 90 BPM is one bar of 90 BPM.
    r = client.post(f"/api/audio?loop={loop}", json=_groove(16, 90.0))
    assert _frames(r.content) == round(4 * 60 / 90 * SAMPLE_RATE)


def test_by_default_the_wav_rings_on_and_bad_loops_are_422(client):
    plain = client.post("/api/audio", json=_groove())
    assert _frames(plain.content) > 9 * SAMPLE_RATE  # the crash on the last step rings on
    r = client.post("/api/audio?loop=wrap", json=_groove())
    assert r.status_code == 422 and "loop" in r.text
    # MIDI files have no ring to fold: their routes take no loop.
    midi = client.post("/api/midi/export?loop=fold", json=_groove())
    assert midi.status_code == 200 and midi.content[:4] == b"MThd"


def test_a_melody_loop(client):
    melody = {"name": "m", "qpm": 120.0, "program": 0, "steps": 32}
    melody["notes"] = [{"pitch": 60, "start": 0, "end": 32, "velocity": 100}]
    r = client.post("/api/melody/audio?loop=cut", json=melody)
    assert r.status_code == 200 and _frames(r.content) == 4 * SAMPLE_RATE  # 2 bars
