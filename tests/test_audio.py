"""The built-in drum kit: WAV format, length, onsets at the note times, distinct voices."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from musicvae.audio import SAMPLE_RATE, TAIL_S, render, voices, wav_bytes, write_wav
from musicvae.cli.main import main
from musicvae.data.midi import write_midi
from musicvae.data.sequence import NoteSequence

KICK, SNARE, CLOSED_HH, OPEN_HH = 36, 38, 42, 46


def _onsets(x: np.ndarray, frame: int = 220) -> list[float]:
    """Times (s) where a 5 ms frame's energy jumps 20x over the frame before (after silence)."""
    n = len(x) // frame
    energy = np.concatenate([[0.0], (x[: n * frame].reshape(n, frame) ** 2).sum(1)]) + 1e-9
    jumps = np.nonzero(energy[1:] > 20 * energy[:-1])[0]
    out: list[float] = []
    for j in jumps:
        t = j * frame / SAMPLE_RATE
        if not out or t - out[-1] > 0.05:
            out.append(t)
    return out


def test_onsets_fall_at_the_note_times_and_length_is_the_grooves():
    times = [0.0, 0.5, 1.25, 2.0]
    ns = NoteSequence.from_notes([(KICK, 100, t, t + 0.1) for t in times])
    x = render(ns)
    assert len(x) == int((2.1 + TAIL_S) * SAMPLE_RATE) + 1
    found = _onsets(x)
    assert len(found) == len(times)
    for got, want in zip(found, times, strict=True):
        assert abs(got - want) <= 0.006  # within a frame and a bit


def test_velocity_scales_loudness_and_unknown_pitches_are_silent():
    loud = render(NoteSequence.from_notes([(SNARE, 127, 0.0, 0.1)]))
    soft = render(NoteSequence.from_notes([(SNARE, 32, 0.0, 0.1)]))
    assert np.abs(soft).max() == pytest.approx(np.abs(loud).max() * 32 / 127, rel=1e-3)
    assert 0.3 < np.abs(loud).max() < 0.98  # headroom, no clipping
    assert not render(NoteSequence.from_notes([(100, 100, 0.0, 0.1)])).any()


def _centroid(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return float((spec * freqs).sum() / spec.sum())


def _peak(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[spec.argmax()])


def test_voices_are_distinguishable():
    kit = voices()
    c = [_centroid(v) for v in kit]
    kick, snare, closed, open_, low, mid, high, crash, ride = c
    pitch = [_peak(v) for v in kit]
    assert pitch[0] < pitch[4] < pitch[5] < pitch[6]  # kick below the low, mid and high toms
    assert max(low, mid, high) < snare < closed  # from boom to tick
    assert min(crash, ride, open_) > snare
    # Closed and open hats differ in length, as do crash and ride.
    assert len(kit[3]) > 3 * len(kit[2]) and len(kit[7]) > len(kit[8])


def test_a_closed_hat_chokes_an_open_one():
    ringing = render(NoteSequence.from_notes([(OPEN_HH, 100, 0.0, 0.1)]))
    choked = render(NoteSequence.from_notes([(OPEN_HH, 100, 0.0, 0.1), (CLOSED_HH, 1, 0.1, 0.2)]))
    w = slice(int(0.2 * SAMPLE_RATE), int(0.3 * SAMPLE_RATE))
    assert np.abs(choked[w]).max() < 0.05 * np.abs(ringing[w]).max()


def test_wav_header_and_frames(tmp_path):
    ns = NoteSequence.from_notes([(KICK, 100, 0.0, 0.1), (SNARE, 90, 0.5, 0.6)])
    data = wav_bytes(render(ns))
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
        assert w.getnframes() == len(render(ns))
    assert write_wav(ns, tmp_path / "x.wav").read_bytes() == data


def test_render_command(tmp_path, capsys):
    midi = write_midi(NoteSequence.from_notes([(KICK, 100, 0.0, 0.1)]), tmp_path / "k.mid")
    assert main(["render", str(midi), "-o", str(tmp_path / "k.wav")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "k.wav").read_bytes()[:4] == b"RIFF"
