"""The studio's melody half through FastAPI's TestClient: every melody route, their bad inputs
(4xx and one message), a melody model as the main model, and tools that follow the models."""

from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest
from fastapi.testclient import TestClient

from musicvae.configs import get_config
from musicvae.data.midi import read_midi_bytes, sequence_to_score
from musicvae.data.sequence import NoteSequence
from musicvae.families import DEFAULT_TEMPERATURE
from musicvae.generation.continuation import continue_categorical_tensors
from musicvae.generation.latent import slerp_path
from musicvae.web.app import create_app
from musicvae.web.melodies import Melody

DRUM_TOOLS = ["generate", "interpolate", "similar", "continue", "groove", "drumify"]
MELODY_TOOLS = ["melody_generate", "melody_interpolate", "melody_continue"]


@pytest.fixture(scope="module")
def client(studio_models, melody_models):
    """The drum models and, beside them, a 2-bar and a 16-bar melody model."""
    with TestClient(create_app({**studio_models, **melody_models})) as c:
        yield c


def _melody(steps: int = 32, name: str = "tune", **changes) -> dict:
    """C4 E4 G4 C5 as quarter notes, then a held G4: two bars of 16ths."""
    notes = [
        {"pitch": p, "start": 4 * i, "end": 4 * i + 4, "velocity": 90}
        for i, p in enumerate([60, 64, 67, 72])
    ]
    if steps > 16:
        notes.append({"pitch": 67, "start": 16, "end": min(steps, 28), "velocity": 70})
    return {"name": name, "qpm": 110, "program": 0, "steps": steps, "notes": notes, **changes}


def _groove() -> dict:
    hits = np.zeros((9, 64), int)
    hits[0, ::8] = 1
    zeros = np.zeros((9, 64)).tolist()
    return {"name": "beat", "hits": hits.tolist(), "velocities": zeros, "offsets": zeros}


def _classes(melodies: list[dict]) -> np.ndarray:
    return np.stack([Melody(**m).classes() for m in melodies])


def _one_message(r, status: int, text: str) -> None:
    """A refusal: the status, and one message (a string, or one validation error) naming it."""
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    if isinstance(detail, list):
        assert len(detail) == 1, detail
        detail = f"{'.'.join(map(str, detail[0]['loc']))}: {detail[0]['msg']}"
    assert "\n" not in detail and text in detail, detail


# ---------------------------------------------------------------- the melody model's table


def test_info_lists_the_melody_tools_beside_the_drum_ones(client):
    info = client.get("/api/info").json()
    assert list(info["tools"]) == DRUM_TOOLS + MELODY_TOOLS
    assert [t["name"] for t in info["tool_list"]][-3:] == MELODY_TOOLS
    assert [t["endpoint"] for t in info["tool_list"]][-3:] == [
        "/api/melody/generate",
        "/api/melody/interpolate",
        "/api/melody/continue",
    ]
    for name in MELODY_TOOLS:
        tool = info["tools"][name]
        assert tool["available"] and tool["kind"] == "melody" and tool["steps"] == 32
        assert (tool["model"], tool["name"]) == ("debug-mel_2bar", "2-bar melodies")
    for name in ("melody_generate", "melody_interpolate"):
        assert info["tools"][name]["bars"] == [2, 16]
        assert info["tools"][name]["long_name"] == "16-bar melodies"
    # Continue stays on the 2-bar model, as the drums' stays on the 4-bar one.
    assert info["tools"]["melody_continue"]["bars"] == [2]
    assert all(info["tools"][t]["kind"] == "drums" for t in DRUM_TOOLS)
    # The header's human-readable names, and the one default temperature.
    assert [m["name"] for m in info["models"]] == [
        "4-bar grooves",
        "4-bar grooves for Groove",
        "4-bar grooves for Drumify",
        "2-bar melodies",
        "16-bar melodies",
    ]
    assert info["default_temperature"] == DEFAULT_TEMPERATURE == 0.5


def test_a_drum_studio_lists_no_melody_tools_and_answers_them_501(studio_models):
    with TestClient(create_app(studio_models)) as c:
        info = c.get("/api/info").json()
        assert list(info["tools"]) == DRUM_TOOLS
        r = c.post("/api/melody/generate", json={"n": 1})
        _one_message(r, 501, "no model for this tool: start the studio with --melody-checkpoint")


