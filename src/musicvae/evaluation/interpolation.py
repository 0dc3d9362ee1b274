"""How smoothly a model walks between two grooves: hits changed per step of an interpolation.

A listener judges an interpolation by its steps. A good latent space changes a few hits at a
time and arrives; a poor one holds still, then jumps, or wanders through unrelated grooves on the
way. For pairs of windows from different performances, the two posterior means are joined by
Magenta's spherical path (:func:`musicvae.generation.latent.slerp_path`) and every code on it is
decoded near-greedily with one seed. On the decoded hit grids (N steps of the path, T, 9):

- ``hits_changed_per_bar``: (step, class) cells that flip between consecutive points of the path,
  per bar of the groove, averaged over the steps: lower is smoother;
- ``largest_step_share``: the share of a path's flips made in its single largest step; an even
  walk has ``1 / (N - 1)``, one jump has 1;
- ``path_excess``: all flips along the path over the flips between its two ends; 1 is a direct
  walk, higher means it wanders (a flip made and later undone counts twice);
- ``endpoint_hits_per_bar``: how far apart the two decoded ends are, for scale.

Figures are per bar so that 4- and 16-bar models compare.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from musicvae.evaluation.metrics import HIT_THRESHOLD, split_channels
from musicvae.generation.latent import slerp_path

if TYPE_CHECKING:
    from musicvae.models.vae import MusicVAE

DEFAULT_PAIRS = 32
DEFAULT_STEPS = 9


def path_flips(hits: np.ndarray) -> np.ndarray:
    """Cells flipped between consecutive grids of a path: (N, T, C) bool -> (N - 1,) ints."""
    h = np.asarray(hits, bool)
    return (h[1:] ^ h[:-1]).reshape(len(h) - 1, -1).sum(axis=1)


def path_stats(hits: np.ndarray, steps_per_bar: int) -> dict[str, float]:
    """The smoothness figures of one decoded path (N, T, C) of hit grids."""
    h = np.asarray(hits, bool)
    bars = max(1, h.shape[1] // steps_per_bar)
    flips = path_flips(h)
    total = int(flips.sum())
    ends = int((h[0] ^ h[-1]).sum())
    return {
        "hits_changed_per_bar": float(flips.mean() / bars),
        "largest_step_share": float(flips.max() / total) if total else math.nan,
        "path_excess": float(total / ends) if ends else math.nan,
        "endpoint_hits_per_bar": ends / bars,
    }


def pair_indices(n: int, num_pairs: int) -> list[tuple[int, int]]:
    """``num_pairs`` pairs of windows spread over a split of ``n``, each window paired with the
    one half the split away (another performance, as windows are stored in file order)."""
    if n < 2:
        return []
    starts = np.linspace(0, n // 2 - 1 if n > 2 else 0, min(num_pairs, max(1, n // 2)))
    return [(int(i), int(i) + n // 2) for i in np.unique(starts.round().astype(int))]


def interpolation_smoothness(
    model: MusicVAE,
    mu: torch.Tensor,
    length: int,
    steps_per_bar: int,
    *,
    num_pairs: int = DEFAULT_PAIRS,
    num_steps: int = DEFAULT_STEPS,
    temperature: float = 1e-3,
    seed: int = 0,
) -> dict:
    """Mean :func:`path_stats` over pairs of posterior means ``mu`` (N, Z) of a split, decoded
    by ``model`` (a ``MusicVAE`` in eval mode) over ``length`` steps."""
    pairs = pair_indices(int(mu.shape[0]), num_pairs)
    result = {
        "decoding": (
            f"slerp between the posterior means of {len(pairs)} pairs of windows half the "
            f"split apart, {num_steps} points each, near-greedy hits (temperature "
            f"{temperature:g}, seed {seed})"
        ),
        "num_pairs": len(pairs),
        "num_steps": num_steps,
    }
    if not pairs:
        return result
    m = mu.detach().cpu().double().numpy()
    paths = np.concatenate([slerp_path(m[a], m[b], num_steps) for a, b in pairs])
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    z = torch.from_numpy(paths).float().to(device)
    grooves = model.decode(z, length, temperature, None, gen).cpu().numpy()
    hits = split_channels(grooves)[0] > HIT_THRESHOLD
    hits = hits.reshape(len(pairs), num_steps, *hits.shape[1:])
    stats = [path_stats(h, steps_per_bar) for h in hits]
    for key in stats[0]:
        values = np.array([s[key] for s in stats], np.float64)
        values = values[np.isfinite(values)]
        result[key] = float(values.mean()) if values.size else math.nan
    return result
