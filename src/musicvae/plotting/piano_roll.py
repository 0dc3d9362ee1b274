"""Piano-roll pictures of pitched music: melodies, trios, multi-track, one PNG per sequence.

What a drum grid (:mod:`musicvae.plotting.drum_grid`) is to a groove, this is to every other
model's output: each note a bar from its start to its end at its pitch, shaded by velocity,
coloured by instrument (General MIDI program family), over bold bar lines and light beat lines
so that phrases that repeat every four bars are easy to see. The pitch axis spans the notes
played, named in scientific pitch (C4 is middle C), with the C rows shaded as on a keyboard.
Drum notes, where a sequence has any (a trio's drum part), sit in a lane of their own below,
one row per drum named by the General MIDI map. Rendering uses matplotlib's Agg canvas on a
private ``Figure``, so it is safe in threads and servers.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicvae.data.converters.drums import GM_DRUM_NAMES
from musicvae.data.converters.melody import pitch_name
from musicvae.data.sequence import NoteSequence
from musicvae.io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["pitch_name", "program_family", "render_piano_roll", "write_piano_roll"]

# General MIDI's sixteen families of eight programs each.
_FAMILIES = (
    "piano",
    "chromatic percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth lead",
    "synth pad",
    "synth effects",
    "ethnic",
    "percussive",
    "sound effects",
)
_MIN_ROWS = 13  # an octave and a note: a narrow tune keeps readable rows


def program_family(program: int) -> str:
    """General MIDI family of a program (0-127): 0 "piano", 33 "bass", 73 "pipe"."""
    return _FAMILIES[max(0, min(127, program)) // 8]


def _beats(ns: NoteSequence) -> tuple[np.ndarray, np.ndarray, float]:
    """Note starts and ends in quarter notes, and the sequence's length in quarters."""
    per_second = ns.qpm / 60.0
    return ns.start * per_second, ns.end * per_second, ns.total_time * per_second


def render_piano_roll(
    ns: NoteSequence,
    *,
    title: str | None = None,
    beats_per_bar: int = 4,
    bars: int | None = None,
    dpi: int = 100,
) -> bytes:
    """The piano roll of ``ns`` as PNG bytes; ``bars`` fixes the x range (default: the
    sequence's length, rounded up to whole bars)."""
    from matplotlib.figure import Figure

    starts, ends, length = _beats(ns)
    total_bars = bars or max(1, int(np.ceil(length / beats_per_bar - 1e-6)))
    drums = ns.is_drum.astype(bool)
    drum_pitches = sorted({int(p) for p in ns.pitch[drums]})
    has_pitched = bool((~drums).any()) or not drum_pitches
    width = min(24.0, 3.0 + 0.9 * total_bars)
    pitched_height = 3.2 if has_pitched else 0.0
    drum_height = 0.4 + 0.22 * len(drum_pitches) if drum_pitches else 0.0
    fig = Figure(figsize=(width, 0.9 + pitched_height + drum_height), dpi=dpi)
    ratios = [r for r in (pitched_height, drum_height) if r]
    axes = fig.subplots(len(ratios), 1, sharex=True, squeeze=False, height_ratios=ratios)[:, 0]
    top = axes[0]
    if has_pitched:
        _draw_pitched(top, ns, starts, ends, ~drums)
    if drum_pitches:
        _draw_drums(axes[-1], ns, starts, drums, drum_pitches)
    for ax in axes:
        _draw_bars(ax, total_bars, beats_per_bar)
    axes[-1].set_xticks(np.arange(total_bars) * beats_per_bar)
    axes[-1].set_xticklabels([str(b + 1) for b in range(total_bars)])
    axes[-1].set_xlabel("bar")
    if title:
        top.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_pitched(
    ax: Axes,
    ns: NoteSequence,
    starts: np.ndarray,
    ends: np.ndarray,
    mask: np.ndarray,
) -> None:
    from matplotlib import colormaps

    pitches = ns.pitch[mask].astype(int)
    if len(pitches):
        low, high = int(pitches.min()) - 1, int(pitches.max()) + 1
    else:
        low, high = 59, 73
    while high - low + 1 < _MIN_ROWS:
        low, high = low - 1, high + 1
    for c in range(low, high + 1):
        if c % 12 == 0:  # the C rows, as on a keyboard's white keys with their labels
            ax.axhspan(c - 0.5, c + 0.5, color="0.93", zorder=0)
    palette = colormaps["tab10"]
    families = np.clip(ns.program, 0, 127) // 8  # General MIDI families: 8 programs each
    present = np.unique(families[mask])
    for index, family in enumerate(present):
        chosen = mask & (families == family)
        shade = 0.35 + 0.65 * ns.velocity[chosen] / 127.0
        ax.barh(
            ns.pitch[chosen],
            ends[chosen] - starts[chosen],
            left=starts[chosen],
            height=0.8,
            color=[(*palette(index)[:3], float(a)) for a in shade],
            edgecolor=palette(index),
            linewidth=0.5,
            label=_FAMILIES[family],
            zorder=2,
        )
    if len(present) > 1:
        ax.legend(
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncols=len(present),
            fontsize=7,
            frameon=False,
        )
    ax.set_ylim(low - 0.5, high + 0.5)
    step = 1 if high - low < 16 else 2 if high - low < 30 else 12
    ticks = [p for p in range(low, high + 1) if p % step == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([pitch_name(p) for p in ticks], fontsize=7)
    ax.set_ylabel("pitch")


def _draw_drums(
    ax: Axes,
    ns: NoteSequence,
    starts: np.ndarray,
    mask: np.ndarray,
    drum_pitches: list[int],
) -> None:
    row = {p: i for i, p in enumerate(drum_pitches)}
    rows = np.array([row[int(p)] for p in ns.pitch[mask]])
    # A drum hit has no length that matters: a fixed sixteenth-wide mark.
    ax.barh(
        rows,
        np.full(len(rows), 0.22),
        left=starts[mask],
        height=0.7,
        color=[(0.2, 0.2, 0.2, 0.35 + 0.65 * v / 127.0) for v in ns.velocity[mask]],
        zorder=2,
    )
    ax.set_ylim(len(drum_pitches) - 0.5, -0.5)
    ax.set_yticks(range(len(drum_pitches)))
    ax.set_yticklabels([GM_DRUM_NAMES.get(p, f"drum {p}") for p in drum_pitches], fontsize=7)


def _draw_bars(ax: Axes, bars: int, beats_per_bar: int) -> None:
    for beat in range(bars * beats_per_bar + 1):
        bar_line = beat % beats_per_bar == 0
        ax.axvline(
            beat, color="0.35" if bar_line else "0.85", lw=1.0 if bar_line else 0.5, zorder=1
        )
    ax.set_xlim(0, bars * beats_per_bar)


def write_piano_roll(
    ns: NoteSequence,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    beats_per_bar: int = 4,
    bars: int | None = None,
) -> Path:
    """Render the piano roll of ``ns`` and write it to ``path`` as a PNG, atomically."""
    path = Path(path)
    atomic_write_bytes(
        path, render_piano_roll(ns, title=title, beats_per_bar=beats_per_bar, bars=bars)
    )
    return path
