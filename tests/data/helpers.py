"""Tiny drum grooves built in code, and Magenta's fixtures read, shared by the data-stage tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from musicvae.data.converters.base import ConverterTensors
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


# ---------------------------------------------------------------- Magenta's converter fixtures

NOTE_KEYS = ("pitch", "velocity", "start_time", "end_time")


def magenta_gmd_files(magenta_dir: Path) -> list[dict[str, Any]]:
    """The 24 GMD files every GrooVAE converter fixture covers (``converter/index.json``)."""
    files = json.loads((magenta_dir / "converter" / "index.json").read_text())["files"]
    assert len(files) == 24
    return files


def assert_magenta_windows(t: ConverterTensors, ref: Any, k: str) -> None:
    """Our windows of file ``k`` equal Magenta's float64 ``{k}_inputs``/``_outputs`` bit for bit
    once cast to float32 (the dtype ``to_tensors`` returns)."""
    np.testing.assert_array_equal(t.lengths, ref[f"{k}_lengths"], err_msg=k)
    for part in ("inputs", "outputs"):
        ours = np.stack(getattr(t, part))
        np.testing.assert_array_equal(ours, ref[f"{k}_{part}"].astype(np.float32), err_msg=k)


def note_dicts(ns: NoteSequence) -> list[dict[str, Any]]:
    """``ns``'s notes as Magenta's roundtrip fixtures write them (pitch, velocity, times)."""
    return [dict(zip(NOTE_KEYS, note[:4], strict=True)) for note in ns.notes]


def magenta_note_dicts(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A roundtrip fixture's drum notes (all on instrument 9) cut to what ``note_dicts`` gives."""
    assert all(n["is_drum"] and n["instrument"] == 9 for n in notes)
    return [{k: n[k] for k in NOTE_KEYS} for n in notes]
