"""The conductor picture, from the API and from ``musicvae explain --conductor``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.cli.main import main
from musicvae.configs import get_config
from musicvae.data.midi import write_midi
from musicvae.models import build_model
from musicvae.plotting.conductor import render_conductor
from musicvae.training.checkpoint import save_checkpoint
from tests.generation.helpers import groove


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_render_conductor_png():
    g = np.zeros((64, 27))
    g[::4, 0] = 1.0
    sim = np.eye(4)
    w, h = _png_size(render_conductor(g, sim, sim, "t"))
    assert w > 2 * h > 0  # three panels side by side


@pytest.fixture
def hierdec_run(tmp_path):
    config = get_config("groovae_4bar_hierdec", "z_size=8,enc_rnn_size=(16,),dec_rnn_size=(16,16)")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run/train", model=build_model(config), config=config, step=1)
    return tmp_path / "run"


def test_explain_conductor_command(tmp_path, hierdec_run, capsys):
    midi = tmp_path / "g.mid"
    write_midi(groove(6), midi)
    out = tmp_path / "c.png"
    args = ["explain", "--checkpoint", str(hierdec_run), "--groove", str(midi)]
    assert main([*args, "--conductor", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bar embeddings           (2, 4, 16)" in printed
    assert f"wrote {out}" in printed
    assert _png_size(out.read_bytes())[0] > 0


def test_explain_conductor_needs_a_hierarchical_model(tmp_path, capsys):
    from tests.generation.helpers import debug_run

    midi = tmp_path / "g.mid"
    write_midi(groove(4), midi)
    run = debug_run(tmp_path / "flat")
    args = ["explain", "--checkpoint", str(run), "--groove", str(midi)]
    assert main([*args, "--conductor", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert "has no conductor" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.png").exists()
