"""What a hierarchical decoder's conductor encodes: its bar embeddings set beside the groove.

The conductor turns one latent code into one embedding per bar, and each bar is decoded from its
embedding alone. If the conductor has learnt the form of a groove, bars that a drummer repeats get
similar embeddings and a fill gets a different one. For one window this module gives

- :func:`bar_similarity_matrix`: the groove's own (bars, bars) Jaccard similarity of hit cells;
- :func:`conductor_similarity_matrix`: the (bars, bars) cosine similarity of the conductor's bar
  embeddings for the window's posterior mean;

and :func:`structure_agreement` sums a split up: the Pearson correlation of the two matrices'
off-diagonal entries, per window, averaged. Near 0 the embeddings ignore the groove's form; near 1
they mirror it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from musicvae.evaluation.metrics import HIT_THRESHOLD, split_channels

if TYPE_CHECKING:
    from musicvae.models.vae import MusicVAE


def bar_similarity_matrix(groove: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
    """(bars, bars) Jaccard similarity of the hit cells of each pair of bars of a (T, 27) groove;
    two empty bars count as equal."""
    hit = split_channels(np.asarray(groove, np.float64)[None])[0][0] > HIT_THRESHOLD
    bars = hit.shape[0] // steps_per_bar
    cells = hit[: bars * steps_per_bar].reshape(bars, -1)
    inter = (cells[:, None] & cells[None]).sum(-1)
    union = (cells[:, None] | cells[None]).sum(-1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def conductor_embeddings(model: MusicVAE, z: np.ndarray | torch.Tensor, bars: int) -> np.ndarray:
    """(N, bars, H) conductor outputs of a hierarchical ``MusicVAE`` for codes (N, Z)."""
    decoder = model.decoder
    if not hasattr(decoder, "conduct"):
        raise ValueError("the model has no conductor (not a hierarchical decoder)")
    device = next(model.parameters()).device
    zt = torch.as_tensor(np.asarray(z), dtype=torch.float32, device=device)
    with torch.no_grad():
        _, embeddings = decoder.conduct(zt, bars)
    return embeddings.float().cpu().numpy()


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarity of the rows of (K, H) ``vectors``."""
    v = np.asarray(vectors, np.float64)
    unit = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return unit @ unit.T


def conductor_similarity_matrix(model: MusicVAE, z: np.ndarray, bars: int) -> np.ndarray:
    """(bars, bars) cosine similarity of the conductor's bar embeddings for one code (Z,)."""
    return cosine_matrix(conductor_embeddings(model, np.asarray(z)[None], bars)[0])


def off_diagonal_correlation(a: np.ndarray, b: np.ndarray) -> float:
    mask = ~np.eye(a.shape[0], dtype=bool)
    x, y = a[mask], b[mask]
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def structure_agreement(
    model: MusicVAE,
    mu: np.ndarray,
    grooves: np.ndarray,
    steps_per_bar: int = 16,
    max_windows: int = 256,
) -> dict:
    """How well conductor-embedding similarity follows the grooves' own bar similarity, over up to
    ``max_windows`` windows spread over a split: posterior means (N, Z), grooves (N, T, 27)."""
    n = len(mu)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_windows)).round().astype(int))
    bars = grooves.shape[1] // steps_per_bar
    emb = conductor_embeddings(model, np.asarray(mu)[idx], bars) if len(idx) else np.zeros(0)
    corrs = [
        off_diagonal_correlation(cosine_matrix(e), bar_similarity_matrix(grooves[i], steps_per_bar))
        for e, i in zip(emb, idx, strict=True)
    ]
    finite = np.array([c for c in corrs if math.isfinite(c)])
    return {
        "num_windows": len(idx),
        "num_scored": int(finite.size),
        "correlation_mean": float(finite.mean()) if finite.size else math.nan,
        "correlation_median": float(np.median(finite)) if finite.size else math.nan,
    }
