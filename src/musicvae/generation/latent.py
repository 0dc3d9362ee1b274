"""Paths through latent space: spherical interpolation between two codes.

Magenta interpolates between the posterior means of two sequences along the great circle that
joins them (scaled by the two norms), which keeps intermediate codes at a norm typical of the
prior instead of shrinking towards the origin as a straight line would.
"""

from __future__ import annotations

import numpy as np

from musicvae.errors import MusicVAEError

# Below this angle (radians) the vectors are treated as parallel and interpolated linearly.
_PARALLEL_EPS = 1e-6
# Codes on one path: each is decoded, so this is also how many grooves one interpolation makes
# (as the CLI's --num-outputs; 100,000 steps took 3.8 GB).
MAX_STEPS = 10_000


def slerp(p0: np.ndarray, p1: np.ndarray, t: float) -> np.ndarray:
    """The point a fraction ``t`` of the way from ``p0`` to ``p1`` along a spherical arc.

    ``t = 0`` gives ``p0`` and ``t = 1`` gives ``p1`` exactly. Parallel or opposite vectors
    (where the arc is undefined) and zero vectors fall back to linear interpolation.
    """
    p0 = np.asarray(p0, np.float64)
    p1 = np.asarray(p1, np.float64)
    if p0.shape != p1.shape:
        raise ValueError(f"slerp endpoints differ in shape: {p0.shape} vs {p1.shape}")
    if t == 0:
        return p0.copy()
    if t == 1:
        return p1.copy()
    n0, n1 = np.linalg.norm(p0), np.linalg.norm(p1)
    if n0 == 0 or n1 == 0:
        return (1.0 - t) * p0 + t * p1
    cos = np.clip(np.dot(p0.ravel() / n0, p1.ravel() / n1), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    if abs(so) < _PARALLEL_EPS:
        return (1.0 - t) * p0 + t * p1
    return np.sin((1.0 - t) * omega) / so * p0 + np.sin(t * omega) / so * p1


def check_steps(num_steps: int, least: int = 1) -> None:
    """One :class:`MusicVAEError` line unless ``least <= num_steps <= MAX_STEPS``."""
    if not least <= num_steps <= MAX_STEPS:
        raise MusicVAEError(
            f"interpolate: steps must be {least} to {MAX_STEPS:,} (both ends included), "
            f"got {num_steps:,}"
        )


def slerp_path(p0: np.ndarray, p1: np.ndarray, num_steps: int) -> np.ndarray:
    """``num_steps`` codes from ``p0`` to ``p1`` inclusive, evenly spaced in angle: (N, Z)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    check_steps(num_steps)
    if num_steps == 1:
        return np.asarray(p0, np.float64)[None].copy()
    return np.stack([slerp(p0, p1, t) for t in np.linspace(0.0, 1.0, num_steps)])
