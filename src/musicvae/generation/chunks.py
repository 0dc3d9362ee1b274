"""Cutting a whole performance into model-sized windows and stitching the results back.

A GrooVAE model sees fixed windows (e.g. 4 bars = 64 steps). For a longer input we convert the
whole sequence on one grid (padded to whole bars, as the converter does), cut it into
non-overlapping windows from bar 1, and, when the bar count is not a multiple of the window,
add one last window aligned to the end. Stitching takes each window's steps in order and from
the last, overlapping window only the bars not covered yet, so every input bar comes back once:
a 10-bar input to a 4-bar model is windows at bars 1, 5 and 7, and its output is 10 bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from musicvae.configs import Config
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError

if TYPE_CHECKING:
    from musicvae.data.converters.base import Converter


def window_starts(total_steps: int, window_steps: int) -> list[int]:
    """Start steps of the windows covering ``total_steps`` (at least ``window_steps``)."""
    if total_steps < window_steps:
        raise ValueError(f"{total_steps} steps are shorter than one {window_steps}-step window")
    starts = list(range(0, total_steps - window_steps + 1, window_steps))
    if starts[-1] + window_steps < total_steps:
        starts.append(total_steps - window_steps)
    return starts


def cut(grid: np.ndarray, window_steps: int) -> tuple[np.ndarray, list[int]]:
    """(T, D) -> ((N, window_steps, D) windows, their start steps)."""
    starts = window_starts(len(grid), window_steps)
    return np.stack([grid[s : s + window_steps] for s in starts]), starts


def stitch(windows: np.ndarray, starts: list[int], total_steps: int) -> np.ndarray:
    """Inverse of :func:`cut`: (N, W, D) windows -> (total_steps, D), each step taken once.

    A step covered by two windows comes from the earlier one, which saw it first.
    """
    windows = np.asarray(windows)
    if len(windows) != len(starts):
        raise ValueError(f"{len(windows)} windows but {len(starts)} start steps")
    out = np.zeros((total_steps, windows.shape[-1]), windows.dtype)
    covered = 0
    for win, s in zip(windows, starts, strict=True):
        end = min(s + len(win), total_steps)
        if end > covered:
            out[covered:end] = win[covered - s : end - s]
            covered = end
    if covered < total_steps:
        raise ValueError(f"windows cover {covered} of {total_steps} steps")
    return out


@dataclass
class Prepared:
    """One input performance as model windows: ``inputs``/``outputs`` (N, W, 27), ``controls``
    (N, W, C), the window ``starts``, the whole grid's length in steps and the input tempo."""

    inputs: np.ndarray
    outputs: np.ndarray
    controls: np.ndarray
    starts: list[int]
    total_steps: int
    qpm: float


def _no_window_reason(ns: NoteSequence, config: Config, converter: Converter) -> str:
    """Why the converter found no 4/4 grid in ``ns``, as a short phrase."""
    from musicvae.data.windows import single_tempo, time_signature_ok
    from musicvae.families import family_of

    d = config.data
    if len(ns) == 0:
        return "has no notes"
    # The musical bar: a converter whose rows are not time steps (performance tokens) names it.
    bar_steps = getattr(converter, "time_steps_per_bar", converter.steps_per_bar)
    if not time_signature_ok(ns, d.steps_per_quarter, bar_steps):
        sigs = sorted({f"{s.numerator}/{s.denominator}" for s in ns.time_signatures})
        return f"is not in 4/4 throughout (time signatures: {', '.join(sigs)})"
    if single_tempo(ns.tempos) is None:
        return "changes tempo; the models read a single tempo"
    if np.any(ns.start < 0):
        return "has notes at negative times"
    family = family_of(config)
    drums = int(np.count_nonzero(ns.is_drum))
    # Say what the file holds beside what the model reads: a melody given to a drum model
    # (or drums to a melody model) is the usual mistake.
    if family.voice == "drums":
        held = "no drums" if not drums else "no notes on the drum pitches it reads"
    elif family.voice == "tracks":
        held = "not every track it reads, together in whole bars"
    else:
        held = "only drums" if drums == len(ns) else "no melody of a whole bar"
    return f"holds {held}: config {config.name!r} ({family.label}) reads {family.input_kind}"


def prepare(
    ns: NoteSequence, config: Config, *, name: str | None = None, seed: int | None = None
) -> Prepared:
    """Convert ``ns`` in the converter's 'infer' mode and cut it into windows.

    Input transforms (humanize, tapify, ...) are applied as in training, except note dropout,
    which is switched off: at inference the user's notes are the input. Raises
    ``MusicVAEError`` naming the sequence when it has no 4/4 grid or is shorter than a window.
    """
    from musicvae.data.converters import build_converter
    from musicvae.data.windows import check_bars

    name = name or ns.filename or "input sequence"
    check_bars(ns, name)  # before the grid: a note at 1e7 s would be gigabytes of it
    converter = build_converter(config, "infer")
    window = converter.window_steps
    if window is None:
        raise MusicVAEError(f"config {config.name!r} has no fixed window (split_bars is None)")
    t = converter.sequence_grid(ns, np.random.default_rng(seed))
    if not t.inputs:
        raise MusicVAEError(
            f"{name}: no 4/4 window: the sequence {_no_window_reason(ns, config, converter)}"
        )
    total = int(t.lengths[0])
    spb = converter.steps_per_bar
    if total < window:
        raise MusicVAEError(
            f"{name}: too short: {total // spb} bar(s) of 4/4, config {config.name!r} needs "
            f"at least {window // spb}"
        )
    inputs, starts = cut(np.asarray(t.inputs[0], np.float32), window)
    outputs, _ = cut(np.asarray(t.outputs[0], np.float32), window)
    if config.data.chord_encoding:
        # Chords are the whole sequence's (inferred from every pitched note, or annotated),
        # cut with the windows: a window's melody alone is a poorer guess of its harmony.
        controls, _ = cut(np.asarray(t.controls[0], np.float32), window)
    else:
        # Per window, as in training: a tap model's last step never sees the next window's tap.
        controls = converter.controls_for(inputs, outputs)
    return Prepared(inputs, outputs, controls, starts, total, float(ns.qpm))
