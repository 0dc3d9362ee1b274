"""Chords: note_seq's chord symbols, its chord inference and the chord encodings Magenta uses.

Magenta's chord-conditioned models (``cat-mel_2bar_med_chords``, the ``_chords`` multi-track
ones) read one chord per 16th-note step beside the music. A NoteSequence's chords are its chord
text annotations ("C", "Am", "G7", "N.C." for no chord); when it has none, Magenta infers them
with note_seq's ``infer_chords_for_sequence``, and this module does the same:

- **Chord symbols** (note_seq's ``chord_symbols_lib``): a figure is a root (a letter with sharps
  or flats), a kind ("", "m", "7", "maj7", "dim", "sus4", ... in :data:`CHORD_KINDS`), scale
  degree changes ("add9", "b5", "no3", "(#11)") and an optional bass ("/E"). :func:`parse_chord`
  reads one; :func:`chord_root`, :func:`chord_pitches`, :func:`chord_bass` and
  :func:`chord_quality` are what the encodings need.
- **Inference** (:func:`infer_chords`): a hidden Markov model over (key, chord) pairs, one pair
  per chord frame (2 frames per bar in 4/4, 1 in 2/2, 2/4 and 3/4, 2 in 6/8), decoded with the
  Viterbi algorithm. A frame's evidence is the duration of each pitch class sounding in it (drum
  and unpitched-program notes skipped), scored against the 96 chords of
  :data:`INFERENCE_KINDS` on 12 roots and "no chord"; keys change rarely (0.001 per frame),
  chords half the time, and a chord's pitches are rarely (0.01) out of the key. Every float
  operation is note_seq's, in its order, so the argmax (ties included) is its argmax.
- **Encodings** (:data:`CHORD_ENCODINGS`): "triad", note_seq's ``TriadChordOneHotEncoding``
  (49 classes: N.C., then 12 roots each of major, minor, augmented and diminished triads; what
  the published chord models read, seventh chords collapse to their triad); "major_minor", its
  ``MajorMinorChordOneHotEncoding`` (25 classes); "pitch", its ``PitchChordsEncoderDecoder``
  input (37 values: N.C., root one-hot, pitch classes, bass one-hot).

:func:`parse_chords` and :func:`encode_chords` turn a chord progression a person types
("C G Am F") into controls; a chord that cannot be read or encoded is one ``MusicVAEError`` line.

:func:`magenta_set_order` is how Magenta's converters dedupe windows that carry chords: a Python
``set`` of (event, chord) tuples, whose order depends on the string hash seed. It reproduces
CPython 3.11's order under ``PYTHONHASHSEED=0`` (what Magenta's reference data was made with),
whatever this process's own hash seed, so a dataset is the same every time it is built.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError

NO_CHORD = "N.C."
# note_seq's TextAnnotation.annotation_type of a chord symbol.
CHORD_SYMBOL = 1
NOTES_PER_OCTAVE = 12
# How note_seq names pitch classes when it writes chords (mostly ignoring spelling).
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# MIDI programs note_seq treats as unpitched (chord inference skips their notes).
UNPITCHED_PROGRAMS = frozenset([*range(96, 104), *range(112, 128)])

QUALITY_MAJOR, QUALITY_MINOR, QUALITY_AUGMENTED, QUALITY_DIMINISHED, QUALITY_OTHER = range(5)


class ChordSymbolError(MusicVAEError, ValueError):
    """A chord figure that cannot be read."""


class ChordEncodingError(MusicVAEError, ValueError):
    """A chord an encoding has no class for (a sus4 chord in a triad encoding)."""


class ChordInferenceError(MusicVAEError, ValueError):
    """A sequence note_seq cannot infer chords for (empty, too long, an uncommon meter)."""


class CoincidentChordsError(MusicVAEError, ValueError):
    """Two different chords start on the same step."""


# ---------------------------------------------------------------------------- chord symbols

# Chord kinds: the abbreviations that name one (the first is how it is written) and its scale
# degrees. The order matters: a figure is read with the first kind that lets the rest parse.
CHORD_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("", "maj", "M"), "1 3 5"),
    (("m", "min", "-"), "1 b3 5"),
    (("+", "aug"), "1 3 #5"),
    (("o", "dim"), "1 b3 b5"),
    (("7",), "1 3 5 b7"),
    (("maj7", "M7"), "1 3 5 7"),
    (("m7", "min7", "-7"), "1 b3 5 b7"),
    (("o7", "dim7"), "1 b3 b5 bb7"),
    (("+7", "aug7"), "1 3 #5 b7"),
    (("m7b5", "-7b5", "/o", "/o7"), "1 b3 b5 b7"),
    (
        (
            "mmaj7",
            "mM7",
            "minmaj7",
            "minM7",
            "-maj7",
            "-M7",
            "m(maj7)",
            "m(M7)",
            "min(maj7)",
            "min(M7)",
            "-(maj7)",
            "-(M7)",
        ),
        "1 b3 5 7",
    ),
    (("6",), "1 3 5 6"),
    (("m6", "min6", "-6"), "1 b3 5 6"),
    (("9",), "1 3 5 b7 9"),
    (("maj9", "M9"), "1 3 5 7 9"),
    (("m9", "min9", "-9"), "1 b3 5 b7 9"),
    (("+9", "aug9"), "1 3 #5 b7 9"),
    (("6/9",), "1 3 5 6 9"),
    (("11",), "1 3 5 b7 9 11"),
    (("maj11", "M11"), "1 3 5 7 9 11"),
    (("m11", "min11", "-11"), "1 b3 5 b7 9 11"),
    (("13",), "1 3 5 b7 9 11 13"),
    (("maj13", "M13"), "1 3 5 7 9 11 13"),
    (("m13", "min13", "-13"), "1 b3 5 b7 9 11 13"),
    (("sus2",), "1 2 5"),
    (("sus", "sus4"), "1 4 5"),
    (("sus7", "7sus"), "1 4 5 b7"),
    (("ped",), "1"),
    (("5",), "1 5"),
)
_LETTER_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Semitones above the root of each scale degree (9, 11 and 13 fold onto 2, 4 and 6).
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11}


def _degree(text: str) -> tuple[int, int]:
    """A degree and its alteration: "b3" -> (3, -1), "#11" -> (11, 1)."""
    digits = text.lstrip("#b")
    accidentals = text[: len(text) - len(digits)]
    return int(digits), accidentals.count("#") - accidentals.count("b")


_KIND_DEGREES = {
    abbrev: tuple(_degree(d) for d in degrees.split())
    for abbrevs, degrees in CHORD_KINDS
    for abbrev in abbrevs
}
_ROOT = r"[A-G](?:#*|b*)(?![#b])"
# Degree changes, tried in this order: "add#9" is "add#" then 9.
_CHANGES = ("add", "add#", "addb", "no", "#", "b")
_CHANGE = r"\(?(?:{})[0-9]+\)?".format("|".join(re.escape(c) for c in _CHANGES))
_FIGURE = re.compile(
    "({})({})((?:{})*)(|/{})$".format(
        _ROOT, "|".join(re.escape(a) for a in _KIND_DEGREES), _CHANGE, _ROOT
    )
)
_ONE_CHANGE = re.compile(r"\(?({})([0-9]+)\)?".format("|".join(re.escape(c) for c in _CHANGES)))


def _pitch_class(name: str) -> int:
    return (_LETTER_PITCH[name[0]] + name.count("#") - name.count("b")) % NOTES_PER_OCTAVE


class Chord(NamedTuple):
    """A parsed chord figure: root and bass pitch classes (0 = C), and its scale degrees
    (degree -> semitones altered, e.g. {1: 0, 3: -1, 5: 0} for a minor triad), in order."""

    root: int
    degrees: dict[int, int]
    bass: int


@functools.lru_cache(maxsize=4096)
def _parse(figure: str) -> tuple[int, tuple[tuple[int, int], ...], int]:
    match = _FIGURE.match(figure)
    if match is None:
        raise ChordSymbolError(f"chord {figure!r} is not a chord symbol (e.g. C, Am, G7, Bb/D)")
    root_text, kind, changes, bass_text = match.groups()
    degrees = dict(_KIND_DEGREES[kind])
    while changes:
        change = _ONE_CHANGE.match(changes)
        assert change is not None and change.end() > 0  # the figure's pattern admitted it
        how, degree = change.group(1), int(change.group(2))
        changes = changes[change.end() :]
        if how.startswith("add"):
            if degree in degrees:
                raise ChordSymbolError(f"chord {figure!r} adds degree {degree}, already in it")
            # An added 7th is the minor 7th: "add7" means b7.
            degrees[degree] = how.count("#") - how.count("b") - (degree == 7)
        elif how == "no":
            if degree not in degrees:
                raise ChordSymbolError(f"chord {figure!r} removes degree {degree}, not in it")
            del degrees[degree]
        else:
            degrees[degree] = degrees.get(degree, 0) + (1 if how == "#" else -1)
    root = _pitch_class(root_text)
    bass = _pitch_class(bass_text[1:]) if bass_text else root
    return root, tuple(degrees.items()), bass


def parse_chord(figure: str) -> Chord:
    """Read a chord figure as note_seq does; ``ChordSymbolError`` if it is not one.
    ("N.C." is no chord, not a chord symbol: check it first.)"""
    root, degrees, bass = _parse(figure)
    return Chord(root, dict(degrees), bass)


def chord_root(figure: str) -> int:
    """The root's pitch class, 0 (C) to 11 (B)."""
    return _parse(figure)[0]


