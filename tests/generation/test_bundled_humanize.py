"""The bundled groovae_2bar_humanize model: a flattened pattern comes back played, closer to the
real performance than the flat pattern itself, with every hit kept."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.data.midi import read_midi
from musicvae.generation.api import HUMANIZE_BUNDLE, load
from musicvae.generation.chunks import stitch
from tests.generation.helpers import requires_bundle, single_torch_thread

pytestmark = requires_bundle(HUMANIZE_BUNDLE)
# Test-split performances the model never trained on, several styles.
TEST_FILES = [
    "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid",
    "drummer1/eval_session/6_hiphop-groove6_87_beat_4-4.mid",
    "drummer3/session1/11_rock_120_beat_4-4.mid",
    "drummer5/eval_session/4_soul-groove4_80_beat_4-4.mid",
    "drummer1/session1/4_jazz-funk_116_beat_4-4.mid",
]


@pytest.fixture(scope="module")
def humanizer():
    with single_torch_thread():
        yield load(HUMANIZE_BUNDLE)


def grid(model, ns) -> np.ndarray:
    prep = model.prepare(ns)
    return stitch(prep.outputs, prep.starts, prep.total_steps)  # (T, 27)


def test_humanize_plays_closer_to_the_drummer_than_flat(humanizer, groove_dir):
    vel_err, flat_vel_err, time_err, grid_time_err, made_offsets = [], [], [], [], []
    for name in TEST_FILES:
        played = read_midi(groove_dir / name)
        out = humanizer.humanize(played, temperature=1e-6, seed=0)
        assert out.qpm == pytest.approx(played.qpm)
        real, made = grid(humanizer, played), grid(humanizer, out)
        assert made.shape == real.shape  # every bar kept
        hits, made_hits = real[:, :9] > 0.5, made[:, :9] > 0.5
        # Every hit is kept; an offset near half a step may move a note to the next step.
        assert (hits & made_hits).sum() / (hits | made_hits).sum() > 0.98, name
        both = hits & made_hits
        rv, ro = real[:, 9:18][both], real[:, 18:][both]
        vel_err.append(np.abs(made[:, 9:18][both] - rv) * 127)
        flat_vel_err.append(np.abs(rv.mean() - rv) * 127)  # the file's mean velocity everywhere
        time_err.append(np.abs(made[:, 18:][both] - ro))
        grid_time_err.append(np.abs(ro))  # every hit on the grid
        made_offsets.append(made[:, 18:][both])
    assert np.concatenate(vel_err).mean() < np.concatenate(flat_vel_err).mean()
    assert np.concatenate(time_err).mean() < np.concatenate(grid_time_err).mean()
    assert np.concatenate(made_offsets).std() > 0.05  # played, not quantised


def test_temperature_widens_the_playing_towards_the_drummers(humanizer, groove_dir):
    """At generate's default temperature (0.5) the bundle plays with a wider spread of timing
    and loudness than its heads' means (expressive decoding), and still times closer to the
    drummer than the grid."""
    assert humanizer.expression is not None
    spreads: dict[float, list[np.ndarray]] = {1e-6: [], 0.5: []}
    errors, grid_errors, real_offsets = [], [], []
    for name in TEST_FILES:
        played = read_midi(groove_dir / name)
        real = grid(humanizer, played)
        hits = real[:, :9] > 0.5
        real_offsets.append(real[:, 18:][hits])
        for t in spreads:
            made = grid(humanizer, humanizer.humanize(played, temperature=t, seed=0))
            both = hits & (made[:, :9] > 0.5)
            spreads[t].append(made[:, 18:][both])
            if t == 0.5:
                errors.append(np.abs(made[:, 18:][both] - real[:, 18:][both]))
                grid_errors.append(np.abs(real[:, 18:][both]))
    means, default = (np.concatenate(spreads[t]).std() for t in (1e-6, 0.5))
    assert default > 1.2 * means
    assert default < 1.2 * np.concatenate(real_offsets).std()
    assert np.concatenate(errors).mean() < np.concatenate(grid_errors).mean()
