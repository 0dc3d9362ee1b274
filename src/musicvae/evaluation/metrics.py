"""Groove metrics on (B, T, 27) [hits | velocities | offsets] tensors, in plain numpy.

- ``ReconstructionMetrics`` accumulates, over batches, hit accuracy / precision / recall / F1 per
  drum class and overall (micro-averaged), velocity MAE in MIDI units (0-127) and timing MAE in
  milliseconds (at each window's own tempo) on correctly predicted hits, and keeps the per-class
  velocity and offset values so that distributions can be compared (Wasserstein-1).
- ``loss_terms_per_class`` splits GrooVAE's reconstruction loss by class.
- ``groove_stats`` summarises a set of grooves (notes per bar, hit rates, velocity and offset
  spread), to compare prior samples with real data.

Offsets are in the converter's units: +1 means half a 16th-note step ahead of the grid, so the
time error between offsets ``a`` and ``b`` is ``|a - b| / 2`` steps.
"""

from __future__ import annotations

import math

import numpy as np

from musicvae.data.converters.groove import DRUM_CLASS_NAMES as CLASS_NAMES

NUM_CLASSES = len(CLASS_NAMES)
HIT_THRESHOLD = 0.5
# tf.losses.log_loss adds this inside the logs, and so does GrooVAE's hit loss.
LOG_LOSS_EPS = 1e-7


