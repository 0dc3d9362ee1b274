"""The studio with a multi-track performance model, through FastAPI's TestClient: Generate and
Interpolate answer performances (tracks of notes on a 24-steps-a-quarter grid), the upload reads
the bars such a model reads, the MIDI and WAV downloads keep every track, and bad inputs are
refused in a 4xx with one message."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import symusic
from fastapi.testclient import TestClient

from musicvae.data.midi import read_midi, sequence_to_score
from musicvae.data.sequence import NoteSequence
from musicvae.families import DEFAULT_TEMPERATURE
from musicvae.web.app import create_app
from musicvae.web.performances import Performance
from tests.web.test_melody_api import _groove, _one_message
from tests.web.test_trio_api import _trio

STEPS = 96  # one bar of 4/4 at 24 steps a quarter
NAME = "1-bar multi-track performances"


@pytest.fixture(scope="module")
def client(multiperf_model):
    with TestClient(create_app(multiperf_model)) as c:
        yield c


@pytest.fixture(scope="module")
def generated(client) -> list[dict]:
    r = client.post("/api/generate", json={"n": 2, "seed": 1, "qpm": 100})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["performances"]
    return r.json()["performances"]


def _performance(name: str = "band", **changes) -> dict:
    """A bar of piano chords (C E G on each beat), a bass line and a kick and snare."""
    piano = [
        {"pitch": p, "start": 24 * b, "end": 24 * b + 12, "velocity": 90}
        for b in range(4)
        for p in (60, 64, 67)
    ]
    bass = [{"pitch": 36, "start": 0, "end": 48}, {"pitch": 43, "start": 48, "end": 96}]
    kit = [
        {"pitch": 36 if b % 2 == 0 else 38, "start": 24 * b, "end": 24 * b + 6, "velocity": 110}
        for b in range(4)
    ]
    return {
        "name": name,
        "qpm": 120,
        "steps": STEPS,
        "steps_per_quarter": 24,
        "tracks": [
            {"program": 0, "is_drum": False, "notes": piano},
            {"program": 33, "is_drum": False, "notes": bass},
            {"program": 0, "is_drum": True, "notes": kit},
        ],
        **changes,
    }


def _band(tracks: list[dict]) -> dict[tuple[bool, int], set[tuple[int, int]]]:
    """Each track's (pitch, start step) pairs, by (drums, program)."""
    return {
        (t["is_drum"], t["program"]): {(n["pitch"], n["start"]) for n in t["notes"]} for t in tracks
    }


def test_info_lists_the_performance_tools(client):
    info = client.get("/api/info").json()
    assert list(info["tools"]) == ["generate", "interpolate"]
    assert [t["name"] for t in info["tool_list"]] == ["generate", "interpolate"]
    for tool in info["tools"].values():
        assert tool["available"] and tool["kind"] == "multiperf" and tool["name"] == NAME
        assert tool["bars"] == [1] and tool["chords"] is False
    assert [m["name"] for m in info["models"]] == [NAME]
    # Every General MIDI drum pitch has its row of the kit (a performance's drums play it).
    classes = info["drum_classes"]
    assert len(classes) == len(info["drum_pitches"]) == 9
    assert [c[0] for c in classes] == info["drum_pitches"]


def test_generate_answers_the_models_performances(generated, multiperf_model):
    """Each sample as the model's converter decodes it: one track per instrument the model
    chose, every note on the 24-steps-a-quarter grid of its one bar."""
    expected = multiperf_model.sample_tensors(2, DEFAULT_TEMPERATURE, seed=1)
    sequences = multiperf_model.to_sequences(expected, 100)
    assert [p["steps"] for p in generated] == [STEPS, STEPS]
    assert {p["steps_per_quarter"] for p in generated} == {24}
    for got, ns in zip(generated, sequences, strict=True):
        assert got["qpm"] == 100
        step = 60 / 100 / 24
        want: dict[tuple[bool, int], set[tuple[int, int]]] = {}
        for pitch, start, drum, program in zip(
            ns.pitch, ns.start, ns.is_drum, ns.program, strict=True
        ):
            key = (bool(drum), 0 if drum else int(program))
            want.setdefault(key, set()).add((int(pitch), round(start / step)))
        assert _band(got["tracks"]) == want
        keys = [(t["is_drum"], t["program"]) for t in got["tracks"]]
        assert keys == sorted(keys)  # pitched tracks by program, the drums last


