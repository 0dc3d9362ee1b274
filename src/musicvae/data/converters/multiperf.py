"""Magenta's multi-instrument performance converter: one bar of up to 8 tracks as event tokens.

Reproduces ``MultiInstrumentPerformanceConverter`` (magenta/models/music_vae/data_hierarchical.py)
as the ``hier-multiperf_vel_1bar_*`` configs build it, with note_seq's metric performances
(``performance_lib.MetricPerformance``), their one-hot encoding (``PerformanceOneHotEncoding``) and
the sequence splitting and quantisation of ``sequences_lib``.

Token layout (490 classes with 8 velocity bins, 24 steps per quarter): 0-127 NOTE_ON of a pitch,
128-255 NOTE_OFF, 256-351 TIME_SHIFT of 1-96 steps, 352-359 VELOCITY bin 1-8; then a program
token per track, 360 + program (0-127) or 488 for drums; 489 ends a track.

A window is one bar: ``max_num_instruments`` (8) slots of ``max_events_per_instrument`` (64)
rows each, 512 rows. Slot ``i`` holds ``[program, events..., end]`` and then all-zero rows; an
unused slot holds one end-token row (Magenta's "empty-slot rows"). Tracks are sorted by
``(is_drum, program)``, so drums come last. ``lengths`` are per slot: ``(8,)`` per window, the
non-zero rows of each slot, as Magenta's ``length_shape`` ``[8]`` gives them. With chords, the
controls are one row per token row: N.C. beside the program token, each event's chord, the last
chord again beside the end token, one N.C. row for an unused slot, zeros after.

``to_tensors`` follows Magenta step by step:

1. split the sequence on tempo and time-signature changes (``presplit_on_time_changes``);
2. chords config only: without chord symbols, infer two chords per 4/4 bar on the piece
   quantised at 24 steps per quarter and copy them back as timed chord annotations;
3. split each piece into one-bar pieces of ``240 / qpm`` seconds (note_seq's
   ``split_note_sequence``: split times from ``np.arange``, notes cut at the split), quantise each;
4. per bar: one performance per track (note-on/off, time shifts of at most 4 quarters,
   velocity bins); 2 to 8 tracks or the bar is dropped; each track is padded or cut to the bar,
   re-chunked with ``clip_tied_notes`` (written as notes and read back), and the bar is dropped if
   a track chunk has more than 62 events (room for the program and end tokens) or all tracks
   together have fewer than 8;
5. chords config only: the bar's chord at each event's step (note_seq's ``ChordProgression`` and
   ``event_list_chords``); two chords starting on one step, or a chord the encoding has no class
   for, drop the bar;
6. encode, pad each window to 8 x 64 rows.

Quirks of Magenta's code reproduced where they shape the tensors (each named where it happens):

- QUIRK bar-split arithmetic: the split times are ``np.arange(hop, total, hop)``'s values
  (numpy's fill), not ``k * hop``, and every note and chord time of a bar is shifted by them in
  float64; the last bits of these numbers decide the chord-time quirk below.
- QUIRK over-full bars: the 62-event test runs track by track in sorted order and drops the
  whole bar at the first track over it (GMD drums at 24 steps per quarter give four events per
  hit, so most drum bars are dropped).
- QUIRK trailing time shift: padding a track to the bar adds (or lengthens) a final TIME_SHIFT,
  so a track's chunk may have one event more than its extracted performance.
- QUIRK empty chunks read as drums: ``clip_tied_notes`` rebuilds each chunk from its notes, and
  note_seq calls a performance with no notes a drum track, so a pitched track whose only note
  starts on the next bar line (quantised to step 96, then cut away) gets the drum program token.
- QUIRK event order within a step: note_seq orders a step's note-ons and note-offs by their
  notes' index in (start, pitch) order, so offs of notes ending together come in the order the
  notes started, not by pitch (the chunk is rebuilt from its quantised notes, so ons of one
  step end up by pitch whatever order they were played in).
- QUIRK chord times (chords config): a chord change on a bar line can arrive a few ulps after
  the split time (chord and split times are computed differently); split_note_sequence then
  puts both the previous chord (at 0) and this one (at ~1e-16) in the bar, both quantise to
  step 0, and note_seq's CoincidentChordsError drops the bar.

Differences: our ``NoteSequence`` keeps no MIDI track index, so tracks are grouped by
``(is_drum, program)`` (the same whenever each track has its own program, as in the trio files),
and it keeps no control changes, so Magenta's ``apply_sustain_control_changes`` (which only
lengthens notes under a sustain pedal) has nothing to apply. Decoded notes keep their slot's
program and drum flag but not the slot number (Magenta's ``instrument``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import cast

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
from musicvae.data.converters.melody import _split_pieces, pitch_name
from musicvae.data.sequence import NoteSequence, Tempo
from musicvae.data.windows import quantize

# Performance event kinds (note_seq's PerformanceEvent types).
NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY = 1, 2, 3, 4
Event = tuple[int, int]  # (kind, value)
NUM_PITCHES = 128
NUM_PROGRAMS = 128
MAX_MIDI_VELOCITY = 127
# note_seq's DEFAULT_MAX_SHIFT_QUARTERS: one time shift moves at most 4 quarters.
MAX_SHIFT_QUARTERS = 4
# The velocity MetricPerformance.to_sequence gives notes before any VELOCITY event.
DEFAULT_VELOCITY = 100
# Decoded sequences are written at Magenta's default tempo.
DECODE_QPM = 120.0
# Magenta's defaults that no config changes.
MIN_NUM_INSTRUMENTS = 2
MIN_TOTAL_EVENTS = 8
CHUNK_SIZE_BARS = 1


def velocity_bin_size(num_bins: int) -> int:
    """MIDI velocities per bin: ceil(127 / bins) (16 for 8 bins)."""
    return math.ceil(MAX_MIDI_VELOCITY / num_bins)


def velocity_to_bin(velocity: int, num_bins: int) -> int:
    """note_seq's velocity bin, 1..bins, of a MIDI velocity 1..127."""
    return (velocity - 1) // velocity_bin_size(num_bins) + 1


