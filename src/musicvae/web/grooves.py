"""Grooves as the page sees them: a 9 x T drum grid, and its conversion to tensors and sequences.

A groove travels as JSON with three 9-row matrices over T sixteenth-note steps: ``hits`` (0/1),
``velocities`` (0-1, MIDI velocity / 127) and ``offsets`` (-1..1, positive = played ahead of the
step), which are exactly the three thirds of GrooVAE's (T, 27) tensor transposed. Rows are the
converter's drum classes: kick, snare, closed hi-hat, open hi-hat, low/mid/high tom, crash, ride.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, Field, model_validator

from musicvae.data.converters import Converter
from musicvae.data.converters.groove import (
    DRUM_CLASS_LABELS,
    DRUM_CLASS_LONG_NAMES,
    REDUCED_DRUM_PITCH_CLASSES,
)
from musicvae.data.sequence import NoteSequence, TimeSignature
from musicvae.errors import MusicVAEError

DRUM_NAMES = DRUM_CLASS_LONG_NAMES
DRUM_LABELS = DRUM_CLASS_LABELS
# Each row's General MIDI drum pitch: the first of its class in the map the studio's converter
# writes MIDI files with (inference mode), so Web MIDI out and a downloaded file agree.
DRUM_PITCHES = tuple(pitches[0] for pitches in REDUCED_DRUM_PITCH_CLASSES)
NUM_ROWS = len(DRUM_NAMES)
# 32 bars: far more than any model window, small enough that a request stays a few hundred KB.
MAX_STEPS = 512
Bit = Annotated[int, Field(ge=0, le=1)]


class Groove(BaseModel):
    """One drum pattern: three 9 x T matrices (rows = drum classes, columns = 16th-note steps)."""

    name: str = Field("", max_length=200, description="label shown on the page")
    qpm: float = Field(120.0, ge=20.0, le=400.0, description="tempo in quarter notes per minute")
    hits: list[list[Bit]] = Field(description="9 rows of T values, 1 where a drum is struck")
    velocities: list[list[float]] = Field(description="9 rows of T values in [0, 1]")
    offsets: list[list[float]] = Field(
        description="9 rows of T values in [-1, 1]: 2 x (grid time - onset) / step, >0 = early"
    )

    @model_validator(mode="after")
    def _check_shape(self) -> Groove:
        for part in ("hits", "velocities", "offsets"):
            rows = getattr(self, part)
            if len(rows) != NUM_ROWS:
                raise ValueError(
                    f"{part} must have {NUM_ROWS} rows (one per drum), got {len(rows)}"
                )
            lengths = {len(r) for r in rows}
            if len(lengths) != 1:
                raise ValueError(f"{part} rows differ in length: {sorted(lengths)}")
        steps = {len(self.hits[0]), len(self.velocities[0]), len(self.offsets[0])}
        if len(steps) != 1:
            raise ValueError(f"hits, velocities and offsets differ in length: {sorted(steps)}")
        n = steps.pop()
        if not 1 <= n <= MAX_STEPS:
            raise ValueError(f"a groove must have 1 to {MAX_STEPS} steps, got {n}")
        vel = np.asarray(self.velocities, np.float64)
        off = np.asarray(self.offsets, np.float64)
        if not (np.isfinite(vel).all() and np.isfinite(off).all()):
            raise ValueError("values must be finite numbers")
        if vel.min() < 0 or vel.max() > 1:
            raise ValueError("velocities must lie in [0, 1]")
        if np.abs(off).max() > 1:
            raise ValueError("offsets must lie in [-1, 1]")
        return self

    @property
    def steps(self) -> int:
        return len(self.hits[0])

    def array(self) -> np.ndarray:
        """The GrooVAE tensor layout, (T, 27) float32; empty cells are zero in all three parts."""
        hits = np.asarray(self.hits, np.float32)
        parts = [hits, np.asarray(self.velocities, np.float32) * hits]
        parts.append(np.asarray(self.offsets, np.float32) * hits)
        return np.concatenate(parts, axis=0).T.copy()

    @classmethod
    def from_array(cls, arr: np.ndarray, *, qpm: float = 120.0, name: str = "") -> Groove:
        """A groove from a (T, 27) tensor; values rounded so the JSON stays small."""
        arr = np.asarray(arr, np.float64)
        if arr.ndim != 2 or arr.shape[1] != 3 * NUM_ROWS:
            raise ValueError(f"expected a (T, {3 * NUM_ROWS}) array, got {arr.shape}")
        hits = (arr[:, :NUM_ROWS] > 0.5).astype(np.float64)
        vel = np.clip(arr[:, 9:18], 0.0, 1.0) * hits
        off = np.clip(arr[:, 18:], -1.0, 1.0) * hits
        return cls(
            name=name[:200],
            qpm=float(np.clip(qpm, 20.0, 400.0)),
            hits=hits.T.astype(int).tolist(),
            velocities=np.round(vel.T, 4).tolist(),
            offsets=np.round(off.T, 4).tolist(),
        )

    def to_sequence(self, converter: Converter) -> NoteSequence:
        """Notes at this groove's tempo in 4/4, written with the converter's pitch map."""
        (ns,) = converter.from_tensors(self.array()[None], qpm=self.qpm)
        # A hit played ahead of step 0 would start before the file does; MIDI cannot say that.
        ns.start = np.maximum(ns.start, 0.0)
        ns.time_signatures = [TimeSignature(0.0, 4, 4)]
        return ns


def studio_converter() -> Converter:
    """The studio's grid: GrooVAE's 16th-note drum grid as the 4-bar model's converter makes it
    (inference mode)."""
    global _STUDIO_CONVERTER
    if _STUDIO_CONVERTER is None:
        from musicvae.configs import get_config
        from musicvae.data.converters import build_converter

        _STUDIO_CONVERTER = build_converter(get_config("groovae_4bar"), "infer")
    return _STUDIO_CONVERTER


_STUDIO_CONVERTER: Converter | None = None


def pattern_groove(ns: NoteSequence, steps: int, *, name: str = "") -> Groove:
    """A drum sequence (a one-hot or NADE drum model's, say) on the studio's grid: ``steps``
    steps long, each hit at its note's velocity and on the grid."""
    grid = np.zeros((steps, 3 * NUM_ROWS), np.float32)
    if len(ns):
        whole = studio_converter().sequence_grid(ns, transform=False)
        if len(whole):
            got = np.asarray(whole.outputs[0], np.float32)[:steps]
            grid[: len(got)] = got
    return Groove.from_array(grid, qpm=ns.qpm, name=name)


def upload_grid(ns: NoteSequence, converter: Converter) -> np.ndarray:
    """The whole sequence as one (N, 27) grid, N a whole number of bars.

    The model's converter cuts sequences into fixed windows and drops a short tail; a page wants
    every bar of an uploaded file, so the same quantisation runs here without the windowing or
    the model's input transforms.
    """
    whole = converter.sequence_grid(ns, transform=False)
    if not len(whole):
        name = ns.filename or "sequence"
        raise MusicVAEError(
            f"{name}: no drum pattern found (it needs drum notes, one tempo and a 4/4 time "
            "signature throughout)"
        )
    return whole.outputs[0]


def split_windows(grid: np.ndarray, steps: int, limit: int) -> list[np.ndarray]:
    """At most ``limit`` consecutive windows of ``steps`` rows; the last is zero-padded."""
    out: list[np.ndarray] = []
    for start in range(0, len(grid), steps):
        if len(out) == limit:
            break
        window = grid[start : start + steps]
        if len(window) < steps:
            window = np.concatenate(
                [window, np.zeros((steps - len(window), grid.shape[1]), grid.dtype)]
            )
        out.append(window)
    return out
