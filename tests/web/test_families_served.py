"""Every registered config's model is served by the studio as its main model: ``/api/info`` lists
the tools of its family (``musicvae.families``) that it can do, and Generate answers the music
its family makes, or, where the family table gives a tool the model cannot do (a model decoding
under its input's hits), the tool is absent and a request for it is a 501 with one message.
Never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from musicvae.configs import CONFIGS, get_config
from musicvae.families import family_of
from musicvae.web import tools as table
from musicvae.web.app import create_app
from tests.cli.test_every_model import tiny
from tests.generation.helpers import single_torch_thread
from tests.web.test_melody_api import _one_message

# What Generate answers, by what the model makes in the studio.
ANSWERS = {"drums": "grooves", "melody": "melodies", "trio": "trios", "multiperf": "performances"}


def _main_tools(config) -> list[str]:
    """The tools a studio whose one model is ``config``'s lists: those of the main role (and
    of the roles a single model also fills) that its family backs and it can do."""
    served = {r.name for r in table.ROLES if not r.extra}
    return [
        t.name
        for t in table.TOOLS
        if t.role in served and table.tool_problem(t.name, config) is None
    ]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_is_served_with_its_familys_tools(name):
    import torch

    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    config = get_config(name, tiny(CONFIGS[name]))
    torch.manual_seed(0)
    model = TrainedModel(build_model(config), config, source=f"tiny {name}")
    family = family_of(config)
    assert family.studio_tools and table.family_problem("generate", config) is None
    with TestClient(create_app(model), raise_server_exceptions=False) as client:
        info = client.get("/api/info").json()
        kind = table.kind_of(config)
        listed = {n: t for n, t in info["tools"].items() if t["available"]}
        # Listed: every tool of the family it can do (Groove and Drumify, for a model not
        # trained to humanize or tap, as unavailable with the reason).
        assert set(info["tools"]) == set(_main_tools(config))
        assert set(listed) <= set(family.studio_tools)
        if not (config.data.hits_as_controls or config.data.taps_as_controls):
            assert {"generate", "interpolate"} <= set(listed)
        for tool in listed.values():
            assert tool["kind"] == kind and tool["model"] == name
        chords = {"chords": "C G"} if config.data.chord_encoding else {}
        with single_torch_thread():
            r = client.post("/api/generate", json={"n": 1, "seed": 0, **chords})
        if "generate" in listed:
            assert r.status_code == 200, r.text
            assert list(r.json()) == [ANSWERS[kind]] and len(r.json()[ANSWERS[kind]]) == 1
        else:  # a model decoding under its input's hits or taps: the prior cannot give them
            _one_message(r, 501, f"config {name!r} decodes under its input's")


@pytest.mark.parametrize("name", ["cat-mel_2bar_med_chords", "hier-multiperf_vel_1bar_med_chords"])
def test_a_chord_model_plays_over_the_requests_chords(name):
    """Generate samples over the request's chords (none given: no chord), as the model does
    with those controls; Interpolate encodes and decodes over the chords its converter infers
    from the first input; Continue, which cannot follow chords, is absent."""
    import torch

    from musicvae.data.chords import encode_chords
    from musicvae.families import DEFAULT_TEMPERATURE
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model
    from musicvae.web.music import results

    config = get_config(name, tiny(CONFIGS[name]))
    torch.manual_seed(0)
    model = TrainedModel(build_model(config), config, source=f"tiny {name}")
    kind = ANSWERS[table.kind_of(config)]
    with TestClient(create_app(model), raise_server_exceptions=False) as client:
        info = client.get("/api/info").json()
        assert set(info["tools"]) == {"generate", "interpolate"}
        assert info["tools"]["generate"]["chords"] is True
        with single_torch_thread():
            for chords in ("C G Am F", None):
                r = client.post("/api/generate", json={"n": 2, "seed": 3, "chords": chords})
                assert r.status_code == 200, r.text
                controls = encode_chords(chords or "N.C.", model.window_steps, "triad")
                out = model.sample_tensors(2, DEFAULT_TEMPERATURE, 3, controls)
                want = [m.model_dump() for m in results(model, out, 120.0)]
                assert r.json()[kind] == want
            a, b = r.json()[kind]
            r = client.post("/api/interpolate", json={"a": a, "b": b, "steps": 3, "seed": 0})
        assert r.status_code == 200 and len(r.json()[kind]) == 3, r.text
        r = client.post("/api/generate", json={"chords": "C Xq"})
        _one_message(r, 400, "chord 'Xq' is not a chord symbol")
        r = client.post("/api/continue", json={"groove": a, "bars": 1})
        # A melody model's family continues, but not over chords; a performance's does not.
        _one_message(r, 501, "the studio's Continue")
        assert r.json()["detail"].startswith(f"config {name!r}")
