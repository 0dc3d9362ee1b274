"""TFRecord files of Magenta ``NoteSequence`` protos, read and written without TensorFlow.

A TFRecord file is a plain sequence of records, each laid out as::

    uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

where ``masked_crc32c`` is TF's rotated-and-offset CRC-32C (so a CRC stored inside CRC'd data does
not checksum to a fixed point). Both checksums are verified on reading.

Magenta's ``convert_dir_to_note_sequences`` writes one serialized ``NoteSequence`` per record; we map
those onto :class:`musicvae.data.sequence.NoteSequence` (notes in file order, tempos, time
signatures, ticks per quarter, id, filename) and keep ``collection_name`` in ``meta``. The proto's
per-note ``instrument`` has no column here: we write 9 for drum notes and 0 otherwise.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import crc32c
import numpy as np

from musicvae.data.notesequence_proto import note_sequence_class
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.errors import MusicVAEError

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked crc of the 8 length bytes
_FOOTER = struct.Struct("<I")  # masked crc of the data


def masked_crc32c(data: bytes) -> int:
    """TF's masked CRC-32C (rotate right by 15 bits, add a constant), as stored in TFRecords."""
    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def iter_records(path: str | os.PathLike) -> Iterator[bytes]:
    """Yield each record's data; raise ``MusicVAEError`` (file, record index) on corruption."""
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise MusicVAEError(f"{path}: cannot read ({e.strerror or e})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        index = 0
        while True:
            header = f.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise MusicVAEError(f"{path}: record {index} is truncated (incomplete header)")
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise MusicVAEError(f"{path}: record {index} has a length CRC mismatch")
            if length > size - f.tell():  # checked first: reading it would allocate it all
                raise MusicVAEError(
                    f"{path}: record {index} is truncated (declares {length:,} bytes, the file "
                    f"has {size - f.tell():,} left)"
                )
            data = f.read(length)
            footer = f.read(_FOOTER.size)
            if len(data) < length or len(footer) < _FOOTER.size:
                raise MusicVAEError(f"{path}: record {index} is truncated")
            if masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
                raise MusicVAEError(f"{path}: record {index} has a data CRC mismatch")
            yield data
            index += 1


def is_tfrecord(path: str | os.PathLike) -> bool:
    """Cheap sniff: the file starts with a record header whose length CRC checks out."""
    try:
        with Path(path).open("rb") as f:
            header = f.read(_HEADER.size)
    except OSError:
        return False
    if len(header) < _HEADER.size:
        return False
    return masked_crc32c(header[:8]) == _HEADER.unpack(header)[1]


def proto_to_sequence(msg: Any) -> NoteSequence:
    """Convert a ``magenta.NoteSequence`` message to our column-store ``NoteSequence``."""
    notes = msg.notes
    meta = {"collection_name": msg.collection_name} if msg.collection_name else {}
    return NoteSequence(
        pitch=np.fromiter((n.pitch for n in notes), np.int16, len(notes)),
        velocity=np.fromiter((n.velocity for n in notes), np.int16, len(notes)),
        start=np.fromiter((n.start_time for n in notes), np.float64, len(notes)),
        end=np.fromiter((n.end_time for n in notes), np.float64, len(notes)),
        is_drum=np.fromiter((n.is_drum for n in notes), bool, len(notes)),
        program=np.fromiter((n.program for n in notes), np.int16, len(notes)),
        tempos=[Tempo(t.time, t.qpm) for t in msg.tempos],
        time_signatures=[
            TimeSignature(t.time, t.numerator, t.denominator) for t in msg.time_signatures
        ],
        # proto3 leaves 0 for "unset"; MIDI's customary default is 220 (as in note_seq).
        ticks_per_quarter=msg.ticks_per_quarter or 220,
        id=msg.id,
        filename=msg.filename,
        meta=meta,
    )


def sequence_to_proto(ns: NoteSequence) -> Any:
    """Convert our ``NoteSequence`` to a ``magenta.NoteSequence`` message."""
    msg = note_sequence_class()(
        id=ns.id,
        filename=ns.filename,
        collection_name=ns.meta.get("collection_name", ""),
        ticks_per_quarter=ns.ticks_per_quarter,
        total_time=ns.total_time,
    )
    for t in ns.tempos:
        msg.tempos.add(time=t.time, qpm=t.qpm)
    for ts in ns.time_signatures:
        msg.time_signatures.add(time=ts.time, numerator=ts.numerator, denominator=ts.denominator)
    for p, v, s, e, d, prog in zip(
        ns.pitch, ns.velocity, ns.start, ns.end, ns.is_drum, ns.program, strict=True
    ):
        msg.notes.add(
            pitch=int(p),
            velocity=int(v),
            start_time=float(s),
            end_time=float(e),
            is_drum=bool(d),
            program=int(prog),
            instrument=9 if d else 0,
        )
    return msg


def read_note_sequences(path: str | os.PathLike) -> Iterator[NoteSequence]:
    """Yield every record of a TFRecord of serialized ``NoteSequence`` protos, in file order."""
    cls = note_sequence_class()
    for index, data in enumerate(iter_records(path)):
        try:
            msg = cls.FromString(data)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError (or upb's errors) carry no file context
            raise MusicVAEError(f"{path}: record {index} is not a NoteSequence ({e})") from None
        yield proto_to_sequence(msg)


def write_note_sequences(sequences: Iterable[NoteSequence], path: str | os.PathLike) -> None:
    """Write a TFRecord of ``NoteSequence`` protos atomically (see :mod:`musicvae.io`)."""
    from musicvae.io import atomic_writer

    with atomic_writer(path) as f:
        for ns in sequences:
            data = sequence_to_proto(ns).SerializeToString()
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc32c(length)))
            f.write(data + _FOOTER.pack(masked_crc32c(data)))
