"""Spherical interpolation: exact endpoints, hand-computed midpoints, degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.generation.latent import slerp, slerp_path


def test_endpoints_are_exact():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=256), rng.normal(size=256)
    np.testing.assert_array_equal(slerp(a, b, 0.0), a)
    np.testing.assert_array_equal(slerp(a, b, 1.0), b)
    path = slerp_path(a, b, 7)
    assert path.shape == (7, 256)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)


def test_orthogonal_midpoint():
    # omega = pi / 2, so t = 1/2 weighs both by sin(pi / 4) / sin(pi / 2) = 1 / sqrt(2).
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(slerp(a, b, 0.5), [2**-0.5, 2**-0.5], atol=1e-15)
    # A third of the way: the point at 30 degrees.
    np.testing.assert_allclose(slerp(a, b, 1 / 3), [np.cos(np.pi / 6), np.sin(np.pi / 6)])


def test_keeps_norm_between_equal_norm_vectors():
    rng = np.random.default_rng(1)
    a = rng.normal(size=16)
    b = rng.normal(size=16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    norms = np.linalg.norm(slerp_path(a, b, 9), axis=1)
    np.testing.assert_allclose(norms, np.linalg.norm(a), rtol=1e-12)


def test_parallel_and_zero_vectors_fall_back_to_lerp():
    a = np.array([1.0, 2.0])
    np.testing.assert_allclose(slerp(a, 3 * a, 0.5), 2 * a)
    np.testing.assert_allclose(slerp(np.zeros(2), a, 0.25), 0.25 * a)


def test_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        slerp(np.zeros(2), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="num_steps"):
        slerp_path(np.ones(2), np.ones(2), 0)
    np.testing.assert_array_equal(slerp_path([1.0, 2.0], [3.0, 4.0], 1), [[1.0, 2.0]])
