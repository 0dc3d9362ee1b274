"""Magenta's drums converter: drum patterns as rolls of drum classes, and back.

Reproduces ``DrumsConverter`` (magenta/models/music_vae/data.py) as the cat-drums and
nade-drums configs build it, with note_seq's drum-track extraction
(``DrumTrack.from_quantized_sequence`` driven by ``drum_pipelines.extract_drum_tracks``). Each
16th-note step is the set of drum classes hit there; velocities and timing are dropped.

Encoder inputs are a roll: one column per class plus a last "no hit" (NOR) column that is 1 on
steps where nothing is hit. Decoder targets are either one of ``2**classes`` patterns, one-hot
(cat-drums: class index = sum of ``2**c`` for the classes hit, 0 = silence), or the roll without
its NOR column (nade-drums). Two pitch maps: "reduced", note_seq's 9 general-MIDI classes, and
"full", 61 classes of one pitch each.

``to_tensors`` follows Magenta step by step: split the sequence on tempo and time-signature
changes; quantise each piece (a piece whose bar is not ``steps_per_bar`` steps gives nothing);
keep drum notes of mapped pitches; extract drum tracks (each starts at the bar of its first hit,
ends where ``gap_bars`` bars of silence follow a hit, is padded to whole bars and truncated to
``max_bars``); cut ``split_bars``-bar windows one bar apart; dedupe them in CPython's set order;
keep at most ``max_tensors_per_notesequence`` (the first ones, or a random draw in 'train' mode).
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import numpy as np

from musicvae.configs import DataConfig
from musicvae.data.converters.base import (
    CapRng,
    ConverterBase,
    ConverterTensors,
    register_converter,
    sample_items,
)
from musicvae.data.converters.groove import (
    DRUM_CLASS_NAMES,
    REDUCED_DRUM_PITCH_CLASSES,
    _class_lookup,
)
from musicvae.data.converters.melody import (
    _GROOVE_ONLY,
    OUTPUT_VELOCITY,
    split_on_time_changes,
)
from musicvae.data.sequence import NoteSequence, Tempo
from musicvae.data.windows import quantize

# Magenta's FULL_DRUM_PITCH_CLASSES: one class per pitch, in its order. Pitches 22-26 (GMD's
# Roland hi-hat edges, which the reduced map files under the hi-hats) are in no class, so the
# full map drops them; it also orders 43 among the high toms and 52 among the rides, unlike the
# reduced map.
FULL_DRUM_PITCHES = (
    *(36, 35, 38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85, 42, 44, 54, 68),
    *(69, 70, 71, 73, 78, 80, 46, 67, 72, 74, 79, 81, 45, 29, 41, 61, 64, 84, 48, 47, 60),
    *(63, 77, 86, 87, 50, 30, 43, 62, 76, 83, 49, 55, 57, 58, 51, 52, 53, 59, 82),
)
FULL_DRUM_PITCH_CLASSES: tuple[tuple[int, ...], ...] = tuple((p,) for p in FULL_DRUM_PITCHES)
# The reduced map is note_seq's DEFAULT_DRUM_TYPE_PITCHES, which is NOT the Roland map GrooVAE
# trains with (45 is a low tom here, 48 a mid tom, 58 a crash): these configs use this one.
PITCH_CLASSES = {"reduced": REDUCED_DRUM_PITCH_CLASSES, "full": FULL_DRUM_PITCH_CLASSES}
# General MIDI (and GS, below 35 and above 81) names of the percussion pitches 27..87.
_GM_DRUM_NAMES = (  # noqa: SIM905  (a compact table)
    "high Q,slap,scratch push,scratch pull,sticks,square click,metronome click,metronome bell,"
    "acoustic bass drum,bass drum 1,side stick,acoustic snare,hand clap,electric snare,"
    "low floor tom,closed hi-hat,high floor tom,pedal hi-hat,low tom,open hi-hat,low-mid tom,"
    "hi-mid tom,crash cymbal 1,high tom,ride cymbal 1,chinese cymbal,ride bell,tambourine,"
    "splash cymbal,cowbell,crash cymbal 2,vibraslap,ride cymbal 2,hi bongo,low bongo,"
    "mute hi conga,open hi conga,low conga,high timbale,low timbale,high agogo,low agogo,cabasa,"
    "maracas,short whistle,long whistle,short guiro,long guiro,claves,hi wood block,"
    "low wood block,mute cuica,open cuica,mute triangle,open triangle,shaker,jingle bell,"
    "bell tree,castanets,mute surdo,open surdo"
).split(",")
GM_DRUM_NAMES = dict(enumerate(_GM_DRUM_NAMES, start=27))
# DataConfig options for the other converters; set, they would silently do nothing here.
_NOT_FOR_DRUMS = (*_GROOVE_ONLY, "valid_programs", "transpose_range")
Track = list[frozenset[int]]
SILENCE: frozenset[int] = frozenset()


def extract_drum_tracks(
    hits: dict[int, set[int]], spb: int, gap: float, max_steps: int | None
) -> list[Track]:
    """note_seq's ``extract_drum_tracks`` with Magenta's converter settings (min_bars 1,
    pad_end) on ``hits`` (step -> classes hit there): one event list per track, in order.

    A track starts at the bar of its first hit and ends before a hit that follows ``gap`` or
    more silent steps; it is padded to whole bars (so never shorter than min_bars' one bar), the
    next search starts at the bar after it, and ``max_steps`` then truncates it to whole bars.
    """
    steps = sorted(hits)
    tracks, search = [], 0
    while (first := bisect.bisect_left(steps, search)) < len(steps):
        start = steps[first] - (steps[first] - search) % spb
        events: Track = []
        for step in steps[first:]:
            index = step - start
            if events and index - len(events) >= gap:
                break
            events += [SILENCE] * (index - len(events)) + [frozenset(hits[step])]
        events += [SILENCE] * (-len(events) % spb)
        search = start + len(events)
        if max_steps is not None and len(events) > max_steps:
            del events[max_steps - max_steps % spb :]
        tracks.append(events)
    return tracks


def pattern_name(pattern: int, names: tuple[str, ...]) -> str:
    """A one-hot class's name: the classes of its set bits joined by "+", or "silence"."""
    hit = [name for c, name in enumerate(names) if pattern >> c & 1]
    return "+".join(hit) or "silence"


@register_converter("drums")
class DrumsConverter(ConverterBase):
    """Magenta's DrumsConverter with the drum configs' settings (``roll_input``, ``max_bars``
    100, ``gap_bars`` 1), from a ``DataConfig``: ``split_bars`` is its ``slice_bars``,
    ``drum_pitch_classes`` its ``pitch_classes`` and ``roll_output`` its own.

    cat-drums_2bar_small and _big build equal converters in Magenta (separate objects, the same
    settings), so one converter serves both and their tensors are the same. ``mode`` only
    matters to the window cap: 'train' draws the kept windows at random, as Magenta's training
    does; other modes keep the first ones.
    """

    def __init__(
        self,
        data: DataConfig,
        *,
        mode: str = "train",
        max_bars: int | None = 100,
        gap_bars: float | None = 1.0,
    ) -> None:
        ignored = [k for k in _NOT_FOR_DRUMS if getattr(data, k) not in (False, (), None)]
        ignored += ["hop_size"] if data.hop_size is not None else []  # hops are one bar
        if ignored:
            raise ValueError(f"options the drums converter does not use: {', '.join(ignored)}")
        if data.drum_pitch_classes not in PITCH_CLASSES:
            raise ValueError(f"unknown drum_pitch_classes {data.drum_pitch_classes!r}")
        self.pitch_classes = PITCH_CLASSES[data.drum_pitch_classes]
        self.num_classes = n = len(self.pitch_classes)
        if not data.roll_output and n > 9:
            raise ValueError(f"one-hot outputs of {n} drum classes need 2**{n} classes")
        self.data = data
        self.mode = mode
        self._lookup = _class_lookup(self.pitch_classes)
        self.steps_per_bar = data.steps_per_quarter * data.quarters_per_bar
        self.window_steps: int | None = (
            data.split_bars * self.steps_per_bar if data.split_bars else None
        )
        self.max_steps = self.steps_per_bar * max_bars if max_bars else None
        self.gap_steps = (gap_bars or float("inf")) * self.steps_per_bar
        self.input_depth = n + 1
        self.output_depth = n if data.roll_output else 2**n
        self.control_depth = 0
        if data.drum_pitch_classes == "full":
            names = tuple(GM_DRUM_NAMES[c[0]] for c in self.pitch_classes)
        else:
            names = DRUM_CLASS_NAMES
        self.class_names = (
            names if data.roll_output else tuple(pattern_name(k, names) for k in range(2**n))
        )

    @property
    def is_random(self) -> bool:
        """False: the inputs are the targets (the 'train' cap's draw is made at conversion)."""
        return False

    # ---------------------------------------------------------------- to tensors

    def tracks(self, ns: NoteSequence, gap_steps: float | None = None) -> list[list[Track]]:
        """The drum tracks of each piece of ``ns`` (class-set event lists, in Magenta's
        order), one list per piece; a piece without a valid grid has none."""
        gap = self.gap_steps if gap_steps is None else gap_steps
        return [
            extract_drum_tracks(self._hits(*piece), self.steps_per_bar, gap, self.max_steps)
            for piece in split_on_time_changes(ns)
        ]

    def _hits(
        self, piece: NoteSequence, qpm: float, numerator: int, denominator: int
    ) -> dict[int, set[int]]:
        """step -> classes hit there, for the piece's drum notes of mapped pitches with a
        velocity; nothing where note_seq cannot quantise the piece to this bar length."""
        if numerator == 0 or denominator <= 0 or denominator & (denominator - 1):
            return {}  # note_seq's BadTimeSignatureError
        spq = self.data.steps_per_quarter
        if spq * (4.0 / denominator * numerator) != self.steps_per_bar:
            return {}
        steps_per_second = spq * qpm / 60.0
        start = quantize(piece.start, steps_per_second)
        if (start < 0).any() or (quantize(piece.end, steps_per_second) < 0).any():
            return {}  # note_seq's NegativeTimeError
        classes = self._lookup[np.clip(piece.pitch.astype(np.int64), 0, 127)]
        known = (piece.pitch >= 0) & (piece.pitch <= 127) & (classes >= 0)
        keep = piece.is_drum & (piece.velocity != 0) & known
        hits: dict[int, set[int]] = defaultdict(set)
        for step, c in zip(start[keep].tolist(), classes[keep].tolist(), strict=True):
            hits[step].add(c)
        return hits

    def windows(self, track: Track) -> list[tuple[frozenset[int], ...]]:
        """``split_bars``-bar slices of a track, one bar apart (the whole track when
        ``split_bars`` is None)."""
        size = self.window_steps
        if size is None:
            return [tuple(track)]
        ends = range(size, len(track) + 1, self.steps_per_bar)
        return [tuple(track[end - size : end]) for end in ends]

    def to_tensors(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Magenta's ``to_tensors``: (T, classes + 1) roll inputs, (T, 2**classes) one-hot or
        (T, classes) roll outputs as float32, zero-width controls, lengths T (see the module
        docstring for the steps). An ``np.random.RandomState`` draws the 'train' cap exactly as
        Magenta's ``np.random`` does."""
        cap = self.data.max_tensors_per_notesequence
        kept: list[tuple[frozenset[int], ...]] = []
        for piece_tracks in self.tracks(ns):
            sliced = [w for track in piece_tracks for w in self.windows(track)]
            # Magenta dedupes the windows, tuples of frozensets of ints, through a set, so
            # repetitive grooves collapse and the order is CPython's set order (fixed: it does
            # not depend on the hash seed). Built the same way, our set iterates the same.
            kept += sample_items(list(set(sliced)), cap, self._mode, rng)
        kept = sample_items(kept, cap, self._mode, rng)
        encoded = [self.encode(w) for w in kept]
        return ConverterTensors(
            inputs=[i for i, _ in encoded],
            outputs=[o for _, o in encoded],
            controls=[np.zeros((len(w), 0), np.float32) for w in kept],
            lengths=[len(w) for w in kept],
        )

    def examples(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Training examples from one dataset file: ``to_tensors`` (the converter windows)."""
        return self.to_tensors(ns, rng)

    def sequence_grid(
        self, ns: NoteSequence, rng: CapRng | None = None, *, transform: bool = True
    ) -> ConverterTensors:
        """The whole sequence's drums on one grid from step 0 (one example, or none): the first
        piece's first drum track read with no gap limit, padded to whole bars. What inference
        cuts into windows. Nothing is random and inputs are never transformed."""
        del rng, transform
        pieces = split_on_time_changes(ns)
        if not pieces:
            return ConverterTensors()
        hits = self._hits(*pieces[0])
        tracks = extract_drum_tracks(hits, self.steps_per_bar, float("inf"), self.max_steps)
        if not tracks:
            return ConverterTensors()
        lead = min(hits) - min(hits) % self.steps_per_bar  # the track's start step
        inputs, outputs = self.encode([SILENCE] * lead + tracks[0])
        no_controls = np.zeros((len(inputs), 0), np.float32)
        return ConverterTensors([inputs], [outputs], [no_controls], [len(inputs)])

    def encode(self, events: Track | tuple[frozenset[int], ...]) -> tuple[np.ndarray, np.ndarray]:
        """Class-set events as float32 (T, classes + 1) roll inputs (last column: no hit)
        and (T, output_depth) targets: the roll without that column, or one-hot patterns."""
        roll = np.zeros((len(events), self.num_classes + 1), np.float32)
        steps = [step for step, event in enumerate(events) for _ in event]
        roll[steps, [c for event in events for c in event]] = 1.0
        roll[:, -1] = ~roll.any(axis=1)
        if self.data.roll_output:
            return roll, roll[:, :-1].copy()
        patterns = roll[:, :-1].astype(np.int64) @ (1 << np.arange(self.num_classes))
        onehot = np.zeros((len(events), self.output_depth), np.float32)
        onehot[np.arange(len(events)), patterns] = 1.0
        return roll, onehot

    # ---------------------------------------------------------------- from tensors

    def from_tensors(
        self, outputs: np.ndarray, controls: np.ndarray | None = None, *, qpm: float = 120.0
    ) -> list[NoteSequence]:
        """Decode (B, T, D) or (T, D) outputs (argmax per step for one-hot patterns, > 0.5
        for rolls) into drum NoteSequences at ``qpm``: each class hit written as its first
        pitch, velocity 80, one step long, is_drum (channel 10); ``controls`` is unused.

        Notes come step by step, and within a step in the iteration order of the frozenset of
        pitches, built as Magenta builds it (which decides where colliding pitches land)."""
        del controls
        arr = self.batch_outputs(outputs)
        seconds_per_step = 60.0 / qpm / self.data.steps_per_quarter
        if self.data.roll_output:
            hits = arr > 0.5
        else:
            hits = (np.argmax(arr, axis=-1)[..., None] >> np.arange(self.num_classes)) & 1 > 0
        first = [pitches[0] for pitches in self.pitch_classes]
        sequences = []
        for sample in hits:
            notes = [
                (step, pitch)
                for step, row in enumerate(sample)
                for pitch in frozenset(first[c] for c in frozenset(np.flatnonzero(row).tolist()))
            ]
            steps = np.array([s for s, _ in notes], np.float64)
            sequences.append(
                NoteSequence(
                    pitch=np.array([p for _, p in notes], np.int16),
                    velocity=np.full(len(notes), OUTPUT_VELOCITY),
                    start=steps * seconds_per_step + 0.0,
                    end=(steps + 1) * seconds_per_step + 0.0,
                    is_drum=np.ones(len(notes), bool),
                    program=np.zeros(len(notes), np.int16),
                    tempos=[Tempo(0.0, float(qpm))],
                )
            )
        return sequences
