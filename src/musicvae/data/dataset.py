"""The dataset file: a Parquet table of NoteSequences, one row per MIDI file.

Columns:

- ``id`` (Magenta style ``/id/midi/<collection>/<sha1 of path>``) and ``filename`` (the path
  relative to the converted folder, with ``/`` separators);
- notes as list columns, one list per row: ``pitch``, ``velocity``, ``start``, ``end`` (seconds,
  float64), ``is_drum``, ``program``;
- ``tempo_time``/``tempo_qpm``, ``ts_time``/``ts_numerator``/``ts_denominator`` (list columns) and
  ``ticks_per_quarter``;
- the Groove MIDI Dataset's ``info.csv`` fields ``drummer``, ``session``, ``style``, ``bpm``,
  ``beat_type``, ``time_signature`` (nullable strings), ``split`` (always set: train, validation
  or test), and ``meta``, a string map holding any other metadata key.

Files are written atomically and byte for byte the same for the same sequences (rows sorted by
filename then id; no timestamps). ``read_dataset`` also reads a NoteSequence TFRecord, the format
Magenta's ``convert_dir_to_note_sequences`` writes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.errors import MusicVAEError
from musicvae.io import atomic_write_bytes

PARQUET_MAGIC = b"PAR1"
FORMAT_KEY = b"musicvae.format"
FORMAT_VALUE = b"notesequence-dataset/1"
SPLITS = ("train", "validation", "test")
# info.csv fields kept as their own columns (string values, as in NoteSequence.meta).
META_COLUMNS = ("drummer", "session", "style", "bpm", "beat_type", "time_signature", "split")
DEFAULT_SPLIT = "train"

_NOTE_COLUMNS = {
    "pitch": pa.int16(),
    "velocity": pa.int16(),
    "start": pa.float64(),
    "end": pa.float64(),
    "is_drum": pa.bool_(),
    "program": pa.int16(),
}
_EVENT_COLUMNS = {
    "tempo_time": pa.float64(),
    "tempo_qpm": pa.float64(),
    "ts_time": pa.float64(),
    "ts_numerator": pa.int32(),
    "ts_denominator": pa.int32(),
}

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("filename", pa.string(), nullable=False),
        *(pa.field(k, pa.list_(t), nullable=False) for k, t in _NOTE_COLUMNS.items()),
        *(pa.field(k, pa.list_(t), nullable=False) for k, t in _EVENT_COLUMNS.items()),
        pa.field("ticks_per_quarter", pa.int32(), nullable=False),
        *(pa.field(k, pa.string()) for k in META_COLUMNS),
        pa.field("meta", pa.map_(pa.string(), pa.string()), nullable=False),
    ],
    metadata={FORMAT_KEY: FORMAT_VALUE},
)


def _list_column(parts: list[np.ndarray], dtype: pa.DataType) -> pa.ListArray:
    """One list per row from per-row numpy arrays, built from flat values plus offsets."""
    lengths = np.array([len(p) for p in parts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    np_type = dtype.to_pandas_dtype()
    values = np.concatenate(parts).astype(np_type) if parts else np.zeros(0, np_type)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=dtype))


def sequences_to_table(sequences: Iterable[NoteSequence]) -> pa.Table:
    """The dataset table for ``sequences``, rows sorted by (filename, id)."""
    rows = sorted(sequences, key=lambda ns: (ns.filename, ns.id))
    cols: dict[str, pa.Array] = {
        "id": pa.array([ns.id for ns in rows], pa.string()),
        "filename": pa.array([ns.filename for ns in rows], pa.string()),
    }
    for name, dtype in _NOTE_COLUMNS.items():
        cols[name] = _list_column([getattr(ns, name) for ns in rows], dtype)
    tempos = [sorted(ns.tempos, key=lambda t: t.time) for ns in rows]
    sigs = [sorted(ns.time_signatures, key=lambda t: t.time) for ns in rows]
    events: dict[str, list[list[float]]] = {
        "tempo_time": [[t.time for t in ts] for ts in tempos],
        "tempo_qpm": [[t.qpm for t in ts] for ts in tempos],
        "ts_time": [[s.time for s in ss] for ss in sigs],
        "ts_numerator": [[s.numerator for s in ss] for ss in sigs],
        "ts_denominator": [[s.denominator for s in ss] for ss in sigs],
    }
    for name, dtype in _EVENT_COLUMNS.items():
        parts = [np.asarray(v, dtype.to_pandas_dtype()) for v in events[name]]
        cols[name] = _list_column(parts, dtype)
    cols["ticks_per_quarter"] = pa.array([ns.ticks_per_quarter for ns in rows], pa.int32())
    for key in META_COLUMNS:
        default = DEFAULT_SPLIT if key == "split" else None
        cols[key] = pa.array([_meta_str(ns, key, default) for ns in rows], pa.string())
    extra = [
        sorted((k, str(v)) for k, v in ns.meta.items() if k not in META_COLUMNS) for ns in rows
    ]
    cols["meta"] = pa.array(extra, pa.map_(pa.string(), pa.string()))
    return pa.Table.from_arrays([cols[f.name] for f in SCHEMA], schema=SCHEMA)


def _meta_str(ns: NoteSequence, key: str, default: str | None) -> str | None:
    value = ns.meta.get(key)
    return default if value is None or value == "" else str(value)


def write_dataset(sequences: Iterable[NoteSequence], path: str | os.PathLike) -> Path:
    """Write ``sequences`` as a dataset file, atomically; equal inputs give identical bytes.

    A sequence without ``meta["split"]`` is written as ``"train"``.
    """
    path = Path(path)
    table = sequences_to_table(sequences)
    buf = io.BytesIO()
    # Fixed options, so the bytes depend on the rows and the pyarrow version only.
    pq.write_table(
        table,
        buf,
        compression="zstd",
        compression_level=3,
        use_dictionary=list(META_COLUMNS),
        write_statistics=False,
        row_group_size=max(1, table.num_rows),
    )
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        raise MusicVAEError(f"{path}: cannot write dataset ({e.strerror or e})") from None
    return path


def read_dataset(path: str | os.PathLike, split: str | None = None) -> list[NoteSequence]:
    """Read a dataset file (or a NoteSequence TFRecord); keep only ``split`` when given.

    Metadata lands in ``ns.meta`` (strings), the split in ``ns.meta["split"]``. Raises
    ``MusicVAEError`` naming the file when it is missing, unknown or corrupt.
    """
    path = Path(path)
    if split is not None and split not in SPLITS:
        raise MusicVAEError(f"{path}: unknown split {split!r} (choose from {', '.join(SPLITS)})")
    try:
        # A FIFO would block the open forever; a device is no dataset either.
        if path.exists() and not path.is_file() and not path.is_dir():
            raise MusicVAEError(f"{path}: not a dataset file (a device, FIFO or socket)")
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise MusicVAEError(f"{path}: cannot read dataset ({e.strerror or e})") from None
    if head == PARQUET_MAGIC:
        return _read_parquet(path, split)
    from musicvae.data import tfrecord  # lazy: protobuf is only needed for TFRecords

    if tfrecord.is_tfrecord(path):
        return _read_tfrecord(path, split)
    raise MusicVAEError(f"{path}: not a dataset file (neither Parquet nor a NoteSequence TFRecord)")


def _read_tfrecord(path: Path, split: str | None) -> list[NoteSequence]:
    from musicvae.data import tfrecord

    try:
        sequences = list(tfrecord.read_note_sequences(path))
    except MusicVAEError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged record surfaces as a protobuf or struct error
        reason = str(e).strip() or type(e).__name__  # MemoryError has no message
        raise MusicVAEError(f"{path}: corrupt TFRecord ({reason})") from None
    for ns in sequences:
        ns.meta.setdefault("split", DEFAULT_SPLIT)
    return [ns for ns in sequences if split is None or ns.meta["split"] == split]


def _read_parquet(path: Path, split: str | None) -> list[NoteSequence]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MusicVAEError(f"{path}: corrupt dataset file ({reason})") from None
    missing = [f.name for f in SCHEMA if f.name not in table.column_names]
    if missing:
        raise MusicVAEError(
            f"{path}: not a musicvae dataset (missing columns: {', '.join(missing)})"
        )
    if split is not None:
        mask = np.array([s == split for s in table.column("split").to_pylist()], bool)
        table = table.filter(pa.array(mask))
    try:
        return table_to_sequences(table)
    except (pa.ArrowException, ValueError, TypeError) as e:
        raise MusicVAEError(f"{path}: malformed dataset rows ({e})") from None


def _lists(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (offsets, writable flat values)."""
    col = table.column(name).combine_chunks()
    if not pa.types.is_list(col.type):  # a table written by something else
        raise ValueError(f"column {name!r} holds {col.type}, not lists")
    if isinstance(col, pa.ChunkedArray):  # an empty table keeps zero chunks
        col = pa.array([], col.type)
    offsets = col.offsets.to_numpy()
    values = np.array(col.values.to_numpy(zero_copy_only=False))
    return offsets, values


