"""Music you can hear: a synthesised drum kit and melodic voices that render a NoteSequence to WAV.

Drum notes (``is_drum``) play on the studio's kit (``web/static/audio.js``) in numpy: a
pitch-swept sine kick, a noise and tone snare, metallic square-wave hi-hats (a closed hat chokes
a ringing open one), swept-sine toms at three pitches and noisy metallic cymbals. Every drum
voice is made once per render at unit velocity from a fixed seed, so a render is the same every
time, then mixed in at each note's onset sample, scaled by velocity. Drum pitches map to the nine
drum classes through the General MIDI map the converter uses for generated files; other drum
pitches are skipped.

Every other note plays on a built-in melodic voice: an additive synth (a few harmonics of the
note's MIDI pitch, A4 = 440 Hz in equal temperament, none above Nyquist) whose timbre is its
General MIDI program's family (:data:`FAMILY_TIMBRES`): pianos and chromatic percussion decay,
organs sustain, guitars and basses are plucked (higher harmonics die first), strings, brass,
reeds, pipes and synth leads sustain after a softer attack. A note sounds for its duration plus
its timbre's short release, with linear attack and release ramps (no clicks), scaled by
velocity; it has no randomness, so it too renders the same every time.

The WAV is 16-bit mono PCM (the standard library's ``wave``), as long as the music plus the last
hit's ring; the mix is scaled down only when it would clip. A General MIDI SoundFont of the
user's plays instead through :mod:`musicvae.soundfont`.

A loop to drop into a DAW is :func:`as_loop`: exactly the music's whole bars long
(:func:`loop_seconds`; a 4-bar groove at 120 BPM is 8.000 s, 352,800 samples), with what rings
past the end added back onto the start ("fold": it repeats seamlessly, as a loop plays) or
dropped ("cut").
"""

from __future__ import annotations

import io
import math
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from musicvae.data.converters.groove import REDUCED_DRUM_PITCH_CLASSES
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from musicvae.io import atomic_writer

SAMPLE_RATE = 44_100
TAIL_S = 1.6  # the longest voice (the crash) rings this long
MASTER_GAIN = 0.5  # headroom: a full-velocity hit peaks near half scale, so hits add up cleanly
_CLASS_OF = {p: c for c, pitches in enumerate(REDUCED_DRUM_PITCH_CLASSES) for p in pitches}
CLOSED_HH, OPEN_HH = 2, 3
WAV_BLOCK = 1 << 20  # frames converted to 16-bit PCM at a time
# What a loop-length render does with the ring past its end: add it to the start, or drop it.
LOOP_MODES = ("fold", "cut")


def _t(duration: float) -> np.ndarray:
    return np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE


def _env(t: np.ndarray, decay: float) -> np.ndarray:
    """A 2 ms attack then an exponential decay with time constant ``decay / 4``."""
    return np.minimum(t / 0.002, 1.0) * np.exp(-t / (decay / 4.0))


def _sweep(f0: float, f1: float, ramp: float, t: np.ndarray) -> np.ndarray:
    """A sine whose frequency falls exponentially from f0 to f1 over ``ramp`` seconds."""
    k = np.log(f1 / f0) / ramp
    freq = np.where(t < ramp, f0 * np.exp(k * t), f1)
    return np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)


