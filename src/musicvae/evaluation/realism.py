"""How generated performances compare with real drumming: dynamics, timing and structure.

Everything is measured as a listener meets it: velocities as the MIDI integers the product writes
(``round(v * 127)``), offsets in 16th-note steps, hits on the grid. For a set of (N, T, 27)
grooves :func:`realism_stats` gives

- dynamics: mean velocity, the share of quiet hits (velocity <= 10), accented hits (velocity
  >= 100) per bar, and the mean velocity of each drum class and of each kit group;
- timing: the spread (standard deviation) of offsets, overall and per class;
- structure: per-class hit rates, the hit similarity (Jaccard of the (step, class) cells) of
  consecutive bars and of bars four apart, and how regular the backbeat is (bars with a snare on
  beats 2 and 4);

and :func:`realism_report` sets generated grooves beside real ones: the stats of both, their
ratios, and Wasserstein-1 distances of per-class velocity and offset distributions.
:func:`velocity_lookup` is the baseline a humanizer has to beat: the mean velocity of each class
at each 16th position of the bar, learned from training data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from musicvae.evaluation.metrics import (
    CLASS_NAMES,
    HIT_THRESHOLD,
    _mean,
    _std,
    split_channels,
    wasserstein_1d,
)

QUIET_VELOCITY = 10  # at or below: barely audible
ACCENT_VELOCITY = 100  # at or above: an accent
# The kit as a drummer names it; class indices into CLASS_NAMES.
GROUPS: dict[str, tuple[int, ...]] = {
    "kick": (0,),
    "snare": (1,),
    "hats": (2, 3),
    "toms": (4, 5, 6),
    "crash": (7,),
    "ride": (8,),
}
SNARE = 1


def midi_velocities(velocities: np.ndarray) -> np.ndarray:
    """The integers the MIDI writer stores for velocities in [0, 1]."""
    return np.clip(np.round(np.asarray(velocities, np.float64) * 127.0), 0, 127)


def _bars(hit: np.ndarray, steps_per_bar: int) -> np.ndarray:
    n, t, c = hit.shape
    bars = t // steps_per_bar
    return hit[:, : bars * steps_per_bar].reshape(n, bars, steps_per_bar * c)


def mean_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Jaccard similarity of bool cell sets along the last axis of ``a`` and ``b``
    (broadcast), over the pairs where either has a cell (NaN if none)."""
    union = (a | b).sum(-1)
    inter = (a & b).sum(-1)
    keep = union > 0
    return float((inter[keep] / union[keep]).mean()) if keep.any() else math.nan


def bar_similarity(hit: np.ndarray, steps_per_bar: int, lag: int = 1) -> float:
    """Mean Jaccard similarity of the hit cells of bar i and bar i + lag (NaN if none)."""
    bars = _bars(np.asarray(hit, bool), steps_per_bar)
    if bars.shape[1] <= lag:
        return math.nan
    return mean_jaccard(bars[:, :-lag], bars[:, lag:])


