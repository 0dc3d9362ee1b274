"""A picture of what the conductor encodes for one groove (``musicvae explain --conductor``).

Left, the groove's hits as a drum grid over its bars; middle, the groove's own bar-to-bar
similarity (Jaccard of hit cells); right, the cosine similarity of the conductor's embeddings of
the same bars, for the groove's posterior mean. Where the two matrices share their pattern, the
conductor has learnt the groove's form: repeated bars alike, fills apart.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicvae.data.converters.groove import DRUM_CLASS_LABELS
from musicvae.io import atomic_write_bytes

if TYPE_CHECKING:
    from musicvae.generation.trained_model import TrainedModel


def render_conductor(
    groove: np.ndarray,
    groove_sim: np.ndarray,
    conductor_sim: np.ndarray,
    title: str = "",
    steps_per_bar: int = 16,
    dpi: int = 110,
) -> bytes:
    """PNG bytes of a (T, 27) groove beside its two (bars, bars) similarity matrices."""
    from matplotlib.figure import Figure

    bars = groove_sim.shape[0]
    fig = Figure(figsize=(13, 4.2))
    grid = fig.add_gridspec(1, 3, width_ratios=(2.2, 1, 1.25), wspace=0.3)
    ax = fig.add_subplot(grid[0])
    hits = np.asarray(groove)[:, : len(DRUM_CLASS_LABELS)] > 0.5
    vel = np.asarray(groove)[:, len(DRUM_CLASS_LABELS) : 2 * len(DRUM_CLASS_LABELS)]
    ax.imshow(
        np.where(hits, vel, np.nan).T,
        aspect="auto",
        origin="upper",
        cmap="viridis",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_yticks(range(len(DRUM_CLASS_LABELS)), DRUM_CLASS_LABELS, fontsize=7)
    ax.set_xticks(
        [b * steps_per_bar for b in range(bars)], [str(b + 1) for b in range(bars)], fontsize=7
    )
    for b in range(1, bars):
        ax.axvline(b * steps_per_bar - 0.5, color="0.6", lw=0.6)
    ax.set_xlabel("bar")
    ax.set_title("groove (colour: velocity)", fontsize=9)
    ticks = range(bars)
    labels = [str(b + 1) for b in ticks]
    for k, (mat, name, vmin) in enumerate(
        ((groove_sim, "bars' own similarity (Jaccard of hits)", 0.0),
         (conductor_sim, "conductor embeddings (cosine)", None))
    ):  # fmt: skip
        axm = fig.add_subplot(grid[k + 1])
        image = axm.imshow(mat, cmap="magma", vmin=vmin, vmax=1.0, origin="upper")
        axm.set_xticks(ticks, labels, fontsize=6)
        axm.set_yticks(ticks, labels, fontsize=6)
        axm.set_xlabel("bar")
        axm.set_title(name, fontsize=9)
        if k == 1:
            fig.colorbar(image, ax=axm, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def write_conductor(
    trained: TrainedModel, groove: np.ndarray, path: str | os.PathLike, title: str = ""
) -> Path:
    """Encode a (T, 27) window with ``trained`` (a hierarchical ``TrainedModel``), draw what its
    conductor makes of it, and write the PNG to ``path``; the title gets the two matrices'
    agreement (Pearson r of their off-diagonal entries)."""
    from musicvae.evaluation.conductor import (
        bar_similarity_matrix,
        conductor_similarity_matrix,
        off_diagonal_correlation,
    )

    spb = trained.converter.steps_per_bar
    bars = groove.shape[0] // spb
    _, mu, _ = trained.encode_tensors(groove[None])
    groove_sim = bar_similarity_matrix(groove, spb)
    conductor_sim = conductor_similarity_matrix(trained.model, mu[0], bars)
    r = off_diagonal_correlation(conductor_sim, groove_sim)
    full = f"{title}  (agreement r = {r:.2f})" if title else f"agreement r = {r:.2f}"
    return atomic_write_bytes(
        path, render_conductor(groove, groove_sim, conductor_sim, full, steps_per_bar=spb)
    )
