"""MIDI files to NoteSequences and back, through symusic.

symusic parses in C++ (about 100x faster than pretty_midi on the GMD). Its seconds mode is float32,
which is too coarse for micro-timing offsets late in a long file, so we read ticks and map them to
seconds ourselves in float64 with the file's tempo map, as pretty_midi and note_seq do.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import symusic
from numpy.typing import ArrayLike

from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.errors import MusicVAEError
from musicvae.io import atomic_write_bytes

MIDI_SUFFIXES = (".mid", ".midi")
# Fine enough that a written onset lands within 1e-3 of its offset value at any tempo
# (rounding error <= 4 / tpq in the tensor's [-1, 1] offset units).
WRITE_TICKS_PER_QUARTER = 9600
DRUM_CHANNEL = 9
# Larger files are not grooves; reading one whole would only cost memory.
MAX_MIDI_BYTES = 64 * 2**20


# Tempos a performance can have; anything else is a broken or synthetic file, and it would
# put notes hours apart (or all on one step) on the grid.
MIN_QPM, MAX_QPM = 20.0, 400.0


class MidiError(MusicVAEError, ValueError):
    """A file that is not a readable MIDI file; the message names the file and the reason."""


def _tick_to_seconds(
    ticks: np.ndarray, tempo_ticks: np.ndarray, mspq: np.ndarray, tpq: int
) -> np.ndarray:
    """Seconds at each tick under a piecewise-constant tempo map (MIDI's default is 120 qpm)."""
    if len(tempo_ticks) == 0 or tempo_ticks[0] != 0:
        tempo_ticks = np.concatenate([[0], tempo_ticks])
        mspq = np.concatenate([[500000], mspq])
    # pretty_midi's float operations, bit for bit: note_seq quantises onsets that sit exactly
    # half a step from the grid by the last bit of these products.
    sec_per_tick = 60.0 / ((6e7 / mspq.astype(np.float64)) * tpq)
    seg_start = np.zeros(len(tempo_ticks))
    for i in range(1, len(tempo_ticks)):
        ticks_in_segment = tempo_ticks[i] - tempo_ticks[i - 1]
        seg_start[i] = seg_start[i - 1] + sec_per_tick[i - 1] * ticks_in_segment
    idx = np.searchsorted(tempo_ticks, ticks, side="right") - 1
    return seg_start[idx] + sec_per_tick[idx] * (ticks - tempo_ticks[idx])


def _tempo_map(score: symusic.Score, filename: str) -> tuple[np.ndarray, np.ndarray]:
    """The tempo changes' ticks and microseconds per quarter, checked."""
    tempos = sorted(((int(t.time), int(t.mspq)) for t in score.tempos), key=lambda t: t[0])
    # Like pretty_midi: the last tempo at tick 0 wins and repeats of the running tempo are
    # dropped (they would change the float sums of the tick-to-seconds map).
    kept: list[tuple[int, int]] = []
    for tick, m in tempos:
        if tick == 0:
            kept = [(0, m)]
        elif m != (kept[-1][1] if kept else 500000):
            kept.append((tick, m))
    t_ticks = np.array([t for t, _ in kept], np.int64)
    t_mspq = np.array([m for _, m in kept], np.int64)
    if np.any(t_mspq <= 0):
        raise MidiError(f"{filename}: invalid tempo event")
    qpms = 6e7 / t_mspq if len(t_mspq) else np.zeros(0)
    bad = qpms[(qpms < MIN_QPM) | (qpms > MAX_QPM)]
    if len(bad):
        raise MidiError(
            f"{filename}: tempo {bad[0]:.6g} qpm is outside {MIN_QPM:g}-{MAX_QPM:g} (a corrupt "
            "or synthetic tempo event)"
        )
    return t_ticks, t_mspq


def score_to_sequence(score: symusic.Score, *, filename: str = "") -> NoteSequence:
    """Convert a tick-based symusic Score to a NoteSequence (all tracks, times in seconds)."""
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise MidiError(f"{filename}: invalid ticks per quarter {tpq}")
    t_ticks, t_mspq = _tempo_map(score, filename)

    def seconds(ticks: ArrayLike) -> np.ndarray:
        return _tick_to_seconds(np.asarray(ticks, np.int64), t_ticks, t_mspq, tpq)

    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("pitch", "velocity", "on", "off", "drum", "prog")
    }
    # pretty_midi's get_end_time() also counts controllers, pitch bends and meta events; TFDS's
    # groove/Nbar datasets take their number of bars from it.
    event_ticks = [0, *t_ticks.tolist()]
    event_ticks += [int(e.time) for e in (*score.time_signatures, *score.key_signatures)]
    for track in score.tracks:
        for events in (track.controls, track.pitch_bends):
            if len(events):
                event_ticks.append(int(events.numpy()["time"].max()))
        arr = track.notes.numpy()
        # pretty_midi (and so note_seq) drops notes whose note-off shares the note-on's tick.
        arr = {k: v[arr["duration"] > 0] for k, v in arr.items()}
        n = len(arr["time"])
        if n == 0:
            continue
        on = arr["time"].astype(np.int64)
        if on.min() < 0:  # symusic's int32 ticks wrap past 2^31: corrupt delta times
            raise MidiError(
                f"{filename}: a note lies beyond MIDI's time range (tick {int(on.min())}; "
                "corrupt delta times)"
            )
        cols["pitch"].append(arr["pitch"])
        cols["velocity"].append(arr["velocity"])
        cols["on"].append(on)
        cols["off"].append(on + arr["duration"].astype(np.int64))
        cols["drum"].append(np.full(n, bool(track.is_drum)))
        cols["prog"].append(np.full(n, int(track.program)))
    if cols["pitch"]:
        cat = {k: np.concatenate(v) for k, v in cols.items()}
        # Stable order by onset, so "first note wins" ties match a time-ordered reading.
        order = np.lexsort((cat["pitch"], cat["on"]))
        cat = {k: v[order] for k, v in cat.items()}
    else:
        cat = {k: np.zeros(0, np.int64) for k in cols}
    end_tick = max(event_ticks + ([int(cat["off"].max())] if len(cat["off"]) else []))
    return NoteSequence(
        pitch=cat["pitch"],
        velocity=cat["velocity"],
        start=seconds(cat["on"]),
        end=seconds(cat["off"]),
        is_drum=cat["drum"].astype(bool),
        program=cat["prog"],
        tempos=[
            Tempo(float(s), 60.0 / (60.0 / ((6e7 / m) * tpq) * tpq))  # pretty_midi's qpm
            for s, m in zip(seconds(t_ticks), t_mspq, strict=True)
        ],
        time_signatures=[
            TimeSignature(float(seconds([ts.time])[0]), int(ts.numerator), int(ts.denominator))
            for ts in score.time_signatures
        ],
        ticks_per_quarter=tpq,
        filename=filename,
        meta={"end_time": repr(float(seconds([end_tick])[0]))},
    )