def chord_bass(figure: str) -> int:
    """The bass's pitch class: the one after "/", else the root's."""
    return _parse(figure)[2]


def chord_pitches(figure: str) -> list[int]:
    """The chord's pitch classes, in the order of its degrees (the bass only if in the chord)."""
    root, degrees, _ = _parse(figure)
    return [
        (root + _DEGREE_SEMITONES[(d - 1) % 7 + 1] + alter) % NOTES_PER_OCTAVE
        for d, alter in degrees
    ]


def chord_quality(figure: str) -> int:
    """QUALITY_MAJOR, _MINOR, _AUGMENTED or _DIMINISHED from the chord's 1st, 3rd and 5th
    degrees (so "G7" is major, "Bm7b5" diminished); QUALITY_OTHER without a full triad."""
    degrees = dict(_parse(figure)[1])
    if not {1, 3, 5} <= degrees.keys():
        return QUALITY_OTHER
    triad = (degrees[1], degrees[3], degrees[5])
    qualities = {(0, 0, 0): QUALITY_MAJOR, (0, -1, 0): QUALITY_MINOR}
    qualities |= {(0, 0, 1): QUALITY_AUGMENTED, (0, -1, -1): QUALITY_DIMINISHED}
    return qualities.get(triad, QUALITY_OTHER)


