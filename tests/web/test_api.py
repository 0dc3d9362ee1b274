"""The studio's JSON API through FastAPI's TestClient: every route, bad input, limits, threads."""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from musicvae import families
from musicvae.configs import get_config
from musicvae.data.midi import read_midi, read_midi_bytes, sequence_to_score
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from musicvae.families import DEFAULT_TEMPERATURE
from musicvae.web import tools as table
from musicvae.web.app import INTERNAL_ERROR, create_app
from musicvae.web.grooves import Groove

GMD_FILE = "drummer1/session1/1_funk_80_beat_4-4.mid"
STATIC = Path(__file__).resolve().parents[2] / "src" / "musicvae" / "web" / "static"


@pytest.fixture(scope="module")
def client(studio_models):
    with TestClient(create_app(studio_models)) as c:
        yield c


def _arr(groove: dict) -> np.ndarray:
    return Groove(**groove).array()


def _masked(arr: np.ndarray) -> np.ndarray:
    """Model output as a grid holds it: velocity and offset only where there is a hit."""
    arr = np.array(arr, np.float32)
    hits = arr[..., :9]
    arr[..., 9:18] *= hits
    arr[..., 18:] *= hits
    return arr


def _pattern(steps: int = 64) -> dict:
    """A plain rock beat over ``steps`` steps: kick 1 and 3, snare 2 and 4, eighth hi-hats."""
    hits = np.zeros((9, steps), int)
    hits[0, 0::8] = 1
    hits[1, 4::8] = 1
    hits[2, 0::2] = 1
    vel = hits * 0.8
    return {
        "name": "rock",
        "qpm": 100,
        "hits": hits.tolist(),
        "velocities": vel.tolist(),
        "offsets": np.zeros((9, steps)).tolist(),
    }


def _midi(notes, qpm=120.0) -> bytes:
    return sequence_to_score(NoteSequence.from_notes(notes, qpm=qpm)).dumps_midi()


# ---------------------------------------------------------------- page and schema