def bin_to_velocity(velocity_bin: int, num_bins: int) -> int:
    """The lowest MIDI velocity of a bin (what note_seq writes for it)."""
    return 1 + (velocity_bin - 1) * velocity_bin_size(num_bins)


@dataclass(frozen=True)
class StepNote:
    """One note of a quantised bar: ``time`` (seconds, the sort key note_seq uses), its start and
    end steps, pitch and MIDI velocity."""

    time: float
    start: int
    end: int
    pitch: int
    velocity: int


@dataclass
class Performance:
    """A metric performance: events from ``start_step``, and the track's program and drum flag
    (program None for drums, as note_seq reads them)."""

    events: list[Event]
    program: int | None
    is_drum: bool
    start_step: int = 0

    @property
    def num_steps(self) -> int:
        return sum(v for k, v in self.events if k == TIME_SHIFT)

    def steps(self) -> list[int]:
        """The step at each event (note_seq's ``Performance.steps``)."""
        out, step = [], self.start_step
        for kind, value in self.events:
            out.append(step)
            if kind == TIME_SHIFT:
                step += value
        return out


def extract_events(
    notes: Sequence[StepNote], start_step: int, num_bins: int, max_shift: int
) -> list[Event]:
    """note_seq's ``_from_quantized_sequence`` on one track's notes.

    Notes are taken in (start time, pitch) order (stable), their onsets and offsets sorted by
    (step, note index, is_offset): within a step, a note's index decides (QUIRK event order).
    A VELOCITY event precedes an onset whose bin differs from the current one.
    """
    kept = sorted((n for n in notes if n.start >= start_step), key=lambda n: (n.time, n.pitch))
    marks = sorted(
        [(n.start, i, False) for i, n in enumerate(kept)]
        + [(n.end, i, True) for i, n in enumerate(kept)]
    )
    events: list[Event] = []
    step, current_bin = start_step, 0
    for at, i, is_off in marks:
        if at > step:
            while at > step + max_shift:
                events.append((TIME_SHIFT, max_shift))
                step += max_shift
            events.append((TIME_SHIFT, at - step))
            step = at
        if num_bins and not is_off:
            velocity_bin = velocity_to_bin(kept[i].velocity, num_bins)
            if velocity_bin != current_bin:
                current_bin = velocity_bin
                events.append((VELOCITY, velocity_bin))
        events.append((NOTE_OFF if is_off else NOTE_ON, kept[i].pitch))
    return events


def set_length(events: list[Event], steps: int, max_shift: int) -> None:
    """note_seq's ``set_length``: pad with time shifts (lengthening a last non-maximal one
    first) or cut from the end (dropping every event after the cut), in place."""
    have = sum(v for k, v in events if k == TIME_SHIFT)
    if have < steps:
        missing = steps - have
        if events and events[-1][0] == TIME_SHIFT and events[-1][1] < max_shift:
            added = min(missing, max_shift - events[-1][1])
            events[-1] = (TIME_SHIFT, events[-1][1] + added)
            missing -= added
        while missing >= max_shift:
            events.append((TIME_SHIFT, max_shift))
            missing -= max_shift
        if missing > 0:
            events.append((TIME_SHIFT, missing))
    elif have > steps:
        excess, trimmed = have - steps, 0
        while events and trimmed < excess:
            kind, value = events[-1]
            if kind != TIME_SHIFT:
                events.pop()
            elif trimmed + value > excess:
                events[-1] = (TIME_SHIFT, value - excess + trimmed)
                trimmed = excess
            else:
                trimmed += value
                events.pop()


