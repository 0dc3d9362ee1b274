"""The bundled 16-bar groovae_16bar_hierdec: it samples 16 bars with no training, and its code
matters (the conductor was fed z so that its posterior would not collapse)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.cli.main import main
from musicvae.data.midi import read_midi
from musicvae.generation import load
from musicvae.generation.api import LONG_BUNDLE, bundled_path
from tests.generation.helpers import requires_bundle

pytestmark = requires_bundle(LONG_BUNDLE)


@pytest.fixture(scope="module")
def long_model():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load(LONG_BUNDLE)
    torch.set_num_threads(threads)


def test_bundle_is_small_and_hierarchical(long_model):
    assert bundled_path(LONG_BUNDLE).stat().st_size <= 20e6
    config = long_model.config
    assert (config.name, config.decoder, config.level_lengths) == (
        "groovae_16bar_hierdec",
        "hierarchical",
        (16, 16),
    )
    assert config.hparams.conductor_input == "z"
    assert long_model.num_bars == 16
    assert "Groove MIDI Dataset" in long_model.metadata["data"]


def test_samples_are_sixteen_bars_of_drums(long_model):
    grooves = long_model.sample_tensors(4, temperature=0.5, seed=0)
    assert grooves.shape == (4, 256, 27)
    hits = grooves[..., :9] > 0.5
    # Every bar of every groove plays, and far from all of its 144 cells.
    per_bar = hits.reshape(4, 16, 16 * 9).sum(-1)
    assert (per_bar >= 3).all() and (per_bar <= 60).all(), per_bar


def test_the_code_reaches_the_bars(long_model):
    # Two different codes decode, near-greedily, to different grooves in every quarter of the
    # window: the conductor passes z on to late bars too, not only to the first.
    z = np.random.default_rng(0).standard_normal((2, 512)).astype(np.float32)
    out = long_model.decode_tensors(z, temperature=1e-6, seed=0)[..., :9] > 0.5
    for quarter in range(4):
        part = slice(64 * quarter, 64 * (quarter + 1))
        assert (out[0, part] != out[1, part]).sum() >= 8, quarter


def test_generate_writes_sixteen_bar_midi(tmp_path):
    argv = ["generate", "--checkpoint", LONG_BUNDLE, "--num-outputs", "1", "--seed", "1"]
    assert main([*argv, "--output-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.mid")
    ns = read_midi(path)
    assert 30.0 < ns.total_time <= 32.5  # 16 bars of 4/4 at 120 qpm