def chord_name(root: int, kind: str = "", bass: int | None = None) -> str:
    """A figure from a root pitch class, a kind abbreviation and an optional other bass."""
    name = PITCH_CLASS_NAMES[root % NOTES_PER_OCTAVE] + kind
    if bass is not None and bass % NOTES_PER_OCTAVE != root % NOTES_PER_OCTAVE:
        name += "/" + PITCH_CLASS_NAMES[bass % NOTES_PER_OCTAVE]
    return name


# ---------------------------------------------------------------------------- encodings


class ChordEncoding:
    """How one chord becomes one control row of ``depth`` values, and back."""

    name: str
    depth: int
    description: str

    def encode(self, figure: str) -> np.ndarray:
        """The (depth,) float32 row of one chord; ``ChordSymbolError`` or
        ``ChordEncodingError`` when it has none."""
        raise NotImplementedError

    def decode(self, row: np.ndarray) -> str:
        """The chord a control row stands for (N.C. for an all-zero row)."""
        raise NotImplementedError

    def shift_index(self, semitones: int) -> np.ndarray:
        """(depth,) indices that transpose a row up ``semitones``: ``row[index]``."""
        raise NotImplementedError

    def encode_steps(self, chords: Sequence[str]) -> np.ndarray:
        """(T, depth) float32 controls of one chord per step."""
        rows = {c: self.encode(c) for c in set(chords)}
        out = np.zeros((len(chords), self.depth), np.float32)
        for t, c in enumerate(chords):
            out[t] = rows[c]
        return out

    def decode_steps(self, controls: np.ndarray) -> list[str]:
        """The chord of each (depth,) row of (T, depth) controls."""
        return [self.decode(row) for row in np.asarray(controls)]


# The triad kinds the one-hot encodings use, in class order, and how they decode.
_ONE_HOT_QUALITIES = {
    QUALITY_MAJOR: "",
    QUALITY_MINOR: "m",
    QUALITY_AUGMENTED: "aug",
    QUALITY_DIMINISHED: "dim",
}


@dataclass(frozen=True)
class OneHotChordEncoding(ChordEncoding):
    """note_seq's one-hot chord encodings: class 0 is N.C., then 12 roots (C to B) of each
    quality in ``qualities``; a chord is its root and the quality of its triad."""

    name: str
    qualities: tuple[int, ...]
    description: str = ""

    @property
    def depth(self) -> int:  # type: ignore[override]
        return 1 + NOTES_PER_OCTAVE * len(self.qualities)

    def index(self, figure: str) -> int:
        """The class of one chord."""
        if figure == NO_CHORD:
            return 0
        quality = chord_quality(figure)
        if quality not in self.qualities:
            raise ChordEncodingError(
                f"chord {figure!r} has no class in the {self.name} encoding ({self.description})"
            )
        return 1 + NOTES_PER_OCTAVE * self.qualities.index(quality) + chord_root(figure)

    def encode(self, figure: str) -> np.ndarray:
        row = np.zeros(self.depth, np.float32)
        row[self.index(figure)] = 1.0
        return row

    def figure(self, index: int) -> str:
        """The chord of class ``index``, as note_seq writes it: "C", "C#m", "Ebaug", "Bdim"."""
        if index == 0:
            return NO_CHORD
        quality, root = divmod(int(index) - 1, NOTES_PER_OCTAVE)
        return PITCH_CLASS_NAMES[root] + _ONE_HOT_QUALITIES[self.qualities[quality]]

    def decode(self, row: np.ndarray) -> str:
        row = np.asarray(row)
        return self.figure(int(np.argmax(row))) if row.any() else NO_CHORD

    def shift_index(self, semitones: int) -> np.ndarray:
        index = np.arange(self.depth)
        quality, root = np.divmod(index[1:] - 1, NOTES_PER_OCTAVE)
        index[1:] = 1 + NOTES_PER_OCTAVE * quality + (root - semitones) % NOTES_PER_OCTAVE
        return index


@dataclass(frozen=True)
class PitchChordEncoding(ChordEncoding):
    """note_seq's ``PitchChordsEncoderDecoder`` input: [N.C.] + root one-hot (12) + each
    pitch class in the chord (12) + bass one-hot (12), 37 values; every chord symbol has one."""

    name: str = "pitch"
    depth: int = 1 + 3 * NOTES_PER_OCTAVE
    description: str = "N.C., root, pitch classes and bass of any chord symbol"

    def encode(self, figure: str) -> np.ndarray:
        row = np.zeros(self.depth, np.float32)
        if figure == NO_CHORD:
            row[0] = 1.0
            return row
        row[1 + chord_root(figure)] = 1.0
        row[1 + NOTES_PER_OCTAVE + np.asarray(chord_pitches(figure), np.int64)] = 1.0
        row[1 + 2 * NOTES_PER_OCTAVE + chord_bass(figure)] = 1.0
        return row

    def decode(self, row: np.ndarray) -> str:
        """The first kind of :data:`CHORD_KINDS` with exactly the row's pitch classes above its
        root (else the largest kind they contain), and the bass if it is not the root."""
        row = np.asarray(row, np.float64)
        if row[0] > 0.5 or not row[1:].any():
            return NO_CHORD
        root = int(np.argmax(row[1 : 1 + NOTES_PER_OCTAVE]))
        bass = int(np.argmax(row[1 + 2 * NOTES_PER_OCTAVE :]))
        present = np.flatnonzero(row[1 + NOTES_PER_OCTAVE : 1 + 2 * NOTES_PER_OCTAVE] > 0.5)
        relative = {(int(p) - root) % NOTES_PER_OCTAVE for p in present}
        best, best_size = "", -1
        for abbrevs, _ in CHORD_KINDS:
            kind = {
                (p - root) % NOTES_PER_OCTAVE for p in chord_pitches(chord_name(root, abbrevs[0]))
            }
            if kind == relative:
                return chord_name(root, abbrevs[0], bass)
            if kind <= relative and len(kind) > best_size:
                best, best_size = abbrevs[0], len(kind)
        return chord_name(root, best, bass)

    def shift_index(self, semitones: int) -> np.ndarray:
        pcs = (np.arange(NOTES_PER_OCTAVE) - semitones) % NOTES_PER_OCTAVE
        blocks = [1 + b * NOTES_PER_OCTAVE + pcs for b in range(3)]
        return np.concatenate([[0], *blocks])


