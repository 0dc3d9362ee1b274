"""Humanize keeps every input note: notes that share a 16th-note cell (flams, drags) are played
with the cell's new timing and dynamics and keep their own spacing and relative velocity."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.configs import get_config
from musicvae.data.converters import build_converter
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.generation.api import HUMANIZE_BUNDLE, load
from tests.generation.helpers import requires_bundle, single_torch_thread

# A funk take in the Groove MIDI Dataset with 92 cells of two notes (flams and drags, onsets
# 16 to 136 ms apart): one note per cell gave 1,954 of its 2,080 notes.
FLAMS = "drummer1/session1/102_funk_95_beat_4-4.mid"
STEP = 0.125  # seconds per 16th note at 120 qpm


def _sequence(notes: list[tuple[int, float, int]]) -> NoteSequence:
    """(pitch, start, velocity) drum notes at 120 qpm in 4/4."""
    pitch, start, velocity = (np.array(x) for x in zip(*notes, strict=True))
    return NoteSequence(
        pitch=pitch,
        velocity=velocity,
        start=start,
        end=start + 0.1,
        is_drum=True,
        program=0,
        tempos=[Tempo(0.0, 120.0)],
        time_signatures=[TimeSignature(0.0, 4, 4)],
    )


@pytest.fixture(scope="module")
def converter():
    return build_converter(get_config("groovae_2bar_humanize"), "infer")


def _outputs(cells: list[tuple[int, int]], velocity: float, offset: float) -> np.ndarray:
    """(32, 27) outputs with a hit of ``velocity`` and ``offset`` at each (step, class)."""
    out = np.zeros((32, 27), np.float32)
    for s, c in cells:
        out[s, c], out[s, 9 + c], out[s, 18 + c] = 1.0, velocity, offset
    return out


def test_notes_sharing_a_cell_follow_its_new_timing_and_dynamics(converter):
    ns = _sequence(
        [
            (36, 0.0, 100),  # kick on step 0
            (42, 0.25, 80),  # closed hi-hat on step 2
            (38, 0.48, 50),  # a flam: its grace note 20 ms ahead...
            (38, 0.50, 100),  # ...of the snare on step 4
            (38, 0.96, 40),  # a drag: two grace notes...
            (40, 0.98, 45),  # (a rim shot, the same class)...
            (38, 1.00, 110),  # ...before the snare on step 8
            (20, 1.50, 70),  # a pitch outside the drum map
        ]
    )
    outputs = _outputs([(0, 0), (2, 2), (4, 1), (8, 1)], velocity=0.5, offset=0.2)
    out = converter.replay(ns, outputs, qpm=120.0)
    assert len(out) == len(ns)
    vel = round(0.5 * 127)  # 64; the offset plays each cell 0.1 step early
    expected = [
        (36, 0.0 * STEP - 0.1 * STEP, vel),
        (42, 1.9 * STEP, vel),
        (38, 3.9 * STEP - 0.02, round(vel * 50 / 100)),
        (38, 3.9 * STEP, vel),
        (38, 7.9 * STEP - 0.04, round(vel * 40 / 110)),
        (38, 7.9 * STEP - 0.02, round(vel * 45 / 110)),  # written as its class, like the rest
        (38, 7.9 * STEP, vel),
        (20, 1.50, 70),  # kept as played
    ]
    assert out.pitch.tolist() == [p for p, _, _ in expected]
    np.testing.assert_allclose(out.start, [t for _, t, _ in expected], atol=1e-9)
    assert out.velocity.tolist() == [v for _, _, v in expected]
    np.testing.assert_allclose((out.end - out.start)[:7], STEP)

    # A single note per cell: exactly from_tensors's notes.
    (plain,) = converter.from_tensors(outputs, qpm=120.0)
    alone = [0, 1, 3, 6]
    assert out.pitch[alone].tolist() == plain.pitch.tolist()
    assert out.start[alone].tolist() == plain.start.tolist()
    assert out.velocity[alone].tolist() == plain.velocity.tolist()

    # At half the tempo the spacing is in steps, so it doubles.
    slow = converter.replay(ns, outputs, qpm=60.0)
    assert slow.start[3] - slow.start[2] == pytest.approx(0.04)
    assert slow.start[-1] == pytest.approx(3.0)


@pytest.fixture(scope="module")
def humanizer():
    with single_torch_thread():
        yield load(HUMANIZE_BUNDLE)


@requires_bundle(HUMANIZE_BUNDLE)
def test_humanize_keeps_every_note_of_a_gmd_take(humanizer, groove_dir):
    played = read_midi(groove_dir / FLAMS)
    out = humanizer.humanize(played, seed=0)
    assert len(played) == len(out) == 2080

    # The input's closest snare flam: two snares in one 16th-note cell, 15.8 ms apart.
    step = 60.0 / played.qpm / 4
    snares = np.flatnonzero(played.pitch == 38)
    cell = np.trunc(played.start[snares] / step + 0.5)
    pairs = [
        (a, b)
        for a, b in zip(snares[:-1], snares[1:], strict=True)
        if cell[snares == a] == cell[snares == b]
    ]
    a, b = min(pairs, key=lambda p: played.start[p[1]] - played.start[p[0]])
    gap = played.start[b] - played.start[a]
    assert 0.010 < gap < 0.020
    # In the output: two snares exactly that far apart (the tempo is the input's), their
    # loudness in the input's proportion.
    made = np.flatnonzero(out.pitch == 38)
    t = out.start[made]
    found = [
        (i, j)
        for i in range(len(made))
        for j in range(i + 1, min(i + 4, len(made)))
        if abs(t[j] - t[i] - gap) < 1e-9
    ]
    assert len(found) == 1
    i, j = made[found[0][0]], made[found[0][1]]  # the flam's first and second onsets
    before, now = played.velocity[[a, b]].astype(int), out.velocity[[i, j]].astype(int)
    loud = int(np.argmax(before))  # the cell's note: it takes the model's velocity
    soft = 1 - loud
    assert now[soft] == round(now[loud] * before[soft] / before[loud])
