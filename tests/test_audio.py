"""The built-in sounds: the drum kit (WAV format, length, onsets at the note times, distinct
voices) and the melodic voices (pitch, duration, timbre by program family, no kit)."""

from __future__ import annotations

import io
import time
import wave

import numpy as np
import pytest

import musicvae.io
from musicvae import audio
from musicvae.audio import (
    MASTER_GAIN,
    SAMPLE_RATE,
    TAIL_S,
    render,
    timbre_for,
    voices,
    wav_bytes,
    write_wav,
)
from musicvae.cli.main import main
from musicvae.data.midi import write_midi
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError

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


# ---------------------------------------------------------------- melodic voices


def _melody(notes: list[tuple[int, int, float, float]], program: int = 0) -> NoteSequence:
    ns = NoteSequence.from_notes(notes, is_drum=False)
    ns.program[:] = program
    return ns


def _note(pitch: int, program: int = 0, dur: float = 1.0, vel: int = 100) -> np.ndarray:
    return render(_melody([(pitch, vel, 0.0, dur)], program))


def _harmonics(x: np.ndarray, f0: float, k: int = 8) -> np.ndarray:
    """The magnitudes of the first ``k`` harmonics of ``f0``, as fractions of their sum."""
    spec = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    v = np.array([spec[np.abs(freqs - f0 * i) < 5].max() for i in range(1, k + 1)])
    return v / v.sum()


def _rms(x: np.ndarray, t0: float, t1: float) -> float:
    return float(np.sqrt((x[int(t0 * SAMPLE_RATE) : int(t1 * SAMPLE_RATE)] ** 2).mean()))


# One program of each family the voices tell apart: piano, chromatic percussion, organ, guitar,
# bass, strings, brass, reed, pipe, synth lead, synth pad.
FAMILIES = [0, 8, 16, 24, 32, 40, 56, 64, 72, 80, 88]


@pytest.mark.parametrize("program", FAMILIES)
@pytest.mark.parametrize(("pitch", "hz"), [(69, 440.0), (81, 880.0), (57, 220.0), (36, 65.41)])
def test_a_melodic_note_sounds_at_its_pitch(pitch, hz, program):
    x = _note(pitch, program)
    assert _peak(x) == pytest.approx(hz, abs=0.5)  # A4 = 440 Hz, equal temperament


def test_a_melody_plays_no_drum_kit(monkeypatch):
    kit = voices()
    # Drum pitches on a melodic track: tones at their pitches, never the kick, snare or hats.
    for pitch in (KICK, SNARE, CLOSED_HH, OPEN_HH):
        x = _note(pitch, dur=0.3)
        assert _peak(x) == pytest.approx(440 * 2 ** ((pitch - 69) / 12), abs=2)
        drum = render(NoteSequence.from_notes([(pitch, 100, 0.0, 0.3)]))
        assert _peak(drum) != pytest.approx(_peak(x), abs=5)
    kick = kit[0][: int(0.3 * SAMPLE_RATE)]
    tone36 = _note(KICK, dur=0.3)[: len(kick)]
    corr = abs(np.dot(kick, tone36)) / np.linalg.norm(kick) / np.linalg.norm(tone36)
    assert corr < 0.2
    # A melody-only render does not even build the kit.
    monkeypatch.setattr(audio, "voices", lambda seed=0: pytest.fail("built the drum kit"))
    assert np.abs(render(_melody([(KICK, 100, 0.0, 0.5), (SNARE, 100, 0.5, 1.0)]))).max() > 0.1


def test_drum_notes_render_exactly_as_before():
    kick = voices()[0]
    x = render(NoteSequence.from_notes([(KICK, 127, 0.0, 0.1)]))
    # Bit for bit the kit's kick at full velocity, then silence.
    assert np.array_equal(x[: len(kick)], (kick * MASTER_GAIN).astype(np.float32))
    assert not x[len(kick) :].any()
    # A melody beside the drums leaves every drum sample as the drums alone render it.
    drums = NoteSequence.from_notes([(KICK, 100, 0.0, 0.1), (SNARE, 80, 3.0, 3.1)])
    both = NoteSequence.from_notes(
        [n[:4] for n in drums.notes] + [(60, 90, 1.0, 2.0), (64, 90, 1.0, 2.0)]
    )
    both.is_drum[:] = np.isin(both.pitch, [KICK, SNARE])
    alone, mixed = render(drums), render(both)
    assert len(alone) == len(mixed)
    off = np.r_[0:SAMPLE_RATE, 3 * SAMPLE_RATE : len(alone)]  # before the melody, after it
    assert np.array_equal(alone[off], mixed[off])
    assert _rms(mixed, 1.1, 1.9) > 0.05 and _rms(alone, 1.1, 1.9) < 1e-4