CHORD_ENCODINGS: dict[str, ChordEncoding] = {
    "triad": OneHotChordEncoding(
        "triad",
        (QUALITY_MAJOR, QUALITY_MINOR, QUALITY_AUGMENTED, QUALITY_DIMINISHED),
        "N.C. and major, minor, augmented or diminished triads and the chords built on them",
    ),
    "major_minor": OneHotChordEncoding(
        "major_minor",
        (QUALITY_MAJOR, QUALITY_MINOR),
        "N.C. and major or minor triads and the chords built on them",
    ),
    "pitch": PitchChordEncoding(),
}


def chord_encoding(name: str) -> ChordEncoding:
    """The encoding a ``DataConfig.chord_encoding`` names."""
    try:
        return CHORD_ENCODINGS[name]
    except KeyError:
        raise MusicVAEError(
            f"unknown chord encoding {name!r}; choose from {', '.join(CHORD_ENCODINGS)}"
        ) from None


def transpose_chord_controls(
    controls: np.ndarray, shifts: Sequence[int] | np.ndarray, encoding: ChordEncoding | str
) -> np.ndarray:
    """(B, T, depth) chord controls with row ``b``'s chords moved ``shifts[b]`` semitones up,
    as Magenta's transposition of a NoteSequence moves the chords inferred from it."""
    enc = chord_encoding(encoding) if isinstance(encoding, str) else encoding
    arr = np.asarray(controls)
    index = np.stack([enc.shift_index(int(s)) for s in np.asarray(shifts).reshape(-1)])
    return np.take_along_axis(arr, index[:, None, :], axis=-1)


# ---------------------------------------------------------------------------- user chords


def parse_chords(text: str) -> list[str]:
    """A chord progression as people type it ("C G Am F", "C, G7 | Am F", "Dm7 N.C."): the
    chord figures in order. "NC" or "N.C" count as no chord. Raises a one-line
    ``MusicVAEError`` naming a figure that is not a chord."""
    figures = [f for f in re.split(r"[\s,|;]+", text.strip()) if f]
    if not figures:
        raise MusicVAEError('no chords given (write them like "C G Am F")')
    out = []
    for figure in figures:
        if figure.upper().rstrip(".") in ("NC", "N.C"):
            out.append(NO_CHORD)
            continue
        _parse(figure)
        out.append(figure)
    return out


