"""Piano-roll pictures: pitch names, program families, and real PNGs of melodies and trios."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.plotting.piano_roll import (
    pitch_name,
    program_family,
    render_piano_roll,
    write_piano_roll,
)


def _sequence(notes: list[tuple[int, int, float, float, bool, int]], qpm: float = 120.0):
    """(pitch, velocity, start, end, is_drum, program) rows."""
    arr = np.array([n[:4] for n in notes], dtype=np.float64).reshape(-1, 4)
    return NoteSequence(
        pitch=arr[:, 0].astype(np.int16),
        velocity=arr[:, 1].astype(np.int16),
        start=arr[:, 2],
        end=arr[:, 3],
        is_drum=np.array([n[4] for n in notes], bool),
        program=np.array([n[5] for n in notes], np.int16),
        tempos=[Tempo(0.0, qpm)],
        time_signatures=[TimeSignature(0.0, 4, 4)],
    )


@pytest.mark.parametrize(
    ("pitch", "name"), [(60, "C4"), (69, "A4"), (21, "A0"), (108, "C8"), (61, "C#4"), (59, "B3")]
)
def test_pitch_names(pitch, name):
    assert pitch_name(pitch) == name


@pytest.mark.parametrize(
    ("program", "family"),
    [(0, "piano"), (7, "piano"), (33, "bass"), (73, "pipe"), (127, "sound effects")],
)
def test_program_families(program, family):
    assert program_family(program) == family


def _image(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_a_melody_is_drawn_with_its_notes_in_colour():
    # Two bars of quarter notes at 120 BPM: half a second each.
    melody = _sequence([(60 + 2 * i, 100, 0.5 * i, 0.5 * i + 0.5, False, 0) for i in range(8)])
    image = _image(render_piano_roll(melody, title="a scale"))
    assert image.shape[2] == 3 and image.shape[1] > image.shape[0] > 100
    # tab10's first colour (blue) fills the note bars; the empty roll has none.
    blue = (image[..., 2].astype(int) - image[..., 0].astype(int)) > 60
    empty = _image(render_piano_roll(_sequence([])))
    assert blue.sum() > 500
    assert ((empty[..., 2].astype(int) - empty[..., 0].astype(int)) > 60).sum() == 0


def test_a_trio_gets_a_drum_lane_and_a_taller_picture(tmp_path):
    melody = [(72, 90, 0.0, 1.0, False, 0), (74, 90, 1.0, 2.0, False, 0)]
    bass = [(36, 90, 0.0, 2.0, False, 33)]
    drums = [(36, 100, 0.0, 0.1, True, 0), (42, 80, 0.5, 0.6, True, 0)]
    trio = write_piano_roll(_sequence(melody + bass + drums), tmp_path / "trio.png", bars=4)
    plain = write_piano_roll(_sequence(melody + bass), tmp_path / "duo.png", bars=4)
    trio_h = Image.open(trio).size[1]
    plain_h = Image.open(plain).size[1]
    assert trio_h > plain_h
    assert Image.open(trio).size[0] == Image.open(plain).size[0]  # same 4 bars wide


def test_write_replaces_nothing_but_its_own_path(tmp_path):
    out = write_piano_roll(_sequence([(60, 100, 0.0, 0.5, False, 0)]), tmp_path / "m.png")
    assert out == tmp_path / "m.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]  # no scratch file left
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