def test_page_static_files_and_schema_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "MusicVAE Studio" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    schema = client.get("/openapi.json").json()
    routes = {
        "/api/info",
        "/api/generate",
        "/api/interpolate",
        "/api/groove",
        "/api/drumify",
        "/api/similar",
        "/api/midi",
        "/api/midi/export",
    }
    assert routes <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_page_loads_nothing_from_other_hosts():
    for f in STATIC.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static//etc/passwd",
        "/api/../app.py",
    ],
)
def test_no_path_outside_the_static_folder_is_served(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert "create_app" not in r.text


def test_info_lists_tools_models_and_limits(client):
    info = client.get("/api/info").json()
    assert info["exposed"] is False and info["host"] == "127.0.0.1"
    assert info["max_upload_bytes"] == 1 << 20
    assert info["drums"][:3] == ["kick", "snare", "closed hi-hat"] and len(info["drums"]) == 9
    assert set(info["tools"]) == {
        "generate",
        "interpolate",
        "similar",
        "continue",
        "groove",
        "drumify",
    }
    for tool in info["tools"].values():
        assert tool["available"] and tool["model"] == "debug" and tool["steps"] == 64
        assert tool["bars"] == [4]  # no long model given: one length
    assert info["tools"]["groove"]["source"] == "test-groove"


def test_info_lists_the_tool_and_role_tables(client):
    info = client.get("/api/info").json()
    # The tools these models back, in the table's order: no melody tools beside drum models.
    assert info["tool_list"] == [t.info() for t in table.TOOLS if t.name in info["tools"]]
    assert [(t["name"], t["label"], t["endpoint"]) for t in info["tool_list"]] == [
        ("generate", "Generate", "/api/generate"),
        ("interpolate", "Interpolate", "/api/interpolate"),
        ("groove", "Groove", "/api/groove"),
        ("drumify", "Drumify", "/api/drumify"),
        ("similar", "Similar", "/api/similar"),
        ("continue", "Continue", "/api/continue"),
    ]
    assert {t["name"] for t in info["tool_list"]} == set(info["tools"])
    assert info["roles"] == [r.info() for r in table.ROLES]
    assert [(r["name"], r["flag"], r["bundle"]) for r in info["roles"]] == [
        ("generate", "--checkpoint", "groovae_4bar"),
        ("long", "--long-checkpoint", "groovae_16bar_hierdec"),
        ("groove", "--groove-checkpoint", "groovae_2bar_humanize"),
        ("drumify", "--drumify-checkpoint", "groovae_2bar_tap_fixed_velocity"),
        ("melody", "--melody-checkpoint", "mel_2bar"),
        ("long_melody", "--long-melody-checkpoint", "mel_16bar"),
    ]


def test_a_row_added_to_the_table_is_listed_by_info(studio_models, monkeypatch):
    fills = table.Tool("fills", "Fills", "groove", "Fills between two grooves")
    monkeypatch.setattr(table, "TOOLS", (*table.TOOLS, fills))
    groove = families.FAMILIES["groove"]
    backs = dataclasses.replace(groove, studio_tools=(*groove.studio_tools, "fills"))
    monkeypatch.setitem(families.FAMILIES, "groove", backs)
    with TestClient(create_app(studio_models)) as c:
        info = c.get("/api/info").json()
    assert info["tool_list"][-1] == {
        "name": "fills",
        "label": "Fills",
        "role": "groove",
        "endpoint": "/api/fills",
        "description": "Fills between two grooves",
        "action": "fills",
    }
    # Served by the humanize model; listed after Groove, with the tools of its role.
    assert info["tools"]["fills"]["source"] == "test-groove"
    assert list(info["tools"])[-2:] == ["fills", "drumify"]


def test_every_tool_is_routed_at_its_endpoint_with_its_description(client):
    paths = client.get("/openapi.json").json()["paths"]
    for t in table.TOOLS:
        assert paths[t.endpoint]["post"]["summary"] == t.description


def test_info_says_when_the_server_is_exposed(studio_models):
    with TestClient(create_app(studio_models, host="0.0.0.0")) as c:
        assert c.get("/api/info").json()["exposed"] is True


def test_unknown_host_header_is_refused_when_hosts_are_pinned(studio_models):
    app = create_app(studio_models, allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://127.0.0.1:8000").get("/api/info").status_code == 200
    assert TestClient(app, base_url="http://evil.example").get("/api/info").status_code == 400


# ---------------------------------------------------------------- tools


def test_generate_returns_grids_and_a_seed_repeats_them(client, studio_models):
    r = client.post("/api/generate", json={"n": 3, "temperature": 0.7, "seed": 11, "qpm": 90})
    assert r.status_code == 200
    grooves = r.json()["grooves"]
    assert len(grooves) == 3
    for g in grooves:
        assert g["qpm"] == 90
        assert [len(g[k]) for k in ("hits", "velocities", "offsets")] == [9, 9, 9]
        arr = _arr(g)
        assert arr.shape == (64, 27)
        hits = arr[:, :9]
        assert set(np.unique(hits)) <= {0.0, 1.0}
        # Empty cells carry no velocity or offset.
        assert np.all(arr[:, 9:][np.tile(hits, 2) == 0] == 0)
    expected = studio_models["generate"].sample_tensors(3, 0.7, seed=11)
    np.testing.assert_allclose(np.stack([_arr(g) for g in grooves]), _masked(expected), atol=6e-5)
    again = client.post("/api/generate", json={"n": 3, "temperature": 0.7, "seed": 11, "qpm": 90})
    assert again.json() == r.json()


@pytest.mark.parametrize(
    "body",
    [
        {"n": 0},
        {"n": 33},
        {"temperature": 0},
        {"temperature": -1},
        {"seed": -1},
        {"qpm": 5},
        {"n": "four"},
    ],
)
def test_generate_rejects_bad_parameters(client, body):
    r = client.post("/api/generate", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == next(iter(body))


def test_interpolate_matches_the_model_and_counts_steps(client, studio_models):
    a, b = client.post("/api/generate", json={"n": 2, "seed": 3}).json()["grooves"]
    r = client.post(
        "/api/interpolate", json={"a": a, "b": b, "steps": 7, "temperature": 0.5, "seed": 4}
    )
    assert r.status_code == 200
    out = np.stack([_arr(g) for g in r.json()["grooves"]])
    assert out.shape == (7, 64, 27)
    m = studio_models["generate"]
    (sa,) = m.to_sequences(_arr(a))
    (sb,) = m.to_sequences(_arr(b))
    expected, _ = m.interpolate_tensors(sa, sb, 7, temperature=0.5, seed=4)
    np.testing.assert_allclose(out, _masked(expected), atol=6e-5)


def test_interpolate_accepts_grooves_of_other_lengths(client):
    r = client.post("/api/interpolate", json={"a": _pattern(16), "b": _pattern(128), "steps": 3})
    assert r.status_code == 200
    assert [len(g["hits"][0]) for g in r.json()["grooves"]] == [64, 64, 64]


@pytest.fixture(scope="module")
def long_client(studio_models):
    """The studio with a second, 16-bar model for Generate and Interpolate."""
    import torch

    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(1)
    config = get_config("debug", "split_bars=16,max_seq_len=256")
    long = TrainedModel(build_model(config), config, source="test-long")
    with TestClient(create_app({**studio_models, "long": long})) as c:
        yield c, long


def test_generate_and_interpolate_offer_4_or_16_bars(long_client, studio_models):
    client, long = long_client
    tools = client.get("/api/info").json()["tools"]
    for tool in ("generate", "interpolate"):
        assert tools[tool]["bars"] == [4, 16] and tools[tool]["long_model"] == "debug"
    assert tools["similar"]["bars"] == [4] and "long_model" not in tools["similar"]
    r = client.post("/api/generate", json={"n": 2, "seed": 5, "bars": 16})
    out = np.stack([_arr(g) for g in r.json()["grooves"]])
    assert out.shape == (2, 256, 27)
    expected = long.sample_tensors(2, DEFAULT_TEMPERATURE, seed=5)  # the default temperature
    np.testing.assert_allclose(out, _masked(expected), atol=6e-5)
    short = client.post("/api/generate", json={"n": 2, "seed": 5, "bars": 4}).json()["grooves"]
    assert short == client.post("/api/generate", json={"n": 2, "seed": 5}).json()["grooves"]
    # Unseeded requests of both lengths at once are never merged into one model call.
    assert [len(g["hits"][0]) for g in short] == [64, 64]
    a, b = short
    r = client.post("/api/interpolate", json={"a": a, "b": b, "steps": 3, "seed": 1, "bars": 16})
    assert [len(g["hits"][0]) for g in r.json()["grooves"]] == [256] * 3
    bad = client.post("/api/generate", json={"n": 1, "bars": 8})
    assert bad.status_code == 400
    assert (
        bad.json()["detail"]
        == "generate: no 8-bar model here; this studio offers 4 bars or 16 bars"
    )


def test_unseeded_requests_of_two_lengths_stay_apart(long_client):
    client, _ = long_client
    bodies = [{"n": 2, "bars": 16 if i % 2 else 4} for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda b: client.post("/api/generate", json=b), bodies))
    for body, r in zip(bodies, answers, strict=True):
        assert r.status_code == 200
        assert [len(g["hits"][0]) for g in r.json()["grooves"]] == [16 * body["bars"]] * 2


def test_groove_humanizes_like_the_model(client, studio_models):
    pattern = _pattern(128)  # two windows of the 4-bar debug model
    r = client.post("/api/groove", json={"groove": pattern, "temperature": 0.3, "seed": 2})
    assert r.status_code == 200
    (g,) = r.json()["grooves"]
    assert g["qpm"] == 100
    m = studio_models["groove"]
    (ns,) = m.to_sequences(_arr(pattern), qpm=100)
    expected, _ = m.transform_tensors(ns, temperature=0.3, seed=2, keep_hits=True)
    assert expected.shape == (128, 27)
    np.testing.assert_allclose(_arr(g), _masked(expected), atol=6e-5)
    # The user's pattern is played as it is: exactly its hits, none added.
    assert g["hits"] == pattern["hits"]


def test_groove_pads_a_one_bar_sketch_to_a_window(client):
    sketch = _pattern(16)
    r = client.post("/api/groove", json={"groove": sketch, "seed": 0})
    assert r.status_code == 200
    assert len(r.json()["grooves"][0]["hits"][0]) == 64


def test_empty_groove_is_a_clear_400(client):
    empty = {**_pattern(), "hits": np.zeros((9, 64), int).tolist()}
    r = client.post("/api/groove", json={"groove": empty})
    assert r.status_code == 400
    assert r.json()["detail"] == "rock: the groove is empty (no hits to work from)"


def test_drumify_turns_taps_into_a_groove_like_the_model(client, studio_models):
    taps = np.zeros((9, 64), int)
    taps[2, [0, 3, 6, 8, 12, 16, 19, 22, 24, 28, 40, 44, 60]] = 1
    groove = {
        "name": "taps",
        "hits": taps.tolist(),
        "velocities": (taps * 0.7).tolist(),
        "offsets": np.zeros((9, 64)).tolist(),
    }
    r = client.post("/api/drumify", json={"groove": groove, "temperature": 0.5, "seed": 9})
    assert r.status_code == 200
    m = studio_models["drumify"]
    (ns,) = m.to_sequences(_arr(groove))
    prep = m.prepare(ns)
    # tapify: every tap lands on the open hi-hat channel, with no velocity (fixed_velocities).
    assert np.flatnonzero(prep.inputs[0, :, 3]).tolist() == np.flatnonzero(taps[2]).tolist()
    assert prep.inputs[0, :, 9:18].sum() == 0
    # Drumify keeps the taps: drums on every tapped step, and nowhere else.
    expected, _ = m.transform_tensors(ns, temperature=0.5, seed=9, keep_hits=True)
    out = _arr(r.json()["grooves"][0])
    np.testing.assert_allclose(out, _masked(expected), atol=6e-5)
    assert np.flatnonzero(out[:, :9].max(axis=1) > 0.5).tolist() == np.flatnonzero(taps[2]).tolist()


def test_similar_decodes_noise_around_the_mean(client, studio_models):
    (g,) = client.post("/api/generate", json={"n": 1, "seed": 21}).json()["grooves"]
    m = studio_models["generate"]
    (ns,) = m.to_sequences(_arr(g))
    _, mu, _ = m.encode_tensors(m.prepare(ns).inputs)  # (1 window, Z)
    for spread in (0.0, 1.5):
        body = {"groove": g, "n": 3, "spread": spread, "temperature": 0.3, "seed": 5}
        r = client.post("/api/similar", json=body)
        assert r.status_code == 200
        out = np.stack([_arr(x) for x in r.json()["grooves"]])
        # z = mu + spread * N(0, I), the noise drawn from numpy's generator seeded with `seed`.
        z = mu[None] + spread * np.random.default_rng(5).standard_normal((3, *mu.shape))
        expected = m.decode_tensors(z.reshape(3, -1).astype(np.float32), 0.3, seed=6)
        np.testing.assert_allclose(out, _masked(expected), atol=6e-5)
    # With no spread, one variation is exactly the reconstruction at mu.
    recon, _ = m.transform_tensors(ns, temperature=0.3, seed=5)
    (zero,) = client.post("/api/similar", json={**body, "n": 1, "spread": 0.0}).json()["grooves"]
    np.testing.assert_allclose(_arr(zero), _masked(recon), atol=6e-5)


# ---------------------------------------------------------------- missing models


def test_tools_without_a_model_answer_501(studio_models):
    with TestClient(create_app({"generate": studio_models["generate"]})) as c:
        r = c.post("/api/groove", json={"groove": _pattern()})
        assert r.status_code == 501
        assert "--groove-checkpoint" in r.json()["detail"]
        assert c.post("/api/drumify", json={"groove": _pattern()}).status_code == 501
        info = c.get("/api/info").json()["tools"]
        assert info["generate"]["available"] and not info["groove"]["available"]
        assert info["drumify"]["reason"].startswith("no model for this tool")


def test_a_single_model_serves_only_what_it_was_trained_for(studio_models):
    with TestClient(create_app(studio_models["generate"])) as c:
        r = c.post("/api/groove", json={"groove": _pattern()})
        assert r.status_code == 501
        assert r.json()["detail"].startswith(
            "model 'debug' cannot humanize: it needs a model trained with humanize"
        )
        assert c.post("/api/generate", json={"n": 1}).status_code == 200


def test_a_loader_runs_once_on_first_use_and_its_error_is_shown(studio_models):
    calls = []

    def loader():
        calls.append(1)
        return studio_models["generate"]

    with TestClient(create_app(loader)) as c:
        assert calls == []
        with ThreadPoolExecutor(4) as pool:
            codes = list(
                pool.map(lambda _: c.post("/api/generate", json={"n": 1}).status_code, range(8))
            )
        assert codes == [200] * 8 and calls == [1]

    def broken():
        raise MusicVAEError("model.safetensors: no such model bundle")

    with TestClient(create_app(broken)) as c:
        r = c.post("/api/generate", json={"n": 1})
        assert (
            r.status_code == 501 and r.json()["detail"] == "model.safetensors: no such model bundle"
        )
        assert c.get("/").status_code == 200


# ---------------------------------------------------------------- MIDI in and out


def test_upload_parses_a_gmd_file_into_windows(client, groove_dir, studio_models):
    data = (groove_dir / GMD_FILE).read_bytes()
    r = client.post("/api/midi", files={"file": ("1_funk_80_beat_4-4.mid", data, "audio/midi")})
    assert r.status_code == 200
    body = r.json()
    assert body["filename"] == "1_funk_80_beat_4-4.mid" and body["qpm"] == pytest.approx(80.0)
    ns = read_midi(groove_dir / GMD_FILE)
    windows = studio_models["generate"].converter.to_tensors(ns).outputs
    assert (
        body["windows"] >= len(windows) == len(body["grooves"]) - (body["windows"] - len(windows))
    )
    assert body["grooves"][0]["name"] == "1_funk_80_beat_4-4.mid bars 1-4"
    for g, w in zip(body["grooves"], windows, strict=False):
        np.testing.assert_allclose(_arr(g), w, atol=6e-5)
    two = client.post("/api/midi?bars=2", files={"file": ("a.mid", data, "audio/midi")}).json()
    assert len(two["grooves"][0]["hits"][0]) == 32


def test_upload_zero_pads_a_short_file(client):
    data = _midi([(36, 100, 0.0, 0.1), (38, 90, 0.5, 0.6)])  # one bar at 120 qpm
    r = client.post("/api/midi", files={"file": ("short.mid", data)})
    assert r.status_code == 200
    (g,) = r.json()["grooves"]
    arr = _arr(g)
    assert arr.shape == (64, 27)
    assert np.flatnonzero(arr[:, 0]).tolist() == [0] and np.flatnonzero(arr[:, 1]).tolist() == [4]
    assert arr[0, 9] == pytest.approx(100 / 127, abs=1e-4)


def test_upload_keeps_only_the_drum_track_of_a_song(client):
    drums = NoteSequence.from_notes([(36, 100, 0.0, 0.1), (38, 100, 0.5, 0.6)])
    bass = NoteSequence.from_notes([(36, 80, 0.25, 0.4)], is_drum=False)  # C2 on a bass
    song = NoteSequence(
        **{
            k: np.concatenate([getattr(drums, k), getattr(bass, k)])
            for k in ("pitch", "velocity", "start", "end", "is_drum", "program")
        },
        tempos=drums.tempos,
        time_signatures=drums.time_signatures,
    )
    r = client.post("/api/midi", files={"file": ("song.mid", sequence_to_score(song).dumps_midi())})
    assert r.status_code == 200
    kick = _arr(r.json()["grooves"][0])[:, 0]
    assert np.flatnonzero(kick).tolist() == [0]  # the bass note at step 2 is not a kick
    # Without a drum channel, every note counts (a tapped rhythm played on a keyboard).
    r = client.post("/api/midi", files={"file": ("taps.mid", sequence_to_score(bass).dumps_midi())})
    assert np.flatnonzero(_arr(r.json()["grooves"][0])[:, 0]).tolist() == [2]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"hello, not midi", "evil.mid: not a MIDI file (no MThd header)"),
        (b"", "evil.mid: the file is empty"),
        (_midi([(36, 100, 0.0, 0.1)] * 3)[:30], "evil.mid: corrupt MIDI"),
        (_midi([(100, 100, 0.0, 0.1)]), "evil.mid: no drum pattern found"),
    ],
)
def test_bad_uploads_get_a_clear_422(client, payload, message):
    r = client.post("/api/midi", files={"file": ("../../etc/evil.mid", payload, "audio/midi")})
    assert r.status_code == 422
    assert r.json()["detail"].startswith(message)