def table_to_sequences(table: pa.Table) -> list[NoteSequence]:
    """NoteSequences from dataset rows (array slices share one writable buffer per column)."""
    lists = {name: _lists(table, name) for name in (*_NOTE_COLUMNS, *_EVENT_COLUMNS)}
    ids = table.column("id").to_pylist()
    filenames = table.column("filename").to_pylist()
    tpqs = table.column("ticks_per_quarter").to_pylist()
    metas = {key: table.column(key).to_pylist() for key in META_COLUMNS}
    extras = table.column("meta").to_pylist()
    out = []
    for i in range(table.num_rows):

        def row(name: str, i: int = i) -> np.ndarray:
            offsets, values = lists[name]
            return values[offsets[i] : offsets[i + 1]]

        meta = {k: v for k, v in (extras[i] or [])}
        meta.update({k: metas[k][i] for k in META_COLUMNS if metas[k][i] is not None})
        out.append(
            NoteSequence(
                pitch=row("pitch"),
                velocity=row("velocity"),
                start=row("start"),
                end=row("end"),
                is_drum=row("is_drum"),
                program=row("program"),
                tempos=[
                    Tempo(float(t), float(q))
                    for t, q in zip(row("tempo_time"), row("tempo_qpm"), strict=True)
                ],
                time_signatures=[
                    TimeSignature(float(t), int(n), int(d))
                    for t, n, d in zip(
                        row("ts_time"), row("ts_numerator"), row("ts_denominator"), strict=True
                    )
                ],
                ticks_per_quarter=int(tpqs[i]),
                id=ids[i],
                filename=filenames[i],
                meta=meta,
            )
        )
    return out
