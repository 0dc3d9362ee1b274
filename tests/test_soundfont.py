"""SoundFont rendering: a tiny SF2 built in code plays a groove on channel 10's drum bank, at the
note times and for the groove's length, melodies on their program's bank-0 preset, a channel a
program, and a bad font (or one without what the music needs) is one clear line."""

from __future__ import annotations

import importlib.util
import io
import sys
import wave

import numpy as np
import pytest

from musicvae.audio import SAMPLE_RATE, TAIL_S, render
from musicvae.cli.main import main
from musicvae.data.midi import write_midi
from musicvae.data.sequence import NoteSequence
from musicvae.soundfont import (
    DRUM_CHANNEL,
    ENV_VAR,
    INSTALL,
    SoundFont,
    SoundFontError,
    soundfont_path,
)
from tests.generation.helpers import debug_run, single_torch_thread
from tests.helpers_sf2 import BASS_HZ, BASS_PROGRAM, DRUM_HZ, DRUM_S, MELODIC_HZ, build_sf2
from tests.test_audio import _onsets

needs_tsf = pytest.mark.skipif(
    importlib.util.find_spec("tinysoundfont") is None,
    reason="tinysoundfont is not installed (the soundfont extra)",
)
TIMES = [0.5, 1.0, 1.25, 2.0]
PITCHES = [36, 38, 42, 51]  # kick, snare, closed hat, ride: every drum key plays the kit


@pytest.fixture(scope="module")
def sf2(tmp_path_factory):
    path = tmp_path_factory.mktemp("sf") / "kit.sf2"
    path.write_bytes(build_sf2())
    return path


