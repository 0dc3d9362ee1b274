"""Drum-grid PNGs: files written atomically, size follows the bar count, grids from notes."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from musicvae.data.sequence import NoteSequence
from musicvae.plotting.drum_grid import (
    render_drum_grid,
    sequence_to_grid,
    write_drum_grid,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


def four_bars() -> np.ndarray:
    g = np.zeros((64, 27), np.float32)
    g[::4, 0] = 1.0  # kick on every beat
    g[::4, 9] = 0.8
    g[2::4, 2] = 1.0  # off-beat hats, played early
    g[2::4, 11] = 0.4
    g[2::4, 20] = 0.6
    return g


def test_write_png(tmp_path):
    path = write_drum_grid(four_bars(), tmp_path / "out" / "groove.png", title="test")
    data = path.read_bytes()
    width, height = png_size(data)
    assert width > 600 and height > 150
    assert [p.name for p in path.parent.iterdir()] == ["groove.png"]  # no temp file left


def test_long_grooves_wrap_onto_rows():
    one_row = png_size(render_drum_grid(four_bars()))
    three_rows = png_size(render_drum_grid(np.tile(four_bars(), (3, 1))))  # 12 bars
    assert three_rows[0] == pytest.approx(one_row[0], rel=0.05)
    assert three_rows[1] > 2.2 * one_row[1]


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\(T, 27\)"):
        render_drum_grid(np.zeros((16, 9)))


def test_sequence_to_grid_hand_values():
    # 120 qpm: a 16th is 0.125 s. A snare at 0.51 s is step 4 played 0.01 s late.
    ns = NoteSequence.from_notes(
        [(38, 64, 0.51, 0.6), (36, 127, 0.0, 0.1), (36, 30, 0.01, 0.1), (47, 90, 0.25, 0.3)]
    )
    g = sequence_to_grid(ns, num_steps=16)
    assert g.shape == (16, 27)
    assert g[4, 1] == 1.0
    assert g[4, 10] == pytest.approx(64 / 127)
    assert g[4, 19] == pytest.approx(2 * (0.5 - 0.51) / 0.125)
    assert g[0, 9] == pytest.approx(1.0)  # the louder of two kicks in one step
    # 47 is a mid tom in both maps; 45/48 differ between the inference and training maps.
    assert g[2, 5] == 1.0
    roland = sequence_to_grid(NoteSequence.from_notes([(45, 90, 0.0, 0.1)]), mode="train")
    assert roland[0, 5] == 1.0
    assert sequence_to_grid(NoteSequence.from_notes([(45, 90, 0.0, 0.1)]))[0, 4] == 1.0


def test_picture_and_model_put_a_half_step_note_on_the_same_step():
    # 120 qpm, 16ths of 0.125 s: a kick at 0.0625 s is exactly half a step late. The model's
    # quantiser rounds half up (step 1); np.round would say step 0.
    from musicvae.configs import get_config
    from musicvae.data.converters import build_converter

    ns = NoteSequence.from_notes([(36, 100, 0.0625, 0.1), (38, 80, 0.5, 0.6)])
    picture = sequence_to_grid(ns, num_steps=16)
    model = build_converter(get_config("groovae_4bar"), "infer").sequence_grid(ns).outputs[0]
    assert picture[1, 0] == 1.0 and picture[0, 0] == 0.0
    np.testing.assert_array_equal(picture, model[:16])


def test_png_from_a_sequence(tmp_path):
    ns = NoteSequence.from_notes([(36, 100, i * 0.5, i * 0.5 + 0.1) for i in range(8)])
    data = render_drum_grid(ns)
    assert data[:8] == PNG_MAGIC