def test_upload_without_a_file_is_422(client):
    assert client.post("/api/midi", data={"x": "1"}).status_code == 422


def test_oversize_uploads_are_refused_with_413(client):
    big = _midi([(36, 100, 0.0, 0.1)]) + b"\0" * (2 << 20)
    r = client.post("/api/midi", files={"file": ("big.mid", big, "audio/midi")})
    assert r.status_code == 413
    assert r.json()["detail"] == "request too large: uploads are limited to 1 MB"
    # Just over 1 MB of file inside a body under the framing allowance: the route refuses it.
    r = client.post(
        "/api/midi", files={"file": ("big.mid", b"MThd" + b"\0" * (1 << 20), "audio/midi")}
    )
    assert r.status_code == 413 and r.json()["detail"] == "big.mid: file is larger than 1 MB"


def _raw_midi(tracks: list[bytes]) -> bytes:
    """A format-1 MIDI file of raw track event bytes (delta times of 1 tick, 0x01)."""
    ends = [t + b"\x00\xff\x2f\x00" for t in tracks]
    chunks = b"".join(b"MTrk" + len(t).to_bytes(4, "big") + t for t in ends)
    head = b"\x00\x01" + len(tracks).to_bytes(2, "big") + (480).to_bytes(2, "big")
    return b"MThd" + (6).to_bytes(4, "big") + head + chunks