def split_channels(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., 27) -> hits, velocities, offsets, each (..., 9)."""
    x = np.asarray(x)
    if x.shape[-1] != 3 * NUM_CLASSES:
        raise ValueError(f"expected a last dimension of {3 * NUM_CLASSES}, got {x.shape}")
    return x[..., :NUM_CLASSES], x[..., NUM_CLASSES : 2 * NUM_CLASSES], x[..., 2 * NUM_CLASSES :]


def step_ms(qpm: np.ndarray | float, steps_per_quarter: int = 4) -> np.ndarray:
    """Milliseconds per grid step at each tempo."""
    return 60000.0 / np.asarray(qpm, np.float64) / steps_per_quarter


def prf(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """Accuracy, precision, recall and F1 from confusion counts (NaN where undefined)."""
    total = tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return {
        "accuracy": (tp + tn) / total if total else math.nan,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """Earth mover's distance between two 1-D samples (scipy's when installed); NaN if empty."""
    u = np.asarray(u, np.float64).ravel()
    v = np.asarray(v, np.float64).ravel()
    if len(u) == 0 or len(v) == 0:
        return math.nan
    try:
        from scipy.stats import wasserstein_distance
    except ImportError:
        pass
    else:
        return float(wasserstein_distance(u, v))
    u = np.sort(u)
    v = np.sort(v)
    points = np.sort(np.concatenate([u, v]))
    widths = np.diff(points)
    # Both empirical CDFs are constant between consecutive support points.
    cdf_u = np.searchsorted(u, points[:-1], side="right") / len(u)
    cdf_v = np.searchsorted(v, points[:-1], side="right") / len(v)
    return float(np.sum(np.abs(cdf_u - cdf_v) * widths))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def _std(x: np.ndarray) -> float:
    return float(np.std(x)) if len(x) else math.nan


class ReconstructionMetrics:
    """Hit, velocity and timing agreement between predicted and target grooves, over batches.

    ``update(pred, target, qpm)`` takes (B, T, 27) arrays; predicted hits count where above
    0.5 (so both sampled 0/1 hits and probabilities work) and target hits where above 0.5.
    """

    def __init__(self, steps_per_quarter: int = 4) -> None:
        self.steps_per_quarter = steps_per_quarter
        self.counts = np.zeros((4, NUM_CLASSES), np.int64)  # tp, fp, fn, tn
        self.vel_err: list[list[np.ndarray]] = [[] for _ in range(NUM_CLASSES)]
        self.time_err_ms: list[list[np.ndarray]] = [[] for _ in range(NUM_CLASSES)]
        # Values on hits, per class: predicted hits' values and target hits' values.
        self.values: dict[str, list[list[np.ndarray]]] = {
            k: [[] for _ in range(NUM_CLASSES)]
            for k in ("pred_velocity", "true_velocity", "pred_offset_ms", "true_offset_ms")
        }

    def update(self, pred: np.ndarray, target: np.ndarray, qpm: np.ndarray | float) -> None:
        pred = np.asarray(pred, np.float64)
        target = np.asarray(target, np.float64)
        if pred.shape != target.shape or pred.ndim != 3:
            raise ValueError(f"pred {pred.shape} and target {target.shape} must both be (B, T, 27)")
        ph, pv, po = split_channels(pred)
        th, tv, to = split_channels(target)
        ph, th = ph > HIT_THRESHOLD, th > HIT_THRESHOLD
        ms = np.broadcast_to(step_ms(qpm, self.steps_per_quarter), (len(pred),))[:, None, None]
        # Offsets in ms, positive = ahead of the grid (half a step per unit).
        po_ms = np.broadcast_to(po * ms / 2.0, po.shape)
        to_ms = np.broadcast_to(to * ms / 2.0, to.shape)
        tp = ph & th
        self.counts[0] += tp.sum(axis=(0, 1))
        self.counts[1] += (ph & ~th).sum(axis=(0, 1))
        self.counts[2] += (~ph & th).sum(axis=(0, 1))
        self.counts[3] += (~ph & ~th).sum(axis=(0, 1))
        for c in range(NUM_CLASSES):
            m = tp[..., c]
            self.vel_err[c].append(np.abs(pv[..., c][m] - tv[..., c][m]) * 127.0)
            self.time_err_ms[c].append(np.abs(po_ms[..., c][m] - to_ms[..., c][m]))
            self.values["pred_velocity"][c].append(pv[..., c][ph[..., c]] * 127.0)
            self.values["true_velocity"][c].append(tv[..., c][th[..., c]] * 127.0)
            self.values["pred_offset_ms"][c].append(po_ms[..., c][ph[..., c]])
            self.values["true_offset_ms"][c].append(to_ms[..., c][th[..., c]])

    def _cat(self, lists: list[list[np.ndarray]], c: int | None) -> np.ndarray:
        parts = [a for lst in (lists if c is None else [lists[c]]) for a in lst]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _block(self, c: int | None) -> dict[str, float]:
        counts = self.counts.sum(axis=1) if c is None else self.counts[:, c]
        tp, fp, fn, tn = (int(x) for x in counts)
        out: dict[str, float] = {**prf(tp, fp, fn, tn), "tp": tp, "fp": fp, "fn": fn, "tn": tn}
        out["velocity_mae"] = _mean(self._cat(self.vel_err, c))
        out["timing_mae_ms"] = _mean(self._cat(self.time_err_ms, c))
        return out

    def result(self) -> dict:
        """{"per_class": {name: metrics}, "overall": metrics}; overall counts are micro-averaged."""
        return {
            "per_class": {name: self._block(c) for c, name in enumerate(CLASS_NAMES)},
            "overall": self._block(None),
        }

    def performance_result(self) -> dict:
        """How close predicted velocities and timing are to the real performance.

        Per class and overall: the errors on correctly predicted hits next to those of a flat
        baseline (every real hit on the grid at the mean real velocity, which is what the
        humanize / tap inputs give), and the Wasserstein-1 distance between the distributions of
        predicted and real velocities (0-127) and offsets (ms) on hits.
        """

        def block(c: int | None) -> dict[str, float]:
            tv = self._cat(self.values["true_velocity"], c)
            to = self._cat(self.values["true_offset_ms"], c)
            pv = self._cat(self.values["pred_velocity"], c)
            po = self._cat(self.values["pred_offset_ms"], c)
            all_tv = self._cat(self.values["true_velocity"], None)
            return {
                "velocity_mae": _mean(self._cat(self.vel_err, c)),
                "timing_mae_ms": _mean(self._cat(self.time_err_ms, c)),
                "baseline_velocity_mae": _mean(np.abs(tv - _mean(all_tv))),
                "baseline_timing_mae_ms": _mean(np.abs(to)),
                "velocity_wasserstein": wasserstein_1d(pv, tv),
                "offset_wasserstein_ms": wasserstein_1d(po, to),
                "pred_velocity_mean": _mean(pv),
                "true_velocity_mean": _mean(tv),
                "pred_offset_std_ms": _std(po),
                "true_offset_std_ms": _std(to),
            }

        return {
            "per_class": {name: block(c) for c, name in enumerate(CLASS_NAMES)},
            "overall": block(None),
        }


def loss_terms_per_class(
    hit_probs: np.ndarray,
    velocities: np.ndarray,
    offsets: np.ndarray,
    target: np.ndarray,
    hit_conditioned: bool = False,
) -> dict[str, np.ndarray]:
    """GrooVAE's reconstruction loss split by class: each term (B, 9), summed over steps.

    ``hit_probs``, ``velocities`` and ``offsets`` are the decoder's activated outputs (sigmoid,
    sigmoid, tanh), each (B, T, 9). Summing a term over classes gives Magenta's per-sequence loss
    (the decoder's own, with ``hit_conditioned``: velocity and offset errors only on target hits).
    """
    th, tv, to = split_channels(np.asarray(target, np.float64))
    p = np.asarray(hit_probs, np.float64)
    hits = -(th * np.log(p + LOG_LOSS_EPS) + (1 - th) * np.log(1 - p + LOG_LOSS_EPS))
    vel = (np.asarray(velocities, np.float64) - tv) ** 2
    off = (np.asarray(offsets, np.float64) - to) ** 2
    if hit_conditioned:
        vel, off = vel * th, off * th
    out = {
        "hits_loss": hits.sum(axis=1),
        "velocities_loss": vel.sum(axis=1),
        "offsets_loss": off.sum(axis=1),
    }
    out["r_loss"] = out["hits_loss"] + out["velocities_loss"] + out["offsets_loss"]
    return out


def groove_stats(grooves: np.ndarray, steps_per_bar: int = 16) -> dict:
    """Summary of a set of (N, T, 27) grooves; offsets are reported in 16th-note steps.

    notes_per_bar (mean and std over bars), and per class and overall: hit_rate (fraction of
    steps with a hit), velocity mean and std (0-127) and offset mean and std (steps) on hits.
    """
    grooves = np.asarray(grooves, np.float64)
    h, v, o = split_channels(grooves)
    hit = h > HIT_THRESHOLD
    n, t = grooves.shape[:2]
    bars = t // steps_per_bar
    per_bar = hit[:, : bars * steps_per_bar].reshape(n, bars, steps_per_bar, NUM_CLASSES)
    per_bar = per_bar.sum(axis=(2, 3)).ravel()

    def block(c: int | None) -> dict[str, float]:
        m = hit if c is None else hit[..., c]
        vv = (v if c is None else v[..., c])[m] * 127.0
        oo = (o if c is None else o[..., c])[m] / 2.0
        return {
            "hit_rate": float(m.mean()) if m.size else math.nan,
            "velocity_mean": _mean(vv),
            "velocity_std": _std(vv),
            "offset_mean_steps": _mean(oo),
            "offset_std_steps": _std(oo),
        }

    return {
        "num_grooves": int(n),
        "notes_per_bar_mean": _mean(per_bar),
        "notes_per_bar_std": _std(per_bar),
        "per_class": {name: block(c) for c, name in enumerate(CLASS_NAMES)},
        "overall": block(None),
    }


# Burda et al. (2016): a latent dimension is active when its posterior mean varies across the
# data with variance above this.
ACTIVE_UNIT_THRESHOLD = 0.01


def latent_usage(mu: np.ndarray) -> dict:
    """How much of z the encoder uses over a split: the active units (dimensions whose posterior
    mean varies across windows with variance above 0.01) and the mean standard deviation of mu
    across windows. An encoder that gives every window the same code has no active unit, however
    large its KL (a constant mean far from 0 costs KL and carries nothing)."""
    # mu: (N, Z)
    mu = np.asarray(mu, np.float64)
    z_size = int(mu.shape[-1])
    if mu.ndim != 2 or len(mu) < 2:
        return {"active_units": 0, "z_size": z_size, "mu_spread": float("nan")}
    var = mu.var(axis=0)
    return {
        "active_units": int((var > ACTIVE_UNIT_THRESHOLD).sum()),
        "z_size": z_size,
        "mu_spread": float(np.sqrt(var).mean()),
    }


def latent_line(usage: dict) -> str:
    """One line of a report on :func:`latent_usage`."""
    return (
        f"latent dimensions in use: {usage['active_units']} of {usage['z_size']} "
        f"(mu's spread across windows {usage['mu_spread']:.3f})"
    )


def json_safe(obj: object) -> object:
    """A copy with NaN / inf floats replaced by None and numpy scalars by Python ones."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
