"""The studio with a trio model, through FastAPI's TestClient: Generate, Interpolate and Continue
answer trios (a melody, a bass and drums), the trio upload and the MIDI and WAV downloads, and
bad inputs refused in a 4xx with one message."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import symusic
from fastapi.testclient import TestClient

from musicvae.configs import get_config
from musicvae.data.converters import build_converter
from musicvae.data.converters.trio import BASS_PROGRAM
from musicvae.data.midi import read_midi, read_midi_bytes, sequence_to_score
from musicvae.data.sequence import NoteSequence
from musicvae.families import DEFAULT_TEMPERATURE
from musicvae.web.app import create_app
from musicvae.web.trios import Trio
from tests.web.test_melody_api import _groove, _one_message

STEPS = 256  # the trio model's 16 bars of 16th notes
DEPTHS = (90, 90, 512)


@pytest.fixture(scope="module")
def client(trio_model):
    with TestClient(create_app(trio_model)) as c:
        yield c


@pytest.fixture(scope="module")
def generated(client) -> list[dict]:
    r = client.post("/api/generate", json={"n": 2, "seed": 1, "program": 24})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["trios"]
    return r.json()["trios"]


def _one_hot(arr: np.ndarray) -> np.ndarray:
    """Each part of (N, T, 692) scores as its one-hot argmax."""
    out = np.zeros_like(arr, dtype=np.float32)
    lo = 0
    for depth in DEPTHS:
        part = arr[..., lo : lo + depth].argmax(-1)
        np.put_along_axis(out[..., lo : lo + depth], part[..., None], 1.0, -1)
        lo += depth
    return out


def _trio(steps: int = STEPS, name: str = "sketch", **changes) -> dict:
    """A melody (C4 E4 G4), a bass (C2, G2) and a kick on every beat."""
    hits = np.zeros((9, steps), int)
    hits[0, ::4] = 1
    zeros = np.zeros((9, steps)).tolist()
    melody = [{"pitch": p, "start": 4 * i, "end": 4 * i + 4} for i, p in enumerate([60, 64, 67])]
    bass = [{"pitch": 36, "start": 0, "end": 8}, {"pitch": 43, "start": 8, "end": 16}]
    return {
        "name": name,
        "qpm": 100,
        "steps": steps,
        "melody": {"program": 0, "notes": melody},
        "bass": {"program": BASS_PROGRAM, "notes": bass},
        "drums": {"hits": hits.tolist(), "velocities": zeros, "offsets": zeros},
        **changes,
    }


def _empty_trio() -> dict:
    zeros = np.zeros((9, STEPS), int).tolist()
    drums = {"hits": zeros, "velocities": zeros, "offsets": zeros}
    return _trio(melody={"notes": []}, bass={"notes": []}, drums=drums)


def _melody() -> dict:
    return {"name": "tune", "steps": 32, "notes": [{"pitch": 60, "start": 0, "end": 4}]}


def test_info_lists_the_trio_tools(client):
    info = client.get("/api/info").json()
    assert list(info["tools"]) == ["generate", "interpolate", "continue"]
    assert [t["name"] for t in info["tool_list"]] == ["generate", "interpolate", "continue"]
    for tool in info["tools"].values():
        assert tool["available"] and tool["kind"] == "trio" and tool["steps"] == STEPS
        assert tool["name"] == "16-bar trios" and tool["bars"] == [16]
    assert [m["name"] for m in info["models"]] == ["16-bar trios"]


def test_generate_answers_the_models_trios(generated, trio_model):
    assert [t["steps"] for t in generated] == [STEPS, STEPS]
    assert [t["melody"]["program"] for t in generated] == [24, 24]
    assert [t["bass"]["program"] for t in generated] == [BASS_PROGRAM] * 2
    expected = trio_model.sample_tensors(2, DEFAULT_TEMPERATURE, seed=1)
    got = np.stack([Trio(**t).array() for t in generated])
    np.testing.assert_array_equal(got, _one_hot(expected))


def test_interpolate_and_continue_trios(client, generated):
    a, b = generated
    r = client.post("/api/interpolate", json={"a": a, "b": b, "steps": 3, "seed": 0})
    assert r.status_code == 200, r.text
    steps = r.json()["trios"]
    assert [t["steps"] for t in steps] == [STEPS] * 3
    assert [t["melody"]["program"] for t in steps] == [24] * 3  # A's voice
    r = client.post("/api/continue", json={"groove": a, "bars": 1, "n": 2, "seed": 3})
    assert r.status_code == 200, r.text
    longer = r.json()["trios"]
    assert [t["steps"] for t in longer] == [STEPS + 16] * 2
    # The trio comes back unchanged, then the new bar.
    for t in longer:
        np.testing.assert_array_equal(Trio(**t).array()[:STEPS], Trio(**a).array())


def test_a_drawn_trio_continues(client):
    """A sketch shorter than the window (4 bars) is padded to it for the code, and goes on."""
    sketch = _trio(64)
    r = client.post("/api/continue", json={"groove": sketch, "bars": 1, "seed": 0})
    assert r.status_code == 200, r.text
    (t,) = r.json()["trios"]
    assert t["steps"] == 80
    np.testing.assert_array_equal(Trio(**t).array()[:64], Trio(**sketch).array())


def test_midi_export_has_three_tracks(client, generated):
    trio = generated[0]
    r = client.post("/api/trio/midi/export", json={**trio, "name": "Trio 1", "qpm": 90})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/midi"
    assert r.headers["content-disposition"] == 'attachment; filename="Trio_1.mid"'
    score = symusic.Score.from_midi(r.content)
    tracks = {(t.is_drum, t.program): len(t.notes) for t in score.tracks}
    melody = len(Trio(**trio).line("melody").monophonic())
    bass = len(Trio(**trio).line("bass").monophonic())
    drums = int(np.sum(trio["drums"]["hits"]))
    assert tracks == {(False, 24): melody, (False, BASS_PROGRAM): bass, (True, 0): drums}
    assert score.tempos[0].qpm == pytest.approx(90)
    ns = read_midi_bytes(r.content, filename="trio.mid")
    assert ns.end.max() == pytest.approx(STEPS * 60 / 90 / 4, abs=1e-3)  # 16 bars at 90 qpm


def test_wav_plays_the_three_tracks(client):
    """The WAV is the trio's 16 bars (and the last notes' release), on every track's voice."""
    r = client.post("/api/trio/audio", json=_trio(qpm=120))
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.headers["content-disposition"] == 'attachment; filename="sketch.wav"'
    with wave.open(io.BytesIO(r.content)) as w:
        frames, rate = w.getnframes(), w.getframerate()
        audio = np.frombuffer(w.readframes(frames), np.int16)
    assert 32.0 <= frames / rate <= 34.0  # 16 bars at 120 qpm are 32 s
    assert np.abs(audio).max() > 1000
    melody_only = client.post("/api/trio/audio", json=_trio(qpm=120, bass={"notes": []}))
    assert melody_only.status_code == 200 and melody_only.content != r.content