def backbeat_share(hit: np.ndarray, steps_per_bar: int) -> float:
    """Share of bars (4/4, 16 steps) with a snare hit on beats 2 and 4."""
    if steps_per_bar != 16:
        return math.nan
    bars = np.asarray(hit, bool)[:, : (hit.shape[1] // 16) * 16, SNARE]
    bars = bars.reshape(hit.shape[0], -1, 16)
    return float((bars[..., 4] & bars[..., 12]).mean()) if bars.size else math.nan


def realism_stats(grooves: np.ndarray, steps_per_bar: int = 16) -> dict:
    """Dynamics, timing and structure of (N, T, 27) grooves (see the module docstring)."""
    g = np.asarray(grooves, np.float64)
    h, v, o = split_channels(g)
    hit = h > HIT_THRESHOLD
    vel = midi_velocities(v)
    num_bars = g.shape[0] * (g.shape[1] // steps_per_bar)
    on = vel[hit]

    def cls(c: int) -> dict[str, float]:
        m = hit[..., c]
        return {
            "hit_rate": float(m.mean()) if m.size else math.nan,
            "velocity_mean": _mean(vel[..., c][m]),
            "offset_std_steps": _std(o[..., c][m] / 2.0),
        }

    return {
        "num_grooves": int(g.shape[0]),
        "num_hits": int(hit.sum()),
        "velocity_mean": _mean(on),
        "velocity_std": _std(on),
        "quiet_share": float((on <= QUIET_VELOCITY).mean()) if on.size else math.nan,
        "accents_per_bar": float((on >= ACCENT_VELOCITY).sum() / num_bars)
        if num_bars
        else math.nan,
        "notes_per_bar": float(hit.sum() / num_bars) if num_bars else math.nan,
        "offset_std_steps": _std(o[hit] / 2.0),
        "group_velocity_mean": {
            name: _mean(vel[..., list(cs)][hit[..., list(cs)]]) for name, cs in GROUPS.items()
        },
        "per_class": {name: cls(c) for c, name in enumerate(CLASS_NAMES)},
        "bar_similarity": bar_similarity(hit, steps_per_bar, 1),
        "bar_similarity_lag4": bar_similarity(hit, steps_per_bar, 4),
        "backbeat_share": backbeat_share(hit, steps_per_bar),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


RATIO_KEYS = (
    "velocity_mean",
    "quiet_share",
    "accents_per_bar",
    "notes_per_bar",
    "offset_std_steps",
    "bar_similarity",
    "bar_similarity_lag4",
    "backbeat_share",
)


def realism_report(generated: np.ndarray, real: np.ndarray, steps_per_bar: int = 16) -> dict:
    """Generated grooves next to real ones: both stats, generated / real ratios (the
    ``offset_std_steps`` ratio is the timing-spread ratio), and per-class W1 distances."""
    gen, ref = realism_stats(generated, steps_per_bar), realism_stats(real, steps_per_bar)
    ratios: dict[str, Any] = {k: _ratio(gen[k], ref[k]) for k in RATIO_KEYS}
    ratios["group_velocity_mean"] = {
        k: _ratio(gen["group_velocity_mean"][k], ref["group_velocity_mean"][k]) for k in GROUPS
    }
    gh, gv, go = split_channels(np.asarray(generated, np.float64))
    rh, rv, ro = split_channels(np.asarray(real, np.float64))
    gm, rm = gh > HIT_THRESHOLD, rh > HIT_THRESHOLD
    w1 = {
        name: {
            "velocity": wasserstein_1d(
                midi_velocities(gv[..., c][gm[..., c]]), midi_velocities(rv[..., c][rm[..., c]])
            ),
            "offset_steps": wasserstein_1d(go[..., c][gm[..., c]] / 2, ro[..., c][rm[..., c]] / 2),
        }
        for c, name in enumerate(CLASS_NAMES)
    }
    return {"generated": gen, "real": ref, "ratio": ratios, "wasserstein": w1}


def velocity_lookup(train: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
    """(9, steps_per_bar) mean velocity (0-1) of each class at each position of the bar over the
    hits of ``train`` (N, T, 27); a class never hit at a position takes its overall mean."""
    h, v, _ = split_channels(np.asarray(train, np.float64))
    hit = h > HIT_THRESHOLD
    pos = np.arange(h.shape[1]) % steps_per_bar
    table = np.zeros((h.shape[-1], steps_per_bar))
    for c in range(h.shape[-1]):
        overall = v[..., c][hit[..., c]]
        fallback = overall.mean() if overall.size else 0.5
        for p in range(steps_per_bar):
            m = hit[:, pos == p, c]
            vals = v[:, pos == p, c][m]
            table[c, p] = vals.mean() if vals.size else fallback
    return table


def lookup_velocity_mae(table: np.ndarray, target: np.ndarray, steps_per_bar: int = 16) -> float:
    """MAE (0-127) of the lookup table's velocities on the hits of ``target`` (N, T, 27)."""
    h, v, _ = split_channels(np.asarray(target, np.float64))
    hit = h > HIT_THRESHOLD
    pos = np.arange(h.shape[1]) % steps_per_bar
    pred = np.broadcast_to(table.T[pos][None], v.shape)
    return _mean(np.abs(pred[hit] - v[hit]) * 127.0)


def velocity_correlation(pred: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation of predicted and real velocities on the cells where both hit."""
    ph, pv, _ = split_channels(np.asarray(pred, np.float64))
    th, tv, _ = split_channels(np.asarray(target, np.float64))
    both = (ph > HIT_THRESHOLD) & (th > HIT_THRESHOLD)
    a, b = pv[both], tv[both]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])