def encode_chords(
    chords: Sequence[str] | str, steps: int, encoding: ChordEncoding | str
) -> np.ndarray:
    """(steps, depth) float32 controls of a chord progression: the chords share the steps
    in order and equally (4 chords over 32 steps: 8 steps, half a 4/4 bar, each, the rate at
    which Magenta infers them; an uneven split gives the earlier chords one more step).
    ``chords`` may be text for :func:`parse_chords`. A chord the encoding cannot encode is a
    one-line ``MusicVAEError``."""
    enc = chord_encoding(encoding) if isinstance(encoding, str) else encoding
    figures = parse_chords(chords) if isinstance(chords, str) else list(chords)
    if not figures:
        raise MusicVAEError('no chords given (write them like "C G Am F")')
    if steps < len(figures):
        raise MusicVAEError(
            f"{len(figures)} chords do not fit in {steps} steps (one a step at most)"
        )
    per_step = [figures[t * len(figures) // steps] for t in range(steps)]
    return enc.encode_steps(per_step)


# ---------------------------------------------------------------------------- inference

# The chords inference chooses from: a kind and its pitch classes above the root.
INFERENCE_KINDS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("", (0, 4, 7)),
    ("m", (0, 3, 7)),
    ("+", (0, 4, 8)),
    ("dim", (0, 3, 6)),
    ("7", (0, 4, 7, 10)),
    ("maj7", (0, 4, 7, 11)),
    ("m7", (0, 3, 7, 10)),
    ("m7b5", (0, 3, 6, 10)),
)
# Candidate 0 is N.C., then 1 + root * 8 + kind; a state is key * 97 + candidate.
_CANDIDATES = 1 + NOTES_PER_OCTAVE * len(INFERENCE_KINDS)
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MAX_INFERRED_CHORDS = 1000
# Chords per bar note_seq infers by default, per time signature.
DEFAULT_CHORDS_PER_BAR = {(2, 2): 1, (2, 4): 1, (3, 4): 1, (4, 4): 2, (6, 8): 2}


def _candidate_pitch_classes() -> list[set[int]]:
    return [set()] + [
        {(root + p) % NOTES_PER_OCTAVE for p in pcs}
        for root in range(NOTES_PER_OCTAVE)
        for _, pcs in INFERENCE_KINDS
    ]


def _candidate_figure(candidate: int) -> str:
    if candidate == 0:
        return NO_CHORD
    root, kind = divmod(candidate - 1, len(INFERENCE_KINDS))
    return PITCH_CLASS_NAMES[root] + INFERENCE_KINDS[kind][0]


@functools.lru_cache(maxsize=4)
def _chord_model(
    key_change_prob: float, chord_change_prob: float, out_of_key_prob: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chord log-probabilities per key (12, 97), state transition log-probabilities
    (1164, 1164), unit pitch-class vectors of the candidates (97, 12))."""
    candidates = _candidate_pitch_classes()
    inside = np.zeros((NOTES_PER_OCTAVE, _CANDIDATES), np.int32)
    outside = np.zeros_like(inside)
    for key in range(NOTES_PER_OCTAVE):
        scale = {(key + p) % NOTES_PER_OCTAVE for p in _MAJOR_SCALE}
        for c, pcs in enumerate(candidates):
            inside[key, c], outside[key, c] = len(pcs & scale), len(pcs - scale)
    # Each chord pitch in the key is likely, each outside it is not; normalised per key.
    per_key = (1 - out_of_key_prob) ** inside * out_of_key_prob**outside
    per_key /= per_key.sum(axis=1)[:, np.newaxis]

    states = NOTES_PER_OCTAVE * _CANDIDATES
    key_of, cand_of = np.divmod(np.arange(states), _CANDIDATES)
    to_key, to_cand = key_of[np.newaxis, :], cand_of[np.newaxis, :]
    same_key = key_of[:, np.newaxis] == to_key
    same_chord = cand_of[:, np.newaxis] == to_cand
    # A key change draws the new chord from the new key alone.
    changed_key = np.broadcast_to((key_change_prob / 11) * per_key[to_key, to_cand], same_key.shape)
    # Within a key, a chord change draws from the key, with the old chord's own share spread
    # over the other chords (note_seq's arithmetic, in its order).
    redrawn = chord_change_prob * (
        per_key[to_key, to_cand] + per_key[to_key, cand_of[:, np.newaxis]] / (_CANDIDATES - 1)
    )
    stayed = np.where(same_chord, 1 - chord_change_prob, redrawn)
    transition = np.where(same_key, (1 - key_change_prob) * stayed, changed_key)

    vectors = np.zeros((_CANDIDATES, NOTES_PER_OCTAVE))
    for c, pcs in enumerate(candidates):
        vectors[c, sorted(pcs)] = 1
    vectors[1:, :] /= np.linalg.norm(vectors[1:, :], axis=1)[:, np.newaxis]
    return np.log(per_key), np.log(transition), vectors


def frame_pitch_vectors(
    start: np.ndarray,
    end: np.ndarray,
    pitch: np.ndarray,
    seconds_per_frame: float,
    total_time: float,
) -> np.ndarray:
    """(frames, 12) unit vectors of how long each pitch class sounds in each frame of
    ``seconds_per_frame`` (``ceil(total_time / seconds_per_frame)`` frames; all-zero rows for
    frames with no notes). Notes are summed in the order given, each frame by frame."""
    frames = math.ceil(total_time / seconds_per_frame)
    bounds = seconds_per_frame * np.arange(1, frames)
    edges = bounds.tolist()
    rows: list[int] = []
    cols: list[int] = []
    amounts: list[float] = []

    def add(frame: int, pc: int, amount: float) -> None:
        rows.append(frame)
        cols.append(pc)
        amounts.append(amount)

    for s, e, p in zip(
        np.asarray(start).tolist(),
        np.asarray(end).tolist(),
        np.asarray(pitch).tolist(),
        strict=True,
    ):
        first, last = bisect.bisect_right(edges, s), bisect.bisect_left(edges, e)
        pc = int(p) % NOTES_PER_OCTAVE
        if first >= last:
            add(first, pc, e - s)
            continue
        add(first, pc, edges[first] - s)
        for f in range(first + 1, last):
            add(f, pc, edges[f] - edges[f - 1])
        add(last, pc, e - edges[last - 1])
    x = np.zeros((frames, NOTES_PER_OCTAVE))
    np.add.at(x, (np.asarray(rows, np.int64), np.asarray(cols, np.int64)), np.asarray(amounts))
    norm = np.linalg.norm(x, axis=1)
    nonzero = norm > 0
    x[nonzero, :] /= norm[nonzero, np.newaxis]
    return x


def viterbi_dense(
    frame_loglik: np.ndarray, key_loglik: np.ndarray, transition: np.ndarray
) -> list[int]:
    """The most likely candidate chord of each frame (keys are hidden), over the whole
    (1164, 1164) transition matrix at every frame, as note_seq computes it."""
    frames, states = len(frame_loglik), len(transition)
    score = -np.log(12) + key_loglik.reshape(-1) + np.tile(frame_loglik[0], NOTES_PER_OCTAVE)
    back = np.zeros((frames, states), np.int64)
    columns = np.arange(states)
    for f in range(1, frames):
        options = score[:, np.newaxis] + transition
        back[f] = options.argmax(axis=0)
        score = options[back[f], columns] + np.tile(frame_loglik[f], NOTES_PER_OCTAVE)
    return _backtrack(score, back)


def _backtrack(score: np.ndarray, back: np.ndarray) -> list[int]:
    path = [int(np.argmax(score))]
    for f in range(len(back) - 1, 0, -1):
        path.append(int(back[f, path[-1]]))
    return [state % _CANDIDATES for state in reversed(path)]


@functools.lru_cache(maxsize=4)
def _transition_blocks(
    key_change_prob: float, chord_change_prob: float, out_of_key_prob: float
) -> tuple[np.ndarray, np.ndarray]:
    """The transition matrix's two parts: into each (key, chord) from any state of another key
    (12, 97), one value whatever the state; and within each key (12, 97 to, 97 from)."""
    transition = _chord_model(key_change_prob, chord_change_prob, out_of_key_prob)[1]
    blocks = transition.reshape(NOTES_PER_OCTAVE, _CANDIDATES, NOTES_PER_OCTAVE, _CANDIDATES)
    keys = np.arange(NOTES_PER_OCTAVE)
    within = np.ascontiguousarray(blocks[keys, :, keys, :].transpose(0, 2, 1))
    # From key k + 1 (any other key would do: the value does not depend on where it comes from).
    across = np.ascontiguousarray(blocks[(keys + 1) % NOTES_PER_OCTAVE, 0, keys, :])
    return across, within


def _viterbi(
    frame_loglik: np.ndarray,
    key_loglik: np.ndarray,
    across: np.ndarray,
    within: np.ndarray,
) -> list[int]:
    """:func:`viterbi_dense`'s result, bit for bit, ties included, in a fraction of the time.

    Into a state of key k, a move from another key has one transition value A whatever the
    state it leaves, and x + A rounds monotonically in x: the best such move leaves the best
    state outside key k, or one whose score rounds to the same sum, which lies within a few
    ulps of it. Those few candidates and the 97 x 97 moves within key k are all that is summed;
    as in the dense argmax, the first state (lowest index) of equal sums wins."""
    frames = len(frame_loglik)
    states = NOTES_PER_OCTAVE * _CANDIDATES
    score = -np.log(12) + key_loglik.reshape(-1) + np.tile(frame_loglik[0], NOTES_PER_OCTAVE)
    back = np.zeros((frames, states), np.int64)
    key_of = np.arange(states) // _CANDIDATES
    keys = np.arange(NOTES_PER_OCTAVE)
    first_state = keys[:, np.newaxis] * _CANDIDATES
    span = np.abs(across).max()
    for f in range(1, frames):
        by_key = score.reshape(NOTES_PER_OCTAVE, _CANDIDATES)
        # Moves within each key: (key, to, from).
        sums = by_key[:, np.newaxis, :] + within
        pick = sums.argmax(axis=2)
        from_same = np.take_along_axis(sums, pick[:, :, np.newaxis], axis=2)[:, :, 0]
        same_state = first_state + pick
        # Moves from another key: the best score outside each key, and any within rounding of it
        # (far above the rounding of any sum here, far below real differences of scores).
        tol = 1e-9 * (1.0 + np.abs(score).max() + span)
        key_best = by_key.max(axis=1)
        top = int(np.argmax(key_best))
        runner_up = np.max(np.delete(key_best, top)) if NOTES_PER_OCTAVE > 1 else -np.inf
        outside_best = np.where(keys == top, runner_up, key_best[top])
        near = (score[np.newaxis, :] >= outside_best[:, np.newaxis] - tol) & (
            key_of[np.newaxis, :] != keys[:, np.newaxis]
        )
        candidates = np.flatnonzero(near.any(axis=0))  # ascending: the first of equals wins
        sums = score[candidates][:, np.newaxis, np.newaxis] + across[np.newaxis, :, :]
        sums = np.where(near[:, candidates].T[:, :, np.newaxis], sums, -np.inf)
        pick = sums.argmax(axis=0)
        from_other = np.take_along_axis(sums, pick[np.newaxis], axis=0)[0]
        other_state = candidates[pick]
        state = np.where(
            from_same > from_other,
            same_state,
            np.where(from_same < from_other, other_state, np.minimum(same_state, other_state)),
        )
        back[f] = state.reshape(-1)
        best = np.maximum(from_same, from_other).reshape(-1)
        score = best + np.tile(frame_loglik[f], NOTES_PER_OCTAVE)
    return _backtrack(score, back)


class ChordChange(NamedTuple):
    """An inferred chord change: note_seq's CHORD_SYMBOL text annotation (time in seconds,
    its quantized step, the figure)."""

    time: float
    step: int
    text: str


def infer_chords(
    start: np.ndarray,
    end: np.ndarray,
    pitch: np.ndarray,
    *,
    total_time: float,
    qpm: float,
    steps_per_quarter: int = 4,
    time_signature: tuple[int, int] = (4, 4),
    chords_per_bar: int | None = None,
    key_change_prob: float = 0.001,
    chord_change_prob: float = 0.5,
    chord_pitch_out_of_key_prob: float = 0.01,
    chord_note_concentration: float = 100.0,
) -> list[ChordChange]:
    """note_seq's ``infer_chords_for_sequence`` on a quantized sequence of one tempo and one
    time signature: the chord changes it annotates (the first frame's chord, then each change).

    ``start``, ``end`` and ``pitch`` are the pitched notes (no drums, no unpitched programs;
    times in seconds, unquantized, as note_seq reads them); ``total_time`` the sequence's
    (which sets the number of frames). Raises ``ChordInferenceError`` where note_seq does:
    no default chords per bar for the meter, a non-integer number of steps per chord, an empty
    sequence, more than 1000 chords.
    """
    if chords_per_bar is None:
        if time_signature not in DEFAULT_CHORDS_PER_BAR:
            raise ChordInferenceError(
                f"no default chords per bar for time signature {time_signature[0]}/{time_signature[1]}"
            )
        chords_per_bar = DEFAULT_CHORDS_PER_BAR[time_signature]
    numerator, denominator = time_signature
    steps_per_bar = steps_per_quarter * (4.0 / denominator * numerator)
    steps_per_chord_float = steps_per_bar / chords_per_bar
    if steps_per_chord_float != round(steps_per_chord_float):
        raise ChordInferenceError(
            f"non-integer number of steps per chord: {steps_per_chord_float:g}"
        )
    steps_per_chord = int(steps_per_chord_float)
    seconds_per_chord = steps_per_chord / (steps_per_quarter * qpm / 60.0)
    frames = math.ceil(total_time / seconds_per_chord)
    if frames == 0:
        raise ChordInferenceError("the sequence is empty: no chords to infer")
    if frames > MAX_INFERRED_CHORDS:
        raise ChordInferenceError(
            f"the sequence is too long for chord inference: {frames} chords "
            f"(note_seq infers at most {MAX_INFERRED_CHORDS})"
        )
    probs = (key_change_prob, chord_change_prob, chord_pitch_out_of_key_prob)
    key_loglik, _, vectors = _chord_model(*probs)
    x = frame_pitch_vectors(start, end, pitch, seconds_per_chord, total_time)
    frame_loglik = chord_note_concentration * np.dot(x, vectors.T)
    path = _viterbi(frame_loglik, key_loglik, *_transition_blocks(*probs))
    changes: list[ChordChange] = []
    for frame, candidate in enumerate(path):
        figure = _candidate_figure(candidate)
        if not changes or changes[-1].text != figure:
            changes.append(ChordChange(frame * seconds_per_chord, frame * steps_per_chord, figure))
    return changes


def pitched(ns: NoteSequence) -> np.ndarray:
    """Mask of the notes chord inference reads: not drums, not on an unpitched program."""
    return ~ns.is_drum & ~np.isin(ns.program, list(UNPITCHED_PROGRAMS))


def infer_chords_for_sequence(
    ns: NoteSequence, steps_per_quarter: int = 4, **kwargs: object
) -> list[ChordChange]:
    """:func:`infer_chords` on a whole sequence, at its first tempo and time signature (4/4
    at 120 qpm where it has none). Converters infer per piece between tempo and meter changes
    (``MelodyConverter.piece_chords``); this is for a sequence of one tempo and meter."""
    keep = pitched(ns)
    signature = min(ns.time_signatures, key=lambda s: s.time) if ns.time_signatures else None
    return infer_chords(
        ns.start[keep],
        ns.end[keep],
        ns.pitch[keep],
        total_time=ns.total_time,
        qpm=ns.qpm,
        steps_per_quarter=steps_per_quarter,
        time_signature=(signature.numerator, signature.denominator) if signature else (4, 4),
        **kwargs,  # type: ignore[arg-type]
    )


def chords_per_step(changes: Iterable[tuple[int, str]], total_steps: int) -> list[str]:
    """note_seq's ``ChordProgression`` of a quantized sequence: the chord active at each of its
    ``total_steps`` steps, from ``(step, figure)`` changes (N.C. before the first). A change at
    or after ``total_steps`` is ignored; two different chords on one step raise
    ``CoincidentChordsError``."""
    out = [NO_CHORD] * total_steps
    ordered = sorted(changes, key=lambda c: c[0])
    kept: list[tuple[int, str]] = []
    for step, figure in ordered:
        if step >= total_steps:
            break
        if kept and kept[-1][0] == step:
            if kept[-1][1] != figure:
                raise CoincidentChordsError(
                    f"chords {kept[-1][1]} and {figure} start on step {step}"
                )
            continue
        kept.append((max(step, 0), figure))
    if not kept:  # no change inside the steps (none at all, or all at or past the end)
        return out
    for (step, figure), (next_step, _) in zip(kept, [*kept[1:], (total_steps, "")], strict=True):
        out[step:next_step] = [figure] * (next_step - step)
    return out


def chords_at(progression: Sequence[str], steps: Iterable[int]) -> list[str]:
    """note_seq's ``event_list_chords`` for one window: the chord at each step, the last chord
    of the progression past its end (N.C. for an empty one)."""
    pad = progression[-1] if progression else NO_CHORD
    n = len(progression)
    return [progression[s] if s < n else pad for s in steps]


# ---------------------------------------------------------------------------- annotations


class TextAnnotation(NamedTuple):
    """A note_seq text annotation: a chord symbol at ``time`` seconds, by default."""

    time: float
    text: str
    annotation_type: int = CHORD_SYMBOL


@dataclass
class ChordSequence(NoteSequence):
    """A NoteSequence with chord symbols, as note_seq keeps them: text annotations. What a chord
    converter's ``from_tensors`` returns when it is given controls."""

    text_annotations: list[TextAnnotation] = field(default_factory=list)


def chord_annotations(ns: object) -> list[TextAnnotation]:
    """The chord symbols of a sequence: its ``text_annotations`` of type CHORD_SYMBOL (any
    object with ``time`` and ``text``; none for a sequence that keeps no annotations)."""
    return [
        TextAnnotation(float(a.time), str(a.text))
        for a in getattr(ns, "text_annotations", None) or ()
        if getattr(a, "annotation_type", CHORD_SYMBOL) == CHORD_SYMBOL
    ]


def split_annotations(
    annotations: Sequence[TextAnnotation], splits: Sequence[float]
) -> list[list[TextAnnotation]]:
    """note_seq's ``_extract_subsequences`` for chord symbols: the annotations of each piece
    between consecutive ``splits``, each piece starting with the chord in effect at its start
    (at time 0) and holding those inside it shifted to start at 0. A chord exactly on a split
    goes to the later piece; of several at or before the first split only the last is kept."""
    pieces: list[list[TextAnnotation]] = [[] for _ in splits[:-1]]
    n = len(pieces)
    previous: TextAnnotation | None = None
    index = -1
    for a in sorted(annotations, key=lambda a: a.time):
        if a.time <= splits[0]:
            previous = a
            continue
        while index < n and a.time > splits[index + 1]:
            index += 1
            if index == n:
                break
            if previous is not None:
                pieces[index].append(previous._replace(time=0.0))
        if index == n:
            break
        if a.time < splits[index + 1]:
            pieces[index].append(a._replace(time=a.time - splits[index]))
        previous = a
    while index < n - 1:
        index += 1
        if previous is not None:
            pieces[index].append(previous._replace(time=0.0))
    return pieces


def annotate(ns: NoteSequence, chords: Sequence[str], seconds_per_step: float) -> ChordSequence:
    """``ns`` with one chord annotation wherever the chord of a step changes (note_seq's
    ``add_chords_to_sequence`` of one chord per step)."""
    annotations: list[TextAnnotation] = []
    for step, figure in enumerate(chords):
        if not annotations or annotations[-1].text != figure:
            annotations.append(TextAnnotation(step * seconds_per_step, figure))
    values = {f: getattr(ns, f) for f in NoteSequence.__dataclass_fields__}
    return ChordSequence(**values, text_annotations=annotations)


# ---------------------------------------------------------------------------- CPython's set order

_MASK64 = (1 << 64) - 1
_SIP_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)
_XX_PRIME_1, _XX_PRIME_2, _XX_PRIME_5 = (
    11400714785074694791,
    14029467366897019727,
    2870177450012600261,
)
_LINEAR_PROBES, _PERTURB_SHIFT, _SET_MIN_SIZE = 9, 5, 8


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & _MASK64


