"""Magenta's one-hot melody converter: monophonic melodies to 90-class steps and back.

Reproduces ``OneHotMelodyConverter`` (magenta/models/music_vae/data.py) with note_seq's melody
extraction (``melodies_lib.Melody.from_quantized_sequence`` driven by
``melody_pipelines.extract_melodies``). Each 16th-note step is one of ``90`` classes for MIDI
pitches 21..108: 0 = no event (hold the note, or stay silent), 1 = note-off, ``2 + pitch - 21``
= a note starts. Inputs equal outputs; there are no controls.

``to_tensors`` follows Magenta step by step: split the sequence on real tempo and
time-signature changes; keep notes of the valid programs within the pitch range; quantise at
``steps_per_quarter`` (a piece whose bar is not ``steps_per_bar`` steps gives nothing); extract
melodies (each starts at the bar of its first note, ends after ``gap_bars`` bars of silence, keeps
the highest of simultaneous onsets, and is padded to whole bars and truncated to ``max_bars``);
cut ``split_bars``-bar windows with a hop of one bar; dedupe them in CPython's set order; keep at
most ``max_tensors_per_notesequence`` (the first ones, or a random draw in 'train' mode).

With ``DataConfig.chord_encoding`` (``cat-mel_2bar_med_chords``: Magenta's ``chord_encoding=
TriadChordOneHotEncoding()``) each step also gets its chord as a control row: the piece's chord
text annotations, or, when it has none, the chords note_seq infers from its pitched notes
(:mod:`musicvae.data.chords`, two per 4/4 bar); a window's chords are those of its steps, the
last chord past the piece's end. The dedupe is then over (event, chord) tuples, so one melody
under two chord sequences is two windows, in the set order CPython gives under Magenta's
``PYTHONHASHSEED=0`` (:func:`~musicvae.data.chords.magenta_set_order`; Magenta's own order
changes with the hash seed, ours does not). As in Magenta, a piece gives nothing when its chords
cannot be inferred (an uncommon meter, more than 1000 chords), two annotated chords start on one
step, or a kept window has a chord the encoding cannot encode.

One difference: note_seq extracts one melody line per MIDI track (``instrument``), and our
``NoteSequence`` keeps no track index, so notes are grouped by program instead. That is the same
whenever each track has its own program, as in every single-track melody file.
"""

from __future__ import annotations

import numpy as np

from musicvae.configs import DataConfig
from musicvae.data import chords as chords_lib
from musicvae.data.converters.base import (
    CapRng,
    ConverterBase,
    ConverterTensors,
    register_converter,
    sample_items,
)
from musicvae.data.sequence import DEFAULT_QPM, NoteSequence, Tempo
from musicvae.data.windows import quantize

# note_seq's melody event values: a pitch (0-127) starts a note, these two are special.
NO_EVENT, NOTE_OFF = -2, -1
NUM_SPECIAL_EVENTS = 2
PIANO_MIN_PITCH, PIANO_MAX_PITCH = 21, 108
# The velocity Magenta gives every decoded note.
OUTPUT_VELOCITY = 80
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# DataConfig options that belong to the GrooVAE converter; set, they would silently do nothing.
_GROOVE_ONLY = (
    "humanize",
    "tapify",
    "add_instruments",
    "fixed_velocities",
    "hits_as_controls",
    "max_note_dropout_probability",
    "velocity_dropout_probability",
    "taps_as_controls",
)


def pitch_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI pitch: 21 -> "A0", 60 -> "C4"."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


# A piece of a sequence with its one tempo and time signature: (piece, qpm, numerator,
# denominator).
_Piece = tuple[NoteSequence, float, int, int]


def split_on_time_changes(ns: NoteSequence) -> list[_Piece]:
    """note_seq's ``split_note_sequence_on_time_changes``: ``(piece, qpm, numerator,
    denominator)`` per piece, each piece shifted to start at 0.

    A piece holds the notes that start inside it, cut at its end, and the tempo and time
    signature in effect at its start (the only ones it can have: every real change splits).
    Events that repeat the running value do not split, nor does anything at or after the end.
    """
    return [piece[:4] for piece in _split_pieces(ns)]


