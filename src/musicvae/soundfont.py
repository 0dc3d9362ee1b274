"""Grooves played on a General MIDI SoundFont (.sf2) of the user's, through ``tinysoundfont``.

The built-in kit (:mod:`musicvae.audio`) needs nothing; a SoundFont sounds like the kit a DAW or
FluidSynth would play the same MIDI file on. ``tinysoundfont`` (the optional ``soundfont``
extra) renders offline from its own copy of TinySoundFont, so no system synthesiser is needed.

Every note goes to MIDI channel 10, General MIDI's percussion channel, playing the SoundFont's
drum kit: bank 128 in SF2 terms, preset 0 (GM's standard kit) when there is one. Notes are
switched on and off at their own sample, as a MIDI player would, so a kit's release and its
exclusive classes (a closed hat choking an open one) behave as the SoundFont's author meant.
The result is stereo (GM kits pan their drums) at :data:`musicvae.audio.SAMPLE_RATE`, at least
as long as the built-in kit's render of the same groove and longer while something still rings.

The SoundFont comes from ``--soundfont FILE`` or, when that is not given, from the
:data:`ENV_VAR` environment variable, so it is set once; an empty value means the built-in kit.
"""

from __future__ import annotations

import os
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
FIXED_VELOCITY = 89  # fixed-velocity grooves carry 0: the built-in kit plays those at 0.7
RING_CHUNK_S = 0.1
MAX_RING_S = 8.0  # past the kit's tail: a looped sample would otherwise ring for ever
SILENT = 1e-4  # -80 dBFS: below this the tail has died away
FADE_S = 0.005  # a tail cut while still ringing ends in this fade, not a click

HELP = (
    f"play on this General MIDI SoundFont (.sf2) instead of the built-in kit: its drum kit "
    f"(bank 128) on MIDI channel 10, stereo; default ${ENV_VAR}, '' for the built-in kit "
    f"(needs {INSTALL})"
)


class SoundFontError(MusicVAEError):
    """A SoundFont that cannot be used: missing, not an SF2, truncated, or without a drum kit."""


def soundfont_path(arg: str | os.PathLike | None) -> Path | None:
    """The SoundFont to play on: ``arg`` (``--soundfont``) if given, else ``$MUSICVAE_SOUNDFONT``;
    ``None`` (the built-in kit) when neither is set or the one that counts is empty."""
    value = os.fspath(arg) if arg is not None else os.environ.get(ENV_VAR, "")
    return Path(value).expanduser() if value.strip() else None


def read_soundfont(path: str | os.PathLike) -> bytes:
    """The file's bytes once its RIFF header says it is a whole SoundFont; a one-line
    :class:`SoundFontError` naming the file otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SoundFontError(
            f"{path}: SoundFont not found (give --soundfont or ${ENV_VAR} a .sf2 file)"
        ) from None
    except OSError as e:
        raise SoundFontError(f"{path}: cannot read the SoundFont ({e.strerror or e})") from None
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        what = "a MIDI file" if data[:4] == b"MThd" else "no RIFF 'sfbk' header"
        raise SoundFontError(f"{path}: not a SoundFont ({what}); give a General MIDI .sf2 file")
    (size,) = struct.unpack("<I", data[4:8])
    if len(data) < size + 8:
        raise SoundFontError(
            f"{path}: truncated SoundFont ({len(data):,} of {size + 8:,} bytes); download it again"
        )
    return data


class SoundFont:
    """A loaded SoundFont, ready to render grooves (load once, render many)."""

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
        # GM's standard kit is preset 0; a font with other kits only still has drums.
        kits = [p for p in range(128) if self._synth.sfpreset_name(sfid, DRUM_BANK, p)]
        if not kits:
            raise SoundFontError(
                f"{self.path}: the SoundFont has no drum kit (no preset in bank {DRUM_BANK}); "
                "give a General MIDI SoundFont"
            )
        self.preset = kits[0]
        self.preset_name = self._synth.sfpreset_name(sfid, DRUM_BANK, self.preset).strip()
        self._synth.program_select(DRUM_CHANNEL, sfid, DRUM_BANK, self.preset, is_drums=True)

    def __repr__(self) -> str:
        return f"SoundFont({str(self.path)!r}, drum kit {self.preset}: {self.preset_name!r})"

    def _run(self, frames: int) -> np.ndarray:
        out = np.zeros((frames, 2), np.float32)
        if frames:
            buffer = memoryview(out.reshape(-1)).cast("B")  # type: ignore[arg-type]  # numpy stubs: __buffer__ only on 3.12+
            self._synth.generate_simple(frames, buffer=buffer)
        return out

    def render(self, ns: NoteSequence) -> np.ndarray:
        """The groove as float32 stereo samples, shape ``(frames, 2)``, in [-1, 1]."""
        self._synth.sounds_off()  # nothing left ringing from the previous render
        events = []
        for n in ns:
            if n.start < 0:
                continue
            on = round(float(n.start) * SAMPLE_RATE)
            off = max(round(float(n.end) * SAMPLE_RATE), on + 1)  # an off after its on
            vel = int(np.clip(n.velocity, 1, 127)) if n.velocity > 0 else FIXED_VELOCITY
            # At one sample, offs sort before ons: a repeated hit is not cut by its forerunner.
            events += [(on, 1, n.pitch, vel), (off, 0, n.pitch, 0)]
        events.sort()
        starts = [e[0] / SAMPLE_RATE for e in events if e[1]]
        end = max([float(ns.total_time), *starts]) if len(ns) else 0.0
        frames = int((end + TAIL_S) * SAMPLE_RATE) + 1  # the built-in kit's length
        parts, done = [], 0
        for sample, is_on, pitch, vel in events:
            sample = min(sample, frames)
            parts.append(self._run(sample - done))
            done = sample
            if is_on:
                self._synth.noteon(DRUM_CHANNEL, pitch, vel)
            else:
                self._synth.noteoff(DRUM_CHANNEL, pitch)
        parts.append(self._run(frames - done))
        self._synth.notes_off()  # the groove is over: let everything release
        out = np.concatenate(parts)
        chunk, rung, ringing = int(RING_CHUNK_S * SAMPLE_RATE), 0.0, []
        tail = out[-chunk:]
        while np.abs(tail).max(initial=0.0) > SILENT and rung < MAX_RING_S:
            tail = self._run(chunk)
            ringing.append(tail)
            rung += RING_CHUNK_S
        out = np.concatenate([out, *ringing])
        if rung >= MAX_RING_S:
            fade = int(FADE_S * SAMPLE_RATE)
            out[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        self._synth.sounds_off()
        # Fonts are mixed at their own level; only a pile-up of loud hits is scaled down.
        peak = float(np.abs(out).max(initial=0.0))
        if peak > 0.98:
            out *= 0.98 / peak
        return out


def load_soundfont(arg: str | os.PathLike | None) -> SoundFont | None:
    """The SoundFont that ``--soundfont ARG`` (or ``$MUSICVAE_SOUNDFONT``) names, loaded and
    checked, or ``None`` for the built-in kit."""
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
            f"{e} [from ${ENV_VAR}; --soundfont '' plays the built-in kit]"
        ) from None