def _siphash13(data: bytes) -> int:
    """SipHash-1-3 with an all-zero key: CPython 3.11's string hash under PYTHONHASHSEED=0."""
    v0, v1, v2, v3 = _SIP_INIT

    def sip_round() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _MASK64
        v2 = (v2 + v3) & _MASK64
        v1 = _rotl(v1, 13) ^ v0
        v3 = _rotl(v3, 16) ^ v2
        v0 = _rotl(v0, 32)
        v2 = (v2 + v1) & _MASK64
        v0 = (v0 + v3) & _MASK64
        v1 = _rotl(v1, 17) ^ v2
        v3 = _rotl(v3, 21) ^ v0
        v2 = _rotl(v2, 32)

    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        word = int.from_bytes(data[i : i + 8], "little")
        v3 ^= word
        sip_round()
        v0 ^= word
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= last
    sip_round()
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        sip_round()
    return (v0 ^ v1) ^ (v2 ^ v3)


def _signed(h: int) -> int:
    h &= _MASK64
    h = h - (1 << 64) if h >= 1 << 63 else h
    return -2 if h == -1 else h


@functools.lru_cache(maxsize=4096)
def _str_hash(text: str) -> int:
    if not text:
        return 0
    widest = max(map(ord, text))
    codec = "latin-1" if widest < 256 else "utf-16-le" if widest < 65536 else "utf-32-le"
    return _signed(_siphash13(text.encode(codec)))