def test_a_performance_is_its_sequence():
    """A performance written as notes and read back is the same performance."""
    band = Performance(**_performance())
    ns = band.to_sequence()
    assert sorted(set(zip(ns.is_drum.tolist(), ns.program.tolist(), strict=True))) == [
        (False, 0),
        (False, 33),
        (True, 0),
    ]
    assert ns.end.max() == pytest.approx(2.0)  # one bar at 120 qpm
    assert Performance.from_sequence(ns, steps=STEPS, name="band") == band


def test_interpolate_performances(client, generated):
    a, b = generated
    r = client.post("/api/interpolate", json={"a": a, "b": b, "steps": 3, "seed": 0})
    assert r.status_code == 200, r.text
    steps = r.json()["performances"]
    assert [p["steps"] for p in steps] == [STEPS] * 3
    assert [p["qpm"] for p in steps] == [100] * 3  # A's tempo
    # A band drawn on the page reads as the model's converter reads a file.
    band = _performance()
    r = client.post("/api/interpolate", json={"a": band, "b": a, "steps": 2, "seed": 0})
    assert r.status_code == 200, r.text
    assert len(r.json()["performances"]) == 2


def test_upload_reads_the_bars_a_model_reads(client, magenta_dir):
    """A trio file: each bar of its three instruments, as the converter reads it (the file's
    notes, one track each, on the 24-steps-a-quarter grid at the file's tempo)."""
    path = magenta_dir / "trio" / "midis" / "01.mid"
    r = client.post(
        "/api/multiperf/midi", files={"file": ("01.mid", path.read_bytes(), "audio/midi")}
    )
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["filename"] == "01.mid" and 1 <= len(up["performances"]) <= 16
    assert up["windows"] >= len(up["performances"])
    first = up["performances"][0]
    assert first["steps"] == STEPS and first["name"].startswith("01.mid bar ")
    bar = int(first["name"].removeprefix("01.mid bar "))
    ns = read_midi(path)
    assert first["qpm"] == pytest.approx(ns.qpm)
    seconds = 240 / ns.qpm
    step = seconds / STEPS
    lo = (bar - 1) * seconds
    want: dict[tuple[bool, int], set[tuple[int, int]]] = {}
    for pitch, start, drum, program in zip(ns.pitch, ns.start, ns.is_drum, ns.program, strict=True):
        s = round((start - lo) / step)
        if 0 <= s < STEPS:
            key = (bool(drum), 0 if drum else int(program))
            want.setdefault(key, set()).add((int(pitch), s))
    assert _band(first["tracks"]) == want
    assert len(first["tracks"]) == 3


def test_midi_export_keeps_every_track(client):
    band = _performance(name="Band 1", qpm=90)
    r = client.post("/api/multiperf/midi/export", json=band)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/midi"
    assert r.headers["content-disposition"] == 'attachment; filename="Band_1.mid"'
    score = symusic.Score.from_midi(r.content)
    tracks = {(t.is_drum, t.program): len(t.notes) for t in score.tracks}
    assert tracks == {(False, 0): 12, (False, 33): 2, (True, 0): 4}
    assert score.tempos[0].qpm == pytest.approx(90)
    # Each note where the performance has it: step 24 is the second beat, 2/3 s at 90 qpm.
    piano = next(t for t in score.tracks if not t.is_drum and t.program == 0)
    starts = sorted({round(n.time / score.ticks_per_quarter * 24) for n in piano.notes})
    assert starts == [0, 24, 48, 72]


