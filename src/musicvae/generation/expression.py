"""Expressive decoding: a performance with a drummer's range of loudness and timing.

The velocity and offset heads are trained with squared error, so each predicts the expected
loudness and timing of a hit given everything else. A sequence of expectations is flatter than
the playing it predicts: on the GMD test split the humanizer's offsets spread 0.62 as wide as the
drummers', its velocities 0.72. Adding noise restores the spread but forgets what the model knew
(the error grows by about √2). Scaling each class's predictions away from their mean keeps their
order, so the accents stay where the model put them: a gain ``k`` on a prediction correlated
``r`` with the truth gives a spread ratio ``k r`` at a squared error of ``1 + r^2 (k^2 - 2k)``
times the variance, against ``1 - r^2`` at ``k = 1``.

``output_spread`` (``evaluation.calibrate``, ``musicvae export --spread-from``) measures, per drum
class on held-out hits, the predictions' mean (``*_center``) and the ratio of the real spread to
the predicted one (``*_gain``), of log velocity and of the offset. :func:`expressive` applies a
share of each gain: ``1 + (gain - 1) * amount``, with ``amount = min(temperature, 1)``, so at
temperature 1 the spread is the drummers' and towards 0 the heads' own means come back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_VELOCITY = 0.02  # as calibrate: log velocity below MIDI velocity 3 says nothing more
KEYS = ("velocity_center", "velocity_gain", "offset_center", "offset_gain")


def expression_array(spread: dict[str, Any] | None) -> np.ndarray | None:
    """The (4, N) centers and gains a bundle's stored spread holds, or None (older bundles)."""
    if not spread or not all(k in spread for k in KEYS):
        return None
    return np.asarray([spread[k] for k in KEYS], dtype=np.float64)


def expressive(grooves: np.ndarray, expression: np.ndarray, amount: float) -> np.ndarray:
    """``grooves`` (..., T, 3N) with each played hit's log velocity and offset moved away from
    its class's center by ``1 + (gain - 1) * amount``; steps without a hit stay silent."""
    n = expression.shape[1]
    amount = float(np.clip(amount, 0.0, 1.0))
    hits = grooves[..., :n] > 0.5
    vel, off = grooves[..., n : 2 * n], grooves[..., 2 * n :]
    vc, vg, oc, og = expression
    log_v = np.log(np.clip(vel, MIN_VELOCITY, 1.0))
    new_vel = np.exp(vc + (1 + (vg - 1) * amount) * (log_v - vc))
    new_off = oc + (1 + (og - 1) * amount) * (off - oc)
    out = np.array(grooves, dtype=np.float32, copy=True)
    out[..., n : 2 * n] = np.where(hits, np.clip(new_vel, 0.0, 1.0), vel)
    out[..., 2 * n :] = np.where(hits, np.clip(new_off, -1.0, 1.0), off)
    return out
