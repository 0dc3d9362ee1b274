"""The shape walk ``musicvae explain`` prints is the model's own."""

from __future__ import annotations

import pytest

from musicvae.cli.main import main
from musicvae.configs import CONFIGS, get_config
from musicvae.models import build_model
from musicvae.models.explain import shape_walk


def test_hierarchical_16_bar_walk():
    walk = {s.name: s.shape for s in shape_walk(get_config("groovae_16bar_hierdec"), batch=3)}
    assert walk["encoder input"] == (3, 256, 27)
    assert walk["encoder summary"] == (3, 1024)  # 512 forward + 512 backward
    assert walk["mu, sigma"] == walk["z"] == (3, 512)
    assert walk["conductor initial state"] == (3, 1024)  # [c, h] of 2 layers of 256
    assert walk["conductor input"] == (3, 16, 512)  # z at every bar (conductor_input="z")
    assert walk["bar embeddings"] == (3, 16, 256)
    assert walk["core initial states"] == (3, 16, 1024)
    assert walk["core input per step"] == (48, 16, 27 + 256)
    assert walk["decoder output"] == (3, 256, 27)


@pytest.mark.parametrize("name", sorted(n for n, c in CONFIGS.items() if c.converter == "groove"))
def test_walk_matches_the_model(name):
    config = get_config(name)
    walk = shape_walk(config, batch=2)
    model = build_model(config)
    assert walk[-1].shape == (2, config.hparams.max_seq_len, 27)
    step_in = walk[-2].shape[-1]
    core = getattr(model.decoder, "core", model.decoder)
    assert core.rnn.input_size == step_in  # what the decoder LSTM really reads


def test_explain_command(capsys):
    assert main(["explain", "--config", "groovae_4bar_hierdec"]) == 0
    out = capsys.readouterr().out
    assert "bar embeddings           (2, 4, 256)" in out


@pytest.mark.parametrize("name", ["groovae_16bar_hierdec", "groovae_16bar"])
def test_diagram_png(tmp_path, name):
    assert main(["explain", "--config", name, "--diagram", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
