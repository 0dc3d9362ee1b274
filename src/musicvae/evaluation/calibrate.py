"""The spread a model's velocity and offset heads leave out, measured on held-out data.

MSE-trained heads predict each hit's expected velocity and offset; a groove of expectations is
flatter than a drummer (fewer accents, tighter timing). :func:`output_spread` measures, per drum
class, the standard deviation of what the heads miss on the real hits of a split (of log velocity, and of offsets) (teacher
forcing from the posterior mean). A bundle stores it (``musicvae export --spread-from``), and
sampling then draws velocities and offsets around the means with that spread
(``models.decoder.add_spread``), which gives the samples the data's variance without retraining.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from musicvae.evaluation.metrics import HIT_THRESHOLD, split_channels
from musicvae.generation.expression import MIN_VELOCITY

if TYPE_CHECKING:
    from musicvae.generation.trained_model import TrainedModel

MAX_GAIN = 3.0


def output_spread(
    trained: TrainedModel,
    examples_path: str | os.PathLike,
    split: str = "validation",
    batch_size: int = 64,
) -> dict:
    """``{"velocity": [N], "offset": [N], ..., "split", "hits": [N]}``: per class, the standard
    deviation of log(real / predicted) velocity and of (real - predicted) offset (converter
    units) on the split's real hits; and for expressive decoding (``generation.expression``) the
    predictions' mean (``velocity_center`` of log velocity, ``offset_center``) and the real
    spread over the predicted one (``velocity_gain``, ``offset_gain``)."""
    from musicvae.evaluation.evaluate import load_split

    model, device = trained.model, trained.device
    examples, _, _ = load_split(examples_path, trained.config, split)
    uses_controls = trained.converter.control_depth > 0
    hits: list[np.ndarray] = []
    pred_v: list[np.ndarray] = []  # log velocity
    pred_o: list[np.ndarray] = []
    real_v: list[np.ndarray] = []  # log velocity
    real_o: list[np.ndarray] = []
    with torch.no_grad():
        for s in range(0, len(examples), batch_size):
            idx = torch.arange(s, min(s + batch_size, len(examples)))
            inputs, outputs, controls, lengths = (t.to(device) for t in examples.batch(idx))
            ctl = controls if uses_controls else None
            mu, _ = model.encode(inputs, lengths, ctl)
            out = model.decoder(outputs, lengths, mu, ctl, sampling_probability=0.0).rnn_output
            p, v, o = (t.cpu().numpy() for t in model.decoder.activate(out))
            th, tv, to = split_channels(outputs.cpu().numpy())
            if not model.decoder.hit_conditioned:  # Magenta's heads estimate v * P(hit)
                v = v / np.maximum(p, 0.2)
                o = o / np.maximum(p, 0.2)
            # Log velocity: spread in proportion to loudness (see decoder.add_spread).
            hits.append(th > HIT_THRESHOLD)
            pred_v.append(np.log(np.clip(v, MIN_VELOCITY, 1.0)))
            pred_o.append(o)
            real_v.append(np.log(np.clip(tv, MIN_VELOCITY, 1.0)))
            real_o.append(to)
    hit = np.concatenate(hits)
    pv, po, tv_all, to_all = (np.concatenate(a) for a in (pred_v, pred_o, real_v, real_o))
    rv, ro = tv_all - pv, to_all - po  # what the means miss
    n = hit.shape[-1]

    def std(r: np.ndarray, c: int) -> float:
        vals = r[..., c][hit[..., c]]
        return float(vals.std()) if vals.size > 1 else 0.0

    def center(r: np.ndarray, c: int) -> float:
        vals = r[..., c][hit[..., c]]
        return float(vals.mean()) if vals.size else 0.0

    def gain(real: np.ndarray, pred: np.ndarray, c: int) -> float:
        # How much wider the real values spread than the predictions (generation.expression);
        # at least 1 (never flatten), at most 3 (a class the model barely predicts).
        sp = std(pred, c)
        return float(np.clip(std(real, c) / sp, 1.0, MAX_GAIN)) if sp > 0 else 1.0

    return {
        "velocity": [round(std(rv, c), 5) for c in range(n)],
        "offset": [round(std(ro, c), 5) for c in range(n)],
        "velocity_center": [round(center(pv, c), 5) for c in range(n)],
        "velocity_gain": [round(gain(tv_all, pv, c), 5) for c in range(n)],
        "offset_center": [round(center(po, c), 5) for c in range(n)],
        "offset_gain": [round(gain(to_all, po, c), 5) for c in range(n)],
        "split": split,
        "hits": [int(hit[..., c].sum()) for c in range(n)],
    }