HIT = b"\x00\x99\x24\x64\x0a\x89\x24\x00"  # a kick on the drum channel


@pytest.mark.parametrize(
    ("tracks", "message"),
    [
        # 90,000 alternating tempos in 630 KB took about 0.7 s of conversion before the cap.
        (
            [
                b"".join(
                    b"\x01\xff\x51\x03" + (500000 + i % 2).to_bytes(3, "big") for i in range(90_000)
                )
                + HIT
            ],
            "costly.mid: 90,000 tempo changes; at most 1,000 tempo, time and key signature "
            "events are read (a drum groove has a few)",
        ),
        (
            [HIT + b"\x01\xff\x58\x04\x04\x02\x18\x08" * 600 + b"\x01\xff\x59\x02\x00\x00" * 600],
            "costly.mid: 600 time signatures, 600 key signatures; at most 1,000 tempo, time",
        ),
        ([HIT] * 400, "costly.mid: 400 tracks; at most 256 are read"),
    ],
)
def test_costly_uploads_are_refused_before_conversion(client, tracks, message):
    data = _raw_midi(tracks)
    assert len(data) < 1 << 20  # under the size cap: only the event caps refuse these
    r = client.post("/api/midi", files={"file": ("costly.mid", data, "audio/midi")})
    assert r.status_code == 422
    assert r.json()["detail"].startswith(message)


