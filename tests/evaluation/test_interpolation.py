"""Interpolation smoothness on hand-built paths whose answers are known, and on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.evaluation.interpolation import (
    interpolation_smoothness,
    pair_indices,
    path_flips,
    path_stats,
)
from musicvae.models import build_model


def _path(*grids: list[tuple[int, int]], steps: int = 32) -> np.ndarray:
    """(N, steps, 9) hit grids, one per list of (step, class) cells."""
    h = np.zeros((len(grids), steps, 9), bool)
    for i, cells in enumerate(grids):
        for s, c in cells:
            h[i, s, c] = True
    return h


def test_even_walk():
    # Two bars; each step of the path adds one kick: 4 steps, 1 flip each.
    cells = [(0, 0), (4, 0), (8, 0), (12, 0)]
    hits = _path(*[cells[:k] for k in range(5)])
    assert path_flips(hits).tolist() == [1, 1, 1, 1]
    s = path_stats(hits, 16)
    assert s["hits_changed_per_bar"] == pytest.approx(1 / 2)
    assert s["largest_step_share"] == pytest.approx(1 / 4)
    assert s["path_excess"] == pytest.approx(1.0)
    assert s["endpoint_hits_per_bar"] == pytest.approx(4 / 2)


def test_jump_and_detour():
    a, b = [(0, 0), (8, 1)], [(0, 0), (8, 2)]
    # Holds still, then jumps: all flips in one step.
    jump = path_stats(_path(a, a, a, b), 16)
    assert jump["largest_step_share"] == 1.0 and jump["path_excess"] == 1.0
    assert jump["hits_changed_per_bar"] == pytest.approx((0 + 0 + 2) / 3 / 2)
    # Goes through an unrelated groove: 4 flips there, 4 back, against 2 between the ends.
    detour = path_stats(_path(a, [(3, 5), (7, 5)] + a, b), 16)
    assert detour["path_excess"] == pytest.approx((2 + 4) / 2)
    # The same grid at both ends: no direct distance, so no excess figure.
    assert math.isnan(path_stats(_path(a, a), 16)["path_excess"])


def test_pairs_are_half_the_split_apart():
    assert pair_indices(10, 3) == [(0, 5), (2, 7), (4, 9)]
    assert pair_indices(10, 100) == [(i, i + 5) for i in range(5)]
    assert pair_indices(1, 4) == []


@pytest.mark.parametrize("name", ["debug", "groovae_4bar_hierdec"])
def test_model_paths(name):
    torch.manual_seed(0)
    config = get_config(name, "z_size=8,enc_rnn_size=(16,),dec_rnn_size=(16,16)")
    model = build_model(config).eval()
    mu = torch.randn(6, 8)
    r = interpolation_smoothness(model, mu, 64, 16, num_pairs=2, num_steps=5)
    assert (r["num_pairs"], r["num_steps"]) == (2, 5)
    assert r["hits_changed_per_bar"] >= 0.0
    assert 1 / 4 <= r["largest_step_share"] <= 1.0 or math.isnan(r["largest_step_share"])
    # Seeded: the same figures twice.
    assert interpolation_smoothness(model, mu, 64, 16, num_pairs=2, num_steps=5) == r
