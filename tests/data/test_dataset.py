"""The Parquet dataset file: exact round trips, deterministic bytes, splits, bad files, TFRecords."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicvae.data.dataset import read_dataset, write_dataset
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.data.tfrecord import write_note_sequences
from musicvae.errors import MusicVAEError

GMD_META = {
    "drummer": "drummer1",
    "session": "drummer1/eval_session",
    "style": "funk/groove1",
    "bpm": "138",
    "beat_type": "beat",
    "time_signature": "4-4",
    "split": "test",
}


def _sequences() -> list[NoteSequence]:
    a = NoteSequence(
        pitch=[36, 38, 60],
        velocity=[100, 1, 127],
        # Values that float32 could not hold, to prove float64 survives.
        start=[0.1234567890123, 1.0 / 3.0, 2.5],
        end=[0.2234567890123, 0.5, 3.75],
        is_drum=[True, True, False],
        program=[0, 0, 33],
        tempos=[Tempo(0.0, 78.00007800007802), Tempo(4.5, 140.0)],
        time_signatures=[TimeSignature(0.0, 4, 4), TimeSignature(6.0, 7, 8)],
        ticks_per_quarter=480,
        id="/id/midi/groove/aaa",
        filename="drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid",
        meta=dict(GMD_META, collection_name="groove"),
    )
    b = NoteSequence(
        ticks_per_quarter=96,
        id="/id/midi/groove/bbb",
        filename="a/empty.mid",
        meta={"split": "validation"},
    )
    c = NoteSequence.from_notes([(42, 64, 0.0, 0.125)], qpm=100.0, id="c", filename="b/c.midi")
    c.meta = {"split": "train"}
    return [a, b, c]


def _assert_same(x: NoteSequence, y: NoteSequence) -> None:
    for name in ("pitch", "velocity", "start", "end", "is_drum", "program"):
        got, want = getattr(x, name), getattr(y, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert x.tempos == y.tempos
    assert x.time_signatures == y.time_signatures
    assert (x.ticks_per_quarter, x.id, x.filename, x.meta) == (
        y.ticks_per_quarter,
        y.id,
        y.filename,
        y.meta,
    )


def test_round_trip_is_exact_and_rows_are_sorted(tmp_path):
    seqs = _sequences()
    path = write_dataset(seqs, tmp_path / "d.parquet")
    back = read_dataset(path)
    assert [ns.filename for ns in back] == [
        "a/empty.mid",
        "b/c.midi",
        "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid",
    ]
    by_name = {ns.filename: ns for ns in seqs}
    for ns in back:
        _assert_same(ns, by_name[ns.filename])
    assert back[2].start[1] == 1.0 / 3.0
    assert back[2].meta["bpm"] == "138" and back[2].meta["collection_name"] == "groove"
    # The read arrays are ordinary writable numpy arrays.
    back[2].velocity[0] = 5
    assert back[1].velocity[0] == 64


def test_bytes_are_identical_across_runs_and_input_order(tmp_path):
    seqs = _sequences()
    one = write_dataset(seqs, tmp_path / "one.parquet").read_bytes()
    two = write_dataset(list(reversed(_sequences())), tmp_path / "two.parquet").read_bytes()
    assert one == two
    assert one[:4] == b"PAR1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.parquet", "two.parquet"]
    meta = pq.read_schema(tmp_path / "one.parquet").metadata
    assert meta[b"musicvae.format"] == b"notesequence-dataset/1"


def test_split_filter_and_default_split(tmp_path):
    seqs = _sequences()
    seqs[2].meta = {}  # no split given: written as train
    path = write_dataset(seqs, tmp_path / "d.parquet")
    assert [ns.filename for ns in read_dataset(path, "train")] == ["b/c.midi"]
    assert read_dataset(path, "train")[0].meta == {"split": "train"}
    assert [ns.id for ns in read_dataset(path, split="validation")] == ["/id/midi/groove/bbb"]
    assert len(read_dataset(path, "test")) == 1
    with pytest.raises(MusicVAEError, match="unknown split 'dev'"):
        read_dataset(path, "dev")


def test_empty_dataset_round_trips(tmp_path):
    path = write_dataset([], tmp_path / "empty.parquet")
    assert read_dataset(path) == []


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"PAR1" + b"\x00" * 64, "corrupt dataset file"),
        (b"hello, this is text\n", "not a dataset file"),
        (b"", "not a dataset file"),
    ],
)
def test_bad_files_raise_one_line_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    with pytest.raises(MusicVAEError, match=reason) as e:
        read_dataset(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_truncated_dataset_and_missing_file(tmp_path):
    good = write_dataset(_sequences(), tmp_path / "good.parquet").read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(MusicVAEError, match=f"{cut}: corrupt dataset file"):
        read_dataset(cut)
    with pytest.raises(MusicVAEError, match="cannot read dataset"):
        read_dataset(tmp_path / "nope.parquet")


def test_foreign_parquet_names_missing_columns(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["x"], "notes": [1]}), path)
    with pytest.raises(MusicVAEError, match=r"not a musicvae dataset \(missing columns: filename"):
        read_dataset(path)


def test_reads_a_note_sequence_tfrecord(tmp_path):
    seqs = _sequences()
    path = tmp_path / "seqs.tfrecord"
    write_note_sequences(seqs, path)
    back = read_dataset(path)
    assert [ns.id for ns in back] == [ns.id for ns in seqs]  # file order kept
    np.testing.assert_array_equal(back[0].start, seqs[0].start)
    assert back[1].meta == {"split": "train"}  # TFRecords carry no split
    assert [ns.id for ns in read_dataset(path, "validation")] == []


def test_reads_magentas_own_tfrecord(magenta_dir):
    path = magenta_dir / "tfrecord" / "groove10_notesequences.tfrecord"
    summary = json.loads((magenta_dir / "tfrecord" / "groove10_summary.json").read_text())
    back = read_dataset(path)
    assert len(back) == summary["num_records"] == 10
    for ns, rec in zip(back, summary["records"], strict=True):
        assert (ns.id, ns.filename, len(ns)) == (rec["id"], rec["filename"], rec["num_notes"])
        assert ns.meta["split"] == "train"