def test_oversize_bodies_without_a_length_are_refused(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = client.post("/api/generate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/api/generate", json={"n": 1}).status_code == 200


def test_export_writes_the_grid_as_midi(client):
    g = _pattern(32)
    g["offsets"][1][4] = 0.5  # the first snare half a step... a quarter step early
    g["velocities"][0][0] = 1.0
    r = client.post("/api/midi/export", json={**g, "name": "my beat"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/midi"
    assert r.headers["content-disposition"] == 'attachment; filename="my_beat.mid"'
    ns = read_midi_bytes(r.content)
    assert len(ns) == int(np.sum(g["hits"])) and ns.qpm == pytest.approx(100)
    step = 60 / 100 / 4
    notes = sorted(ns.notes, key=lambda n: (n[2], n[0]))
    assert notes[0][:2] == (36, 127) and notes[0][2] == pytest.approx(0.0)
    snare = [n for n in notes if n[0] == 38]
    assert snare[0][2] == pytest.approx((4 - 0.25) * step, abs=1e-4)
    assert snare[0][1] == round(0.8 * 127)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hits": [[0] * 64] * 8}, "hits must have 9 rows"),
        ({"offsets": [[0.0] * 63] * 9}, "differ in length"),
        ({"velocities": [[1.5] * 64] * 9}, "velocities must lie in [0, 1]"),
        ({"offsets": [[-2.0] * 64] * 9}, "offsets must lie in [-1, 1]"),
        ({"hits": [[2] * 64] * 9}, "less than or equal to 1"),
        ({"hits": [[]] * 9, "velocities": [[]] * 9, "offsets": [[]] * 9}, "1 to 512 steps"),
        ({"qpm": 1000}, "less than or equal to 400"),
    ],
)
def test_malformed_grooves_are_422_with_the_reason(client, change, message):
    r = client.post("/api/midi/export", json={**_pattern(), **change})
    assert r.status_code == 422
    assert message in str(r.json()["detail"])


# ---------------------------------------------------------------- robustness


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_a_422_not_a_crash(client, value):
    row = "[" + ", ".join([value] * 64) + "]"
    body = json.dumps({**_pattern(), "velocities": None}).replace(
        '"velocities": null', '"velocities": [' + ", ".join([row] * 9) + "]"
    )
    r = client.post("/api/midi/export", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["body"],
            "msg": "Value error, values must be finite numbers",
        }
    ]