def test_upload_reads_a_trio_file(client, magenta_dir):
    path = magenta_dir / "trio" / "midis" / "01.mid"
    r = client.post("/api/trio/midi", files={"file": ("01.mid", path.read_bytes(), "audio/midi")})
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["filename"] == "01.mid" and up["windows"] == 2 and len(up["trios"]) == 2
    first = up["trios"][0]
    assert first["name"] == "01.mid bars 1-16" and first["steps"] == STEPS
    ns = read_midi(path)
    melody = [int(p) for p, d in zip(ns.program, ns.is_drum, strict=True) if not d and p < 32]
    assert first["melody"]["program"] == max(set(melody), key=melody.count)
    converter = build_converter(get_config("hierdec-trio_16bar"), "infer")
    grid = np.asarray(converter.sequence_grid(ns).outputs[0])
    np.testing.assert_array_equal(Trio(**first).array(), grid[:STEPS])


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            "/api/interpolate",
            {"a": _groove(), "b": _groove()},
            400,
            "Interpolate: this tool's model (16-bar trios) reads trios; beat is a drum groove",
        ),
        (
            "/api/interpolate",
            {"a": _melody(), "b": _trio()},
            400,
            "Interpolate: this tool's model (16-bar trios) reads trios; tune is a melody",
        ),
        (
            "/api/continue",
            {"groove": _empty_trio()},
            400,
            "sketch: the trio is empty (no notes or hits to work from)",
        ),
        (
            "/api/continue",
            {"groove": _trio(), "bars": 32},
            400,
            "continue: 16 + 32 bars is longer than the studio's 32-bar trios",
        ),
        (
            "/api/generate",
            {"bars": 4},
            400,
            "generate: no 4-bar model here; this studio offers 16 bars",
        ),
        (
            "/api/interpolate",
            {"a": _trio(drums=_groove()), "b": _trio()},
            422,
            "the drums must be the trio's 256 steps long, got 64",
        ),
        (
            "/api/continue",
            {"groove": _trio(bass={"notes": [{"pitch": 40, "start": 250, "end": 260}]})},
            422,
            "bass note 0 (pitch 40) must start before it ends, within the trio's 256 steps",
        ),
        ("/api/trio/midi/export", _groove(), 422, "a drum groove, not a trio"),
        ("/api/trio/audio", _melody(), 422, "a melody, not a trio"),
        ("/api/similar", {"groove": _groove()}, 501, "the studio's Similar takes groove models"),
        ("/api/groove", {"groove": _groove()}, 501, "the studio's Groove takes groove models"),
        ("/api/melody/generate", {}, 501, "start the studio with --melody-checkpoint"),
    ],
)
def test_bad_inputs_are_one_message(client, path, body, status, message):
    _one_message(client.post(path, json=body), status, message)


def test_an_upload_without_a_trio_is_one_message(client):
    drums = NoteSequence.from_notes([(36, 100, 0.0, 0.1), (38, 100, 0.5, 0.6)], qpm=120)
    data = sequence_to_score(drums).dumps_midi()
    r = client.post("/api/trio/midi", files={"file": ("beat.mid", data, "audio/midi")})
    _one_message(r, 422, "beat.mid: no trio found (it needs a melody on programs 0-31, a bass")
    r = client.post("/api/trio/midi", files={"file": ("empty.mid", b"", "audio/midi")})
    _one_message(r, 422, "empty.mid: the file is empty")


def test_a_drum_studio_refuses_a_trio_in_one_message(studio_models):
    with TestClient(create_app(studio_models)) as c:
        r = c.post("/api/interpolate", json={"a": _trio(), "b": _trio()})
        _one_message(
            r, 400, "this tool's model (4-bar grooves) reads drum grooves; sketch is a trio"
        )