def performance_notes(
    events: Sequence[Event], start_step: int, num_bins: int, velocity: int = DEFAULT_VELOCITY
) -> list[tuple[int, int, int, int]]:
    """note_seq's ``to_sequence`` as steps: ``(start, end, pitch, velocity)`` per note, in its
    order. A note-off ends the oldest sounding note of its pitch; notes still sounding end at
    the last step; zero-length notes and offs with no sounding note are dropped."""
    step = start_step
    # defaultdict as note_seq's: a note-off's lookup also fixes its pitch's place in the order
    # the still-sounding notes are ended in.
    sounding: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    notes = []
    for kind, value in events:
        if kind == NOTE_ON:
            sounding[value].append((step, velocity))
        elif kind == NOTE_OFF:
            if sounding[value]:
                start, vel = sounding[value].pop(0)
                if step != start:
                    notes.append((start, step, value, vel))
        elif kind == TIME_SHIFT:
            step += value
        elif kind == VELOCITY:
            velocity = bin_to_velocity(value, num_bins)
    for pitch, starts in sounding.items():
        notes += [(start, step, pitch, vel) for start, vel in starts if start != step]
    return notes


def split_performance(
    perf: Performance, steps_per_segment: int, num_bins: int, max_shift: int
) -> list[Performance]:
    """Magenta's ``split_performance`` with ``clip_tied_notes``: cut into segments of
    ``steps_per_segment`` (note-offs on a boundary stay before it), drop a trailing segment of no
    duration, then rebuild each segment from its notes and pad or cut it to the segment."""
    segments: list[list[Event]] = [[]]
    step = 0
    for kind, value in perf.events:
        if kind != TIME_SHIFT:
            if step == steps_per_segment and kind != NOTE_OFF:
                segments.append([])
                step = 0
            segments[-1].append((kind, value))
        elif step + value <= steps_per_segment:
            segments[-1].append((kind, value))
            step += value
        else:
            rest = steps_per_segment - step
            if rest > 0:
                segments[-1].append((TIME_SHIFT, rest))
            segments.append([])
            step = value - rest
            if step > 0:
                segments[-1].append((TIME_SHIFT, step))
    if segments and sum(v for k, v in segments[-1] if k == TIME_SHIFT) == 0:
        segments.pop()
    chunks = []
    for index, events in enumerate(segments):
        start_step = index * steps_per_segment
        # clip_tied_notes: the segment is written as notes at 120 qpm and quantised again. A
        # step s becomes s / 48 seconds and then round(s / 48 * 48) = s exactly, so the notes
        # keep their steps; sorting by their times is sorting by (start step, pitch).
        written = [
            StepNote(float(s), s, e, p, v)
            for s, e, p, v in performance_notes(events, start_step, num_bins)
        ]
        rebuilt = extract_events(written, start_step, num_bins, max_shift)
        # QUIRK empty chunks read as drums: note_seq's program and drum flag come from the
        # notes, and a performance without notes counts as drums (program None).
        is_drum = perf.is_drum or not written
        program = None if is_drum else perf.program
        chunk = Performance(rebuilt, program, is_drum, start_step)
        set_length(chunk.events, steps_per_segment, max_shift)
        chunks.append(chunk)
    return chunks


def split_bars(total_time: float, hop: float) -> np.ndarray:
    """note_seq's ``split_note_sequence`` bounds for a hop: 0, the ``np.arange`` split times
    (QUIRK bar-split arithmetic: numpy's fill, not k * hop), and the total time if later."""
    bounds = np.concatenate([[0.0], np.arange(hop, total_time, hop)])
    if total_time > bounds[-1]:
        bounds = np.append(bounds, total_time)
    return bounds


@dataclass(frozen=True)
class BarTracks:
    """What one bar gave: its tracks' performances as extracted (in sorted order), the chunk
    event counts tested (up to the first failing track), the accepted chunks (None when the bar
    is dropped) and, with chords, the bar's chord annotations (time in the bar, figure), the
    error note_seq's chord code raised on it (checked for every bar, None if none) and each
    chunk's chord rows (one chord per token row of each track)."""

    tracks: list[Performance]
    chunk_events: list[int]
    chunks: list[list[Performance]] | None
    annotations: list[chords_lib.TextAnnotation] = field(default_factory=list)
    chord_error: str | None = None
    chords: list[list[list[str]]] | None = None