def test_malformed_json_is_a_422(client):
    r = client.post(
        "/api/generate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


def test_concurrent_requests_from_threads_all_succeed_and_do_not_mix(client, groove_dir):
    data = (groove_dir / GMD_FILE).read_bytes()
    expected = client.post("/api/generate", json={"n": 2, "seed": 7}).json()
    barrier = threading.Barrier(8)

    def job(i: int):
        barrier.wait()
        kind = i % 4
        if kind == 0:  # seeded: must not be disturbed by the others
            r = client.post("/api/generate", json={"n": 2, "seed": 7})
            return r.status_code, r.json() == expected
        if kind == 1:  # unseeded: may be batched with others, must get its own count back
            n = i % 5 + 1
            r = client.post("/api/generate", json={"n": n, "temperature": 0.8})
            return r.status_code, len(r.json()["grooves"]) == n
        if kind == 2:
            r = client.post("/api/similar", json={"groove": _pattern(), "n": 2, "seed": i})
            return r.status_code, len(r.json()["grooves"]) == 2
        r = client.post("/api/midi", files={"file": ("f.mid", data)})
        return r.status_code, r.json()["qpm"] == pytest.approx(80.0)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, range(24)))
    assert results == [(200, True)] * 24


def test_an_internal_error_is_a_500_and_the_server_goes_on(studio_models, monkeypatch):
    app = create_app(studio_models)

    def boom(*args, **kwargs):
        raise RuntimeError("model exploded")

    with TestClient(app, raise_server_exceptions=False) as c:
        monkeypatch.setattr(app.state.studio, "generate", boom)
        r = c.post("/api/generate", json={"n": 1})
        # Nothing internal: neither the exception's class nor its message.
        assert r.status_code == 500 and r.json() == {"detail": INTERNAL_ERROR}
        assert "RuntimeError" not in r.text and "exploded" not in r.text
        monkeypatch.undo()
        assert c.post("/api/generate", json={"n": 1}).status_code == 200