# ---------------------------------------------------------------- generate


def test_melody_generate_is_the_models_prior_and_a_seed_repeats_it(client, melody_models):
    body = {"n": 3, "temperature": 0.7, "seed": 11, "qpm": 90, "program": 40}
    r = client.post("/api/melody/generate", json=body)
    assert r.status_code == 200
    melodies = r.json()["melodies"]
    assert [(m["steps"], m["qpm"], m["program"]) for m in melodies] == [(32, 90, 40)] * 3
    expected = melody_models["melody"].sample_tensors(3, 0.7, seed=11).argmax(-1)
    np.testing.assert_array_equal(_classes(melodies), expected)
    assert client.post("/api/melody/generate", json=body).json() == r.json()


def test_melody_generate_samples_at_the_default_temperature(client, melody_models):
    r = client.post("/api/melody/generate", json={"n": 2, "seed": 4})
    expected = melody_models["melody"].sample_tensors(2, DEFAULT_TEMPERATURE, seed=4)
    np.testing.assert_array_equal(_classes(r.json()["melodies"]), expected.argmax(-1))


def test_melody_generate_offers_2_or_16_bars(client, melody_models):
    r = client.post("/api/melody/generate", json={"n": 2, "seed": 5, "bars": 16})
    assert [m["steps"] for m in r.json()["melodies"]] == [256, 256]
    expected = melody_models["long_melody"].sample_tensors(2, DEFAULT_TEMPERATURE, seed=5)
    np.testing.assert_array_equal(_classes(r.json()["melodies"]), expected.argmax(-1))
    _one_message(
        client.post("/api/melody/generate", json={"n": 1, "bars": 4}),
        400,
        "melody_generate: no 4-bar model here; this studio offers 2 bars or 16 bars",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 33}, "n"),
        ({"temperature": 0}, "temperature"),
        ({"seed": -1}, "seed"),
        ({"qpm": 5}, "qpm"),
        ({"program": 128}, "program"),
        ({"bars": 0}, "bars"),
    ],
)
def test_melody_generate_rejects_bad_parameters(client, body, field):
    _one_message(client.post("/api/melody/generate", json=body), 422, f"body.{field}")


# ---------------------------------------------------------------- interpolate


def test_melody_interpolate_walks_the_slerp_of_the_two_means(client, melody_models):
    a, b = client.post("/api/melody/generate", json={"n": 2, "seed": 3}).json()["melodies"]
    body = {"a": a, "b": b, "steps": 4, "temperature": 0.5, "seed": 4}
    r = client.post("/api/melody/interpolate", json=body)
    assert r.status_code == 200
    out = r.json()["melodies"]
    assert len(out) == 4 and all(m["steps"] == 32 for m in out)
    m = melody_models["melody"]
    inputs = np.stack([Melody(**x).array(90) for x in (a, b)])
    _, mu, _ = m.encode_tensors(inputs)
    z = slerp_path(mu[0], mu[1], 4).astype(np.float32)
    z[0], z[-1] = mu[0], mu[1]
    np.testing.assert_array_equal(_classes(out), m.decode_tensors(z, 0.5, 4).argmax(-1))


