"""A tiny, valid SoundFont 2 file built in memory, so SoundFont tests need no download.

It holds three presets, each one instrument zone over all 128 keys playing one sample at its
recorded pitch (``scaleTuning`` 0, so every key sounds the same):

* bank 128, preset 0 ("Drums"): a short decaying sine burst at :data:`DRUM_HZ`, the drum kit;
* bank 0, preset 0 ("Piano"): a long sine at :data:`MELODIC_HZ`, so a test can tell from the
  spectrum that drums were played on the percussion bank and not the melodic one;
* bank 0, preset 33 ("Bass"): a long sine at :data:`BASS_HZ`, so a test can tell which program
  a melodic note was played on.

The layout follows the SoundFont 2.01 spec: ``RIFF sfbk`` with ``LIST INFO`` (version, engine,
name), ``LIST sdta`` (one ``smpl`` chunk of 16-bit mono samples, each followed by the 46 zero
samples the spec asks for) and ``LIST pdta`` with the nine hydra chunks, each ending in its
terminal record.
"""

from __future__ import annotations

import struct

import numpy as np

RATE = 22_050
DRUM_HZ = 300.0
MELODIC_HZ = 2_000.0
BASS_HZ = 500.0
BASS_PROGRAM = 33  # General MIDI's fingered electric bass
DRUM_S = 0.15  # the burst's length: every hit has died away this long after its onset
# Generator operators (SF2 spec section 8.1.2).
GEN_INSTRUMENT, GEN_KEY_RANGE, GEN_RELEASE_VOL_ENV = 41, 43, 38
GEN_SAMPLE_ID, GEN_SAMPLE_MODES, GEN_SCALE_TUNING, GEN_ROOT_KEY = 53, 54, 56, 58


def _chunk(tag: bytes, data: bytes) -> bytes:
    pad = b"\0" if len(data) % 2 else b""
    return tag + struct.pack("<I", len(data)) + data + pad


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def _name(s: str) -> bytes:
    return s.encode("ascii")[:19].ljust(20, b"\0")


def _samples() -> list[np.ndarray]:
    drum_t = np.arange(int(DRUM_S * RATE)) / RATE
    drum = np.sin(2 * np.pi * DRUM_HZ * drum_t) * np.exp(-drum_t / (DRUM_S / 6))
    tone_t = np.arange(RATE) / RATE
    tones = [np.sin(2 * np.pi * hz * tone_t) for hz in (MELODIC_HZ, BASS_HZ)]
    return [(x * 30_000).astype("<i2") for x in (drum, *tones)]


def build_sf2(drums: bool = True, melodic: bool = True) -> bytes:
    """The SoundFont's bytes; without ``drums`` no drum kit (no bank 128), without
    ``melodic`` no melodic preset (nothing in bank 0)."""
    samples = _samples()
    smpl, shdr, offset = b"", b"", 0
    for name, x in zip(("burst", "tone", "bass"), samples, strict=True):
        smpl += x.tobytes() + b"\0\0" * 46
        start, end = offset, offset + len(x)
        shdr += _name(name) + struct.pack(
            "<IIIIIBbHH", start, end, start, end, RATE, 60, 0, 0, 1
        )  # mono sample, root key 60, not looped
        offset = end + 46
    shdr += _name("EOS") + bytes(26)
    # One instrument per sample; each instrument has one zone: key range, then the generators,
    # then sampleID last (as the spec orders them).
    inst, ibag, igen = b"", b"", b""
    for i, name in enumerate(("Drum kit", "Tone", "Bass tone")):
        inst += _name(name) + struct.pack("<H", i)
        ibag += struct.pack("<HH", len(igen) // 4, 0)
        igen += struct.pack("<HBB", GEN_KEY_RANGE, 0, 127)
        for op, amount in (
            (GEN_RELEASE_VOL_ENV, -3986),  # 0.1 s release (timecents)
            (GEN_SAMPLE_MODES, 0),
            (GEN_SCALE_TUNING, 0),
            (GEN_ROOT_KEY, 60),
            (GEN_SAMPLE_ID, i),
        ):
            igen += struct.pack("<Hh", op, amount)
    inst += _name("EOI") + struct.pack("<H", 3)
    ibag += struct.pack("<HH", len(igen) // 4, 0)
    igen += bytes(4)
    # Presets: the drum kit in bank 128, the tones in bank 0; each one zone naming its instrument.
    phdr, pbag, pgen = b"", b"", b""
    presets = [("Drums", 128, 0, 0)] if drums else []
    presets += [("Piano", 0, 0, 1), ("Bass", 0, BASS_PROGRAM, 2)] if melodic else []
    for bag, (name, bank, preset, instrument) in enumerate(presets):
        phdr += _name(name) + struct.pack("<HHHIII", preset, bank, bag, 0, 0, 0)
        pbag += struct.pack("<HH", len(pgen) // 4, 0)
        pgen += struct.pack("<HH", GEN_INSTRUMENT, instrument)
    phdr += _name("EOP") + struct.pack("<HHHIII", 0, 0, len(presets), 0, 0, 0)
    pbag += struct.pack("<HH", len(pgen) // 4, 0)
    pgen += bytes(4)
    info = _list(
        b"INFO",
        _chunk(b"ifil", struct.pack("<HH", 2, 1)),
        _chunk(b"isng", b"EMU8000\0"),
        _chunk(b"INAM", b"musicvae test kit\0"),
    )
    sdta = _list(b"sdta", _chunk(b"smpl", smpl))
    pdta = _list(
        b"pdta",
        _chunk(b"phdr", phdr),
        _chunk(b"pbag", pbag),
        _chunk(b"pmod", bytes(10)),
        _chunk(b"pgen", pgen),
        _chunk(b"inst", inst),
        _chunk(b"ibag", ibag),
        _chunk(b"imod", bytes(10)),
        _chunk(b"igen", igen),
        _chunk(b"shdr", shdr),
    )
    return _chunk(b"RIFF", b"sfbk" + info + sdta + pdta)
