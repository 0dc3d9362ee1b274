"""Melodies as the page sees them: notes on a 16th-note grid, and their conversion to tensors.

A melody travels as JSON: its length in 16th-note ``steps``, its General MIDI ``program`` and its
``notes``, each a pitch, a first step, the step after its last one and a velocity. The models read
Magenta's one-hot melody classes (0 = no event, 1 = note-off, 2 + pitch - 21 = a note starts at a
piano pitch), so a melody here is monophonic: a note that starts while another sounds cuts it, and
of two notes starting together the higher one plays, as note_seq's melody extraction keeps it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from musicvae.data.converters.melody import (
    NUM_SPECIAL_EVENTS,
    OUTPUT_VELOCITY,
    PIANO_MAX_PITCH,
    PIANO_MIN_PITCH,
)
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.errors import MusicVAEError
from musicvae.web.grooves import MAX_STEPS

NOTE_OFF = 1  # the one-hot class of a note-off; 0 is "no event"
STEPS_PER_QUARTER = 4


class Note(BaseModel):
    """One note of a melody, in 16th-note steps."""

    pitch: int = Field(ge=PIANO_MIN_PITCH, le=PIANO_MAX_PITCH, description="MIDI pitch (piano)")
    start: int = Field(ge=0, lt=MAX_STEPS, description="the step it starts on")
    end: int = Field(gt=0, le=MAX_STEPS, description="the step after its last one")
    velocity: int = Field(OUTPUT_VELOCITY, ge=1, le=127)


class Melody(BaseModel):
    """One monophonic melody: ``steps`` 16th notes long, on General MIDI ``program``."""

    name: str = Field("", max_length=200, description="label shown on the page")
    qpm: float = Field(120.0, ge=20.0, le=400.0, description="tempo in quarter notes per minute")
    program: int = Field(0, ge=0, le=127, description="General MIDI program it plays on")
    steps: int = Field(ge=1, le=MAX_STEPS, description="its length in 16th-note steps")
    notes: list[Note] = Field(max_length=MAX_STEPS, description="its notes, in any order")

    @model_validator(mode="before")
    @classmethod
    def _not_a_groove(cls, data: Any) -> Any:
        if isinstance(data, dict) and "hits" in data and "notes" not in data:
            raise ValueError("a drum groove, not a melody (a melody has steps and notes)")
        return data

    @model_validator(mode="after")
    def _check_notes(self) -> Melody:
        for i, n in enumerate(self.notes):
            if not n.start < n.end <= self.steps:
                raise ValueError(
                    f"note {i} (pitch {n.pitch}) must start before it ends, within the "
                    f"melody's {self.steps} steps: got steps {n.start} to {n.end}"
                )
        return self

    def classes(self, min_pitch: int = PIANO_MIN_PITCH, steps: int | None = None) -> np.ndarray:
        """The one-hot class of each of ``steps`` steps (default: its own length; longer pads
        with "no event", shorter cuts), (T,) int64."""
        total = self.steps if steps is None else steps
        out = np.zeros(max(total, self.steps), np.int64)
        notes = sorted(self.notes, key=lambda n: (n.start, n.pitch))
        for n in notes:  # note-offs first: an onset on the same step replaces one
            if n.end < len(out):
                out[n.end] = NOTE_OFF
        for n in notes:  # in onset order, the higher pitch last: it wins a shared step
            out[n.start] = n.pitch - min_pitch + NUM_SPECIAL_EVENTS
        return out[:total]

    def array(
        self, depth: int, min_pitch: int = PIANO_MIN_PITCH, steps: int | None = None
    ) -> np.ndarray:
        """The model's one-hot layout, (T, depth) float32."""
        classes = self.classes(min_pitch, steps)
        if classes.max(initial=0) >= depth:
            top = min_pitch + depth - NUM_SPECIAL_EVENTS - 1
            raise MusicVAEError(
                f"{self.name or 'melody'}: a note is above the model's range (pitch {top} at most)"
            )
        out = np.zeros((len(classes), depth), np.float32)
        out[np.arange(len(classes)), classes] = 1.0
        return out

    @classmethod
    def from_classes(
        cls,
        classes: np.ndarray,
        *,
        qpm: float = 120.0,
        name: str = "",
        program: int = 0,
        min_pitch: int = PIANO_MIN_PITCH,
    ) -> Melody:
        """A melody from per-step one-hot classes: each note lasts until the next onset or
        note-off, or the end."""
        classes = np.asarray(classes, np.int64)
        onsets = np.flatnonzero(classes >= NUM_SPECIAL_EVENTS)
        boundaries = np.append(np.flatnonzero(classes != 0), len(classes))
        ends = boundaries[np.searchsorted(boundaries, onsets, side="right")]
        notes = [
            Note(
                pitch=int(classes[s]) - NUM_SPECIAL_EVENTS + min_pitch,
                start=int(s),
                end=int(e),
                velocity=OUTPUT_VELOCITY,
            )
            for s, e in zip(onsets, ends, strict=True)
        ]
        return cls(
            name=name[:200],
            qpm=float(np.clip(qpm, 20.0, 400.0)),
            program=program,
            steps=len(classes),
            notes=notes,
        )

    @classmethod
    def from_array(cls, arr: np.ndarray, **kwargs: Any) -> Melody:
        """A melody from a (T, D) one-hot (or logits) array: the argmax of each step."""
        arr = np.asarray(arr)
        if arr.ndim != 2:
            raise ValueError(f"expected a (T, D) array, got {arr.shape}")
        return cls.from_classes(arr.argmax(-1), **kwargs)

    def monophonic(self) -> list[Note]:
        """Its notes as the models read them, one at a time (see the module docstring), each
        with its own velocity."""
        ordered = sorted(self.notes, key=lambda n: (n.start, n.pitch))
        velocity = {n.start: n.velocity for n in ordered}  # the highest of a step's onsets
        plain = Melody.from_classes(self.classes()).notes
        return [n.model_copy(update={"velocity": velocity[n.start]}) for n in plain]

    def to_sequence(self) -> NoteSequence:
        """Its notes (monophonic, as the models read it) at its tempo in 4/4, on its program."""
        notes = self.monophonic()
        step = 60.0 / self.qpm / STEPS_PER_QUARTER
        return NoteSequence(
            pitch=np.array([n.pitch for n in notes], np.int16),
            velocity=np.array([n.velocity for n in notes], np.int16),
            start=np.array([n.start * step for n in notes], np.float64),
            end=np.array([n.end * step for n in notes], np.float64),
            is_drum=np.zeros(len(notes), bool),
            program=np.full(len(notes), self.program, np.int16),
            tempos=[Tempo(0.0, float(self.qpm))],
            time_signatures=[TimeSignature(0.0, 4, 4)],
        )


def main_program(ns: NoteSequence) -> int:
    """The General MIDI program most of ``ns``'s pitched notes play on (0 when it has none)."""
    programs = ns.program[~ns.is_drum]
    return int(np.bincount(programs).argmax()) if len(programs) else 0