@pytest.fixture(autouse=True)
def _no_env_soundfont(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def _groove() -> NoteSequence:
    return NoteSequence.from_notes(
        [(p, 100, t, t + 0.1) for p, t in zip(PITCHES, TIMES, strict=True)]
    )


def _channels(path) -> int:
    with wave.open(str(path)) as w:
        return w.getnchannels()


def _rms(x: np.ndarray, t0: float, t1: float) -> float:
    return float(np.sqrt((x[int(t0 * SAMPLE_RATE) : int(t1 * SAMPLE_RATE)] ** 2).mean()))


@needs_tsf
def test_hits_at_the_note_times_on_the_drum_bank_for_the_grooves_length(sf2):
    x = SoundFont(sf2).render(_groove())
    # The built-in kit's length: the groove plus its tail (the test kit dies away well inside).
    assert x.shape == (len(render(_groove())), 2) == (int((2.1 + TAIL_S) * SAMPLE_RATE) + 1, 2)
    mono = x.mean(1)
    found = _onsets(mono)
    assert len(found) == len(TIMES)
    for got, want in zip(found, TIMES, strict=True):
        assert abs(got - want) <= 0.006
        assert _rms(mono, want, want + 0.02) > 0.05  # a real hit at every onset
    assert _rms(mono, 0.0, TIMES[0] - 0.05) < 1e-6  # silence before the first
    assert _rms(mono, TIMES[-1] + DRUM_S + 0.1, len(mono) / SAMPLE_RATE) < 1e-6  # and after
    # The drum bank's burst, not bank 0's tone: channel 10 plays percussion.
    hit = mono[int(TIMES[0] * SAMPLE_RATE) : int((TIMES[0] + DRUM_S) * SAMPLE_RATE)]
    spectrum = np.abs(np.fft.rfft(hit))
    freqs = np.fft.rfftfreq(len(hit), 1 / SAMPLE_RATE)
    assert abs(freqs[spectrum.argmax()] - DRUM_HZ) < 10
    near_tone = spectrum[np.abs(freqs - MELODIC_HZ) < 50].max()
    assert near_tone < 0.01 * spectrum.max()


@needs_tsf
def test_velocity_louder_hits_and_fixed_velocity_grooves_still_play(sf2):
    font = SoundFont(sf2)
    peak = [np.abs(font.render(NoteSequence.from_notes([(38, v, 0.0, 0.1)]))).max()
            for v in (127, 40, 0)]  # fmt: skip
    loud, soft, fixed = peak
    assert soft < 0.5 * loud and soft < fixed < loud  # 0 (fixed velocity) plays at 89
    # A render starts from silence: nothing rings over from the previous one.
    assert (
        font.render(NoteSequence.from_notes([(38, 100, 1.0, 1.1)]))[: SAMPLE_RATE // 2].max() == 0
    )


@needs_tsf
def test_render_command_writes_a_stereo_wav_and_reads_the_environment(
    sf2, tmp_path, capsys, monkeypatch
):
    midi = write_midi(_groove(), tmp_path / "g.mid")
    out = tmp_path / "g.wav"
    assert main(["render", str(midi), "-o", str(out), "--soundfont", str(sf2)]) == 0
    assert f"on {sf2} (Drums)" in capsys.readouterr().out
    with wave.open(io.BytesIO(out.read_bytes())) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, SAMPLE_RATE)
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert len(frames) == int((2.1 + TAIL_S) * SAMPLE_RATE) + 1
    assert _onsets(frames.mean(1) / 32767) == pytest.approx(TIMES, abs=0.006)
    # Set once in the environment; --soundfont '' goes back to the built-in (mono) kit.
    monkeypatch.setenv(ENV_VAR, str(sf2))
    assert main(["render", str(midi), "-o", str(out)]) == 0
    assert _channels(out) == 2
    assert main(["render", str(midi), "-o", str(out), "--soundfont", ""]) == 0
    assert _channels(out) == 1
    assert "(0 melodic) on the built-in kit" in capsys.readouterr().out
    # A stale setting says where it came from.
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.sf2"))
    assert main(["render", str(midi), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "gone.sf2: SoundFont not found" in err
        and f"from ${ENV_VAR}" in err
    )


@needs_tsf
def test_generate_audio_on_a_soundfont(sf2, tmp_path):
    with single_torch_thread():
        run = debug_run(tmp_path / "run")
        out = tmp_path / "set"
        argv = ["generate", "--checkpoint", str(run), "--output-dir", str(out),
                "--num-outputs", "2", "--seed", "1", "--no-png", "--soundfont", str(sf2)]  # fmt: skip
        assert main(argv) == 0  # --soundfont implies --audio
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 2 and all(_channels(w) == 2 for w in wavs)


def _bad_files(tmp_path, sf2):
    midi = write_midi(_groove(), tmp_path / "groove.mid")
    cut = tmp_path / "cut.sf2"
    cut.write_bytes(sf2.read_bytes()[:5000])
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF" + (12).to_bytes(4, "little") + b"sfbk" + b"LIST" + bytes(4))
    return [
        (midi, "not a SoundFont (a MIDI file)"),
        (cut, "truncated SoundFont (5,000 of"),
        (tmp_path / "missing.sf2", "SoundFont not found"),
        (junk, "corrupt or unsupported SoundFont"),
    ]


@needs_tsf
def test_a_wrong_file_is_one_clear_line_and_a_nonzero_exit(sf2, tmp_path, capsys):
    midi = write_midi(_groove(), tmp_path / "in.mid")
    for bad, says in _bad_files(tmp_path, sf2):
        out = tmp_path / "out.wav"
        assert main(["render", str(midi), "-o", str(out), "--soundfont", str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {bad}: ") and says in err, err
        assert not out.exists()


def _melody(notes: list[tuple[int, float, float, int]]) -> NoteSequence:
    """Melodic notes from (pitch, start, end, program) tuples, at velocity 100."""
    pitch, start, end, program = zip(*notes, strict=True)
    n = len(notes)
    return NoteSequence(
        pitch=pitch, velocity=[100] * n, start=start, end=end, is_drum=[False] * n, program=program
    )


def _level(x: np.ndarray, hz: float, t0: float, t1: float) -> float:
    """The mono mix's spectrum near ``hz`` between ``t0`` and ``t1`` seconds, as the peak's
    fraction of a full-scale sine's."""
    mono = x.mean(1)[int(t0 * SAMPLE_RATE) : int(t1 * SAMPLE_RATE)]
    spectrum = np.abs(np.fft.rfft(mono)) * 2 / len(mono)
    freqs = np.fft.rfftfreq(len(mono), 1 / SAMPLE_RATE)
    return float(spectrum[np.abs(freqs - hz) < 20].max())


@needs_tsf
def test_each_program_plays_its_own_preset_on_its_own_channel(sf2):
    font = SoundFont(sf2)
    assert font.melodic == {0: "Piano", BASS_PROGRAM: "Bass"}
    # Programs 0 and 33 at once, on the same key, and a drum note after them.
    ns = _melody([(60, 0.0, 0.4, 0), (60, 0.0, 0.4, BASS_PROGRAM), (36, 0.5, 0.6, 0)])
    ns.is_drum[2] = True
    x = font.render(ns)
    assert _level(x, MELODIC_HZ, 0.05, 0.35) > 0.1 and _level(x, BASS_HZ, 0.05, 0.35) > 0.1
    assert _level(x, DRUM_HZ, 0.05, 0.35) < 0.001  # no drum while the melody plays
    # The drum still on channel 10's kit: the burst, not either melodic tone.
    assert _level(x, DRUM_HZ, 0.5, 0.6) > 0.03
    assert max(_level(x, MELODIC_HZ, 0.52, 0.6), _level(x, BASS_HZ, 0.52, 0.6)) < 0.003
    # A drum pitch on a melodic track is a melodic note.
    x = font.render(_melody([(36, 0.0, 0.4, 0)]))
    assert _level(x, MELODIC_HZ, 0.05, 0.35) > 0.1 and _level(x, DRUM_HZ, 0.05, 0.35) < 0.001


@needs_tsf
def test_missing_presets_fall_back_and_channels_are_shared_past_fifteen_programs(sf2, monkeypatch):
    font = SoundFont(sf2)
    # A program the font lacks plays its family's first preset (32 -> 33, both basses), else
    # the font's first (40, strings -> 0).
    assert [font.melodic_preset(p) for p in (0, 33, 32, 39, 40, 127)] == [0, 33, 33, 33, 0, 0]
    # Seventeen programs one after another: the sixteenth and seventeenth share channels with
    # earlier ones and still play their own presets.
    programs = [*range(0, 128, 8), BASS_PROGRAM]  # 16 families, then 33 again on a shared one
    programs[15] = 39  # a bass-family program sixteenth: it reuses channel 0 (program 0's)
    ns = _melody([(60, i * 0.5, i * 0.5 + 0.3, p) for i, p in enumerate(programs)])
    x = font.render(ns)
    for i, p in enumerate(programs):
        hz = BASS_HZ if p // 8 == 4 else MELODIC_HZ
        other = MELODIC_HZ if hz == BASS_HZ else BASS_HZ
        assert _level(x, hz, i * 0.5 + 0.05, i * 0.5 + 0.25) > 0.1, p
        assert _level(x, other, i * 0.5 + 0.05, i * 0.5 + 0.25) < 0.001, p
    # Sixteen programs at once: every one of the fifteen melodic channels in use, none on 10.
    chord = _melody([(60, 0.0, 0.4, p) for p in programs[:16]])
    selected: list[int] = []
    real_select = font._synth.program_select

    def spy(chan, *args, **kwargs):
        selected.append(chan)
        return real_select(chan, *args, **kwargs)

    monkeypatch.setattr(font._synth, "program_select", spy)
    x = font.render(chord)
    assert sorted(set(selected)) == [c for c in range(16) if c != DRUM_CHANNEL]
    assert _level(x, MELODIC_HZ, 0.05, 0.35) > 0.1 and _level(x, BASS_HZ, 0.05, 0.35) > 0.1


@needs_tsf
def test_a_font_without_a_drum_kit_plays_melodies_and_refuses_drums(tmp_path, capsys):
    melodic = tmp_path / "piano.sf2"
    melodic.write_bytes(build_sf2(drums=False))
    font = SoundFont(melodic)
    assert font.preset is None and font.melodic == {0: "Piano", BASS_PROGRAM: "Bass"}
    x = font.render(_melody([(69, 0.0, 0.5, 0)]))
    assert _level(x, MELODIC_HZ, 0.05, 0.45) > 0.1
    with pytest.raises(SoundFontError, match=r"piano\.sf2: the SoundFont has no drum kit") as e:
        font.render(_groove())
    assert "\n" not in str(e.value)
    # On the command line: a melody renders (no kit named), a groove is one line and no WAV.
    out = tmp_path / "m.wav"
    midi = write_midi(_melody([(69, 0.0, 0.5, BASS_PROGRAM)]), tmp_path / "m.mid")
    assert main(["render", str(midi), "-o", str(out), "--soundfont", str(melodic)]) == 0
    assert f"(1 melodic) on {melodic}\n" in capsys.readouterr().out
    groove = write_midi(_groove(), tmp_path / "g.mid")
    out = tmp_path / "g.wav"
    assert main(["render", str(groove), "-o", str(out), "--soundfont", str(melodic)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "piano.sf2: the SoundFont has no drum kit" in err
    assert not out.exists()


@needs_tsf
def test_a_font_without_melodic_presets_plays_drums_and_refuses_melodies(tmp_path):
    kit = tmp_path / "kit.sf2"
    kit.write_bytes(build_sf2(melodic=False))
    font = SoundFont(kit)
    assert font.preset_name == "Drums" and font.melodic == {}
    assert _level(font.render(_groove()), DRUM_HZ, 0.5, 0.6) > 0.03
    with pytest.raises(SoundFontError, match=r"kit\.sf2: the SoundFont has no melodic preset"):
        font.render(_melody([(69, 0.0, 0.5, 0)]))


def test_a_missing_library_names_the_file_and_the_fix(sf2, monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)  # import fails as if not installed
    with pytest.raises(SoundFontError) as e:
        SoundFont(sf2)
    assert str(e.value).startswith(f"{sf2}: ") and INSTALL in str(e.value)
    assert "\n" not in str(e.value)


def test_which_soundfont(monkeypatch, tmp_path):
    assert soundfont_path(None) is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gm.sf2"))
    assert soundfont_path(None) == tmp_path / "gm.sf2"
    assert soundfont_path("other.sf2").name == "other.sf2"  # the flag wins
    assert soundfont_path("") is None  # '' is the built-in kit
