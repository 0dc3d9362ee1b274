"""Tiny drum grooves built in code, shared by the data-stage tests."""

from __future__ import annotations

from pathlib import Path

from musicvae.data.midi import write_midi
from musicvae.data.sequence import NoteSequence


def kick_groove(
    bars: int, *, qpm: float = 120.0, time_signature: tuple[int, int] = (4, 4), velocity: int = 100
) -> NoteSequence:
    """A kick (pitch 36) on every beat for ``bars`` bars, each note 0.1 s long, on the grid."""
    beat = 60.0 / qpm
    beats = bars * time_signature[0]
    notes = [(36, velocity, i * beat, i * beat + 0.1) for i in range(beats)]
    return NoteSequence.from_notes(notes, qpm=qpm, time_signature=time_signature)


def write_groove(path: Path, bars: int = 2, **kwargs) -> Path:
    """A kick groove written as a MIDI file."""
    return write_midi(kick_groove(bars, **kwargs), path)
