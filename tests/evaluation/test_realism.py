"""The realism measures on hand-built grooves whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicvae.evaluation.realism import (
    backbeat_share,
    bar_similarity,
    lookup_velocity_mae,
    midi_velocities,
    realism_report,
    realism_stats,
    velocity_correlation,
    velocity_lookup,
)


def _groove(bars: int = 2, hits=(), n: int = 1) -> np.ndarray:
    """(n, 16 * bars, 27) with ``hits`` as (step, class, velocity 0-127, offset) tuples."""
    g = np.zeros((n, 16 * bars, 27))
    for step, c, vel, off in hits:
        g[:, step, c] = 1.0
        g[:, step, 9 + c] = vel / 127.0
        g[:, step, 18 + c] = off
    return g


def test_dynamics_hand_computed():
    # Bar 1: kick 127 on 0, snare 5 on 4, hat 64 on 8; bar 2: kick 100 on 16, crash 120 on 16.
    g = _groove(2, [(0, 0, 127, 0.0), (4, 1, 5, 0.0), (8, 2, 64, 0.0), (16, 0, 100, 0.0),
                    (16, 7, 120, 0.0)])  # fmt: skip
    s = realism_stats(g)
    assert s["num_hits"] == 5 and s["notes_per_bar"] == 2.5
    assert s["velocity_mean"] == pytest.approx((127 + 5 + 64 + 100 + 120) / 5)
    assert s["quiet_share"] == pytest.approx(1 / 5)
    assert s["accents_per_bar"] == pytest.approx(3 / 2)  # 127, 100, 120 over 2 bars
    assert s["group_velocity_mean"]["kick"] == pytest.approx(113.5)
    assert s["group_velocity_mean"]["crash"] == 120 and math.isnan(s["group_velocity_mean"]["ride"])
    assert s["per_class"]["snare"]["hit_rate"] == pytest.approx(1 / 32)


def test_midi_velocities_round_like_the_writer():
    assert midi_velocities(np.array([0.0, 0.5, 1.0, 1.2])).tolist() == [0, 64, 127, 127]


def test_bar_similarity_and_lags():
    same = _groove(5, [(b * 16 + s, 0, 90, 0.0) for b in range(5) for s in (0, 8)])
    assert bar_similarity(same[..., :9] > 0.5, 16, 1) == 1.0
    assert bar_similarity(same[..., :9] > 0.5, 16, 4) == 1.0
    # Bar 2 has kick on 0 and 4 instead of 0 and 8: J = 1/3 against bars 1 and 3.
    hits = [(0, 0), (8, 0), (16, 0), (20, 0), (32, 0), (40, 0)]
    g = _groove(3, [(s, c, 90, 0.0) for s, c in hits])
    assert bar_similarity(g[..., :9] > 0.5, 16, 1) == pytest.approx(1 / 3)
    assert math.isnan(bar_similarity(g[..., :9] > 0.5, 16, 4))  # only 3 bars


def test_backbeat_share():
    g = _groove(2, [(4, 1, 100, 0.0), (12, 1, 100, 0.0), (20, 1, 100, 0.0)])
    assert backbeat_share(g[..., :9] > 0.5, 16) == 0.5  # bar 2 lacks beat 4


def test_report_ratios_and_timing_spread():
    real = _groove(1, [(0, 0, 100, 0.2), (8, 0, 100, -0.2)])
    gen = _groove(1, [(0, 0, 50, 0.1), (8, 0, 50, -0.1)])
    rep = realism_report(gen, real)
    assert rep["ratio"]["velocity_mean"] == pytest.approx(0.5)
    assert rep["ratio"]["offset_std_steps"] == pytest.approx(0.5)  # std 0.05 vs 0.1 steps
    assert rep["wasserstein"]["kick"]["velocity"] == pytest.approx(50.0)
    assert rep["wasserstein"]["kick"]["offset_steps"] == pytest.approx(0.05)


def test_velocity_lookup_and_its_mae():
    # Train: kick on step 0 at 100 and 60 (mean 80), on step 8 at 40; snare never played.
    train = np.concatenate([_groove(1, [(0, 0, 100, 0), (8, 0, 40, 0)]),
                            _groove(1, [(0, 0, 60, 0)])])  # fmt: skip
    table = velocity_lookup(train)
    assert table[0, 0] * 127 == pytest.approx(80)
    assert table[0, 8] * 127 == pytest.approx(40)
    assert table[0, 3] * 127 == pytest.approx(200 / 3)  # unseen position: the class mean
    test = _groove(2, [(0, 0, 90, 0), (24, 0, 50, 0)])  # positions 0 and 8
    assert lookup_velocity_mae(table, test) == pytest.approx((10 + 10) / 2)


def test_velocity_correlation():
    target = _groove(1, [(0, 0, 20, 0), (4, 0, 60, 0), (8, 0, 100, 0)])
    louder = _groove(1, [(0, 0, 40, 0), (4, 0, 80, 0), (8, 0, 120, 0)])
    flat = _groove(1, [(0, 0, 64, 0), (4, 0, 64, 0), (8, 0, 64, 0)])
    assert velocity_correlation(louder, target) == pytest.approx(1.0)
    assert math.isnan(velocity_correlation(flat, target))