def test_melody_interpolate_reads_drawn_melodies_of_any_length(client):
    short, long = _melody(16, name="short"), _melody(48, name="long", program=73)
    r = client.post("/api/melody/interpolate", json={"a": short, "b": long, "steps": 3})
    assert r.status_code == 200
    # The first window of each, the first melody's program.
    assert [(m["steps"], m["program"]) for m in r.json()["melodies"]] == [(32, 0)] * 3
    r = client.post("/api/melody/interpolate", json={"a": long, "b": short, "steps": 2, "bars": 16})
    assert [(m["steps"], m["program"]) for m in r.json()["melodies"]] == [(256, 73)] * 2


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"a": {**_melody(), "notes": []}}, 400, "tune: the melody is empty"),
        ({"steps": 1}, 422, "body.steps"),
        ({"a": {**_melody(), "steps": 0}}, 422, "body.a.steps"),
        ({"a": {**_melody(), "steps": 513}}, 422, "body.a.steps"),
        ({"b": _melody(notes=[{"pitch": 20, "start": 0, "end": 2}])}, 422, "pitch"),
        ({"b": _melody(notes=[{"pitch": 60, "start": 30, "end": 40}])}, 422, "within the"),
        ({"b": _melody(notes=[{"pitch": 60, "start": 3, "end": 3}])}, 422, "must start before"),
        ({"a": _groove()}, 422, "body.a: Value error, a drum groove, not a melody"),
        ({"bars": 4}, 400, "no 4-bar model here"),
    ],
)
def test_melody_interpolate_rejects_bad_input(client, change, status, message):
    body = {"a": _melody(), "b": _melody(name="other"), **change}
    _one_message(client.post("/api/melody/interpolate", json=body), status, message)


# ---------------------------------------------------------------- continue


def test_melody_continue_keeps_the_melody_then_adds_bars(client, melody_models):
    body = {"melody": _melody(), "bars": 3, "n": 2, "temperature": 0.5, "seed": 9}
    r = client.post("/api/melody/continue", json=body)
    assert r.status_code == 200
    out = r.json()["melodies"]
    assert [m["steps"] for m in out] == [80, 80]
    prompt = Melody(**_melody()).array(90)
    expected = continue_categorical_tensors(melody_models["melody"], prompt, 3, 2, 0.5, 9)
    np.testing.assert_array_equal(_classes(out), expected.argmax(-1))
    # The melody itself comes back first, unchanged (its held last note ends at step 28).
    assert all(m["notes"][:5] == [{**n, "velocity": 80} for n in _melody()["notes"]] for m in out)


def test_melody_continue_pads_a_short_melody_to_whole_bars(client):
    r = client.post("/api/melody/continue", json={"melody": _melody(20), "bars": 1, "seed": 0})
    assert [m["steps"] for m in r.json()["melodies"]] == [48]


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"bars": 0}, 422, "body.bars"),
        ({"bars": 33}, 422, "body.bars"),
        ({"n": 9}, 422, "body.n"),
        ({"melody": {**_melody(), "notes": []}}, 400, "the melody is empty"),
        ({"melody": _melody(512), "bars": 2}, 400, "longer than the studio's 32-bar melodies"),
    ],
)
def test_melody_continue_rejects_bad_requests(client, change, status, message):
    body = {"melody": _melody(), **change}
    _one_message(client.post("/api/melody/continue", json=body), status, message)


def test_continuation_is_what_a_free_run_after_the_prompt_plays(melody_models, monkeypatch):
    """Teacher forcing on the prompt's last bar, then sampling: near-greedy, a continuation of a
    greedy decode's first bar from its own z plays the decode's second bar."""
    m = melody_models["melody"]
    z = np.random.default_rng(0).standard_normal((1, m.z_size)).astype(np.float32)
    decoded = m.decode_tensors(z, 1e-4, 0)[0]  # (32, 90), near-greedy
    monkeypatch.setattr(m, "encode_tensors", lambda *a, **k: (z.copy(), z.copy(), z * 0))
    out = continue_categorical_tensors(m, decoded[:16], 1, 1, 1e-4, 0)[0]
    np.testing.assert_array_equal(out.argmax(-1), decoded.argmax(-1))


# ---------------------------------------------------------------- MIDI in and out


def _midi(program: int = 40, drums: bool = False) -> bytes:
    notes = [(60, 100, 0.0, 0.5), (64, 100, 0.5, 1.0), (67, 100, 1.0, 2.0), (72, 100, 4.0, 4.5)]
    ns = NoteSequence.from_notes(notes, qpm=120, is_drum=drums)
    ns.program = np.full(len(ns), program, np.int16)
    return sequence_to_score(ns).dumps_midi()


