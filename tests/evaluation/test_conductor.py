"""Conductor-embedding similarity and the grooves' own bar similarity, on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.evaluation.conductor import (
    bar_similarity_matrix,
    conductor_embeddings,
    conductor_similarity_matrix,
    cosine_matrix,
    off_diagonal_correlation,
    structure_agreement,
)
from musicvae.models import build_model

TINY = "z_size=8,enc_rnn_size=(16,),dec_rnn_size=(16,16)"


def _groove(bars: list[list[tuple[int, int]]]) -> np.ndarray:
    g = np.zeros((16 * len(bars), 27))
    for b, cells in enumerate(bars):
        for s, c in cells:
            g[16 * b + s, c] = 1.0
    return g


def test_bar_similarity_matrix_by_hand():
    beat = [(0, 0), (4, 1), (8, 0), (12, 1)]
    fill = [(0, 0), (12, 4), (14, 5)]
    m = bar_similarity_matrix(_groove([beat, beat, fill, []]))
    assert m.shape == (4, 4)
    assert m[0, 1] == 1.0 and m[0, 0] == 1.0
    # beat vs fill: the kick on step 0 is shared; 4 + 3 - 1 = 6 cells in the union.
    assert m[0, 2] == pytest.approx(1 / 6) and m[2, 0] == m[0, 2]
    assert m[0, 3] == 0.0 and m[3, 3] == 1.0  # an empty bar is like no other, but like itself


def test_cosine_and_correlation():
    v = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    assert cosine_matrix(v) == pytest.approx(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1.0]]))
    a = np.array([[1, 0.2, 0.8], [0.2, 1, 0.5], [0.8, 0.5, 1]])
    assert off_diagonal_correlation(a, a) == pytest.approx(1.0)
    assert off_diagonal_correlation(a, 1 - a) == pytest.approx(-1.0)
    assert math.isnan(off_diagonal_correlation(a, np.ones((3, 3))))


def test_conductor_embeddings_are_the_models():
    torch.manual_seed(0)
    model = build_model(get_config("groovae_4bar_hierdec", TINY)).eval()
    z = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    emb = conductor_embeddings(model, z, 4)
    assert emb.shape == (3, 4, 16)
    with torch.no_grad():
        out = model.decoder(torch.zeros(3, 64, 27), None, torch.from_numpy(z))
    assert emb == pytest.approx(out.extras["conductor_outputs"].numpy(), abs=1e-6)
    sim = conductor_similarity_matrix(model, z[0], 4)
    assert sim.shape == (4, 4) and np.diag(sim) == pytest.approx(np.ones(4))
    grooves = np.stack([_groove([[(0, 0)], [(0, 0)], [(4, 1)], [(0, 0), (4, 1)]])] * 3)
    r = structure_agreement(model, z, grooves, max_windows=2)
    assert (r["num_windows"], r["num_scored"]) == (2, 2)
    assert -1.0 <= r["correlation_mean"] <= 1.0


def test_a_flat_model_has_no_conductor():
    model = build_model(get_config("debug"))
    with pytest.raises(ValueError, match="no conductor"):
        conductor_embeddings(model, np.zeros((1, 8)), 4)