def _split_pieces(ns: NoteSequence) -> list[tuple[NoteSequence, float, int, int, float, float]]:
    """:func:`split_on_time_changes` with each piece's start and end time in ``ns`` too."""
    total = ns.total_time
    # Time signatures before tempos at equal times: note_seq sorts their concatenation stably.
    changes = sorted(
        [(s.time, (s.numerator, s.denominator), None) for s in ns.time_signatures]
        + [(t.time, None, t.qpm) for t in ns.tempos],
        key=lambda c: c[0],
    )
    # note_seq's implicit 4/4 at 120 qpm
    state: tuple[tuple[int, int], float] = ((4, 4), DEFAULT_QPM)
    splits = [0.0]
    states: list[tuple[tuple[int, int], float]] = []
    for time, signature, qpm in changes:
        if time >= total:
            continue
        if (signature == state[0]) if signature is not None else (qpm == state[1]):
            continue  # not a change
        if time > splits[-1]:
            states.append(state)  # the state of the piece this split ends
            splits.append(time)
        if signature is not None:
            state = (signature, state[1])
        elif qpm is not None:
            state = (state[0], qpm)
    states.append(state)
    if total <= splits[-1]:
        return []  # no notes (or every split at or after the end): note_seq returns nothing
    splits.append(total)
    pieces = []
    for (signature, qpm), t0, t1 in zip(states, splits[:-1], splits[1:], strict=True):
        inside = (ns.start >= t0) & (ns.start < t1)
        piece = ns.select(inside)
        piece.start = piece.start - t0
        piece.end = np.minimum(piece.end, t1) - t0
        pieces.append((piece, float(qpm), *signature, t0, t1))
    return pieces


def read_melody(
    notes: list[tuple[int, int, int, int]], search: int, spb: int, gap: float
) -> tuple[list[int], int] | None:
    """One note_seq ``Melody`` from ``notes`` (start, end, pitch, velocity) sorted by start,
    then pitch descending, all starting at or after ``search``: ``(events, start_step)`` or None.

    The melody starts at the bar of its first note and ends where ``gap`` steps of silence
    follow a note-off. A note starting where the last one started is dropped (the first, highest,
    wins); a note starting earlier than the last one's end cuts it there. The final note-off is
    dropped and the end padded to a whole bar, which puts the note-off back unless the last note
    ends on a bar line (it then sounds to the end).
    """
    first = notes[0][0]
    start_step = first - (first - search) % spb
    events: list[int] = []
    last_on = last_off = 0
    for start, end, pitch, velocity in notes:
        if not velocity:
            continue
        s, e = start - start_step, end - start_step
        if events:
            if s == last_on:
                continue
            if s - last_off >= gap:
                break
        # Melody._add_note: everything from the onset on is replaced by this note.
        del events[e + 1 :]
        events.extend([NO_EVENT] * (e + 1 - len(events)))
        events[s : e + 1] = [pitch] + [NO_EVENT] * (e - s - 1) + [NOTE_OFF]
        last_on, last_off = s, e
    if not events:
        return None
    if events[-1] == NOTE_OFF:
        events.pop()
    pad_melody(events, len(events) + (-len(events) % spb))
    return events, start_step


def pad_melody(events: list[int], length: int) -> None:
    """note_seq's ``Melody.set_length`` growing on the right: NO_EVENT padding, and a
    note-off right after the old end when a note was still sounding there."""
    old = len(events)
    if length <= old:
        return
    events.extend([NO_EVENT] * (length - old))
    sounding = next((e for e in reversed(events[:old]) if e != NO_EVENT), NOTE_OFF)
    if sounding >= 0:
        events[old] = NOTE_OFF


