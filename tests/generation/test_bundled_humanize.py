"""The bundled groovae_2bar_humanize model: a played groove comes back from its flattened hits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.data.midi import read_midi
from musicvae.generation.api import HUMANIZE_BUNDLE, bundled_available, load

pytestmark = pytest.mark.skipif(
    not bundled_available(HUMANIZE_BUNDLE), reason="no bundled humanize model in this copy"
)
# A test-split performance the model never trained on.
TEST_FILE = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"


@pytest.fixture(scope="module")
def humanizer():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load(HUMANIZE_BUNDLE)
    torch.set_num_threads(threads)


def grids(model, ns) -> np.ndarray:
    return np.stack(model.converter.to_tensors(ns).outputs)  # (windows, 32, 27)


def test_humanize_restores_dynamics_better_than_flat(humanizer, groove_dir):
    played = read_midi(groove_dir / TEST_FILE)
    out = humanizer.humanize(played, temperature=1e-6, seed=0)
    assert out.qpm == pytest.approx(played.qpm)
    real, made = grids(humanizer, played), grids(humanizer, out)
    assert made.shape == real.shape  # every bar kept
    hits, made_hits = real[..., :9] > 0.5, made[..., :9] > 0.5
    # The hits are given to the model: it keeps nearly all of them and adds few.
    assert (hits & made_hits).sum() / (hits | made_hits).sum() > 0.9
    both = hits & made_hits
    vel_err = np.abs(made[..., 9:18][both] - real[..., 9:18][both]).mean() * 127
    flat_err = np.abs(real[..., 9:18][both].mean() - real[..., 9:18][both]).mean() * 127
    assert vel_err < flat_err, (vel_err, flat_err)
    # Played, not quantised: the offsets vary.
    assert made[..., 18:][both].std() > 0.05