def test_export_of_a_non_latin_name(client):
    r = client.post("/api/midi/export", json={**_pattern(32), "name": "ドラム 🥁"})
    assert r.status_code == 200
    cd = r.headers["content-disposition"]
    assert cd.startswith('attachment; filename="') and "filename*=UTF-8''" in cd
    from urllib.parse import unquote

    assert unquote(cd.split("filename*=UTF-8''")[1]) == "ドラム__.mid"  # emoji are not kept


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"sec-fetch-site": "same-site"}, 403),
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "null"}, 403),
        ({"sec-fetch-site": "same-origin"}, 200),
        ({"origin": "http://testserver"}, 200),
        ({}, 200),  # curl, scripts
    ],
)
def test_cross_site_requests_are_refused(client, headers, status):
    r = client.post("/api/generate", json={"n": 1, "seed": 0}, headers=headers)
    assert r.status_code == status
    if status == 403:
        assert "cross-site request refused" in r.json()["detail"]


@pytest.mark.parametrize("tool", ["groove", "drumify"])
def test_variations_first_the_best_guess_then_others(client, tool):
    body = {"groove": _pattern(64), "temperature": 0.3, "seed": 5}
    (one,) = client.post(f"/api/{tool}", json=body).json()["grooves"]
    r = client.post(f"/api/{tool}", json={**body, "n": 3})
    assert r.status_code == 200
    out = r.json()["grooves"]
    assert len(out) == 3 and out[0] == one
    assert out[1]["velocities"] != out[0]["velocities"]
    if tool == "groove":  # every variation plays the user's pattern
        assert all(g["hits"] == _pattern(64)["hits"] for g in out)
    assert client.post(f"/api/{tool}", json={**body, "n": 9}).status_code == 422


