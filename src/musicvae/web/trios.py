"""Trios as the page sees them: a melody, a bass line and drums on one 16th-note grid.

A trio travels as JSON: its length in 16th-note ``steps``, its ``melody`` and ``bass`` (each a
General MIDI ``program`` and ``notes``, as a :class:`~musicvae.web.melodies.Melody` has them)
and its ``drums`` (a :class:`~musicvae.web.grooves.Groove`'s three 9-row matrices). The trio
models read Magenta's ``TrioConverter`` steps: the melody's 90 one-hot classes, the bass's 90
and the drums' 512 patterns (one class per set of the 9 drum classes hit, the studio grid's rows
in the same order), 692 wide. So each line plays one note at a time, as a melody does, and the
drums are hits on the grid without velocities or timing (the models have none); a trio's MIDI
file has three tracks, the melody on its program, the bass on its own (33, Magenta's, unless
changed) and the drums on channel 10.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from musicvae.data.converters.melody import OUTPUT_VELOCITY, PIANO_MIN_PITCH
from musicvae.data.converters.trio import BASS_PROGRAM
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.web.grooves import MAX_STEPS, NUM_ROWS, Groove, studio_converter
from musicvae.web.melodies import Melody, Note

# The trio converter's part widths: melody and bass classes, drum patterns.
LINE_CLASSES = 90
DRUM_PATTERNS = 2**NUM_ROWS
TRIO_DEPTH = 2 * LINE_CLASSES + DRUM_PATTERNS


class Line(BaseModel):
    """A trio's melody or bass: a General MIDI program and its notes, in 16th-note steps."""

    program: int = Field(0, ge=0, le=127, description="General MIDI program it plays on")
    notes: list[Note] = Field(max_length=MAX_STEPS, description="its notes, in any order")


class Trio(BaseModel):
    """A melody, a bass line and drums, ``steps`` 16th notes long."""

    name: str = Field("", max_length=200, description="label shown on the page")
    qpm: float = Field(120.0, ge=20.0, le=400.0, description="tempo in quarter notes per minute")
    steps: int = Field(ge=1, le=MAX_STEPS, description="its length in 16th-note steps")
    melody: Line = Field(description="the melody (Magenta's trios: programs 0-31)")
    bass: Line = Field(
        default_factory=lambda: Line(program=BASS_PROGRAM, notes=[]),
        description="the bass line (program 33 unless changed)",
    )
    drums: Groove = Field(description="the drums: hits on the grid (velocities are kept)")

    @model_validator(mode="before")
    @classmethod
    def _a_trio(cls, data: Any) -> Any:
        if isinstance(data, dict) and "melody" not in data and "drums" not in data:
            what = "a drum groove" if "hits" in data else "a melody" if "notes" in data else None
            if what:
                raise ValueError(f"{what}, not a trio (a trio has a melody, a bass and drums)")
        return data

    @model_validator(mode="after")
    def _check_lengths(self) -> Trio:
        if self.drums.steps != self.steps:
            raise ValueError(
                f"the drums must be the trio's {self.steps} steps long, got {self.drums.steps}"
            )
        for part in ("melody", "bass"):
            for i, n in enumerate(getattr(self, part).notes):
                if not n.start < n.end <= self.steps:
                    raise ValueError(
                        f"{part} note {i} (pitch {n.pitch}) must start before it ends, within "
                        f"the trio's {self.steps} steps: got steps {n.start} to {n.end}"
                    )
        return self

    def line(self, part: str) -> Melody:
        """The melody or the bass as a :class:`Melody` of the trio's length and tempo."""
        line: Line = getattr(self, part)
        return Melody(
            name=self.name, qpm=self.qpm, program=line.program, steps=self.steps, notes=line.notes
        )

    @property
    def program(self) -> int:
        """The melody's program (what a trio made from this one plays its melody on)."""
        return self.melody.program

    def is_empty(self) -> bool:
        return not (self.melody.notes or self.bass.notes or any(map(any, self.drums.hits)))

    def array(self, steps: int | None = None) -> np.ndarray:
        """The trio models' layout, (T, 692) float32: one-hot melody, bass and drum pattern
        per step (longer pads with no event and no hits, shorter cuts)."""
        total = self.steps if steps is None else steps
        # Every piano pitch (the notes' range) is one of the lines' 90 classes.
        parts = [
            self.line(part).array(LINE_CLASSES, PIANO_MIN_PITCH, total)
            for part in ("melody", "bass")
        ]
        hits = np.zeros((total, NUM_ROWS), np.int64)
        grid = np.asarray(self.drums.hits, np.int64).T[:total]
        hits[: len(grid)] = grid
        patterns = hits @ (1 << np.arange(NUM_ROWS))
        drums = np.zeros((total, DRUM_PATTERNS), np.float32)
        drums[np.arange(total), patterns] = 1.0
        parts.append(drums)
        return np.concatenate(parts, axis=1)

    @classmethod
    def from_array(
        cls,
        arr: np.ndarray,
        *,
        qpm: float = 120.0,
        name: str = "",
        program: int = 0,
        bass_program: int = BASS_PROGRAM,
    ) -> Trio:
        """A trio from (T, 692) one-hots (or logits): the argmax of each part at each step;
        drum hits at Magenta's output velocity (80)."""
        arr = np.asarray(arr)
        if arr.ndim != 2 or arr.shape[1] != TRIO_DEPTH:
            raise ValueError(f"expected a (T, {TRIO_DEPTH}) array, got {arr.shape}")
        lines = [
            Melody.from_classes(
                arr[:, lo : lo + LINE_CLASSES].argmax(-1), min_pitch=PIANO_MIN_PITCH
            )
            for lo in (0, LINE_CLASSES)
        ]
        patterns = arr[:, 2 * LINE_CLASSES :].argmax(-1)
        hits = (patterns[None] >> np.arange(NUM_ROWS)[:, None]) & 1  # (9, T)
        grid = np.zeros((len(arr), 3 * NUM_ROWS), np.float32)
        grid[:, :NUM_ROWS] = hits.T
        grid[:, NUM_ROWS : 2 * NUM_ROWS] = hits.T * (OUTPUT_VELOCITY / 127)
        return cls(
            name=name[:200],
            qpm=float(np.clip(qpm, 20.0, 400.0)),
            steps=len(arr),
            melody=Line(program=program, notes=lines[0].notes),
            bass=Line(program=bass_program, notes=lines[1].notes),
            drums=Groove.from_array(grid, qpm=qpm),
        )

    def to_sequence(self) -> NoteSequence:
        """Its three parts at its tempo in 4/4: each line on its program (one note at a time,
        as the models read it), the drums on channel 10 at each class's first pitch."""
        parts = [self.line("melody").to_sequence(), self.line("bass").to_sequence()]
        parts.append(
            self.drums.model_copy(update={"qpm": self.qpm}).to_sequence(studio_converter())
        )
        return NoteSequence(
            pitch=np.concatenate([p.pitch for p in parts]),
            velocity=np.concatenate([p.velocity for p in parts]),
            start=np.concatenate([p.start for p in parts]),
            end=np.concatenate([p.end for p in parts]),
            is_drum=np.concatenate([p.is_drum for p in parts]),
            program=np.concatenate([p.program for p in parts]),
            tempos=[Tempo(0.0, float(self.qpm))],
            time_signatures=[TimeSignature(0.0, 4, 4)],
        )