def test_melody_upload_reads_the_melody_in_windows(client):
    r = client.post("/api/melody/midi", params={"bars": 2}, files={"file": ("tune.mid", _midi())})
    assert r.status_code == 200
    data = r.json()
    assert (data["filename"], data["qpm"], data["program"], data["windows"]) == (
        "tune.mid",
        120,
        40,
        2,
    )
    first, second = data["melodies"]
    assert first["name"] == "tune.mid bars 1-2" and first["program"] == 40
    assert [(n["pitch"], n["start"], n["end"]) for n in first["notes"]] == [
        (60, 0, 4),
        (64, 4, 8),
        (67, 8, 16),
    ]
    assert [(n["pitch"], n["start"], n["end"]) for n in second["notes"]] == [(72, 0, 4)]


@pytest.mark.parametrize(
    ("files", "params", "status", "message"),
    [
        ({"file": ("drums.mid", _midi(drums=True))}, {}, 422, "drums.mid: no melody found"),
        ({"file": ("empty.mid", b"")}, {}, 422, "empty.mid: the file is empty"),
        ({"file": ("notes.mid", b"not a midi file")}, {}, 422, "notes.mid: not a MIDI file"),
        ({"file": ("tune.mid", _midi())}, {"bars": 0}, 422, "query.bars"),
    ],
)
def test_bad_melody_uploads_are_one_message(client, files, params, status, message):
    r = client.post("/api/melody/midi", files=files, params=params)
    _one_message(r, status, message)


def test_melody_export_is_a_midi_file_on_its_program(client):
    r = client.post("/api/melody/midi/export", json=_melody(program=73, name="my tune"))
    assert r.status_code == 200 and r.headers["content-type"] == "audio/midi"
    assert r.headers["content-disposition"] == 'attachment; filename="my_tune.mid"'
    ns = read_midi_bytes(r.content)
    step = 60 / 110 / 4
    assert ns.qpm == pytest.approx(110) and not ns.is_drum.any() and set(ns.program) == {73}
    got = [(n.pitch, n.velocity, round(n.start / step), round(n.end / step)) for n in ns.notes]
    assert got == [
        (60, 90, 0, 4),
        (64, 90, 4, 8),
        (67, 90, 8, 12),
        (72, 90, 12, 16),
        (67, 70, 16, 28),
    ]


def test_melody_export_plays_one_note_at_a_time(client):
    """Overlapping notes are cut, and of two starting together the higher plays, as the models
    read a melody."""
    notes = [
        {"pitch": 60, "start": 0, "end": 8},
        {"pitch": 64, "start": 4, "end": 6},
        {"pitch": 55, "start": 10, "end": 12},
        {"pitch": 59, "start": 10, "end": 12},
    ]
    r = client.post("/api/melody/midi/export", json=_melody(notes=notes))
    ns = read_midi_bytes(r.content)
    step = 60 / 110 / 4
    got = [(n.pitch, round(n.start / step), round(n.end / step)) for n in ns.notes]
    assert got == [(60, 0, 4), (64, 4, 6), (59, 10, 12)]


def test_melody_audio_is_a_wav_on_a_melodic_voice(client):
    from musicvae.audio import SAMPLE_RATE

    r = client.post("/api/melody/audio", json=_melody())
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.headers["content-disposition"] == 'attachment; filename="tune.wav"'
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getframerate() == SAMPLE_RATE
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    # The first note, C4 (261.6 Hz), is the loudest pitch of its first quarter note.
    first = samples[: int(0.5 * SAMPLE_RATE)].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(first * np.hanning(len(first))))
    peak = np.fft.rfftfreq(len(first), 1 / SAMPLE_RATE)[spectrum.argmax()]
    assert peak == pytest.approx(261.6, abs=4)


@pytest.mark.parametrize("path", ["/api/melody/midi/export", "/api/melody/audio"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"program": -1}, "body.program"),
        ({"qpm": 1000}, "body.qpm"),
        ({"notes": [{"pitch": 109, "start": 0, "end": 1}]}, "body.notes.0.pitch"),
        ({"notes": [{"pitch": 60, "start": 0, "end": 1, "velocity": 0}]}, "velocity"),
    ],
)
def test_bad_melodies_are_422_with_one_message(client, path, change, message):
    _one_message(client.post(path, json=_melody(**change)), 422, message)


# ---------------------------------------------------------------- a melody model as the main one