def _band(x: np.ndarray, lo: float = 0.0, hi: float | None = None) -> np.ndarray:
    """``x`` with everything outside ``[lo, hi]`` Hz removed (an ideal filter, via the FFT)."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE)
    keep = (freqs >= lo) & (freqs <= (hi if hi is not None else freqs[-1]))
    return np.fft.irfft(spectrum * keep, len(x))


def _metal(t: np.ndarray, base: float) -> np.ndarray:
    """Six detuned square waves: the inharmonic ring of a hi-hat or a cymbal."""
    ratios = (2, 3, 4.16, 5.43, 6.79, 8.21)
    waves = np.zeros_like(t)
    for r in ratios:
        waves = waves + np.sign(np.sin(2 * np.pi * base * r * t))
    return waves * 0.18


def voices(seed: int = 0) -> list[np.ndarray]:
    """The nine drum voices at full velocity, in the converter's class order."""
    rng = np.random.default_rng(seed)

    def noise(d: float) -> np.ndarray:
        return rng.uniform(-1, 1, len(_t(d)))

    def kick() -> np.ndarray:
        t = _t(0.6)
        click = _band(noise(0.6), 0, 2500) * _env(t, 0.012) * 0.35
        return _sweep(150, 48, 0.13, t) * _env(t, 0.45) * 1.1 + click

    def snare() -> np.ndarray:
        t = _t(0.3)
        out = _band(noise(0.3), 1400, 9000) * _env(t, 0.19) * 0.75
        for f, a in ((185, 0.45), (330, 0.25)):
            out += _sweep(f, f * 0.8, 0.1, t) * _env(t, 0.09) * a
        return out

    def hat(open_: bool) -> np.ndarray:
        t = _t(0.5 if open_ else 0.12)
        ring = _band(_metal(t, 40), 7000, 14000)
        return ring * _env(t, 0.38 if open_ else 0.05) * (0.5 if open_ else 0.55) * 3.0

    def tom(f: float) -> np.ndarray:
        t = _t(0.5)
        body = _sweep(f, f * 0.62, 0.3, t) * _env(t, 0.36) * 0.85
        return body + _band(noise(0.5), f * 3, f * 5) * _env(t, 0.03) * 0.15

    def cymbal(ride: bool) -> np.ndarray:
        d = 0.9 if ride else 1.6
        t = _t(d)
        out = _band(_metal(t, 62 if ride else 48), 6500 if ride else 5000) * _env(t, d)
        out = out * (0.35 if ride else 0.5) * 2.0
        out += _band(noise(d), 9000 if ride else 6000) * _env(t, d * 0.8) * (0.08 if ride else 0.3)
        if ride:
            out += np.sin(2 * np.pi * 3100 * t) * _env(t, 0.45) * 0.06
        return out

    return [
        kick(),
        snare(),
        hat(False),
        hat(True),
        tom(95),
        tom(140),
        tom(205),
        cymbal(False),
        cymbal(True),
    ]


@dataclass(frozen=True)
class Timbre:
    """A built-in melodic voice: harmonic amplitudes (fundamental first), envelope in seconds."""

    name: str
    partials: tuple[float, ...]
    attack: float  # linear ramp from silence to full level
    release: float  # linear ramp to silence after the note's end
    decay: float | None = None  # the fundamental's exponential time constant; None sustains
    damping: float = 0.0  # harmonic k decays (1 + damping * (k - 1)) times as fast


def _saw(n: int, power: float) -> tuple[float, ...]:
    """Sawtooth-like partials: harmonic k at 1 / k ** power."""
    return tuple(1.0 / k**power for k in range(1, n + 1))


TIMBRES = {
    t.name: t
    for t in (
        Timbre("piano", (1, 0.4, 0.25, 0.1, 0.08, 0.04, 0.03, 0.02), 0.004, 0.12, 0.8, 0.35),
        Timbre("mallet", (1, 0.05, 0, 0.35, 0, 0, 0, 0, 0, 0.1), 0.002, 0.15, 0.45, 0.6),
        Timbre("organ", (1, 0.6, 0.45, 0.3, 0, 0.2, 0, 0.15), 0.01, 0.06),
        Timbre("pluck", _saw(12, 0.7), 0.003, 0.08, 0.6, 0.5),
        Timbre("bass", (1, 0.8, 0.3, 0.1), 0.004, 0.08, 0.9, 0.4),
        Timbre("strings", _saw(12, 0.85), 0.08, 0.2),
        Timbre("brass", (1, 0.8, 0.6, 0.45, 0.32, 0.22, 0.15, 0.1), 0.05, 0.1),
        Timbre("reed", (1, 0.05, 0.45, 0.04, 0.25, 0.03, 0.14, 0.02, 0.08), 0.04, 0.1),
        Timbre("pipe", (1, 0.2, 0.08, 0.03), 0.06, 0.12),
        Timbre("lead", tuple(1.0 / k if k % 2 else 0.0 for k in range(1, 16)), 0.02, 0.08),
        Timbre("pad", (1, 0.5, 0.1, 0.25, 0.03, 0.1), 0.25, 0.3),
    )
}
# General MIDI's sixteen program families (program // 8), in order: piano, chromatic percussion,
# organ, guitar, bass, strings, ensemble, brass, reed, pipe, synth lead, synth pad, synth
# effects, ethnic, percussive, sound effects.
FAMILY_TIMBRES = (
    "piano", "mallet", "organ", "pluck", "bass", "strings", "strings", "brass",
    "reed", "pipe", "lead", "pad", "pad", "pluck", "mallet", "pipe",
)  # fmt: skip
MELODIC_LEVEL = 0.8  # full velocity peaks at 0.4 at most after MASTER_GAIN: under a kick
MIN_NOTE_S = 0.01  # a zero-length note still sounds, briefly


