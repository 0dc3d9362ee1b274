"""NoteSequence: the in-memory form of one performance, shared by every stage.

A light column store in the spirit of Magenta's ``NoteSequence`` proto: notes as parallel numpy
arrays (times in seconds, float64), plus tempo and time-signature events. It is what MIDI files,
Parquet rows and TFRecord protos are read into, and what converters and generators produce.
``len(ns)`` is its number of notes and iterating over it yields :class:`Note` tuples; as in
note_seq, ``ns.notes`` is a sequence of those notes (``len(ns.notes)``, ``ns.notes[0].pitch``,
``for n in ns.notes``), with note_seq's ``start_time``, ``end_time`` and ``instrument`` too;
``to_note_seq()`` / ``NoteSequence.from_note_seq(msg)`` convert to and from Magenta's
``note_seq`` protobuf message (what TFRecords of NoteSequences hold).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, overload

import numpy as np

DEFAULT_QPM = 120.0


@dataclass(frozen=True)
class Tempo:
    time: float
    qpm: float


@dataclass(frozen=True)
class TimeSignature:
    time: float
    numerator: int
    denominator: int


class Note(NamedTuple):
    """One note as iteration over a :class:`NoteSequence` (or its ``notes``) yields it, times in
    seconds; ``start_time``, ``end_time`` and ``instrument`` read as note_seq's fields do."""

    pitch: int
    velocity: int
    start: float
    end: float
    is_drum: bool
    program: int

    @property
    def start_time(self) -> float:
        return self.start

    @property
    def end_time(self) -> float:
        return self.end

    @property
    def instrument(self) -> int:
        """9 for a drum, 0 otherwise: the instrument ``to_note_seq()`` writes (one track each)."""
        return 9 if self.is_drum else 0


class Notes(Sequence[Note]):
    """``NoteSequence.notes``: a read-only view of the notes as note_seq users read them.

    ``len(ns.notes)``, ``ns.notes[i]``, slices (lists of :class:`Note`) and iteration work as on
    note_seq's repeated field; it compares equal to any sequence of equal notes. Calling it, the
    old ``ns.notes()``, raises a ``TypeError`` that says what to write.
    """

    __slots__ = ("_ns",)

    def __init__(self, ns: NoteSequence) -> None:
        self._ns = ns

    def __len__(self) -> int:
        return len(self._ns)

    @overload
    def __getitem__(self, index: int) -> Note: ...
    @overload
    def __getitem__(self, index: slice) -> list[Note]: ...
    def __getitem__(self, index: int | slice) -> Note | list[Note]:
        if isinstance(index, slice):
            return [self._ns.note(i) for i in range(*index.indices(len(self)))]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"note index {index} out of range for {n} notes")
        return self._ns.note(index % n)

    def __iter__(self) -> Iterator[Note]:
        return iter(self._ns)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # a view of mutable arrays

    def __repr__(self) -> str:
        return f"Notes({list(self)!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "NoteSequence.notes is a sequence, as in note_seq, not a method: write ns.notes "
            "(len(ns.notes), ns.notes[0].pitch, for n in ns.notes), not ns.notes()"
        )