def extract_melodies(
    notes: list[tuple[int, int, int, int]], spb: int, gap: float, max_steps: int | None
) -> list[tuple[list[int], int]]:
    """note_seq's ``extract_melodies`` on one instrument with Magenta's converter settings
    (min_bars 1, min_unique_pitches 1, ignore_polyphonic_notes, pad_end): ``(events,
    start_step)`` per melody, in order. ``max_steps`` truncates a melody to whole bars."""
    notes = sorted(notes, key=lambda n: (n[0], -n[2]))
    starts = [n[0] for n in notes]
    melodies = []
    search, first = 0, 0
    while True:
        # Notes are sorted by onset, so those at or after `search` are a suffix.
        while first < len(notes) and starts[first] < search:
            first += 1
        melody = read_melody(notes[first:], search, spb, gap) if first < len(notes) else None
        if melody is None:
            break
        events, start_step = melody
        # The next search starts at the bar after this melody, before any truncation.
        end_step = start_step + len(events)
        search = end_step + (-end_step) % spb
        if len(events) < spb:
            continue
        if max_steps is not None and len(events) > max_steps:
            del events[max_steps - max_steps % spb :]
        if not any(e >= 0 for e in events):
            continue
        melodies.append((events, start_step))
    return melodies


@register_converter("melody")
class MelodyConverter(ConverterBase):
    """Magenta's OneHotMelodyConverter configured from a ``DataConfig`` (``split_bars`` is its
    ``slice_bars``; ``valid_programs`` the programs a melody is read from, None for all) and the
    melody settings, whose defaults every Magenta melody config shares.

    ``mode`` only matters to the window cap: 'train' draws the kept windows at random, as
    Magenta's training does; other modes keep the first ones, as Magenta does outside training.
    ``data.chord_encoding`` adds each step's chord as controls (see the module docstring).
    """

    def __init__(
        self,
        data: DataConfig,
        *,
        mode: str = "train",
        min_pitch: int = PIANO_MIN_PITCH,
        max_pitch: int = PIANO_MAX_PITCH,
        max_bars: int | None = 100,
        gap_bars: float | None = 1.0,
    ) -> None:
        if data.hop_size is not None:
            raise ValueError("the melody converter slides its windows one bar at a time")
        groove_only = [k for k in _GROOVE_ONLY if getattr(data, k) not in (False, (), None)]
        if groove_only:
            raise ValueError(f"drum options do not apply to melodies: {', '.join(groove_only)}")
        if not 0 <= min_pitch <= max_pitch <= 127:
            raise ValueError(f"pitch range {min_pitch}..{max_pitch} is not within 0..127")
        self.data = data
        self.mode = mode
        self.min_pitch, self.max_pitch = min_pitch, max_pitch
        self.valid_programs = data.valid_programs
        self.steps_per_bar = data.steps_per_quarter * data.quarters_per_bar
        self.window_steps: int | None = (
            data.split_bars * self.steps_per_bar if data.split_bars else None
        )
        self.max_steps = self.steps_per_bar * max_bars if max_bars else None
        self.gap_steps = (gap_bars or float("inf")) * self.steps_per_bar
        self.input_depth = self.output_depth = max_pitch - min_pitch + 1 + NUM_SPECIAL_EVENTS
        self.chords = (
            chords_lib.chord_encoding(data.chord_encoding) if data.chord_encoding else None
        )
        self.control_depth = self.chords.depth if self.chords is not None else 0
        pitches = range(min_pitch, max_pitch + 1)
        self.class_names = ("no_event", "note_off", *(pitch_name(p) for p in pitches))

    @property
    def is_random(self) -> bool:
        """False: the inputs are the targets (the 'train' cap's draw is made at conversion)."""
        return False

    # ---------------------------------------------------------------- to tensors

    def melodies(self, ns: NoteSequence, gap_steps: float | None = None) -> list[list[list[int]]]:
        """The melodies of each piece of ``ns`` (note_seq event lists, in Magenta's order),
        one list per piece; a piece without a valid grid has none."""
        return [
            [events for events, _ in self._piece_melodies(*piece, gap_steps)]
            for piece in split_on_time_changes(ns)
        ]

    def _piece_melodies(
        self,
        piece: NoteSequence,
        qpm: float,
        numerator: int,
        denominator: int,
        gap_steps: float | None = None,
    ) -> list[tuple[list[int], int]]:
        gap = self.gap_steps if gap_steps is None else gap_steps
        groups = self._quantized_notes(piece, qpm, numerator, denominator)
        spb, cut = self.steps_per_bar, self.max_steps
        return [m for notes in groups for m in extract_melodies(notes, spb, gap, cut)]

    def _quantized_notes(
        self, piece: NoteSequence, qpm: float, numerator: int, denominator: int
    ) -> list[list[tuple[int, int, int, int]]]:
        """The piece's valid notes as (start, end, pitch, velocity) steps, one list per
        program; none where note_seq cannot quantise the piece to this bar length."""
        if not self._on_grid(numerator, denominator):
            return []
        spq = self.data.steps_per_quarter
        keep = (piece.pitch >= self.min_pitch) & (piece.pitch <= self.max_pitch) & ~piece.is_drum
        if self.valid_programs is not None:
            keep &= np.isin(piece.program, list(self.valid_programs))
        steps_per_second = spq * qpm / 60.0
        start = quantize(piece.start[keep], steps_per_second)
        end = quantize(piece.end[keep], steps_per_second)
        end = np.where(end == start, end + 1, end)  # every note lasts at least one step
        program = piece.program[keep]
        rows = zip(
            start.tolist(),
            end.tolist(),
            piece.pitch[keep].tolist(),
            piece.velocity[keep].tolist(),
            strict=True,
        )
        groups: dict[int, list[tuple[int, int, int, int]]] = {}
        for prog, row in zip(program.tolist(), rows, strict=True):
            groups.setdefault(prog, []).append(row)
        return [groups[p] for p in sorted(groups)]

    def _on_grid(self, numerator: int, denominator: int) -> bool:
        """Whether note_seq quantises a piece of this meter to bars of ``steps_per_bar``."""
        if numerator == 0 or denominator <= 0 or denominator & (denominator - 1):
            return False  # note_seq's BadTimeSignatureError
        spq = self.data.steps_per_quarter
        return spq * (4.0 / denominator * numerator) == self.steps_per_bar

    def windows(self, melody: list[int]) -> list[list[int]]:
        """``split_bars``-bar slices of a melody, one bar apart (the whole melody when
        ``split_bars`` is None). Like a note_seq ``Melody``, a slice turns the note-offs before
        its first note into NO_EVENT."""
        size = self.window_steps
        if size is None:
            return [melody]
        out = []
        for end in range(size, len(melody) + 1, self.steps_per_bar):
            window = melody[end - size : end]
            for i, event in enumerate(window):
                if event >= 0:
                    break
                window[i] = NO_EVENT
            out.append(window)
        return out

    def to_tensors(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Magenta's ``to_tensors``: (T, 90) one-hot float32 windows, inputs == outputs,
        zero-width controls, lengths T (see the module docstring for the steps).

        ``rng`` draws the 'train' cap's picks: ``np.random.RandomState(s)`` gives exactly the
        windows, and their order, of Magenta's ``np.random.seed(s)`` before its call.
        """
        cap = self.data.max_tensors_per_notesequence
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        annotations = chords_lib.chord_annotations(ns) if self.chords is not None else []
        pieces = _split_pieces(ns)
        by_piece = chords_lib.split_annotations(
            annotations, [p[4] for p in pieces] + [pieces[-1][5]] if pieces else [0.0]
        )
        for (piece, qpm, num, den, _, _), piece_annotations in zip(pieces, by_piece, strict=True):
            found = self._piece_melodies(piece, qpm, num, den)
            sliced = [w for events, start in found for w in self._slices(events, start)]
            if self.chords is None:
                # Magenta dedupes tuples of 1-tuples (events zipped with no chords or keys):
                # the same set, hence the same iteration order, as note_seq's.
                unique = [[e for (e,) in t] for t in set(tuple(zip(w)) for w, _ in sliced) if t]
                # Magenta caps each piece (its _to_tensors), then all of them together (its
                # _combine_to_tensor_results), drawing from the one RNG in that order.
                picked = sample_items(unique, cap, self.mode, rng)
                kept += [(self.encode(w), np.zeros((len(w), 0), np.float32)) for w in picked]
                continue
            if not sliced:
                continue
            progression = self._progression((piece, qpm, num, den), piece_annotations)
            if progression is None:
                continue
            windows = [
                tuple(
                    zip(
                        w,
                        chords_lib.chords_at(progression, range(start, start + len(w))),
                        strict=True,
                    )
                )
                for w, start in sliced
            ]
            unique_windows = [windows[i] for i in chords_lib.magenta_set_order(windows)]
            chosen = sample_items(unique_windows, cap, self.mode, rng)
            try:
                controls = [self.chords.encode_steps([c for _, c in t]) for t in chosen]
            except (chords_lib.ChordSymbolError, chords_lib.ChordEncodingError):
                continue  # Magenta drops the piece when a kept window's chord has no class
            kept += [
                (self.encode([e for e, _ in t]), c) for t, c in zip(chosen, controls, strict=True)
            ]
        kept = sample_items(kept, cap, self.mode, rng)
        outputs = [o for o, _ in kept]
        return ConverterTensors(
            inputs=outputs,
            outputs=[o.copy() for o in outputs],
            controls=[c for _, c in kept],
            lengths=[len(o) for o in outputs],
        )

    def _slices(self, melody: list[int], start_step: int) -> list[tuple[list[int], int]]:
        """:meth:`windows` of a melody starting at ``start_step``, each with its first step."""
        size = self.window_steps
        first = (
            [start_step]
            if size is None
            else range(start_step, start_step + len(melody) - size + 1, self.steps_per_bar)
        )
        return list(zip(self.windows(melody), first, strict=True))

    def _pitched_notes(self, piece: NoteSequence, qpm: float) -> tuple[np.ndarray, np.ndarray, int]:
        """The mask of the notes chord inference reads (pitched ones among those the
        converter keeps), and the piece's quantized length in steps as note_seq counts it:
        its last note end over every note, or that of a kept note, whichever is later."""
        keep = (piece.pitch >= self.min_pitch) & (piece.pitch <= self.max_pitch)
        if self.valid_programs is not None:
            keep &= np.isin(piece.program, list(self.valid_programs))
        steps_per_second = self.data.steps_per_quarter * qpm / 60.0
        total = int(quantize(np.asarray([piece.total_time]), steps_per_second)[0])
        if keep.any():
            start = quantize(piece.start[keep], steps_per_second)
            end = quantize(piece.end[keep], steps_per_second)
            total = max(total, int(np.max(np.where(end == start, end + 1, end))))
        return keep & chords_lib.pitched(piece), keep, total

    def _chord_changes(
        self, timed: _Piece, annotations: list[chords_lib.TextAnnotation]
    ) -> list[chords_lib.ChordChange]:
        """A piece's chord changes: its annotations at their quantized steps, else note_seq's
        inference (``ChordInferenceError`` where it fails)."""
        piece, qpm, num, den = timed
        steps_per_second = self.data.steps_per_quarter * qpm / 60.0
        if annotations:
            times = np.asarray([a.time for a in annotations])
            steps = quantize(times, steps_per_second).tolist()
            if min(steps) < 0:
                raise chords_lib.ChordInferenceError("a chord before the start")
            return [
                chords_lib.ChordChange(a.time, s, a.text)
                for a, s in zip(annotations, steps, strict=True)
            ]
        mask, _, _ = self._pitched_notes(piece, qpm)
        return chords_lib.infer_chords(
            piece.start[mask],
            piece.end[mask],
            piece.pitch[mask],
            total_time=piece.total_time,
            qpm=qpm,
            steps_per_quarter=self.data.steps_per_quarter,
            time_signature=(num, den),
        )

    def _progression(
        self, timed: _Piece, annotations: list[chords_lib.TextAnnotation]
    ) -> list[str] | None:
        """The chord of each quantized step of a piece (note_seq's ChordProgression), or
        None where Magenta's converter gives the piece up."""
        try:
            changes = self._chord_changes(timed, annotations)
            _, _, total = self._pitched_notes(timed[0], timed[1])
            return chords_lib.chords_per_step(((c.step, c.text) for c in changes), total)
        except (chords_lib.ChordInferenceError, chords_lib.CoincidentChordsError):
            return None

    def piece_chords(self, ns: NoteSequence) -> list[list[chords_lib.ChordChange]]:
        """The chord changes Magenta's converter works with in each piece of ``ns`` on this
        converter's grid (annotated, else inferred; empty where inference fails): what
        note_seq writes as the piece's chord annotations."""
        pieces = _split_pieces(ns)
        if not pieces:
            return []
        by_piece = chords_lib.split_annotations(
            chords_lib.chord_annotations(ns), [p[4] for p in pieces] + [pieces[-1][5]]
        )
        out = []
        for (piece, qpm, num, den, _, _), annotated in zip(pieces, by_piece, strict=True):
            if not self._on_grid(num, den):
                continue
            try:
                out.append(self._chord_changes((piece, qpm, num, den), annotated))
            except chords_lib.ChordInferenceError:
                out.append([])
        return out

    def examples(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Training examples from one dataset file: ``to_tensors`` (the converter windows)."""
        return self.to_tensors(ns, rng)

    def sequence_grid(
        self, ns: NoteSequence, rng: np.random.Generator | None = None, **_: object
    ) -> ConverterTensors:
        """The whole sequence's melody on one grid from step 0 (one example, or none): the
        first piece's first melody line read with no gap limit, padded to whole bars. What
        inference cuts into windows."""
        del rng
        pieces = _split_pieces(ns)
        found = self._piece_melodies(*pieces[0][:4], float("inf")) if pieces else []
        if not found:
            return ConverterTensors()
        events, start_step = found[0]
        grid = self.encode([NO_EVENT] * start_step + events)
        controls = np.zeros((len(grid), 0), np.float32)
        if self.chords is not None:
            # The first piece's chords (annotated or inferred), each step's; N.C. throughout
            # where note_seq cannot infer them (Magenta would give the sequence up).
            piece, qpm, num, den, t0, t1 = pieces[0]
            annotated = chords_lib.split_annotations(chords_lib.chord_annotations(ns), [t0, t1])[0]
            progression = self._progression((piece, qpm, num, den), annotated) or []
            controls = self.chords.encode_steps(chords_lib.chords_at(progression, range(len(grid))))
        return ConverterTensors([grid], [grid.copy()], [controls], [len(grid)])

    def controls_for(self, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """(B, T, control_depth) controls of windows on their own: with chords, those
        note_seq infers from each window's melody alone (two a 4/4 bar), the last one held to
        the window's end. Inputs that hold more than the melody (a band) are better read
        through :meth:`sequence_grid`, whose chords come from every pitched note."""
        if self.chords is None:
            return super().controls_for(inputs, outputs)
        arr = self.batch_outputs(outputs)
        qpm = 120.0
        seconds_per_step = 60.0 / (self.data.steps_per_quarter * qpm)
        out = np.zeros((*arr.shape[:2], self.control_depth), np.float32)
        for b, ns in enumerate(self.from_tensors(arr, qpm=qpm)):
            try:
                changes = chords_lib.infer_chords(
                    ns.start,
                    ns.end,
                    ns.pitch,
                    total_time=arr.shape[1] * seconds_per_step,
                    qpm=qpm,
                    steps_per_quarter=self.data.steps_per_quarter,
                    time_signature=(self.data.quarters_per_bar, 4),
                )
            except chords_lib.ChordInferenceError:
                changes = []
            steps = ((c.step, c.text) for c in changes)
            out[b] = self.chords.encode_steps(chords_lib.chords_per_step(steps, arr.shape[1]))
        return out

    def encode(self, events: list[int]) -> np.ndarray:
        """Melody events as (T, depth) one-hot float32 (MelodyOneHotEncoding's classes)."""
        ev = np.asarray(events, np.int64)
        classes = np.where(
            ev < 0, ev + NUM_SPECIAL_EVENTS, ev - self.min_pitch + NUM_SPECIAL_EVENTS
        )
        out = np.zeros((len(ev), self.output_depth), np.float32)
        out[np.arange(len(ev)), classes] = 1.0
        return out

    # ---------------------------------------------------------------- from tensors

    def from_tensors(
        self, outputs: np.ndarray, controls: np.ndarray | None = None, *, qpm: float = 120.0
    ) -> list[NoteSequence]:
        """Decode (B, T, 90) or (T, 90) outputs (argmax per step) into melodies at ``qpm``.

        A note starts at each pitch class and lasts until the next pitch or note-off (the end
        of the window at the latest); velocity 80, program 0, not drums; notes in onset order.
        With chords, ``controls`` ((B, T, C) or (T, C)) become the sequences' chord
        annotations (:class:`~musicvae.data.chords.ChordSequence`), one where the chord
        changes, as Magenta writes them; otherwise they are unused.

        One difference: Magenta reads the chord of a step as the argmax of all but the last 12
        control columns, which is right only when a 12-wide key follows the chord; with chords
        alone (its cat-mel_2bar_med_chords) that drops the diminished triads, classes 37-48,
        and writes N.C. for them. We read every column, so a C#dim control writes C#dim. The
        tensors are not affected.
        """
        arr = self.batch_outputs(outputs)
        chord_rows = None
        encoding = self.chords
        if encoding is not None and controls is not None and np.shape(controls)[-1]:
            chord_rows = np.asarray(controls)
            if chord_rows.ndim == 2:
                chord_rows = chord_rows[None]
            if chord_rows.shape[:2] != arr.shape[:2] or chord_rows.shape[2] != self.control_depth:
                raise ValueError(
                    f"controls must be {(*arr.shape[:2], self.control_depth)}, "
                    f"got {chord_rows.shape}"
                )
        seconds_per_step = 60.0 / qpm / self.data.steps_per_quarter
        sequences = []
        for classes in np.argmax(arr, axis=-1):
            onsets = np.flatnonzero(classes >= NUM_SPECIAL_EVENTS)
            boundaries = np.flatnonzero(classes != 0)  # a pitch or a note-off ends a note
            after = np.searchsorted(boundaries, onsets, side="right")
            ends = np.append(boundaries, len(classes))[after]
            sequences.append(
                NoteSequence(
                    pitch=classes[onsets] - NUM_SPECIAL_EVENTS + self.min_pitch,
                    velocity=np.full(len(onsets), OUTPUT_VELOCITY),
                    start=onsets * seconds_per_step + 0.0,
                    end=ends * seconds_per_step + 0.0,
                    is_drum=np.zeros(len(onsets), bool),
                    program=np.zeros(len(onsets), np.int16),
                    tempos=[Tempo(0.0, float(qpm))],
                )
            )
        if encoding is not None and chord_rows is not None:
            chord_seconds = 60.0 / (self.data.steps_per_quarter * qpm)
            sequences = [
                chords_lib.annotate(ns, encoding.decode_steps(rows), chord_seconds)
                for ns, rows in zip(sequences, chord_rows, strict=True)
            ]
        return sequences