def timbre_for(program: int) -> Timbre:
    """The built-in voice of General MIDI ``program`` (0-127; others clipped to that range)."""
    return TIMBRES[FAMILY_TIMBRES[min(max(int(program), 0), 127) // 8]]


def tone(pitch: int, duration: float, timbre: Timbre) -> np.ndarray:
    """One melodic note at unit velocity: ``duration`` seconds plus the timbre's release, peak
    at most 1, float64 at :data:`SAMPLE_RATE`."""
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    duration = max(duration, MIN_NOTE_S)
    t = _t(duration + timbre.release)
    limit = min(len(timbre.partials), int(0.45 * SAMPLE_RATE / f0))  # no aliased harmonics
    amps = timbre.partials[:limit]
    if not any(amps):  # a fundamental above the audible band: nothing to play
        return np.zeros(len(t))
    # sin(k theta) by Chebyshev's recurrence and harmonic k's decay as a running product: two
    # transcendental passes a note, not two a harmonic.
    theta = 2 * np.pi * f0 * t
    prev, cur, twice_cos = np.zeros(len(t)), np.sin(theta), 2 * np.cos(theta)
    decay = timbre.decay if timbre.decay is not None else np.inf  # sustained: no decay
    env, step = np.exp(-t / decay), np.exp(-t * timbre.damping / decay)
    x = np.zeros(len(t))
    for a in amps:
        if a:
            x += a * cur * env
        prev, cur = cur, twice_cos * cur - prev
        env = env * step
    x /= sum(amps)
    attack = np.minimum(t / timbre.attack, 1.0)
    release = np.clip((duration + timbre.release - t) / timbre.release, 0.0, 1.0)
    return x * attack * release


def _velocity(v: int) -> float:
    return v / 127.0 if v > 0 else 0.7  # fixed-velocity grooves carry 0


def render(ns: NoteSequence, seed: int = 0) -> np.ndarray:
    """The music as float32 samples in [-1, 1] at :data:`SAMPLE_RATE`: drum notes on the kit,
    the others on their program's melodic voice."""
    notes = [n for n in ns if n.start >= 0]
    hits = [
        (n.start, _CLASS_OF[n.pitch], _velocity(n.velocity))
        for n in notes
        if n.is_drum and n.pitch in _CLASS_OF
    ]
    end = max([float(ns.total_time)] + [n.start for n in notes]) if len(ns) else 0.0
    out = np.zeros(int((end + TAIL_S) * SAMPLE_RATE) + 1, np.float64)
    kit = voices(seed) if hits else []  # a melody needs no kit
    closed = sorted(s for s, c, _ in hits if c == CLOSED_HH)
    for start, c, vel in hits:
        voice = kit[c] * vel
        if c == OPEN_HH:  # a later closed hat chokes the open one (10 ms fade)
            nxt = next((s for s in closed if s > start), None)
            if nxt is not None:
                cut = int((nxt - start) * SAMPLE_RATE)
                fade = np.ones(len(voice))
                fade[cut:] = np.exp(-np.arange(len(voice) - cut) / (0.01 * SAMPLE_RATE))
                voice = voice * fade
        _mix(out, start, voice)
    tones: dict[tuple[int, float, str], np.ndarray] = {}  # melodies repeat their notes
    for n in notes:
        if not n.is_drum:
            key = (n.pitch, round(n.end - n.start, 4), timbre_for(n.program).name)
            if key not in tones:
                tones[key] = tone(n.pitch, key[1], TIMBRES[key[2]])
            _mix(out, n.start, tones[key] * (_velocity(n.velocity) * MELODIC_LEVEL))
    out *= MASTER_GAIN
    peak = max(float(out.max()), -float(out.min())) if out.size else 0.0  # no |out| copy
    if peak > 0.98:  # only a pile-up of loud notes: scale it down rather than clip
        out *= 0.98 / peak
    return out.astype(np.float32)


def loop_seconds(ns: NoteSequence) -> float:
    """``ns``'s length as a loop: the whole bars at its tempo (of its first time signature,
    4/4 without one) that hold every onset, at least one. A last step played late stays in
    its bar, and an onset ahead of the next bar line is that loop's own downbeat, played
    early (the fold puts it there)."""
    signature = min(ns.time_signatures, key=lambda s: s.time) if ns.time_signatures else None
    quarters = 4.0 if signature is None else signature.numerator * 4.0 / signature.denominator
    bar = quarters * 60.0 / ns.qpm
    last = max(float(ns.start.max()), 0.0) if len(ns) else 0.0
    return bar * (math.floor(last / bar + 1e-9) + 1)  # a downbeat computed a hair early counts


def as_loop(samples: np.ndarray, seconds: float, mode: str = "fold") -> np.ndarray:
    """``samples`` exactly ``seconds`` long (rounded to a sample; silence added to a shorter
    render): what rings past the end is added onto the start (``"fold"``, scaled down only
    where the sum would clip) or dropped (``"cut"``). Mono or one column per channel."""
    if mode not in LOOP_MODES:
        raise MusicVAEError(f"loop {mode!r}: expected one of {', '.join(LOOP_MODES)}")
    frames = round(seconds * SAMPLE_RATE)
    if not (math.isfinite(seconds) and frames > 0):
        raise MusicVAEError(f"a loop of {seconds} s: expected a positive length")
    samples = np.asarray(samples)
    out = np.zeros((frames, *samples.shape[1:]), np.float64)
    out[: min(frames, len(samples))] = samples[:frames]
    if mode == "fold":
        for i in range(frames, len(samples), frames):  # a ring longer than the loop wraps again
            tail = samples[i : i + frames]
            out[: len(tail)] += tail
        peak = max(float(out.max()), -float(out.min())) if out.size else 0.0
        if peak > 0.98:
            out *= 0.98 / peak
    return out.astype(np.float32)


def _mix(out: np.ndarray, start: float, voice: np.ndarray) -> None:
    i = round(start * SAMPLE_RATE)
    out[i : i + len(voice)] += voice[: len(out) - i]


def wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV of float samples in [-1, 1]: mono for a 1-D array, else one channel per
    column (a SoundFont's stereo, :mod:`musicvae.soundfont`)."""
    buf = io.BytesIO()
    _write_pcm(buf, samples)
    return buf.getvalue()


def write_wav_samples(path: str | os.PathLike, samples: np.ndarray, what: str = "") -> Path:
    """:func:`wav_bytes` of ``samples`` written to ``path`` atomically, a block at a time: an
    hour of audio takes no more memory than its samples already do."""
    with atomic_writer(path, what) as f:
        _write_pcm(f, samples)
    return Path(path)


def _write_pcm(f: BinaryIO, samples: np.ndarray) -> None:
    samples = np.asarray(samples)
    with wave.open(f, "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.setnframes(len(samples))  # the header is right from the start: nothing to patch
        for i in range(0, len(samples), WAV_BLOCK):
            block = np.clip(samples[i : i + WAV_BLOCK], -1.0, 1.0) * 32767
            w.writeframesraw(block.astype("<i2").tobytes())


class Renderer(Protocol):
    """What renders a sequence to samples, e.g. a loaded :class:`musicvae.soundfont.SoundFont`."""

    def render(self, ns: NoteSequence) -> np.ndarray: ...


def write_wav(
    ns: NoteSequence,
    path: str | os.PathLike,
    seed: int = 0,
    soundfont: Renderer | None = None,
    *,
    loop: str | None = None,
    seconds: float | None = None,
) -> Path:
    """Render ``ns`` on the built-in kit and voices, or on ``soundfont`` (a loaded
    :class:`musicvae.soundfont.SoundFont`), and write it as a WAV file, atomically. With
    ``loop`` ("fold" or "cut") the WAV is the loop, ``seconds`` long (default
    :func:`loop_seconds`), see :func:`as_loop`; without, the music and its last ring."""
    samples = soundfont.render(ns) if soundfont is not None else render(ns, seed)
    if loop is not None:
        samples = as_loop(samples, loop_seconds(ns) if seconds is None else seconds, loop)
    return write_wav_samples(path, samples)
