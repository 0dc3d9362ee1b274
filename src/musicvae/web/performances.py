"""Multi-track performances as the page sees them: tracks of notes on a fine grid of steps.

A performance travels as JSON: its length in ``steps`` of ``steps_per_quarter`` (24 for Magenta's
multi-track performance models, so a 4/4 bar is 96 steps and triplets and played timing keep
their place), its tempo, and its ``tracks``, each a General MIDI ``program`` (or drums, on
channel 10) and polyphonic ``notes`` with velocities. It is the studio's form of music of any
number of tracks: it is made from a ``NoteSequence`` (a model's decoded output, an uploaded
file), it writes one back (the MIDI and WAV downloads), and a model reads it through its own
converter (``musicvae.web.music``), so nothing here knows a model's token layout. The page
draws each track as a lane: a piano roll on its program, or the drums' pitches on the kit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature

if TYPE_CHECKING:
    from musicvae.generation.api import TrainedModel

# Magenta's multi-track models' grid: 24 steps a quarter note.
STEPS_PER_QUARTER = 24
# 16 bars of 4/4 at 24 steps a quarter: far more than a one-bar model's window.
MAX_STEPS = 16 * 4 * STEPS_PER_QUARTER
# A MIDI file's channels: more tracks than any model reads (Magenta's read 8 at most).
MAX_TRACKS = 16
MAX_TRACK_NOTES = 4096
DEFAULT_VELOCITY = 100


class Note(BaseModel):
    """One note of a track, in steps of its performance's grid."""

    pitch: int = Field(ge=0, le=127, description="MIDI pitch (a drum's, on a drum track)")
    start: int = Field(ge=0, lt=MAX_STEPS, description="the step it starts on")
    end: int = Field(gt=0, le=MAX_STEPS, description="the step after its last one")
    velocity: int = Field(DEFAULT_VELOCITY, ge=1, le=127)


class Track(BaseModel):
    """One instrument: a General MIDI program, or drums, and its notes (chords allowed)."""

    program: int = Field(0, ge=0, le=127, description="General MIDI program (0 on drums)")
    is_drum: bool = Field(False, description="drums, on channel 10")
    notes: list[Note] = Field(max_length=MAX_TRACK_NOTES, description="its notes, in any order")


class Performance(BaseModel):
    """Several tracks played together, ``steps`` steps of ``steps_per_quarter`` long."""

    name: str = Field("", max_length=200, description="label shown on the page")
    qpm: float = Field(120.0, ge=20.0, le=400.0, description="tempo in quarter notes per minute")
    steps_per_quarter: int = Field(
        STEPS_PER_QUARTER, ge=1, le=96, description="the grid's steps per quarter note"
    )
    steps: int = Field(ge=1, le=MAX_STEPS, description="its length in steps of its grid")
    tracks: list[Track] = Field(max_length=MAX_TRACKS, description="its instruments")

    @model_validator(mode="before")
    @classmethod
    def _a_performance(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tracks" not in data:
            what = (
                "a trio"
                if "melody" in data or "drums" in data
                else "a drum groove"
                if "hits" in data
                else "a melody"
                if "notes" in data
                else None
            )
            if what:
                raise ValueError(f"{what}, not a multi-track performance (one has tracks)")
        return data

    @model_validator(mode="after")
    def _check_notes(self) -> Performance:
        for t, track in enumerate(self.tracks):
            for i, n in enumerate(track.notes):
                if not n.start < n.end <= self.steps:
                    raise ValueError(
                        f"track {t} note {i} (pitch {n.pitch}) must start before it ends, "
                        f"within the performance's {self.steps} steps: got steps {n.start} to "
                        f"{n.end}"
                    )
        return self

    def is_empty(self) -> bool:
        return not any(track.notes for track in self.tracks)

    def to_sequence(self) -> NoteSequence:
        """Its tracks at its tempo in 4/4: each on its program, drums on channel 10."""
        seconds = 60.0 / self.qpm / self.steps_per_quarter
        rows = [
            (n.pitch, n.velocity, n.start, n.end, t.is_drum, 0 if t.is_drum else t.program)
            for t in self.tracks
            for n in t.notes
        ]
        cols = list(zip(*rows, strict=True)) if rows else [()] * 6
        return NoteSequence(
            pitch=np.array(cols[0], np.int16),
            velocity=np.array(cols[1], np.int16),
            start=np.array(cols[2], np.float64) * seconds,
            end=np.array(cols[3], np.float64) * seconds,
            is_drum=np.array(cols[4], bool),
            program=np.array(cols[5], np.int16),
            tempos=[Tempo(0.0, float(self.qpm))],
            time_signatures=[TimeSignature(0.0, 4, 4)],
        )

    @classmethod
    def from_sequence(
        cls,
        ns: NoteSequence,
        *,
        steps: int,
        steps_per_quarter: int = STEPS_PER_QUARTER,
        name: str = "",
    ) -> Performance:
        """The first ``steps`` steps of ``ns`` at its tempo, one track per (drums, program),
        pitched tracks by program and the drums last; each note on its nearest step, at least
        one step long, cut at the end."""
        qpm = float(np.clip(ns.qpm, 20.0, 400.0))
        per_second = ns.qpm * steps_per_quarter / 60.0
        start = np.rint(np.asarray(ns.start) * per_second).astype(np.int64)
        end = np.minimum(np.rint(np.asarray(ns.end) * per_second).astype(np.int64), steps)
        tracks: dict[tuple[bool, int], list[Note]] = {}
        for i in np.argsort(start, kind="stable"):
            if start[i] >= steps:
                continue
            drum = bool(ns.is_drum[i])
            key = (drum, 0 if drum else int(ns.program[i]))
            note = Note(
                pitch=int(ns.pitch[i]),
                start=int(start[i]),
                end=int(max(end[i], start[i] + 1)),
                velocity=int(np.clip(ns.velocity[i], 1, 127)),
            )
            tracks.setdefault(key, []).append(note)
        return cls(
            name=name[:200],
            qpm=qpm,
            steps_per_quarter=steps_per_quarter,
            steps=steps,
            tracks=[
                Track(program=program, is_drum=drum, notes=notes)
                for (drum, program), notes in sorted(tracks.items())
            ],
        )


def window_steps(m: TrainedModel) -> tuple[int, int]:
    """A model's window in steps of its musical grid, and that grid's steps per quarter (a
    one-bar multi-track model: 96 and 24)."""
    data = m.config.data
    return m.num_bars * data.quarters_per_bar * data.steps_per_quarter, data.steps_per_quarter


def performances(m: TrainedModel, out: np.ndarray, qpm: float) -> list[Performance]:
    """A model's (N, T, D) outputs as performances of its window, as its converter decodes
    them."""
    steps, spq = window_steps(m)
    return [
        Performance.from_sequence(ns, steps=steps, steps_per_quarter=spq)
        for ns in m.to_sequences(out, qpm)
    ]
