"""Music played on a General MIDI SoundFont (.sf2) of the user's, through ``tinysoundfont``.

The built-in kit and voices (:mod:`musicvae.audio`) need nothing; a SoundFont sounds like the
instruments a DAW or FluidSynth would play the same MIDI file on. ``tinysoundfont`` (the
optional ``soundfont`` extra) renders offline from its own copy of TinySoundFont, so no system
synthesiser is needed.

Drum notes (``is_drum``) go to MIDI channel 10, General MIDI's percussion channel, playing the
SoundFont's drum kit: bank 128 in SF2 terms, preset 0 (GM's standard kit) when there is one.
Every other note plays on the melodic preset of its General MIDI program: bank 0, that program's
preset, else the first preset of its program family (``program // 8``), else the font's first
bank-0 preset. Each distinct program has its own channel (one of the fifteen other than 10);
past fifteen programs, channels are shared, each switched to its note's program before the note
starts, as a MIDI file's program changes would. A font without a drum kit still plays a melody,
one without melodic presets still plays drums; only music the font cannot play is refused.

Notes are switched on and off at their own sample, as a MIDI player would, so a preset's release
and a kit's exclusive classes (a closed hat choking an open one) behave as the SoundFont's author
meant. The result is stereo (GM kits pan their drums) at :data:`musicvae.audio.SAMPLE_RATE`, at
least as long as the built-in render of the same music and longer while something still rings.

The SoundFont comes from ``--soundfont FILE`` or, when that is not given, from the
:data:`ENV_VAR` environment variable, so it is set once; an empty value means the built-in kit
and voices.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import numpy as np

from musicvae.audio import SAMPLE_RATE, TAIL_S
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError

ENV_VAR = "MUSICVAE_SOUNDFONT"
INSTALL = "pip install 'musicvae[soundfont]'"
DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0
DRUM_BANK = 128
MELODIC_BANK = 0
MELODIC_CHANNELS = tuple(c for c in range(16) if c != DRUM_CHANNEL)
FIXED_VELOCITY = 89  # fixed-velocity grooves carry 0: the built-in sounds play those at 0.7
RING_CHUNK_S = 0.1
MAX_RING_S = 8.0  # past the kit's tail: a looped sample would otherwise ring for ever
SILENT = 1e-4  # -80 dBFS: below this the tail has died away
FADE_S = 0.005  # a tail cut while still ringing ends in this fade, not a click
# General MIDI SoundFonts are 1 MB to a few hundred MB; more is not a SoundFont for this.
MAX_SOUNDFONT_BYTES = 2**30
# A sample's rate sets its playback speed: 0 is silence for ever, 1 Hz a note that lasts hours.
# The SF2 spec's own advice is 400 Hz to 50 kHz; recordings go to 384 kHz.
MIN_SAMPLE_RATE = 400
MAX_SAMPLE_RATE = 384_000
SHDR_SIZE = 46  # a sample header: name[20], start, end, loop start, loop end, rate, ...

HELP = (
    f"play on this General MIDI SoundFont (.sf2) instead of the built-in kit and voices: drums "
    f"on its drum kit (bank 128) on MIDI channel 10, other notes on the bank-0 preset of their "
    f"program, each program on its own channel, stereo; default ${ENV_VAR}, '' for the "
    f"built-in sounds (needs {INSTALL})"
)


class SoundFontError(MusicVAEError):
    """A SoundFont that cannot be used: missing, not an SF2, truncated, or without the drum kit
    or melodic presets the music needs."""


def soundfont_path(arg: str | os.PathLike | None) -> Path | None:
    """The SoundFont to play on: ``arg`` (``--soundfont``) if given, else ``$MUSICVAE_SOUNDFONT``;
    ``None`` (the built-in kit and voices) when neither is set or the one that counts is empty."""
    value = os.fspath(arg) if arg is not None else os.environ.get(ENV_VAR, "")
    return Path(value).expanduser() if value.strip() else None


def read_soundfont(path: str | os.PathLike) -> bytes:
    """The file's bytes once its RIFF header says it is a whole SoundFont and its samples play
    at a sample rate a synthesiser can use; a one-line :class:`SoundFontError` naming the file
    otherwise. Only a regular file of at most :data:`MAX_SOUNDFONT_BYTES` is read (a FIFO would
    wait for ever, ``/dev/zero`` fill the memory)."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO returns at once; what it is decides, before any read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SoundFontError(
            f"{path}: SoundFont not found (give --soundfont or ${ENV_VAR} a .sf2 file)"
        ) from None
    except OSError as e:
        raise SoundFontError(f"{path}: cannot read the SoundFont ({e.strerror or e})") from None
    try:
        _check_regular(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_SOUNDFONT_BYTES + 1)  # a file that grows is cut off here
        except OSError as e:
            raise SoundFontError(f"{path}: cannot read the SoundFont ({e.strerror or e})") from None
    if len(data) > MAX_SOUNDFONT_BYTES:
        raise SoundFontError(
            f"{path}: a SoundFont of at most {MAX_SOUNDFONT_BYTES // 2**20:,} MB is read"
        )
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        what = "a MIDI file" if data[:4] == b"MThd" else "no RIFF 'sfbk' header"
        raise SoundFontError(f"{path}: not a SoundFont ({what}); give a General MIDI .sf2 file")
    (size,) = struct.unpack("<I", data[4:8])
    if len(data) < size + 8:
        raise SoundFontError(
            f"{path}: truncated SoundFont ({len(data):,} of {size + 8:,} bytes); download it again"
        )
    for name, rate in sample_rates(data):
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise SoundFontError(
                f"{path}: sample {name!r} has a sample rate of {rate:,} Hz (expected "
                f"{MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,}); the SoundFont is damaged"
            )
    return data


