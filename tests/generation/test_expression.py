"""Expressive decoding: hand-computed gains on a hand-built groove, silent steps stay silent,
the amount follows the temperature, and the bundled humanizer widens its timing with it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicvae.generation.expression import expression_array, expressive


def _groove() -> np.ndarray:
    """(1, 4, 27): kicks on steps 0 and 2 at velocities 0.4 and 0.8, offsets -0.1 and 0.3."""
    g = np.zeros((1, 4, 27), np.float32)
    g[0, [0, 2], 0] = 1
    g[0, [0, 2], 9] = [0.4, 0.8]
    g[0, [0, 2], 18] = [-0.1, 0.3]
    return g


def _expression(vg: float = 2.0, og: float = 3.0) -> np.ndarray:
    spread = {
        "velocity_center": [math.log(0.5)] * 9,
        "velocity_gain": [vg] * 9,
        "offset_center": [0.1] * 9,
        "offset_gain": [og] * 9,
    }
    out = expression_array(spread)
    assert out is not None and out.shape == (4, 9)
    return out


def test_full_amount_applies_the_gains_around_the_centers():
    out = expressive(_groove(), _expression(), 1.0)
    # log v' = log 0.5 + 2 (log v - log 0.5): v' = 0.5 (v / 0.5)^2
    assert out[0, [0, 2], 9] == pytest.approx([0.5 * 0.8**2, 1.0], rel=1e-6)  # 1.28 clipped
    assert out[0, [0, 2], 18] == pytest.approx([0.1 + 3 * -0.2, 0.1 + 3 * 0.2], rel=1e-6)
    assert np.array_equal(out[..., :9], _groove()[..., :9])  # hits untouched
    assert not out[0, [1, 3]].any()  # silent steps stay silent


def test_half_amount_is_half_the_extra_gain_and_zero_is_the_means():
    out = expressive(_groove(), _expression(), 0.5)
    assert out[0, 0, 18] == pytest.approx(0.1 + 2 * -0.2)  # gain 1 + (3 - 1) / 2
    assert np.allclose(expressive(_groove(), _expression(), 0.0), _groove(), atol=1e-6)
    assert np.array_equal(
        expressive(_groove(), _expression(), 7.0), expressive(_groove(), _expression(), 1.0)
    )


def test_values_stay_in_range():
    out = expressive(_groove(), _expression(vg=3.0, og=3.0), 1.0)
    assert out[0, 2, 9] == 1.0  # 0.5 * 1.6^3 clipped
    big = _groove()
    big[0, 2, 18] = 0.9
    assert expressive(big, _expression(og=3.0), 1.0)[0, 2, 18] == 1.0


def test_bundles_without_gains_play_as_before():
    assert expression_array(None) is None
    assert expression_array({"velocity": [0.1] * 9, "offset": [0.2] * 9}) is None