def read_midi(path: str | os.PathLike, *, filename: str | None = None) -> NoteSequence:
    """Read a MIDI file; raise ``MidiError`` naming the file if it cannot be parsed."""
    path = Path(path)
    name = filename if filename is not None else str(path)
    try:
        info = path.stat()
    except OSError as e:
        raise MidiError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:  # a NUL byte in the name
        raise MidiError(f"{str(path)!r}: cannot read ({e})") from None
    # Only regular files: a FIFO would block the read forever and /dev/zero never ends.
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
        raise MidiError(f"{path}: not a MIDI file ({kind})")
    if info.st_size > MAX_MIDI_BYTES:
        raise MidiError(
            f"{path}: {info.st_size / 2**20:.0f} MB; a MIDI file of at most "
            f"{MAX_MIDI_BYTES // 2**20} MB is read (a drum groove has a few KB)"
        )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MidiError(f"{path}: cannot read ({e.strerror or e})") from None
    return read_midi_bytes(data, filename=name)


def read_midi_bytes(
    data: bytes,
    *,
    filename: str = "<bytes>",
    max_tracks: int | None = None,
    max_meta_events: int | None = None,
) -> NoteSequence:
    """Parse MIDI file contents held in memory (uploads, archives).

    ``max_tracks`` and ``max_meta_events`` (tempo changes, time and key signatures together)
    refuse, before converting, files that would be slow to convert: the conversion loops over
    tracks and meta events in Python, and 1 MB holds 90,000 tempo changes (about a second).
    """
    if len(data) < 14 or data[:4] != b"MThd":
        raise MidiError(f"{filename}: not a MIDI file (no MThd header)")
    try:
        score = symusic.Score.from_midi(data)
    except Exception as e:  # noqa: BLE001 - symusic raises plain RuntimeErrors (and others) on a corrupt file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MidiError(f"{filename}: corrupt MIDI ({reason})") from None
    if max_tracks is not None and len(score.tracks) > max_tracks:
        raise MidiError(
            f"{filename}: {len(score.tracks):,} tracks; at most {max_tracks:,} are read"
        )
    if max_meta_events is not None:
        counts = {
            "tempo changes": len(score.tempos),
            "time signatures": len(score.time_signatures),
            "key signatures": len(score.key_signatures),
        }
        if sum(counts.values()) > max_meta_events:
            what = ", ".join(f"{n:,} {k}" for k, n in counts.items() if n)
            raise MidiError(
                f"{filename}: {what}; at most {max_meta_events:,} tempo, time and key "
                "signature events are read (a drum groove has a few)"
            )
    return score_to_sequence(score, filename=filename)