def _check_regular(path: Path, st: os.stat_result) -> None:
    """A regular file of at most :data:`MAX_SOUNDFONT_BYTES`, else one line naming it."""
    if stat.S_ISDIR(st.st_mode):
        raise SoundFontError(f"{path}: cannot read the SoundFont (it is a folder)")
    if not stat.S_ISREG(st.st_mode):
        raise SoundFontError(
            f"{path}: cannot read the SoundFont (not a regular file: a device, FIFO or "
            "socket); give a .sf2 file"
        )
    if st.st_size > MAX_SOUNDFONT_BYTES:
        raise SoundFontError(
            f"{path}: {st.st_size / 2**20:,.0f} MB; a SoundFont of at most "
            f"{MAX_SOUNDFONT_BYTES // 2**20:,} MB is read"
        )


def _chunks(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """The RIFF chunks between ``start`` and ``end``, tag -> (data start, data end); ``LIST``
    chunks are keyed by their list type (``INFO``, ``sdta``, ``pdta``)."""
    out: dict[bytes, tuple[int, int]] = {}
    pos = start
    while pos + 8 <= end:
        tag, (size,) = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        stop = min(body + size, end)
        if tag == b"LIST" and stop - body >= 4:
            out[data[body : body + 4]] = (body + 4, stop)
        else:
            out.setdefault(tag, (body, stop))
        pos = body + size + (size & 1)  # chunks are padded to an even length
    return out


def sample_rates(data: bytes) -> list[tuple[str, int]]:
    """(name, sample rate) of every sample header (``pdta``'s ``shdr`` chunk, 46 bytes each,
    the terminal "EOS" record left out) of a SoundFont's bytes; empty where there is none to
    read (TinySoundFont then says what is wrong)."""
    top = _chunks(data, 12, len(data))
    if b"pdta" not in top:
        return []
    start, end = _chunks(data, *top[b"pdta"]).get(b"shdr", (0, 0))
    out = []
    for pos in range(start, end - SHDR_SIZE + 1, SHDR_SIZE):
        name = data[pos : pos + 20].split(b"\0")[0].decode("latin-1")
        (rate,) = struct.unpack("<I", data[pos + 36 : pos + 40])
        out.append((name, rate))
    if out and out[-1][0].startswith("EOS"):
        out.pop()
    return out


class SoundFont:
    """A loaded SoundFont, ready to render music (load once, render many)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        data = read_soundfont(self.path)
        try:
            import tinysoundfont
        except ImportError:
            raise SoundFontError(
                f"{self.path}: playing a SoundFont needs the tinysoundfont package: {INSTALL} "
                "(where its PyAudio will not build: pip install --no-deps tinysoundfont)"
            ) from None
        self._synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE)
        try:
            sfid = self._synth.sfload(data)
        except Exception as e:  # noqa: BLE001 - tinysoundfont raises a bare RuntimeError for any parse failure (and its C code others)
            raise SoundFontError(
                f"{self.path}: corrupt or unsupported SoundFont ({e}); give a General MIDI .sf2"
            ) from None
        self._sfid = sfid
        # GM's standard kit is preset 0; a font with other kits only still has drums.
        kits = [p for p in range(128) if self._synth.sfpreset_name(sfid, DRUM_BANK, p)]
        self.melodic = {
            p: name.strip()
            for p in range(128)
            if (name := self._synth.sfpreset_name(sfid, MELODIC_BANK, p))
        }
        if not kits and not self.melodic:
            raise SoundFontError(
                f"{self.path}: the SoundFont has no drum kit (bank {DRUM_BANK}) and no melodic "
                f"preset (bank {MELODIC_BANK}); give a General MIDI SoundFont"
            )
        # The drum kit, or None (then the font plays melodies only).
        self.preset: int | None = kits[0] if kits else None
        self.preset_name: str | None = None
        if self.preset is not None:
            self.preset_name = self._synth.sfpreset_name(sfid, DRUM_BANK, self.preset).strip()
            self._synth.program_select(DRUM_CHANNEL, sfid, DRUM_BANK, self.preset, is_drums=True)

    def __repr__(self) -> str:
        kit = f"drum kit {self.preset}: {self.preset_name!r}" if self.preset_name else "no kit"
        return f"SoundFont({str(self.path)!r}, {kit}, {len(self.melodic)} melodic presets)"

    def melodic_preset(self, program: int) -> int:
        """The bank-0 preset that plays General MIDI ``program``: its own, else its family's
        first, else the font's first; a :class:`SoundFontError` when the font has none."""
        if not self.melodic:
            raise SoundFontError(
                f"{self.path}: the SoundFont has no melodic preset (nothing in bank "
                f"{MELODIC_BANK}) to play program {program} on; give a General MIDI SoundFont"
            )
        family = [p for p in self.melodic if p // 8 == program // 8]
        return program if program in self.melodic else min(family or self.melodic)

    def _run(self, frames: int, out: np.ndarray | None = None) -> np.ndarray:
        """The next ``frames`` of the synthesiser, into ``out`` (a C-contiguous (frames, 2)
        float32 slice of the render) or a new array."""
        if out is None:
            out = np.zeros((frames, 2), np.float32)
        if frames:
            buffer = memoryview(out.reshape(-1)).cast("B")  # type: ignore[arg-type]  # numpy stubs: __buffer__ only on 3.12+
            self._synth.generate_simple(frames, buffer=buffer)
        return out

    def render(self, ns: NoteSequence) -> np.ndarray:
        """The music as float32 stereo samples, shape ``(frames, 2)``, in [-1, 1]: drum notes
        on channel 10's kit, the others on their program's preset, a channel a program."""
        if ns.is_drum.any() and self.preset is None:
            raise SoundFontError(
                f"{self.path}: the SoundFont has no drum kit (no preset in bank {DRUM_BANK}) to "
                f"play {int(ns.is_drum.sum())} drum notes on; give a General MIDI SoundFont"
            )
        programs = list(dict.fromkeys(int(p) for p in ns.program[~ns.is_drum]))  # first-heard
        presets = {p: self.melodic_preset(p) for p in programs}
        channel_of = {
            p: MELODIC_CHANNELS[i % len(MELODIC_CHANNELS)] for i, p in enumerate(programs)
        }
        self._synth.sounds_off()  # nothing left ringing from the previous render
        events = []
        for n in ns:
            if n.start < 0:
                continue
            on = round(float(n.start) * SAMPLE_RATE)
            off = max(round(float(n.end) * SAMPLE_RATE), on + 1)  # an off after its on
            vel = int(np.clip(n.velocity, 1, 127)) if n.velocity > 0 else FIXED_VELOCITY
            chan, preset = (
                (DRUM_CHANNEL, -1) if n.is_drum else (channel_of[n.program], presets[n.program])
            )
            # At one sample, offs sort before ons: a repeated hit is not cut by its forerunner.
            events += [(on, 1, chan, n.pitch, vel, preset), (off, 0, chan, n.pitch, 0, preset)]
        events.sort()
        starts = [e[0] / SAMPLE_RATE for e in events if e[1]]
        end = max([float(ns.total_time), *starts]) if len(ns) else 0.0
        frames = int((end + TAIL_S) * SAMPLE_RATE) + 1  # the built-in render's length
        # One array for the whole render (and the longest ring): filled in place, a block per
        # event, so an hour of stereo takes its own size once and not three times.
        chunk = int(RING_CHUNK_S * SAMPLE_RATE)
        ring_chunks = round(MAX_RING_S / RING_CHUNK_S)
        out = np.zeros((frames + ring_chunks * chunk, 2), np.float32)
        done = 0
        selected: dict[int, int] = {}  # channel -> the melodic preset it plays now
        for sample, is_on, chan, pitch, vel, preset in events:
            sample = min(sample, frames)
            self._run(sample - done, out[done:sample])
            done = sample
            if not is_on:
                self._synth.noteoff(chan, pitch)  # TinySoundFont releases by channel and key
                continue
            if chan != DRUM_CHANNEL and selected.get(chan) != preset:  # a program change
                self._synth.program_select(chan, self._sfid, MELODIC_BANK, preset)
                selected[chan] = preset
            self._synth.noteon(chan, pitch, vel)
        self._run(frames - done, out[done:frames])
        self._synth.notes_off()  # the groove is over: let everything release
        end, rung = frames, 0
        while (
            np.abs(out[max(0, end - chunk) : end]).max(initial=0.0) > SILENT and rung < ring_chunks
        ):
            self._run(chunk, out[end : end + chunk])
            end += chunk
            rung += 1
        out = out[:end]
        if rung >= ring_chunks:
            fade = int(FADE_S * SAMPLE_RATE)
            out[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        self._synth.sounds_off()
        # Fonts are mixed at their own level; only a pile-up of loud notes is scaled down.
        peak = max(float(out.max(initial=0.0)), -float(out.min(initial=0.0)))
        if peak > 0.98:
            out *= 0.98 / peak
        return out


def load_soundfont(arg: str | os.PathLike | None) -> SoundFont | None:
    """The SoundFont that ``--soundfont ARG`` (or ``$MUSICVAE_SOUNDFONT``) names, loaded and
    checked, or ``None`` for the built-in kit and voices."""
    path = soundfont_path(arg)
    if path is None:
        return None
    try:
        return SoundFont(path)
    except SoundFontError as e:
        if arg is not None:
            raise
        # A font nobody named on this command line: say where it came from and how to skip it.
        raise SoundFontError(
            f"{e} [from ${ENV_VAR}; --soundfont '' plays the built-in sounds]"
        ) from None