@register_converter("multiperf")
class MultiPerformanceConverter(ConverterBase):
    """Magenta's MultiInstrumentPerformanceConverter from a ``DataConfig``: ``split_bars`` is its
    ``hop_size_bars`` (the window, one-bar chunks), ``steps_per_quarter`` its own (24),
    ``num_velocity_bins``, ``max_num_instruments`` and ``max_events_per_instrument`` its own,
    ``chord_encoding`` its chord conditioning ("triad": TriadChordOneHotEncoding, 49 classes).

    The tensor's rows are tokens, not time steps: ``window_steps`` is the 512 rows of a window
    and ``steps_per_bar`` the rows of one bar (512 too for one-bar windows), so that windows cut
    a token grid bar by bar; ``time_steps_per_bar`` is the musical grid (96 steps).
    ``max_tensors_per_notesequence`` caps windows per piece as Magenta does (None in its configs,
    so 'train' mode draws nothing).
    """

    def __init__(
        self,
        data: DataConfig,
        *,
        mode: str = "train",
        min_num_instruments: int = MIN_NUM_INSTRUMENTS,
        min_total_events: int = MIN_TOTAL_EVENTS,
    ) -> None:
        if data.split_bars is None:
            raise ValueError("the multiperf converter needs split_bars (its hop_size_bars)")
        if not 0 <= data.num_velocity_bins <= MAX_MIDI_VELOCITY:
            raise ValueError(f"num_velocity_bins {data.num_velocity_bins} is not within 0..127")
        if data.max_events_per_instrument < 3:
            raise ValueError("max_events_per_instrument must leave room for an event (>= 3)")
        self.data = data
        self.mode = mode
        self.min_num_instruments = min_num_instruments
        self.min_total_events = min_total_events
        self.num_velocity_bins = data.num_velocity_bins
        self.split_bars = data.split_bars
        self.steps_per_quarter = data.steps_per_quarter
        self.time_steps_per_bar = data.steps_per_quarter * data.quarters_per_bar
        self.max_shift_steps = MAX_SHIFT_QUARTERS * data.steps_per_quarter
        self.num_chunks = data.split_bars // CHUNK_SIZE_BARS
        self.chunk_steps = self.time_steps_per_bar * CHUNK_SIZE_BARS
        self.max_instruments = data.max_num_instruments
        self.max_events = data.max_events_per_instrument
        # Token offsets (PerformanceOneHotEncoding's ranges, then program and end tokens).
        self.note_off_offset = NUM_PITCHES
        self.shift_offset = 2 * NUM_PITCHES
        self.velocity_offset = self.shift_offset + self.max_shift_steps
        self.num_event_classes = self.velocity_offset + self.num_velocity_bins
        self.drum_token = self.num_event_classes + NUM_PROGRAMS
        self.end_token = self.drum_token + 1
        self.input_depth = self.output_depth = self.end_token + 1
        self.chords = (
            chords_lib.chord_encoding(data.chord_encoding) if data.chord_encoding else None
        )
        self.control_depth = self.chords.depth if self.chords is not None else 0
        self.slot_rows = self.max_events
        self.window_steps: int | None = self.num_chunks * self.max_instruments * self.max_events
        self.steps_per_bar = self.max_instruments * self.max_events
        self.class_names = self._class_names()

    def _class_names(self) -> tuple[str, ...]:
        names = [f"on {pitch_name(p)}" for p in range(NUM_PITCHES)]
        names += [f"off {pitch_name(p)}" for p in range(NUM_PITCHES)]
        names += [f"shift {s}" for s in range(1, self.max_shift_steps + 1)]
        names += [f"velocity {b}" for b in range(1, self.num_velocity_bins + 1)]
        names += [f"program {p}" for p in range(NUM_PROGRAMS)]
        return (*names, "drums", "end")

    @property
    def is_random(self) -> bool:
        """False: inputs are the targets and nothing is drawn (bar for the window cap)."""
        return False

    # ---------------------------------------------------------------- to tensors

    def bars(self, ns: NoteSequence) -> list[list[BarTracks]]:
        """Per piece of ``ns`` (split on tempo and time-signature changes), what each of its
        one-bar pieces gave; a piece without a 4/4 grid of ``time_steps_per_bar`` gives none,
        and so does one whose chords cannot be inferred (chords config)."""
        pieces = _split_pieces(ns)
        if not pieces:
            return []
        annotated = chords_lib.chord_annotations(ns) if self.chords is not None else []
        by_piece = chords_lib.split_annotations(annotated, [p[4] for p in pieces] + [pieces[-1][5]])
        return [
            self._piece_bars(piece, qpm, num, den, annotations)
            for (piece, qpm, num, den, _, _), annotations in zip(pieces, by_piece, strict=True)
        ]

    def piece_chords(
        self, piece: NoteSequence, qpm: float, numerator: int, denominator: int
    ) -> list[chords_lib.TextAnnotation]:
        """The chords note_seq infers for a piece without chord symbols, as the annotations
        Magenta copies back onto it (``ChordInferenceError`` where inference fails)."""
        keep = chords_lib.pitched(piece)
        changes = chords_lib.infer_chords(
            piece.start[keep],
            piece.end[keep],
            piece.pitch[keep],
            total_time=piece.total_time,
            qpm=qpm,
            steps_per_quarter=self.steps_per_quarter,
            time_signature=(numerator, denominator),
        )
        return [chords_lib.TextAnnotation(c.time, c.text) for c in changes]

    def _piece_bars(
        self,
        piece: NoteSequence,
        qpm: float,
        numerator: int,
        denominator: int,
        annotations: list[chords_lib.TextAnnotation],
    ) -> list[BarTracks]:
        if numerator == 0 or denominator <= 0 or denominator & (denominator - 1):
            return []  # note_seq's BadTimeSignatureError: the whole piece gives nothing
        spq = self.steps_per_quarter
        if spq * (4.0 / denominator * numerator) != self.time_steps_per_bar:
            return []  # a bar of another length: Magenta drops the whole piece
        if self.chords is not None and not annotations:
            try:
                annotations = self.piece_chords(piece, qpm, numerator, denominator)
            except chords_lib.ChordInferenceError:
                return []
        quarters_per_bar = self.time_steps_per_bar / spq
        hop = 60.0 * (quarters_per_bar * self.split_bars) / qpm
        bounds = split_bars(piece.total_time, hop)
        if len(bounds) < 2:
            return []
        # QUIRK chord times: split like note_seq, a chord a few ulps after a split time lands
        # in the next bar at ~1e-16 beside the chord carried over to its time 0.
        bar_chords = chords_lib.split_annotations(annotations, bounds.tolist())
        steps_per_second = spq * qpm / 60.0
        order = np.argsort(piece.start, kind="stable")
        which = np.searchsorted(bounds, piece.start[order], side="right") - 1
        out = []
        for index in range(len(bounds) - 1):
            sel = order[which == index]
            t0, t1 = bounds[index], bounds[index + 1]
            start = piece.start[sel] - t0
            end = np.minimum(piece.end[sel], t1) - t0
            start_step = quantize(start, steps_per_second)
            end_step = quantize(end, steps_per_second)
            end_step = np.where(end_step == start_step, end_step + 1, end_step)
            if (start_step < 0).any() or (end_step < 0).any():
                return []  # note_seq's NegativeTimeError drops the piece
            tracks: dict[tuple[bool, int], list[StepNote]] = {}
            rows = zip(
                start.tolist(),
                start_step.tolist(),
                end_step.tolist(),
                piece.pitch[sel].tolist(),
                piece.velocity[sel].tolist(),
                piece.is_drum[sel].tolist(),
                piece.program[sel].tolist(),
                strict=True,
            )
            for time, s, e, pitch, velocity, drum, program in rows:
                key = (bool(drum), int(program))
                tracks.setdefault(key, []).append(StepNote(time, s, e, pitch, velocity))
            bar = self._bar_tracks(tracks)
            if self.chords is not None:
                # The bar's length in steps: its total time (the latest clipped note end)
                # quantised, or a later note end.
                total_time = float(end.max()) if len(end) else 0.0
                steps = int(quantize(np.array([total_time]), steps_per_second)[0])
                steps = max([steps, *end_step.tolist()])
                bar = self._bar_chords(bar, bar_chords[index], steps, steps_per_second)
            out.append(bar)
        return out

    def _bar_tracks(self, notes: dict[tuple[bool, int], list[StepNote]]) -> BarTracks:
        """One bar's tracks through Magenta's ``_quantized_subsequence_to_tensors`` checks."""
        max_steps = self.num_chunks * self.chunk_steps
        tracks = []
        for (drum, program), track_notes in notes.items():
            events = extract_events(track_notes, 0, self.num_velocity_bins, self.max_shift_steps)
            perf = Performance(events, None if drum else program, drum)
            if perf.num_steps > max_steps:  # extract_performances' max_steps_truncate
                set_length(perf.events, max_steps, self.max_shift_steps)
            tracks.append(perf)
        # Sorted by program with drums last (a drum track's program is None; only another drum
        # track, also None, can tie with it).
        tracks.sort(key=lambda t: (t.is_drum, -1 if t.program is None else t.program))
        if not self.min_num_instruments <= len(tracks) <= self.max_instruments:
            return BarTracks(tracks, [], None)
        chunks: list[list[Performance]] = [[] for _ in range(self.num_chunks)]
        counts: list[int] = []
        total = 0
        for perf in tracks:
            padded = Performance(list(perf.events), perf.program, perf.is_drum)
            set_length(padded.events, max_steps, self.max_shift_steps)  # QUIRK trailing shift
            parts = split_performance(
                padded, self.chunk_steps, self.num_velocity_bins, self.max_shift_steps
            )
            if len(parts) != self.num_chunks:
                raise AssertionError("a track split into the wrong number of chunks")
            counts += [len(p.events) for p in parts]
            # QUIRK over-full bars: the first track with a chunk over the limit drops the bar.
            if any(len(p.events) > self.max_events - 2 for p in parts):
                return BarTracks(tracks, counts, None)
            total += sum(len(p.events) for p in parts)
            for i, part in enumerate(parts):
                chunks[i].append(part)
        if total < self.min_total_events:
            return BarTracks(tracks, counts, None)
        return BarTracks(tracks, counts, chunks)

    def _bar_chords(
        self,
        bar: BarTracks,
        annotations: list[chords_lib.TextAnnotation],
        total_steps: int,
        steps_per_second: float,
    ) -> BarTracks:
        """``bar`` with its chords: note_seq's ``ChordProgression`` of the bar (whether it
        raises is recorded for every bar) and, for an accepted bar, ``event_list_chords`` for
        each track chunk. The bar is dropped where two chords start on one step or a chord has
        no class in the encoding."""
        bar = replace(bar, annotations=annotations)
        steps = quantize(np.array([a.time for a in annotations], np.float64), steps_per_second)
        try:
            progression = chords_lib.chords_per_step(
                [(s, a.text) for s, a in zip(steps.tolist(), annotations, strict=True)],
                total_steps,
            )
        except chords_lib.CoincidentChordsError as e:
            return replace(bar, chunks=None, chord_error=f"{type(e).__name__}: {e}")
        if bar.chunks is None:
            return bar
        rows = [[self.track_chords(perf, progression) for perf in chunk] for chunk in bar.chunks]
        try:
            for chunk in rows:
                for figures in chunk:
                    self.chords_encoding().encode_steps(figures)
        except (chords_lib.ChordSymbolError, chords_lib.ChordEncodingError) as e:
            return replace(bar, chunks=None, chord_error=f"{type(e).__name__}: {e}")
        return replace(bar, chords=rows)

    def chords_encoding(self) -> chords_lib.ChordEncoding:
        if self.chords is None:
            raise ValueError("this multiperf converter has no chord encoding")
        return self.chords

    @staticmethod
    def track_chords(perf: Performance, progression: Sequence[str]) -> list[str]:
        """A track chunk's chord rows: N.C. beside its program token, the chord at each event's
        step (the progression's last chord past its end), the last again beside the end."""
        figures = [chords_lib.NO_CHORD, *chords_lib.chords_at(progression, perf.steps())]
        return [*figures, figures[-1]]

    def track_tokens(self, perf: Performance) -> list[int]:
        """``[program token, event tokens..., end token]`` of one track chunk."""
        program = NUM_PROGRAMS if perf.is_drum else cast(int, perf.program)
        return [
            self.num_event_classes + program,
            *map(self.encode_event, perf.events),
            self.end_token,
        ]

    def encode_event(self, event: Event) -> int:
        kind, value = event
        if kind == NOTE_ON:
            return value
        if kind == NOTE_OFF:
            return self.note_off_offset + value
        if kind == TIME_SHIFT:
            return self.shift_offset + value - 1
        return self.velocity_offset + value - 1

    def decode_event(self, token: int) -> Event:
        if token < self.note_off_offset:
            return (NOTE_ON, token)
        if token < self.shift_offset:
            return (NOTE_OFF, token - self.note_off_offset)
        if token < self.velocity_offset:
            return (TIME_SHIFT, token - self.shift_offset + 1)
        return (VELOCITY, token - self.velocity_offset + 1)

    def window_tokens(self, chunks: list[list[Performance]]) -> list[list[int]]:
        """The token lists of a window's slots, chunk by chunk: each track's tokens, then one
        end token per unused slot."""
        slots = []
        for chunk in chunks:
            tracks = [self.track_tokens(perf) for perf in chunk]
            slots += tracks + [[self.end_token]] * (self.max_instruments - len(tracks))
        return slots

    def window_chords(self, chords: list[list[list[str]]]) -> list[list[str]]:
        """The chord rows of a window's slots: each track's, then one N.C. per unused slot."""
        slots = []
        for chunk in chords:
            slots += chunk + [[chords_lib.NO_CHORD]] * (self.max_instruments - len(chunk))
        return slots

    def encode_slots(self, slots: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(window_steps, depth) one-hot float32 of slot token lists (each padded to the slot's
        rows with all-zero rows) and their (slots,) lengths."""
        out = np.zeros((len(slots) * self.slot_rows, self.output_depth), np.float32)
        for i, tokens in enumerate(slots):
            rows = i * self.slot_rows + np.arange(len(tokens))
            out[rows, tokens] = 1.0
        return out, np.array([len(t) for t in slots], np.int64)

    def encode_chord_slots(self, slots: list[list[str]]) -> np.ndarray:
        """(window_steps, control_depth) float32 controls of slot chord rows (zero rows after
        each slot's, as after its tokens)."""
        encoding = self.chords_encoding()
        out = np.zeros((len(slots) * self.slot_rows, encoding.depth), np.float32)
        for i, figures in enumerate(slots):
            out[i * self.slot_rows : i * self.slot_rows + len(figures)] = encoding.encode_steps(
                figures
            )
        return out

    def _window(self, bar: BarTracks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One accepted bar's (rows, depth) tokens, (rows, control_depth) controls and (slots,)
        lengths."""
        chunks = cast(list[list[Performance]], bar.chunks)
        outputs, lengths = self.encode_slots(self.window_tokens(chunks))
        if self.chords is None:
            controls = np.zeros((len(outputs), 0), np.float32)
        else:
            controls = self.encode_chord_slots(self.window_chords(bar.chords or []))
        return outputs, controls, lengths

    def to_tensors(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Magenta's ``to_tensors``: (512, 490) one-hot float32 windows, inputs == outputs,
        (512, 49) chord controls (zero-width without chords) and (8,) per-slot lengths, one
        window per accepted bar in order (see the module docstring). ``rng`` draws the 'train'
        cap's picks, if any."""
        cap = self.data.max_tensors_per_notesequence
        kept: list[BarTracks] = []
        for piece in self.bars(ns):
            accepted = [bar for bar in piece if bar.chunks is not None]
            kept += sample_items(accepted, cap, self.mode, rng)
        kept = sample_items(kept, cap, self.mode, rng)
        windows = [self._window(bar) for bar in kept]
        outputs = [o for o, _, _ in windows]
        return ConverterTensors(
            inputs=outputs,
            outputs=[o.copy() for o in outputs],
            controls=[c for _, c, _ in windows],
            # Per-slot lengths, (slots,) per window: the hierarchical encoder reads them as its
            # segment lengths.
            lengths=cast("list[int]", [n for _, _, n in windows]),
        )

    def examples(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Training examples from one dataset file: ``to_tensors`` (the converter windows)."""
        return self.to_tensors(ns, rng)

    def sequence_grid(
        self, ns: NoteSequence, rng: CapRng | None = None, **_: object
    ) -> ConverterTensors:
        """The whole sequence's accepted bars, one window each, stacked into one token grid
        (one example, or none): what inference cuts into windows bar by bar. Bars Magenta
        drops (too many events, too few tracks) are left out."""
        del rng
        windows = [self._window(bar) for piece in self.bars(ns) for bar in piece if bar.chunks]
        if not windows:
            return ConverterTensors()
        grid = np.concatenate([o for o, _, _ in windows])
        controls = np.concatenate([c for _, c, _ in windows])
        return ConverterTensors([grid], [grid.copy()], [controls], [len(grid)])

    def controls_for(self, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """(B, T, control_depth) controls of windows on their own: with chords, those note_seq
        infers from each window's decoded notes (every pitched track, at 120 qpm), at each
        token row as in training; none (zero width) without chords."""
        if self.chords is None:
            return super().controls_for(inputs, outputs)
        arr = self.batch_outputs(outputs)
        out = np.zeros((*arr.shape[:2], self.control_depth), np.float32)
        spq, bar_steps = self.steps_per_quarter, self.chunk_steps * self.num_chunks
        for b, (window, ns) in enumerate(zip(arr, self.from_tensors(arr), strict=True)):
            try:
                annotations = self.piece_chords(ns, DECODE_QPM, 4, 4)
            except chords_lib.ChordInferenceError:
                annotations = []
            steps_per_second = spq * DECODE_QPM / 60.0
            changes = quantize(np.array([a.time for a in annotations]), steps_per_second)
            progression = chords_lib.chords_per_step(
                zip(changes.tolist(), [a.text for a in annotations], strict=True), bar_steps
            )
            slots = []
            for chunk, tokens in enumerate(self._chunk_tokens(window)):
                for row in tokens:
                    program, events = self._slot_events(row)
                    if program is None:
                        slots.append([chords_lib.NO_CHORD])
                        continue
                    perf = Performance(events, program, False, chunk * self.chunk_steps)
                    slots.append(self.track_chords(perf, progression))
            out[b] = self.encode_chord_slots(slots)
        return out

    # ---------------------------------------------------------------- from tensors

    def _chunk_tokens(self, window: np.ndarray) -> list[list[list[int]]]:
        """A (rows, depth) window's tokens (argmax of each row) per chunk, per slot."""
        classes = np.argmax(window, axis=-1)
        return classes.reshape(-1, self.max_instruments, self.slot_rows).tolist()

    def _slot_events(self, row: list[int]) -> tuple[int | None, list[Event]]:
        """A slot's program token (None if it has none) and its events, up to the first end
        token: Magenta's reading, which keeps the first program token and skips later ones."""
        if self.end_token in row:
            row = row[: row.index(self.end_token)]
        programs = [t for t in row if t >= self.num_event_classes]
        events = [self.decode_event(t) for t in row if t < self.num_event_classes]
        return (programs[0] - self.num_event_classes if programs else None), events

    def from_tensors(
        self, outputs: np.ndarray, controls: np.ndarray | None = None, *, qpm: float = DECODE_QPM
    ) -> list[NoteSequence]:
        """Decode (B, T, 490) or (T, 490) outputs into multi-track NoteSequences at ``qpm``
        (Magenta writes 120). ``T`` is a whole number of windows; consecutive windows (and
        chunks) are consecutive bars of the same slots.

        Per slot, as Magenta's ``_to_single_notesequence``: tokens (argmax per row) up to the
        first end token; the first program token gives the program (488: drums, written as
        program 0 with is_drum, on channel 10), later ones are ignored, and no program token
        means program 0; the events are played from the bar's start, padded or cut to the bar,
        notes before any VELOCITY event get velocity 100. Notes come slot by slot, each slot's
        in note_seq's order.

        With chords, ``controls`` ((B, T, C) or (T, C)) become chord annotations
        (:class:`~musicvae.data.chords.ChordSequence`): the chord of each event within its bar,
        all slots' (time, chord) pairs sorted, one annotation where the chord changes, as
        Magenta writes them. One difference: Magenta raises on a window with no event at all;
        it gets no annotation here.
        """
        arr = self.batch_outputs(outputs)
        bar_rows = self.max_instruments * self.slot_rows
        if arr.shape[1] % bar_rows:
            raise ValueError(f"outputs must have a multiple of {bar_rows} rows, got {arr.shape[1]}")
        chord_rows = None
        if self.chords is not None and controls is not None and np.shape(controls)[-1]:
            chord_rows = np.asarray(controls)
            if chord_rows.ndim == 2:
                chord_rows = chord_rows[None]
            if chord_rows.shape[:2] != arr.shape[:2]:
                raise ValueError(
                    f"controls {chord_rows.shape} do not match outputs {arr.shape[:2]}"
                )
        return [
            self._decode(sample, None if chord_rows is None else chord_rows[b], qpm)
            for b, sample in enumerate(arr)
        ]

    def _decode(
        self, sample: np.ndarray, chord_rows: np.ndarray | None, qpm: float
    ) -> NoteSequence:
        """One (T, 490) sample (and its (T, C) controls) as :meth:`from_tensors` decodes it."""
        seconds_per_step = 60.0 / (self.steps_per_quarter * qpm)
        slots: list[list[Event]] = [[] for _ in range(self.max_instruments)]
        voices: list[tuple[int, bool]] = [(0, False)] * self.max_instruments
        timed_chords: list[tuple[float, str]] = []
        for chunk, tokens in enumerate(self._chunk_tokens(sample)):
            for slot, row in enumerate(tokens):
                program, events = self._slot_events(row)
                if chunk == 0 and program is not None:  # the first chunk's track decides
                    voices[slot] = (0, True) if program == NUM_PROGRAMS else (program, False)
                if chord_rows is not None:
                    timed_chords += self._timed_chords(
                        chord_rows, chunk, slot, row, events, seconds_per_step
                    )
                set_length(events, self.chunk_steps, self.max_shift_steps)
                slots[slot] += events
        notes = []
        for (program, is_drum), events in zip(voices, slots, strict=True):
            for start, end, pitch, velocity in performance_notes(
                events, 0, self.num_velocity_bins or 1
            ):
                notes.append((pitch, velocity, start, end, is_drum, program))
        cols = list(zip(*notes, strict=True)) if notes else [()] * 6
        ns = NoteSequence(
            pitch=np.array(cols[0], np.int16),
            velocity=np.array(cols[1], np.int16),
            start=np.array(cols[2], np.float64) * seconds_per_step,
            end=np.array(cols[3], np.float64) * seconds_per_step,
            is_drum=np.array(cols[4], bool),
            program=np.array(cols[5], np.int16),
            tempos=[Tempo(0.0, float(qpm))],
        )
        return ns if chord_rows is None else self._annotated(ns, sorted(timed_chords))

    def _timed_chords(
        self,
        controls: np.ndarray,
        chunk: int,
        slot: int,
        row: list[int],
        events: list[Event],
        seconds_per_step: float,
    ) -> list[tuple[float, str]]:
        """Magenta's (time, chord) pairs of one slot: the control rows of its event tokens
        (program tokens skipped), each at its event's step within the bar."""
        encoding = self.chords_encoding()
        first = (chunk * self.max_instruments + slot) * self.slot_rows
        length = row.index(self.end_token) if self.end_token in row else len(row)
        rows = [first + i for i, t in enumerate(row[:length]) if t < self.num_event_classes]
        figures = encoding.decode_steps(controls[rows]) if rows else []
        offset = chunk * self.chunk_steps
        steps = Performance(events, None, False).steps()
        times = [(offset + s) * seconds_per_step for s in steps if s < self.chunk_steps]
        return list(zip(times, figures, strict=False))

    @staticmethod
    def _annotated(ns: NoteSequence, timed: list[tuple[float, str]]) -> NoteSequence:
        """``ns`` with note_seq's ``add_chords_to_sequence`` of sorted (time, chord) pairs."""
        annotations: list[chords_lib.TextAnnotation] = []
        for time, figure in timed:
            if not annotations or annotations[-1].text != figure:
                annotations.append(chords_lib.TextAnnotation(time, figure))
        values = {f: getattr(ns, f) for f in NoteSequence.__dataclass_fields__}
        return chords_lib.ChordSequence(**values, text_annotations=annotations)