def _seconds_to_ticks(
    seconds: np.ndarray, tempos: list[Tempo], ticks_per_quarter: int
) -> np.ndarray:
    """Ticks at each time under the sequence's piecewise-constant tempo map (rounded)."""
    times = np.array([t.time for t in tempos], np.float64)
    tps = np.array([t.qpm for t in tempos], np.float64) / 60.0 * ticks_per_quarter
    seg_ticks = np.concatenate([[0.0], np.cumsum(np.diff(times) * tps[:-1])])
    idx = np.clip(np.searchsorted(times, seconds, side="right") - 1, 0, None)
    return np.round(seg_ticks[idx] + (seconds - times[idx]) * tps[idx]).astype(np.int64)


def sequence_to_score(
    ns: NoteSequence, *, ticks_per_quarter: int = WRITE_TICKS_PER_QUARTER
) -> symusic.Score:
    """Build a tick-based Score: drum notes on the drum channel, others on program tracks."""
    tempos = sorted(ns.tempos, key=lambda t: t.time) or [Tempo(0.0, ns.qpm)]
    if tempos[0].time > 0:
        tempos.insert(0, Tempo(0.0, tempos[0].qpm))

    def ticks(seconds: ArrayLike) -> np.ndarray:
        return _seconds_to_ticks(np.asarray(seconds, np.float64), tempos, ticks_per_quarter)

    score = symusic.Score(ticks_per_quarter)
    for t, tick in zip(tempos, ticks([t.time for t in tempos]), strict=True):
        score.tempos.append(symusic.Tempo(int(tick), qpm=t.qpm))
    for ts in ns.time_signatures or [TimeSignature(0.0, 4, 4)]:
        tick = int(ticks([ts.time])[0])
        score.time_signatures.append(symusic.TimeSignature(tick, ts.numerator, ts.denominator))
    # MIDI has no time before 0: a hit played just ahead of the first step starts at 0 (symusic
    # would otherwise write a file whose notes all vanish on reading).
    start = np.maximum(ticks(ns.start), 0)
    dur = np.maximum(ticks(ns.end) - start, 1)
    keys = sorted({(bool(d), int(p)) for d, p in zip(ns.is_drum, ns.program, strict=True)})
    for drum, program in keys:
        mask = (ns.is_drum == drum) & (ns.program == program)
        track = symusic.Track(
            "Drums" if drum else f"Program {program}", program=program, is_drum=drum
        )
        for s, d, p, v in zip(
            start[mask], dur[mask], ns.pitch[mask], ns.velocity[mask], strict=True
        ):
            track.notes.append(symusic.Note(int(s), int(d), int(p), int(max(1, min(127, v)))))
        score.tracks.append(track)
    return score


def write_midi(ns: NoteSequence, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write a NoteSequence as a MIDI file, atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    data = sequence_to_score(ns, **kwargs).dumps_midi()
    atomic_write_bytes(path, data)
    return path