@pytest.mark.parametrize("program", [0, 16, 24, 40])
def test_duration_follows_the_note_with_ramps_at_both_ends(program):
    release = timbre_for(program).release
    for dur in (0.25, 1.0):
        x = _note(60, program, dur=dur)
        sounding = np.nonzero(x)[0]
        assert sounding[0] == 1  # the attack ramp starts from silence (sample 0 is 0)
        assert sounding[-1] / SAMPLE_RATE == pytest.approx(dur + release, abs=0.002)
        assert _rms(x, dur - 0.05, dur) > 10 * _rms(x, dur + release * 0.9, dur + release)
    # No clicks: the sound starts and ends at silence, its first and last 2 ms no steeper than
    # the note's middle.
    x = _note(60, program, dur=0.5)
    end = np.nonzero(x)[0][-1] + 1
    ms2 = int(0.002 * SAMPLE_RATE)
    steepest = np.abs(np.diff(x[int(0.2 * SAMPLE_RATE) : int(0.4 * SAMPLE_RATE)])).max()
    assert np.abs(np.diff(x[: ms2 + 1])).max() <= steepest
    assert np.abs(np.diff(x[end - ms2 : end + 1])).max() < 0.05 * steepest
    assert np.abs(x[end - ms2 : end]).max() < 0.05 * np.abs(x).max()


def test_program_families_differ_in_timbre_not_pitch():
    notes = {p: _note(69, p) for p in FAMILIES}
    shapes = {p: _harmonics(x, 440.0) for p, x in notes.items()}
    for a in FAMILIES:
        assert _peak(notes[a]) == pytest.approx(440.0, abs=0.5)
        for b in FAMILIES:
            if a < b:
                assert np.abs(shapes[a] - shapes[b]).sum() > 0.15, (a, b)
    # Every program of a family is its family's voice.
    assert np.array_equal(_note(69, 1), notes[0]) and np.array_equal(_note(71, 33), _note(71, 39))

    # Envelopes: pianos, mallets, guitars and basses decay; organs, strings, brass, reeds, pipes
    # and leads sustain; strings, brass, reeds, pipes, leads and pads start softer than an organ.
    def late_over_early(p: int) -> float:
        return _rms(notes[p], 0.8, 0.95) / _rms(notes[p], 0.1, 0.25)

    def onset(p: int) -> float:
        return _rms(notes[p], 0.0, 0.01) / _rms(notes[p], 0.1, 0.25)

    for p in (0, 8, 24, 32):
        assert late_over_early(p) < 0.5
    for p in (16, 40, 56, 64, 72, 80):
        assert late_over_early(p) == pytest.approx(1.0, abs=0.02)
    for p in (40, 56, 64, 72, 80, 88):
        assert onset(p) < 0.5 * onset(16)


def test_melodic_velocity_and_a_quick_sixteen_bar_melody():
    loud, soft = (np.abs(_note(64, vel=v)).max() for v in (127, 32))
    assert soft == pytest.approx(loud * 32 / 127, rel=1e-3)
    assert 0.1 < loud <= 0.4  # quieter than a kick, never clipping on its own
    rng = np.random.default_rng(0)
    steps = [(int(rng.integers(48, 85)), 100, i * 0.125, (i + 1) * 0.125) for i in range(256)]
    melody = _melody(steps, program=0)  # 16 bars of 16th notes at 120 qpm
    start = time.perf_counter()
    x = render(melody)
    assert time.perf_counter() - start < 1.0
    assert len(x) == int((32.0 + TAIL_S) * SAMPLE_RATE) + 1
    assert len(_onsets(x[: 2 * SAMPLE_RATE])) >= 1 and np.abs(x).max() <= 0.98
    # A chord too loud for the mix is scaled down rather than clipped.
    chord = render(_melody([(p, 127, 0.0, 1.0) for p in range(48, 72)], program=16))
    assert np.abs(chord).max() == pytest.approx(0.98, abs=1e-3)


def test_a_melody_wav_is_written_atomically(tmp_path, monkeypatch):
    out = tmp_path / "m.wav"
    melody = _melody([(69, 100, 0.0, 0.5), (72, 100, 0.5, 1.0)], program=40)
    assert write_wav(melody, out).read_bytes() == wav_bytes(render(melody))
    before = out.read_bytes()

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(musicvae.io.os, "replace", fail)
    with pytest.raises(MusicVAEError, match="m.wav: cannot write"):
        write_wav(_melody([(60, 100, 0.0, 2.0)], program=0), out)
    assert out.read_bytes() == before  # the old file whole, no half-written one
    assert [p.name for p in tmp_path.iterdir()] == ["m.wav"]  # and no temporary left


def test_render_command_on_a_melody(tmp_path, capsys):
    midi = write_midi(_melody([(69, 100, 0.0, 1.0), (81, 100, 1.0, 2.0)], 33), tmp_path / "m.mid")
    out = tmp_path / "m.wav"
    assert main(["render", str(midi), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "from 2 notes (2 melodic) on the built-in voices" in said
    with wave.open(str(out)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767
    assert _peak(x[:SAMPLE_RATE]) == pytest.approx(440, abs=1)
    assert _peak(x[SAMPLE_RATE : 2 * SAMPLE_RATE]) == pytest.approx(880, abs=1)
    both = NoteSequence.from_notes([(KICK, 100, 0.0, 0.1), (60, 100, 0.0, 1.0)])
    both.is_drum[:] = both.pitch == KICK
    assert main(["render", str(write_midi(both, tmp_path / "b.mid")), "-o", str(out)]) == 0
    assert "from 2 notes (1 melodic) on the built-in kit and voices" in capsys.readouterr().out