def test_wav_plays_every_track(client):
    """As played: the bar and the last notes' release; as a loop: exactly the bar."""
    r = client.post("/api/multiperf/audio", json=_performance())
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.headers["content-disposition"] == 'attachment; filename="band.wav"'
    with wave.open(io.BytesIO(r.content)) as w:
        frames, rate = w.getnframes(), w.getframerate()
        audio = np.frombuffer(w.readframes(frames), np.int16)
    assert 2.0 <= frames / rate <= 4.0
    assert np.abs(audio).max() > 1000
    loop = client.post("/api/multiperf/audio?loop=cut", json=_performance())
    with wave.open(io.BytesIO(loop.content)) as w:
        assert w.getnframes() == 2 * w.getframerate()  # one bar at 120 qpm
    drums_only = _performance()
    drums_only["tracks"] = drums_only["tracks"][2:]
    other = client.post("/api/multiperf/audio", json=drums_only)
    assert other.status_code == 200 and other.content != r.content


def _solo() -> dict:
    band = _performance()
    band["tracks"] = band["tracks"][:1]
    return band


def _empty() -> dict:
    band = _performance(name="silence")
    for track in band["tracks"]:
        track["notes"] = []
    return band


def _late() -> dict:
    band = _performance()
    band["tracks"][1]["notes"].append({"pitch": 40, "start": 90, "end": 100})
    return band


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            "/api/interpolate",
            {"a": _groove(), "b": _groove()},
            400,
            f"Interpolate: this tool's model ({NAME}) reads multi-track performances; beat is a "
            "drum groove",
        ),
        (
            "/api/interpolate",
            {"a": _performance(), "b": _trio()},
            400,
            f"Interpolate: this tool's model ({NAME}) reads multi-track performances; sketch is "
            "a trio",
        ),
        (
            "/api/interpolate",
            {"a": _empty(), "b": _performance()},
            400,
            "silence: it is empty (no notes to work from)",
        ),
        (
            "/api/interpolate",
            {"a": _performance(), "b": _solo()},
            400,
            "band: the model's converter found nothing it can read in it (config "
            "'hier-multiperf_vel_1bar_med' reads 2 to 8 instruments a bar",
        ),
        (
            "/api/interpolate",
            {"a": _late(), "b": _performance()},
            422,
            "track 1 note 2 (pitch 40) must start before it ends, within the performance's 96 "
            "steps: got steps 90 to 100",
        ),
        (
            "/api/interpolate",
            {"a": _performance(tracks=[{"notes": []}] * 17), "b": _performance()},
            422,
            "List should have at most 16 items",
        ),
        (
            "/api/generate",
            {"chords": "C G"},
            400,
            "chords: config 'hier-multiperf_vel_1bar_med' does not play over chords",
        ),
        ("/api/multiperf/midi/export", _groove(), 422, "a drum groove, not a multi-track"),
        ("/api/multiperf/audio", {"steps": 4, "notes": []}, 422, "a melody, not a multi-track"),
        ("/api/multiperf/audio", _trio(), 422, "a trio, not a multi-track performance"),
        (
            "/api/continue",
            {"groove": _performance()},
            501,
            "is a multiperf model (multi-instrument performances); the studio's Continue takes "
            "groove or melody or trio models",
        ),
        ("/api/similar", {"groove": _groove()}, 501, "the studio's Similar takes groove models"),
        ("/api/melody/generate", {}, 501, "start the studio with --melody-checkpoint"),
    ],
)
def test_bad_inputs_are_one_message(client, path, body, status, message):
    _one_message(client.post(path, json=body), status, message)


def test_an_upload_without_a_readable_bar_is_one_message(client):
    drums = NoteSequence.from_notes([(36, 100, 0.0, 0.1), (38, 100, 0.5, 0.6)], qpm=120)
    data = sequence_to_score(drums).dumps_midi()
    r = client.post("/api/multiperf/midi", files={"file": ("beat.mid", data, "audio/midi")})
    _one_message(r, 422, "beat.mid: no bar a multi-track model reads (a bar needs 2 to 8")
    r = client.post("/api/multiperf/midi", files={"file": ("empty.mid", b"", "audio/midi")})
    _one_message(r, 422, "empty.mid: the file is empty")


def test_a_trio_studio_refuses_a_performance_in_one_message(trio_model):
    with TestClient(create_app(trio_model)) as c:
        r = c.post("/api/interpolate", json={"a": _performance(), "b": _performance()})
        _one_message(r, 400, "reads trios; band is a multi-track performance")
