"""Quantisation and windowing for the GrooVAE converter, vectorised with numpy.

Follows note_seq's ``quantize_note_sequence`` (step = int(seconds * steps_per_second + 0.5), and the
checks that make Magenta's GrooveConverter return nothing: tempo changes, time-signature changes,
bad time signatures, negative times, a bar that is not ``steps_per_bar`` steps long), and the two
ways a file becomes fixed-length windows:

- ``file_grid``: the whole sequence on one grid, padded to whole bars from the last onset (Magenta's
  ``GrooveConverter.to_tensors``), to be cut into windows by the caller;
- ``bar_windows``: what TFDS ``groove/Nbar-midionly`` does before the converter sees the data:
  N-bar sub-sequences slid one bar at a time, each shifted to start at 0 (with the tick rounding
  and tempo rescaling of TFDS's pretty_midi round trip) and then quantised on its own; a window is
  kept only if the converter would yield a full window from it.

Both produce the dense (hit, velocity, offset) grids of shape (B, T, n_classes) through
``scatter_loudest``, which keeps the loudest note per (row, step, class), first one on ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicvae.data.sequence import DEFAULT_QPM, NoteSequence
from musicvae.errors import MusicVAEError

# Bars one sequence may span, in 4/4 at its first tempo: about an hour at 120 qpm, more than
# any groove or song. Every window of a sequence is made at once, so one note hours late (a
# corrupt delta time; a 12 MB file of 46,872 windows took 3.7 GB) would fill the memory.
MAX_BARS = 2000


def sequence_bars(ns: NoteSequence) -> float:
    """How many 4/4 bars ``ns`` spans at its first tempo (its last note's end)."""
    return ns.total_time * ns.qpm / 240.0


def check_bars(ns: NoteSequence, name: str | None = None) -> None:
    """One :class:`MusicVAEError` line naming the sequence when it spans more than
    :data:`MAX_BARS` bars, before any grid of it is made."""
    bars = sequence_bars(ns)
    if bars > MAX_BARS:
        raise MusicVAEError(
            f"{name or ns.filename or 'sequence'}: {bars:,.0f} bars; a sequence of at most "
            f"{MAX_BARS:,} bars is read (a corrupt delta time can put a note hours late)"
        )


@dataclass(frozen=True)
class Grid:
    """A validated quantisation grid: one tempo, one time signature with the right bar length."""

    qpm: float
    steps_per_second: float
    step_length: float  # seconds per step, computed as Magenta does: (60 / qpm) / steps_per_quarter


def time_signature_ok(ns: NoteSequence, steps_per_quarter: int, steps_per_bar: int) -> bool:
    """note_seq's time-signature checks plus the converter's steps-per-bar check."""
    sigs = ns.time_signatures
    if not sigs:
        num, den = 4, 4
    else:
        ordered = sorted(sigs, key=lambda s: s.time)
        # An implicit 4/4 at time 0 counts as a change when the first signature comes later.
        if ordered[0].time != 0 and (ordered[0].numerator, ordered[0].denominator) != (4, 4):
            return False
        # note_seq compares against the first signature as stored, not the earliest one.
        num, den = sigs[0].numerator, sigs[0].denominator
        if any((s.numerator, s.denominator) != (num, den) for s in ordered[1:]):
            return False
    if den <= 0 or den & (den - 1) or num == 0:
        return False
    return steps_per_quarter * (4.0 / den * num) == steps_per_bar


def single_tempo(tempos: list, default: float = DEFAULT_QPM) -> float | None:
    """The one tempo of a sequence, or None when note_seq would raise MultipleTempoError."""
    if not tempos:
        return default
    ordered = sorted(tempos, key=lambda t: t.time)
    if ordered[0].time != 0 and ordered[0].qpm != DEFAULT_QPM:
        return None
    qpm = tempos[0].qpm
    if any(t.qpm != qpm for t in ordered[1:]):
        return None
    return float(qpm)


def make_grid(qpm: float, steps_per_quarter: int) -> Grid:
    return Grid(
        qpm=qpm,
        steps_per_second=steps_per_quarter * qpm / 60.0,
        step_length=60.0 / qpm / steps_per_quarter,
    )


def timing_grid(ns: NoteSequence, steps_per_quarter: int, steps_per_bar: int) -> Grid | None:
    """The grid ``ns`` quantises to, or None where Magenta's converter yields no tensors."""
    if not time_signature_ok(ns, steps_per_quarter, steps_per_bar):
        return None
    qpm = single_tempo(ns.tempos)
    return None if qpm is None else make_grid(qpm, steps_per_quarter)


def quantize(seconds: np.ndarray, steps_per_second: float) -> np.ndarray:
    """note_seq's quantize_to_step: int() truncates toward zero after adding half a step."""
    return np.trunc(np.asarray(seconds, np.float64) * steps_per_second + 0.5).astype(np.int64)


def offsets(seconds: np.ndarray, steps: np.ndarray, step_length: float) -> np.ndarray:
    """2 * (grid time - onset) / step, with Magenta's order of float operations."""
    return (step_length * steps - seconds) / step_length * 2.0


def scatter_loudest(
    rows: np.ndarray,
    steps: np.ndarray,
    classes: np.ndarray,
    velocity: np.ndarray,
    offset: np.ndarray,
    order: np.ndarray,
    shape: tuple[int, int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense (B, T, C) hit / velocity / offset grids from per-note values.

    Where several notes share (row, step, class) the highest velocity wins and, among equal
    velocities, the note that comes first in ``order`` (the sequence's note order), as Python's
    ``max`` does in Magenta.
    """
    hits = np.zeros(shape, np.float64)
    vel = np.zeros(shape, np.float64)
    off = np.zeros(shape, np.float64)
    if len(rows) == 0:
        return hits, vel, off
    idx = np.lexsort((order, -velocity.astype(np.int64), classes, steps, rows))
    r, s, c = rows[idx], steps[idx], classes[idx]
    first = np.ones(len(idx), bool)
    first[1:] = (r[1:] != r[:-1]) | (s[1:] != s[:-1]) | (c[1:] != c[:-1])
    keep = idx[first]
    r, s, c = rows[keep], steps[keep], classes[keep]
    hits[r, s, c] = 1.0
    vel[r, s, c] = velocity[keep] / 127.0
    off[r, s, c] = offset[keep]
    return hits, vel, off


@dataclass
class NoteGrid:
    """Per-note grid positions for a batch of rows (whole file: one row; bar windows: many)."""

    rows: np.ndarray  # (N,) window index of each note
    steps: np.ndarray  # (N,) quantised start step within its row
    classes: np.ndarray  # (N,) drum class
    velocity: np.ndarray  # (N,) MIDI velocity
    offset: np.ndarray  # (N,) offset in [-1, 1] units
    order: np.ndarray  # (N,) index of the note in the source sequence (tie-breaking)
    n_rows: int
    n_steps: int

    def dense(self, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return scatter_loudest(
            self.rows,
            self.steps,
            self.classes,
            self.velocity,
            self.offset,
            self.order,
            (self.n_rows, self.n_steps, n_classes),
        )


def file_grid(
    ns: NoteSequence, class_of: np.ndarray, steps_per_quarter: int, steps_per_bar: int
) -> NoteGrid | None:
    """The whole sequence on one grid padded to whole bars, or None if Magenta yields nothing.

    ``class_of`` maps MIDI pitch (0-127) to a drum class, -1 for pitches outside the map (skipped;
    Magenta itself would fail on them).
    """
    grid = timing_grid(ns, steps_per_quarter, steps_per_bar)
    if grid is None or len(ns) == 0:
        return None
    start_steps = quantize(ns.start, grid.steps_per_second)
    end_steps = quantize(ns.end, grid.steps_per_second)
    if np.any(start_steps < 0) or np.any(end_steps < 0):
        return None  # note_seq's NegativeTimeError
    pitch = np.clip(ns.pitch.astype(np.int64), 0, 127)
    classes = class_of[pitch]
    known = (classes >= 0) & (ns.pitch >= 0) & (ns.pitch <= 127)
    if not known.any():
        return None
    steps = start_steps[known]
    total_bars = -(-(int(steps.max()) + 1) // steps_per_bar)
    return NoteGrid(
        rows=np.zeros(len(steps), np.int64),
        steps=steps,
        classes=classes[known],
        velocity=ns.velocity[known].astype(np.int64),
        offset=offsets(ns.start[known], steps, grid.step_length),
        order=np.flatnonzero(known),
        n_rows=1,
        n_steps=total_bars * steps_per_bar,
    )


def bar_length(ns: NoteSequence) -> float:
    """Seconds per bar the way TFDS computes it: 60 / bpm * beats per bar.

    bpm and the time signature come from the dataset's metadata (``meta["bpm"]``,
    ``meta["time_signature"]`` such as "4-4") when present, else from the sequence itself.
    """
    # TFDS reads the csv's bpm column as an int.
    try:
        bpm = int(float(ns.meta["bpm"])) if ns.meta.get("bpm") else ns.qpm
        if ns.meta.get("time_signature"):
            beats = int(str(ns.meta["time_signature"]).split("-")[0])
        elif ns.time_signatures:
            beats = min(ns.time_signatures, key=lambda s: s.time).numerator
        else:
            beats = 4
    except (ValueError, OverflowError):  # a hand-edited info.csv or dataset row
        bpm, beats = 0, 0
    # A zero, negative or NaN tempo comes only from a damaged dataset row.
    if not (bpm > 0 and beats > 0 and np.isfinite(bpm)):
        bpm_text = ns.meta.get("bpm") or f"{ns.qpm:g}"
        raise MusicVAEError(
            f"{ns.filename or ns.id or 'sequence'}: bad tempo or meter (bpm {bpm_text}, "
            f"time signature {ns.meta.get('time_signature') or beats})"
        )
    return 60 / bpm * beats


def end_time(ns: NoteSequence) -> float:
    """pretty_midi's ``get_end_time``: the last note end or event.

    Controllers are not NoteSequence notes: ``read_midi`` stores the file's end time including
    them in ``meta["end_time"]``, which counts when present.
    """
    times = [float(ns.end.max())] if len(ns) else [0.0]
    times += [t.time for t in ns.tempos] + [s.time for s in ns.time_signatures]
    if ns.meta.get("end_time"):
        times.append(float(ns.meta["end_time"]))
    return max(times)


def bar_windows(
    ns: NoteSequence,
    class_of: np.ndarray,
    split_bars: int,
    steps_per_quarter: int,
    steps_per_bar: int,
) -> NoteGrid | None:
    """TFDS-style windows: ``split_bars`` bars slid one bar at a time, each through the converter.

    A window holds the notes that start at or after its start and end at or before its end (as
    pretty_midi's ``adjust_times`` keeps them), shifted to start at 0 (``tfds_retime``: for a
    single-tempo sequence the floats match TFDS's MIDI round trip bit for bit). It is quantised
    with its own tempo and kept only if the converter would produce a full window: no tempo
    change inside, a valid time signature, and an onset in its last bar. Time signatures are the
    whole file's, as TFDS copies them into every window.
    """
    if not time_signature_ok(ns, steps_per_quarter, steps_per_bar) or len(ns) == 0:
        return None
    bar = bar_length(ns)
    total_bars = round(end_time(ns) / bar)
    n_win = total_bars - split_bars + 1
    if n_win <= 0:
        return None
    t0 = np.array([i * bar for i in range(n_win)], np.float64)
    t1 = np.array([(i + split_bars) * bar for i in range(n_win)], np.float64)
    qpm = _window_tempos(ns, t0, t1)

    pitch = np.clip(ns.pitch.astype(np.int64), 0, 127)
    classes = class_of[pitch]
    known = np.flatnonzero(classes >= 0)
    start, end = ns.start[known], ns.end[known]
    by_start = np.argsort(start, kind="stable")
    sorted_start = start[by_start]
    lo = np.searchsorted(sorted_start, t0, side="left")
    hi = np.searchsorted(sorted_start, t1, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(n_win), counts)
    pos = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    note = by_start[np.repeat(lo, counts) + pos]  # index into `known`
    # pretty_midi keeps notes wholly inside the range, then drops those of zero length.
    inside = (end[note] <= t1[rows]) & (end[note] > start[note]) & ~np.isnan(qpm[rows])
    rows, note = rows[inside], note[inside]

    if single_tempo(ns.tempos) is not None:
        rel, rel_end, window_qpm = tfds_retime(
            start[note], end[note], t0, t1, rows, split_bars * bar, qpm[0], ns.ticks_per_quarter
        )
        qpm = window_qpm
        written = rel_end > rel  # a note shorter than a tick does not survive the MIDI round trip
        rows, note, rel = rows[written], note[written], rel[written]
    else:
        rel = start[note] - t0[rows]
    sps = steps_per_quarter * qpm[rows] / 60.0
    step_length = 60.0 / qpm[rows] / steps_per_quarter
    steps = np.trunc(rel * sps + 0.5).astype(np.int64)
    window_steps = split_bars * steps_per_bar
    last = np.full(n_win, -1, np.int64)
    np.maximum.at(last, rows, steps)
    # The converter pads to the last onset's bar: a window needs an onset in its last bar.
    full = last >= window_steps - steps_per_bar
    keep = full[rows] & (steps < window_steps)
    new_index = np.cumsum(full) - 1
    rows, note, steps, rel, step_length = (
        new_index[rows[keep]],
        note[keep],
        steps[keep],
        rel[keep],
        step_length[keep],
    )
    orig = known[note]
    return NoteGrid(
        rows=rows,
        steps=steps,
        classes=classes[orig],
        velocity=ns.velocity[orig].astype(np.int64),
        offset=(step_length * steps - rel) / step_length * 2.0,
        order=orig,
        n_rows=int(full.sum()),
        n_steps=window_steps,
    )


def tfds_retime(
    start: np.ndarray,
    end: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    rows: np.ndarray,
    length: float,
    qpm: float,
    tpq: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window-relative note times and window tempos as TFDS's MIDI round trip leaves them.

    TFDS cuts each window with pretty_midi's ``adjust_times`` and writes it as a MIDI file that
    Magenta reads back. That moves each window's tempo slightly (the window's ends are snapped to
    the file's ticks, the tempo rescaled to fit and stored in whole microseconds) and rounds
    every note to a tick of the new tempo. For a single-tempo file this reproduces those floats:
    returns (start, end) per note of ``rows`` and the qpm of each window, as note_seq reads them.
    """
    scale = 60.0 / ((6e7 / round(6e7 / qpm)) * tpq)  # the file's seconds per tick
    # adjust_times: notes by linear interpolation (np.interp's own formula)...
    slope = length / (t1 - t0)
    new_start = np.where(start == t1[rows], length, slope[rows] * (start - t0[rows]))
    new_end = np.where(end == t1[rows], length, slope[rows] * (end - t0[rows]))
    # ... the tempo from the window's ends snapped to the file's ticks ...
    snapped = _nearest_tick(np.stack([t0, t1]), scale) * scale
    window_qpm = 60.0 / (scale * tpq) * ((snapped[1] - snapped[0]) / length)
    write_scale = 60.0 / (window_qpm * tpq)
    # ... written with pretty_midi's time_to_tick and a whole-microsecond tempo, read back.
    mspq = np.trunc(6e7 / (60.0 / (write_scale * tpq)))
    read_scale = 60.0 / ((6e7 / mspq) * tpq)
    read_qpm = 60.0 / (60.0 / ((6e7 / mspq) * tpq) * tpq)

    def through_midi(t: np.ndarray) -> np.ndarray:
        ws = write_scale[rows]
        beyond = np.round(1 + (t - ws) / ws)  # past pretty_midi's two-entry tick table
        first = np.where(np.abs(t) < np.abs(t - ws), 0.0, 1.0)
        ticks = np.where(t > ws, beyond, np.where(t > 0, first, 0.0))
        return read_scale[rows] * ticks

    return through_midi(new_start), through_midi(new_end), read_qpm


def _nearest_tick(t: np.ndarray, scale: float) -> np.ndarray:
    """pretty_midi's time_to_tick on a one-tempo map: nearest tick, ties to the later one."""
    k = np.ceil(t / scale)
    k = np.where(scale * k < t, k + 1, k)
    k = np.where((k > 0) & (scale * (k - 1) >= t), k - 1, k)
    closer_below = (k > 0) & (np.abs(t - scale * (k - 1)) < np.abs(t - scale * k))
    return np.where(closer_below, k - 1, k)


def _window_tempos(ns: NoteSequence, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Each window's tempo (the one in effect at its start), NaN where it changes inside."""
    tempos = sorted(ns.tempos, key=lambda t: t.time)
    times = np.array([t.time for t in tempos], np.float64)
    qpms = np.array([t.qpm for t in tempos], np.float64)
    if len(times) == 0 or times[0] > 0:
        # MIDI's implicit 120 qpm until the first tempo event.
        times = np.concatenate([[0.0], times])
        qpms = np.concatenate([[DEFAULT_QPM], qpms])
    at_start = qpms[np.searchsorted(times, t0, side="right") - 1]
    out = at_start.copy()
    for time, q in zip(times, qpms, strict=True):
        changes = (time > t0) & (time < t1) & (q != at_start)
        out[changes] = np.nan
    return out
