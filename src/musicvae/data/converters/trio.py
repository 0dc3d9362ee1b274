"""Magenta's trio converter: a melody, a bass line and drums, one concatenated one-hot a step.

Reproduces ``TrioConverter`` (magenta/models/music_vae/data.py) as the three ``*-trio_16bar``
configs build it. Each 16th-note step is three one-hots side by side, 692 wide: the melody's
90 classes (the melody converter's: no event, note-off, pitches 21..108), the bass's 90 (the
same classes) and the drums' 512 patterns (the drums converter's reduced 9-class map, one
class per combination hit). The melody and drum converters encode the parts; this module
decides which parts play together and where.

``to_tensors`` follows Magenta step by step:

1. Split the sequence on tempo and time-signature changes; per piece, quantise at
   ``steps_per_quarter`` (nothing unless a bar is ``steps_per_bar`` steps) and count
   ``ceil(steps / steps_per_bar)`` bars, at most ``max_bars``.
2. Give each instrument a part by its notes: drums (``is_drum``), melody (programs 0-31) or
   bass (32-39); any other program plays no part. A piece lacking one of the three gives nothing.
3. Mark the bars each instrument covers: a note covers the bars from its start's to the one
   holding its end step (every note counts, even one its part encoder later drops).
4. Encode each instrument on its own over the whole piece from step 0, padded to the piece's
   bars: the melody converter's melody read with no gap limit, or the drum converter's track.
   An instrument that encodes to nothing covers nothing.
5. Widen each instrument's coverage by ``gap_bars`` bars on each side.
6. For every (melody, bass, drums) combination, every ``split_bars``-bar window that all
   three cover, one bar apart, is one example: the parts' one-hots concatenated.
7. Keep at most ``max_tensors_per_notesequence`` windows per piece, then of all pieces (the
   first ones, or a random draw in 'train' mode).

Inputs equal outputs; there are no controls. Magenta's converter declares ``end_token=False``:
no end-token class exists (692 = 90 + 90 + 512), so nothing here adds or strips one.

One difference: note_seq tells instruments apart by MIDI track, and our ``NoteSequence`` keeps
no track index, so an instrument here is a program (all drum notes are one instrument). That is
the same whenever each track has its own program, as in every trio file of Magenta's fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from musicvae.configs import DATA_OPTION_OWNERS, DataConfig
from musicvae.data.converters.base import (
    CapRng,
    ConverterBase,
    ConverterTensors,
    register_converter,
    sample_items,
)
from musicvae.data.converters.drums import SILENCE, DrumsConverter, extract_drum_tracks
from musicvae.data.converters.melody import (
    NO_EVENT,
    MelodyConverter,
    extract_melodies,
    pad_melody,
    split_on_time_changes,
)
from musicvae.data.sequence import NoteSequence, Tempo
from musicvae.data.windows import quantize

PARTS = ("melody", "bass", "drums")
MELODY_PROGRAMS = range(0, 32)  # piano, chromatic percussion, organ, guitar
BASS_PROGRAMS = range(32, 40)
# The program from_tensors gives the bass (Electric Bass, finger), as Magenta's does.
BASS_PROGRAM = 33
# TrioConverter's defaults.
GAP_BARS = 2
MAX_BARS = 1024
_DATA_DEFAULTS = {f.name: f.default for f in fields(DataConfig)}


def part_of(is_drum: bool, program: int) -> str | None:
    """The part an instrument plays: drums, melody (programs 0-31), bass (32-39) or none."""
    if is_drum:
        return "drums"
    if program in MELODY_PROGRAMS:
        return "melody"
    return "bass" if program in BASS_PROGRAMS else None


@dataclass
class Instrument:
    """One instrument of a piece: its part, the bars it covers and its encoded one-hots."""

    part: str
    covered: np.ndarray  # (bars,) bool
    grid: np.ndarray | None  # (bars * steps_per_bar, depth) float32; None: nothing encoded


@register_converter("trio")
class TrioConverter(ConverterBase):
    """Magenta's TrioConverter configured from a ``DataConfig``: ``split_bars`` is its
    ``slice_bars`` and ``gap_bars`` its own (None: 2). Its parts go through a melody converter
    and a drums converter with no gap limit and no window cap, as Magenta's inner ones.

    ``mode`` only matters to the window cap: 'train' draws the kept windows at random, as
    Magenta's training does; other modes keep the first ones.
    """

    def __init__(self, data: DataConfig, *, mode: str = "train", max_bars: int = MAX_BARS) -> None:
        ignored = [
            k
            for k, owners in DATA_OPTION_OWNERS.items()
            if "trio" not in owners and getattr(data, k) != _DATA_DEFAULTS[k]
        ]
        if ignored:
            raise ValueError(f"options the trio converter does not use: {', '.join(ignored)}")
        if data.split_bars is None:
            raise ValueError("the trio converter cuts split_bars-bar windows: set split_bars")
        inner = replace(data, split_bars=None, max_tensors_per_notesequence=None, gap_bars=None)
        self.melody = MelodyConverter(inner, mode=mode, max_bars=None, gap_bars=None)
        self.drums = DrumsConverter(inner, mode=mode, max_bars=None, gap_bars=None)
        self.data = data
        self.mode = mode
        self.max_bars = max_bars
        self.gap_bars = GAP_BARS if data.gap_bars is None else data.gap_bars
        self.steps_per_bar = data.steps_per_quarter * data.quarters_per_bar
        self.window_steps: int | None = data.split_bars * self.steps_per_bar
        self.depths = (self.melody.output_depth, self.melody.output_depth, self.drums.output_depth)
        self.input_depth = self.output_depth = sum(self.depths)
        self.control_depth = 0
        self.class_names = (
            *(f"melody {name}" for name in self.melody.class_names),
            *(f"bass {name}" for name in self.melody.class_names),
            *(f"drums {name}" for name in self.drums.class_names),
        )

    @property
    def is_random(self) -> bool:
        """False: the inputs are the targets (the 'train' cap's draw is made at conversion)."""
        return False

    # ---------------------------------------------------------------- to tensors

    def instruments(
        self, piece: NoteSequence, qpm: float, numerator: int, denominator: int
    ) -> list[Instrument]:
        """The piece's instruments that play a part, in part order (melody, bass, drums; by
        program within one), with their coverage before the gap filling; none unless the
        piece has a valid grid and all three parts."""
        if numerator == 0 or denominator <= 0 or denominator & (denominator - 1):
            return []  # note_seq's BadTimeSignatureError
        spq, spb = self.data.steps_per_quarter, self.steps_per_bar
        if spq * (4.0 / denominator * numerator) != spb:
            return []
        steps_per_second = spq * qpm / 60.0
        start = quantize(piece.start, steps_per_second)
        end = quantize(piece.end, steps_per_second)
        end = np.where(end == start, end + 1, end)  # every note lasts at least one step
        if (start < 0).any() or (end < 0).any():
            return []  # note_seq's NegativeTimeError
        total = int(quantize(np.array([piece.total_time]), steps_per_second)[0])
        steps = max(total, int(end.max(initial=0)))
        bars = min(-(-steps // spb), self.max_bars)
        keys = np.where(piece.is_drum, -1, piece.program.astype(np.int64))
        playing = [(k, p) for k in np.unique(keys).tolist() if (p := part_of(k < 0, k))]
        if {p for _, p in playing} != set(PARTS):
            return []
        found = []
        for key, part in playing:
            mine = keys == key
            # A note covers the bars from its start's to the one holding its end step; one
            # starting past the last bar covers nothing (it still gives its instrument a part).
            # Quirk kept: every note counts, even one the part encoder then drops (a pitch
            # outside 21..108, an unmapped drum pitch, velocity 0).
            first, last = start[mine] // spb, -(-end[mine] // spb)
            inside = first < bars
            edges = np.zeros(bars + 1, np.int64)
            np.add.at(edges, first[inside], 1)
            np.add.at(edges, np.minimum(last[inside], bars), -1)
            covered = np.cumsum(edges[:-1]) > 0
            grid = self._encode(part, piece.select(mine), qpm, numerator, denominator, bars)
            # Quirk kept: an instrument its part encoder finds nothing in covers nothing.
            found.append(Instrument(part, covered & (grid is not None), grid))
        found.sort(key=lambda i: PARTS.index(i.part))  # stable: by program within a part
        return found

    def _encode(
        self, part: str, sub: NoteSequence, qpm: float, numerator: int, denominator: int, bars: int
    ) -> np.ndarray | None:
        """One instrument's notes as (bars * steps_per_bar, depth) one-hots from step 0, or
        None when its part encoder finds nothing. Its one line (melody) or track (drums) runs
        from its first note to the end with no gap limit; the silence before it is padded, not
        skipped, and the end padded (or cut) to the piece's bars, as Magenta's
        pad_to_total_time does once it has set the piece's total time to whole bars."""
        # Quirk kept: the parts span the whole piece from step 0 (Magenta pads each event list
        # on the left back to step 0), so a window's leading silence is kept, not skipped.
        spb, length = self.steps_per_bar, bars * self.steps_per_bar
        if part == "drums":
            hits = self.drums._hits(sub, qpm, numerator, denominator)
            tracks = extract_drum_tracks(hits, spb, float("inf"), None) if hits else []
            if not tracks:
                return None
            lead = min(hits) - min(hits) % spb  # the track starts at its first hit's bar
            track = ([SILENCE] * lead + tracks[0])[:length]
            track += [SILENCE] * (length - len(track))
            return self.drums.encode(track)[1]
        groups = self.melody._quantized_notes(sub, qpm, numerator, denominator)
        melodies = extract_melodies(groups[0], spb, float("inf"), None) if groups else []
        if not melodies:
            return None
        events, start_step = melodies[0]
        line = ([NO_EVENT] * start_step + events)[:length]
        # Padding on the right ends a note still sounding with a note-off (note_seq's
        # Melody.set_length): a melody whose last note ends before the piece's last bar line
        # gets its note-off there, not at the end of the piece.
        pad_melody(line, length)
        return self.melody.encode(line)

    def windows(self, instruments: list[Instrument]) -> list[np.ndarray]:
        """Every ``split_bars``-bar window, one bar apart, that a (melody, bass, drums)
        combination covers after the gap filling, combination by combination: (T, 692)
        float32 each. Identical windows are all kept: Magenta's trio does not dedupe."""
        gap, size, spb = self.gap_bars, self.data.split_bars or 0, self.steps_per_bar
        if not instruments or len(instruments[0].covered) < size:
            return []
        original = np.stack([i.covered for i in instruments], axis=1)
        bars = len(original)
        # Quirk kept (Magenta's gap rule): an instrument covers every bar within gap_bars of a
        # bar it covered, so an inner silence of up to twice gap_bars bars is filled.
        covered = np.stack(
            [original[max(0, j - gap) : min(bars, j + gap) + 1].any(axis=0) for j in range(bars)]
        )
        by_part = [[k for k, i in enumerate(instruments) if i.part == p] for p in PARTS]
        out = []
        for group in ((m, b, d) for m in by_part[0] for b in by_part[1] for d in by_part[2]):
            cover = np.all(covered[:, list(group)], axis=1)
            # Quirk kept: the first and last gap_bars bars count as covered for all three
            # when any of the three covers any of them (Magenta's leniency for re-encoded
            # slices); with gap_bars 0 the slice [-0:] is every bar, as it is in Magenta.
            cover[:gap] = covered[:gap, list(group)].any()
            cover[-gap:] = covered[-gap:, list(group)].any()
            parts = [instruments[k].grid for k in group]
            if any(p is None for p in parts):
                continue
            for j in range(bars - size + 1):
                if cover[j : j + size].all():
                    # Quirk kept: a window is a slice of the parts' one-hots, not of a note_seq
                    # melody, so it may open on the note-off of a note held to its first bar
                    # line (a melody converter's window turns that into no event).
                    steps = slice(j * spb, (j + size) * spb)
                    out.append(np.concatenate([p[steps] for p in parts if p is not None], axis=1))
        return out

    def to_tensors(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Magenta's ``to_tensors``: (T, 692) one-hot float32 windows, inputs == outputs,
        zero-width controls, lengths T (see the module docstring for the steps). An
        ``np.random.RandomState`` draws the 'train' cap exactly as Magenta's ``np.random``
        does. ``ns`` is not changed."""
        cap = self.data.max_tensors_per_notesequence
        kept: list[np.ndarray] = []
        for piece in split_on_time_changes(ns):
            # Magenta caps each piece, then all of them together, from the one RNG in order.
            kept += sample_items(self.windows(self.instruments(*piece)), cap, self.mode, rng)
        kept = sample_items(kept, cap, self.mode, rng)
        return ConverterTensors(
            inputs=kept,
            outputs=[w.copy() for w in kept],
            controls=[np.zeros((len(w), 0), np.float32) for w in kept],
            lengths=[len(w) for w in kept],
        )

    def examples(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Training examples from one dataset file: ``to_tensors`` (the converter windows)."""
        return self.to_tensors(ns, rng)

    def sequence_grid(
        self, ns: NoteSequence, rng: CapRng | None = None, *, transform: bool = True
    ) -> ConverterTensors:
        """The whole sequence's trio on one grid from step 0 (one example, or none): the first
        piece's first melody, bass and drum instruments, each encoded over all of its bars,
        whatever they cover. What inference cuts into windows. Nothing is random."""
        del rng, transform
        pieces = split_on_time_changes(ns)
        instruments = self.instruments(*pieces[0]) if pieces else []
        firsts = [next((i for i in instruments if i.part == p), None) for p in PARTS]
        grids = [i.grid for i in firsts if i is not None and i.grid is not None]
        if len(grids) < len(PARTS):
            return ConverterTensors()
        grid = np.concatenate(grids, axis=1)
        no_controls = np.zeros((len(grid), 0), np.float32)
        return ConverterTensors([grid], [grid.copy()], [no_controls], [len(grid)])

    # ---------------------------------------------------------------- from tensors

    def from_tensors(
        self, outputs: np.ndarray, controls: np.ndarray | None = None, *, qpm: float = 120.0
    ) -> list[NoteSequence]:
        """Decode (B, T, 692) or (T, 692) outputs into trios at ``qpm``: each part as its
        converter decodes it (argmax per part), the melody on program 0, the bass on program
        33, the drums on channel 10 (each class as its first pitch); velocity 80. Notes come
        melody first, then bass, then drums, as in Magenta. ``controls`` is unused."""
        del controls
        arr = self.batch_outputs(outputs)
        cut = np.cumsum(self.depths)
        melodies = self.melody.from_tensors(arr[..., : cut[0]], qpm=qpm)
        basses = self.melody.from_tensors(arr[..., cut[0] : cut[1]], qpm=qpm)
        drums = self.drums.from_tensors(arr[..., cut[1] :], qpm=qpm)
        sequences = []
        for parts in zip(melodies, basses, drums, strict=True):
            parts[1].program[:] = BASS_PROGRAM
            sequences.append(
                NoteSequence(
                    pitch=np.concatenate([p.pitch for p in parts]),
                    velocity=np.concatenate([p.velocity for p in parts]),
                    start=np.concatenate([p.start for p in parts]),
                    end=np.concatenate([p.end for p in parts]),
                    is_drum=np.concatenate([p.is_drum for p in parts]),
                    program=np.concatenate([p.program for p in parts]),
                    tempos=[Tempo(0.0, float(qpm))],
                )
            )
        return sequences