def test_audio_is_a_wav_of_the_groove(client):
    import io
    import wave

    from musicvae.audio import SAMPLE_RATE, TAIL_S

    r = client.post("/api/audio", json=_pattern(64))  # 4 bars at 100 qpm: 9.6 s
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and r.content[8:12] == b"WAVE"
    assert r.headers["content-disposition"] == 'attachment; filename="rock.wav"'
    with wave.open(io.BytesIO(r.content)) as w:
        seconds = w.getnframes() / w.getframerate()
        assert w.getframerate() == SAMPLE_RATE and w.getnchannels() == 1
    last_hit = 62 * 0.15  # the last hi-hat, on step 62 of 16ths at 100 qpm
    assert last_hit + TAIL_S <= seconds <= last_hit + 0.15 + TAIL_S + 0.01


def test_an_upload_whose_ticks_overflow_is_a_clear_422(client):
    """Nine deltas of 2^28 - 1 ticks wrap symusic's int32 ticks negative: refused, not a
    groove of notes at negative times."""
    wrap = b"\xff\xff\xff\x7f\xff\x01\x00" * 9  # delta 2^28 - 1, an empty text event
    r = client.post("/api/midi", files={"file": ("wrap.mid", _raw_midi([HIT + wrap + HIT]))})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("wrap.mid: a note lies beyond MIDI's time range")


def test_continue_returns_the_groove_then_new_bars(client, studio_models):
    from musicvae.generation.continuation import continue_tensors

    body = {"groove": _pattern(32), "bars": 3, "n": 2, "temperature": 0.5, "seed": 9}
    r = client.post("/api/continue", json=body)
    assert r.status_code == 200
    out = np.stack([_arr(g) for g in r.json()["grooves"]])
    assert out.shape == (2, 16 * 5, 27)
    prompt = _arr(_pattern(32))
    np.testing.assert_allclose(out[:, :32], np.repeat(prompt[None], 2, 0), atol=1e-6)
    expected = continue_tensors(studio_models["generate"], prompt, 3, 2, 0.5, 9)
    np.testing.assert_allclose(out, _masked(expected), atol=6e-5)
    assert client.get("/api/info").json()["tools"]["continue"]["model"] == "debug"


def test_continue_stays_on_the_main_model_beside_a_long_one(long_client):
    client, _ = long_client
    assert client.get("/api/info").json()["tools"]["continue"]["steps"] == 64
    r = client.post("/api/continue", json={"groove": _pattern(16), "bars": 2, "seed": 1})
    assert [len(g["hits"][0]) for g in r.json()["grooves"]] == [48]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"bars": 0}, 422, "bars"),
        ({"bars": 33}, 422, "bars"),
        ({"n": 9}, 422, "n"),
        ({"groove": {**_pattern(64), "hits": np.zeros((9, 64), int).tolist()}}, 400, "empty"),
        ({"groove": _pattern(512), "bars": 4}, 400, "longer than the studio's 32-bar grooves"),
    ],
)
def test_continue_rejects_bad_requests(client, body, status, message):
    r = client.post("/api/continue", json={"groove": _pattern(32), **body})
    assert r.status_code == status
    assert message in json.dumps(r.json()["detail"])