def seeded_hash(value: Hashable) -> int:
    """``hash(value)`` as CPython 3.11 computes it under PYTHONHASHSEED=0, for ints, strings
    and (nested) tuples of them."""
    if isinstance(value, str):
        return _str_hash(value)
    if isinstance(value, tuple):
        acc = _XX_PRIME_5
        for item in value:
            acc = (acc + (seeded_hash(item) & _MASK64) * _XX_PRIME_2) & _MASK64
            acc = (_rotl(acc, 31) * _XX_PRIME_1) & _MASK64
        acc = (acc + (len(value) ^ (_XX_PRIME_5 ^ 3527539))) & _MASK64
        return 1546275796 if acc == _MASK64 else _signed(acc)
    if isinstance(value, int | np.integer):
        return hash(int(value))  # ints hash to themselves whatever the seed
    raise TypeError(f"no seed-0 hash for {type(value).__name__}")


def magenta_set_order(
    items: Sequence[Hashable], hash_fn: Callable[[Hashable], int] = seeded_hash
) -> list[int]:
    """Indices of the distinct ``items`` in the order ``list(set(items))`` gives them in
    CPython 3.11 (open addressing, 9 linear probes then perturbation, resize to 4x the used
    slots at 60% fill) with ``hash_fn`` as the hash; equal items keep the first."""
    hashes = [hash_fn(x) for x in items]
    table: list[int | None] = [None] * _SET_MIN_SIZE
    fill = 0

    def slot_of(table: list[int | None], h: int, item: Hashable | None) -> tuple[int, bool]:
        """(slot, found): the slot holding an equal item, or the free slot it would take."""
        mask = len(table) - 1
        uh = h & _MASK64
        i, perturb = uh & mask, uh
        while True:
            probes = _LINEAR_PROBES if i + _LINEAR_PROBES <= mask else 0
            for j in range(i, i + probes + 1):
                held = table[j]
                if held is None:
                    return j, False
                if item is not None and hashes[held] == h and items[held] == item:
                    return j, True
            perturb >>= _PERTURB_SHIFT
            i = (i * 5 + 1 + perturb) & mask

    for index, (item, h) in enumerate(zip(items, hashes, strict=True)):
        slot, found = slot_of(table, h, item)
        if found:
            continue
        table[slot] = index
        fill += 1
        mask = len(table) - 1
        if fill * 5 >= mask * 3:
            size = _SET_MIN_SIZE
            while size <= fill * (2 if fill > 50000 else 4):
                size <<= 1
            old, table = table, [None] * size
            for held in old:
                if held is not None:
                    table[slot_of(table, hashes[held], None)[0]] = held
    return [i for i in table if i is not None]
