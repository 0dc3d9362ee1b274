"""Loop-length renders: exactly the music's bars, the ring past the end folded onto the start or
cut, so that a WAV drops into a DAW's loop; the default render is unchanged."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from musicvae.audio import SAMPLE_RATE, TAIL_S, as_loop, loop_seconds, render, write_wav
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.errors import MusicVAEError

STEP = 0.125  # a 16th note at 120 BPM


def _groove(onsets: list[float], qpm: float = 120.0, signature=(4, 4)) -> NoteSequence:
    """Crashes (the longest ring) at ``onsets`` seconds, one 16th note long."""
    start = np.array(onsets, np.float64)
    return NoteSequence(
        pitch=np.full(len(start), 49),
        velocity=np.full(len(start), 100),
        start=start,
        end=start + 60.0 / qpm / 4,
        is_drum=np.ones(len(start), bool),
        program=np.zeros(len(start), np.int16),
        tempos=[Tempo(0.0, qpm)],
        time_signatures=[TimeSignature(0.0, *signature)],
    )


def test_loop_seconds_are_the_whole_bars_that_hold_every_onset():
    assert loop_seconds(_groove([0.0, 63 * STEP])) == 8.0  # 4 bars at 120 BPM
    assert loop_seconds(_groove([0.0, 63.5 * STEP])) == 8.0  # the last step, played late
    assert loop_seconds(_groove([0.0, 63.9 * STEP])) == 8.0  # bar 5's downbeat, early
    assert loop_seconds(_groove([0.0, 64 * STEP])) == 10.0  # bar 5's downbeat
    assert loop_seconds(_groove([0.5])) == 2.0  # at least one bar
    assert loop_seconds(_groove([0.0, 7.9], qpm=90.0)) == pytest.approx(8.0)  # 3 bars of 2.67 s
    assert loop_seconds(_groove([0.0, 4.0], signature=(3, 4))) == pytest.approx(4.5)


def test_fold_adds_the_ring_onto_the_start_and_cut_drops_it():
    samples = np.linspace(-0.4, 0.4, 1000, dtype=np.float32)
    seconds = 300 / SAMPLE_RATE
    cut = as_loop(samples, seconds, "cut")
    assert cut.dtype == np.float32 and np.array_equal(cut, samples[:300])
    folded = as_loop(samples, seconds, "fold")
    # 1,000 samples in a 300-sample loop: the ring wraps three times (the last in part).
    expected = samples[:300].astype(np.float64) + samples[300:600] + samples[600:900]
    expected[:100] += samples[900:]
    np.testing.assert_allclose(folded, expected, atol=1e-6)
    # Stereo folds per channel; a short render is padded with silence.
    stereo = np.stack([samples, -samples], axis=1)
    assert as_loop(stereo, seconds, "fold").shape == (300, 2)
    padded = as_loop(samples[:100], seconds, "fold")
    assert len(padded) == 300 and not padded[100:].any()


def test_a_fold_that_would_clip_is_scaled_down():
    loud = np.full(200, 0.9, np.float32)
    folded = as_loop(loud, 100 / SAMPLE_RATE, "fold")
    assert np.allclose(folded, 0.98)


def test_bad_loops_are_one_line_errors():
    with pytest.raises(MusicVAEError, match="loop 'wrap': expected one of fold, cut"):
        as_loop(np.zeros(10), 1.0, "wrap")
    with pytest.raises(MusicVAEError, match="expected a positive length"):
        as_loop(np.zeros(10), 0.0, "cut")


def test_a_4_bar_groove_at_120_bpm_is_exactly_8_seconds(tmp_path):
    groove = _groove([i * 4 * STEP for i in range(16)])  # a crash on every beat, the last at 7.5 s
    plain = write_wav(groove, tmp_path / "plain.wav")
    folded = write_wav(groove, tmp_path / "fold.wav", loop="fold")
    cut = write_wav(groove, tmp_path / "cut.wav", loop="cut")
    frames = {}
    for path in (plain, folded, cut):
        with wave.open(str(path)) as w:
            frames[path.stem] = w.getnframes()
    # As before by default: the last crash rings on past the loop.
    assert frames["plain"] == int((7.5 + STEP + TAIL_S) * SAMPLE_RATE) + 1
    assert frames["fold"] == frames["cut"] == 8 * SAMPLE_RATE == 352_800
    samples = render(groove)
    np.testing.assert_allclose(as_loop(samples, 8.0, "cut"), samples[:352_800])
    # The ring past 8 s is at the start of the folded loop, as when the loop repeats.
    start = as_loop(samples, 8.0, "fold")[:1000] - samples[:1000]
    np.testing.assert_allclose(start, samples[352_800:353_800], atol=1e-6)
    # An explicit length: a groove whose last bars are empty is still its whole window.
    with wave.open(str(write_wav(groove, tmp_path / "w.wav", loop="cut", seconds=16.0))) as w:
        assert w.getnframes() == 16 * SAMPLE_RATE
