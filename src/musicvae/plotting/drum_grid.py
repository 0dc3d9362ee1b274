"""Drum-grid pictures: 9 drum classes by 16th-note steps, one PNG per groove.

The picture is the studio's grid (``web/static/app.js``), so a groove looks the same in both:
rows in the converter's class order from the top (kick at the top, ride at the bottom, labelled
as ``/api/info`` labels them), bold bar lines, lighter beat lines and every second beat shaded.
The x axis counts beats as a DAW's ruler does: "1", "1.2", "1.3", "1.4", "2", ...

Each hit is a box in its class's row; its colour is the velocity and its horizontal position is
the step shifted by the micro-timing offset (a note played ahead of the grid sits left of its
step line). Rendering uses matplotlib's Agg canvas on a private ``Figure`` (no pyplot state), so
it is safe to call from threads and servers.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musicvae.data.converters.groove import (
    DRUM_CLASS_LABELS,
    REDUCED_DRUM_PITCH_CLASSES,
    ROLAND_DRUM_PITCH_CLASSES,
)
from musicvae.data.sequence import NoteSequence
from musicvae.io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

CLASS_NAMES = DRUM_CLASS_LABELS
NUM_CLASSES = len(CLASS_NAMES)
# Generated files use GrooVAE's inference-mode class lists (the General MIDI drum map); the
# Roland training lists differ for a few toms, so callers may pass their own.
INFER_PITCH_CLASSES = REDUCED_DRUM_PITCH_CLASSES
TRAIN_PITCH_CLASSES = ROLAND_DRUM_PITCH_CLASSES


def sequence_to_grid(
    ns: NoteSequence,
    *,
    steps_per_quarter: int = 4,
    num_steps: int | None = None,
    mode: str = "infer",
) -> np.ndarray:
    """A (T, 27) [hits | velocities | offsets] grid of a drum NoteSequence, exactly as the
    model's converter grids it (``mode`` "infer": the General MIDI map generated files use;
    "train": the Roland map), cut or zero-padded to ``num_steps`` when given.
    """
    from musicvae.configs import get_config
    from musicvae.data.converters import build_converter
    from musicvae.errors import MusicVAEError

    config = get_config("groovae_4bar", {"steps_per_quarter": steps_per_quarter})
    grid = build_converter(config, mode).sequence_grid(ns, transform=False)
    if not grid.outputs:
        if len(ns) == 0:
            grid_rows = np.zeros((0, 3 * NUM_CLASSES), np.float32)
        else:
            name = ns.filename or "sequence"
            raise MusicVAEError(
                f"{name}: no drum grid (it needs drum notes, one tempo and 4/4 throughout)"
            )
    else:
        grid_rows = np.asarray(grid.outputs[0], np.float32)
    if num_steps is not None:
        out = np.zeros((num_steps, grid_rows.shape[1]), np.float32)
        out[: min(num_steps, len(grid_rows))] = grid_rows[:num_steps]
        return out
    return grid_rows


def render_drum_grid(grid: np.ndarray | NoteSequence, **options: Any) -> bytes:
    """PNG bytes of the drum grid of a (T, 27) tensor or a drum NoteSequence; ``options`` are
    :func:`drum_grid_figure`'s (title, steps per bar and beat, bars per row, dpi)."""
    buf = io.BytesIO()
    drum_grid_figure(grid, **options).savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def drum_grid_figure(
    grid: np.ndarray | NoteSequence,
    *,
    title: str | None = None,
    steps_per_bar: int = 16,
    steps_per_beat: int = 4,
    bars_per_row: int = 4,
    dpi: int = 100,
) -> Figure:
    """The matplotlib ``Figure`` that :func:`render_drum_grid` saves: one axes per row of bars,
    then the velocity colour bar. Long grooves wrap onto several rows of ``bars_per_row`` bars."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if isinstance(grid, NoteSequence):
        grid = sequence_to_grid(grid, steps_per_quarter=steps_per_beat)
    grid = np.asarray(grid, np.float64)
    if grid.ndim != 2 or grid.shape[1] != 3 * NUM_CLASSES:
        raise ValueError(f"expected a (T, {3 * NUM_CLASSES}) grid, got shape {grid.shape}")
    bars = max(1, -(-len(grid) // steps_per_bar))
    row_bars = min(bars, max(1, bars_per_row))
    rows = -(-bars // row_bars)
    row_steps = row_bars * steps_per_bar

    fig = Figure(figsize=(2.0 + row_steps * 0.16, 0.5 + 2.6 * rows), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, 1, r + 1) for r in range(rows)]
    cmap = matplotlib.colormaps["viridis"]
    norm = Normalize(0, 127)
    for r, ax in enumerate(axes):
        first = r * row_steps
        _draw_row(
            ax,
            grid[first : first + row_steps],
            first,
            row_steps,
            cmap,
            norm,
            steps_per_bar,
            steps_per_beat,
        )
    if title:
        axes[0].set_title(title, fontsize=8)
    mappable = _scalar_mappable(cmap, norm)
    cbar = fig.colorbar(mappable, ax=axes, fraction=0.02, pad=0.01)
    cbar.set_label("velocity", fontsize=7)
    cbar.ax.tick_params(labelsize=6)
    return fig


def _draw_row(
    ax: Axes,
    part: np.ndarray,
    first: int,
    row_steps: int,
    cmap: Colormap,
    norm: Normalize,
    steps_per_bar: int,
    steps_per_beat: int,
) -> None:
    """One row of bars: hits of ``part`` (steps ``first`` on) as boxes over the step grid."""
    from matplotlib.collections import LineCollection, PatchCollection
    from matplotlib.patches import Rectangle

    hits = part[:, :NUM_CLASSES] > 0.5
    vel = part[:, NUM_CLASSES : 2 * NUM_CLASSES]
    off = part[:, 2 * NUM_CLASSES :]
    steps, classes = np.nonzero(hits)
    # Offset +1 is half a step early, so the box moves left by offset / 2 steps. One collection
    # per kind of mark: a busy groove is hundreds of boxes, and single artists cost seconds.
    boxes = [
        Rectangle((s - off[s, c] / 2.0 + 0.05, c + 0.1), 0.9, 0.8)
        for s, c in zip(steps, classes, strict=True)
    ]
    ax.add_collection(
        PatchCollection(
            boxes,
            facecolors=cmap(norm(vel[steps, classes] * 127.0)),
            edgecolors="black",
            linewidths=0.4,
            zorder=2,
        )
    )
    for b in range(1, row_steps // steps_per_beat, 2):  # the studio shades every second beat
        ax.axvspan(b * steps_per_beat, (b + 1) * steps_per_beat, color="0.95", zorder=0)
    kinds = {"bar": ("black", 1.4), "beat": ("0.55", 0.7), "step": ("0.88", 0.4)}
    lines: dict[str, list] = {k: [] for k in kinds}
    for s in range(row_steps + 1):
        kind = "bar" if s % steps_per_bar == 0 else "beat" if s % steps_per_beat == 0 else "step"
        lines[kind].append([(s, 0), (s, NUM_CLASSES)])
    lines["step"] += [[(-0.5, r), (row_steps + 0.5, r)] for r in range(NUM_CLASSES + 1)]
    for kind, (color, width) in kinds.items():
        ax.add_collection(LineCollection(lines[kind], colors=color, linewidths=width, zorder=1))
    if len(part) < row_steps:  # past the end of the groove
        ax.axvspan(len(part), row_steps, color="0.9", zorder=0)
    ax.set_xlim(-0.5, row_steps + 0.5)
    ax.set_ylim(NUM_CLASSES, 0)  # class 0 (kick) on top, as the studio's rows run
    ax.set_yticks(np.arange(NUM_CLASSES) + 0.5, CLASS_NAMES, fontsize=7)
    ticks = np.arange(0, row_steps, steps_per_beat)
    ax.set_xticks(ticks, [beat_label(first + int(t), steps_per_bar, steps_per_beat) for t in ticks])
    ax.tick_params(length=0, labelsize=7)
    for t, label in zip(ticks, ax.get_xticklabels(), strict=True):
        if t % steps_per_bar == 0:  # a bar's number stands out from its beats
            label.set_fontweight("bold")


def beat_label(step: int, steps_per_bar: int = 16, steps_per_beat: int = 4) -> str:
    """A ruler's name for the beat starting at ``step``: "3" for bar 3's downbeat, "3.2" for
    its second beat (bars and beats counted from 1)."""
    bar, beat = divmod(step // steps_per_beat, steps_per_bar // steps_per_beat)
    return f"{bar + 1}" if beat == 0 else f"{bar + 1}.{beat + 1}"


def _scalar_mappable(cmap: Colormap, norm: Normalize) -> ScalarMappable:
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(norm=norm, cmap=cmap)
    mappable.set_array(np.zeros(0))
    return mappable


def write_drum_grid(
    grid: np.ndarray | NoteSequence,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    steps_per_bar: int = 16,
    steps_per_beat: int = 4,
    bars_per_row: int = 4,
) -> Path:
    """Render the drum grid and write it to ``path`` as a PNG, atomically."""
    path = Path(path)
    data = render_drum_grid(
        grid,
        title=title,
        steps_per_bar=steps_per_bar,
        steps_per_beat=steps_per_beat,
        bars_per_row=bars_per_row,
    )
    atomic_write_bytes(path, data)
    return path