@dataclass
class NoteSequence:
    """Notes as parallel arrays, sorted by (start, pitch) when built through ``from_notes``."""

    pitch: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    end: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    is_drum: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    program: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    tempos: list[Tempo] = field(default_factory=list)
    time_signatures: list[TimeSignature] = field(default_factory=list)
    ticks_per_quarter: int = 220
    id: str = ""
    filename: str = ""
    # Dataset metadata (split, drummer, style, bpm, ...), all as strings.
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pitch = np.asarray(self.pitch, np.int16)
        self.velocity = np.asarray(self.velocity, np.int16)
        self.start = np.asarray(self.start, np.float64)
        self.end = np.asarray(self.end, np.float64)
        n = len(self.pitch)
        self.is_drum = (
            np.asarray(self.is_drum, bool)
            if len(np.atleast_1d(self.is_drum)) == n
            else np.full(n, bool(self.is_drum))
        )
        self.program = (
            np.asarray(self.program, np.int16)
            if np.ndim(self.program)
            else np.full(n, int(self.program), np.int16)
        )
        lens = {
            len(self.velocity),
            len(self.start),
            len(self.end),
            len(self.is_drum),
            len(self.program),
        }
        if lens != {n}:
            raise ValueError(f"note arrays differ in length: {sorted(lens | {n})}")

    @classmethod
    def from_notes(
        cls,
        notes: list[tuple[int, int, float, float]],
        *,
        qpm: float = DEFAULT_QPM,
        time_signature: tuple[int, int] = (4, 4),
        is_drum: bool = True,
        **kwargs: Any,
    ) -> NoteSequence:
        """Build a drum sequence from (pitch, velocity, start, end) tuples, sorted by start."""
        arr = np.array(sorted(notes, key=lambda n: (n[2], n[0])), dtype=np.float64).reshape(-1, 4)
        return cls(
            pitch=arr[:, 0].astype(np.int16),
            velocity=arr[:, 1].astype(np.int16),
            start=arr[:, 2],
            end=arr[:, 3],
            is_drum=np.full(len(arr), is_drum),
            program=np.zeros(len(arr), np.int16),
            tempos=[Tempo(0.0, float(qpm))],
            time_signatures=[TimeSignature(0.0, *time_signature)],
            **kwargs,
        )

    def __len__(self) -> int:
        return len(self.pitch)

    def __iter__(self) -> Iterator[Note]:
        for i in range(len(self.pitch)):
            yield self.note(i)

    def note(self, i: int) -> Note:
        """The note stored at index ``i`` (0 <= i < len)."""
        return Note(
            int(self.pitch[i]),
            int(self.velocity[i]),
            float(self.start[i]),
            float(self.end[i]),
            bool(self.is_drum[i]),
            int(self.program[i]),
        )

    def to_note_seq(self) -> Any:
        """This sequence as a ``tensorflow.magenta.NoteSequence`` protobuf message (our own
        descriptor of Magenta's schema: ``SerializeToString()`` gives bytes ``note_seq``
        parses)."""
        from musicvae.data.tfrecord import sequence_to_proto

        return sequence_to_proto(self)

    @classmethod
    def from_note_seq(cls, message: Any) -> NoteSequence:
        """A sequence from a NoteSequence message: ``note_seq``'s own, ours, or its bytes."""
        from musicvae.data.notesequence_proto import note_sequence_class
        from musicvae.data.tfrecord import proto_to_sequence

        if isinstance(message, bytes | bytearray | memoryview):
            message = note_sequence_class().FromString(bytes(message))
        return proto_to_sequence(message)

    @property
    def total_time(self) -> float:
        return float(self.end.max()) if len(self) else 0.0

    @property
    def qpm(self) -> float:
        """The first tempo, or 120 when the sequence has none (MIDI's default)."""
        return min(self.tempos, key=lambda t: t.time).qpm if self.tempos else DEFAULT_QPM

    @property
    def notes(self) -> Notes:
        """The notes in stored order, as note_seq's ``NoteSequence.notes`` reads: ``len``,
        indexing and iteration give :class:`Note` records (``n[:4]`` is pitch, velocity, start,
        end)."""
        return Notes(self)

    def select(self, mask: np.ndarray) -> NoteSequence:
        """A copy holding only the notes where ``mask`` is true."""
        return NoteSequence(
            pitch=self.pitch[mask],
            velocity=self.velocity[mask],
            start=self.start[mask],
            end=self.end[mask],
            is_drum=self.is_drum[mask],
            program=self.program[mask],
            tempos=list(self.tempos),
            time_signatures=list(self.time_signatures),
            ticks_per_quarter=self.ticks_per_quarter,
            id=self.id,
            filename=self.filename,
            meta=dict(self.meta),
        )