@pytest.fixture(scope="module")
def melody_only(melody_models):
    with TestClient(create_app(melody_models["melody"])) as c:
        yield c


def test_a_melody_only_studio_serves_only_melody_tools(melody_only):
    info = melody_only.get("/api/info").json()
    assert list(info["tools"]) == ["generate", "interpolate", "continue"]
    assert [t["name"] for t in info["tool_list"]] == ["generate", "interpolate", "continue"]
    assert {t["kind"] for t in info["tools"].values()} == {"melody"}
    assert [m["name"] for m in info["models"]] == ["2-bar melodies"]


def test_a_melody_main_model_answers_melodies(melody_only, melody_models):
    r = melody_only.post("/api/generate", json={"n": 2, "seed": 1, "program": 24})
    assert list(r.json()) == ["melodies"]
    melodies = r.json()["melodies"]
    assert [m["program"] for m in melodies] == [24, 24]
    expected = melody_models["melody"].sample_tensors(2, DEFAULT_TEMPERATURE, seed=1)
    np.testing.assert_array_equal(_classes(melodies), expected.argmax(-1))
    a, b = melodies
    r = melody_only.post("/api/interpolate", json={"a": a, "b": b, "steps": 3})
    assert [m["steps"] for m in r.json()["melodies"]] == [32] * 3
    r = melody_only.post("/api/continue", json={"groove": a, "bars": 2, "seed": 3})
    assert [m["steps"] for m in r.json()["melodies"]] == [64]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            "/api/interpolate",
            {"a": _groove(), "b": _groove()},
            400,
            "Interpolate: this tool's model (2-bar melodies) reads melodies; beat is a drum groove",
        ),
        (
            "/api/continue",
            {"groove": _groove()},
            400,
            "Continue: this tool's model (2-bar melodies) reads melodies",
        ),
        (
            "/api/similar",
            {"groove": _groove()},
            501,
            "config 'debug-mel_2bar' is a melody model (monophonic melodies); the studio's "
            "Similar takes groove models",
        ),
        ("/api/groove", {"groove": _groove()}, 501, "the studio's Groove takes groove models"),
        ("/api/melody/generate", {}, 501, "start the studio with --melody-checkpoint"),
    ],
)
def test_a_melody_main_model_refuses_drums_in_one_message(melody_only, path, body, status, message):
    _one_message(melody_only.post(path, json=body), status, message)


def test_a_drum_model_refuses_a_melody_in_one_message(client):
    r = client.post("/api/interpolate", json={"a": _melody(), "b": _melody()})
    _one_message(r, 400, "Interpolate: this tool's model (4-bar grooves) reads drum grooves")


# ---------------------------------------------------------------- other drum families


@pytest.mark.parametrize("name", ["cat-drums_2bar_small", "nade-drums_2bar_reduced"])
def test_one_hot_and_nade_drum_models_play_on_the_drum_grid(name):
    import torch

    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(0)
    config = get_config(name, "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16],batch_size=4")
    model = TrainedModel(build_model(config), config, source="test")
    with TestClient(create_app(model)) as c:
        info = c.get("/api/info").json()
        assert list(info["tools"]) == ["generate", "interpolate"]
        assert info["tools"]["generate"]["name"] == "2-bar drum patterns"
        r = c.post("/api/generate", json={"n": 2, "seed": 0, "temperature": 1.0})
        assert r.status_code == 200
        a, b = r.json()["grooves"]
        assert len(a["hits"]) == 9 and len(a["hits"][0]) == 32
        # The hits fall on the steps of the model's notes (a 16th is 1/8 s at 120 qpm).
        (ns,) = model.to_sequences(model.sample_tensors(1, 1.0, seed=0))
        steps = np.flatnonzero(np.any(a["hits"], axis=0))
        assert len(steps) and set(steps) == {round(t * 8) for t in ns.start}
        a["hits"][0][0] = 1  # never empty
        r = c.post("/api/interpolate", json={"a": a, "b": a, "steps": 3})
        assert r.status_code == 200 and len(r.json()["grooves"]) == 3
        _one_message(c.post("/api/similar", json={"groove": a}), 501, "takes groove models")
        assert json.dumps(c.get("/api/info").json()).count("melody_") == 0
