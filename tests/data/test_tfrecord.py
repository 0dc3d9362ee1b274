"""TFRecord / NoteSequence interop against the TFRecord Magenta's own converter wrote."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from musicvae.data.notesequence_proto import note_sequence_class
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.data.tfrecord import (
    is_tfrecord,
    iter_records,
    masked_crc32c,
    read_note_sequences,
    write_note_sequences,
)
from musicvae.errors import MusicVAEError


@pytest.fixture(scope="module")
def tfrecord(magenta_dir):
    return magenta_dir / "tfrecord" / "groove10_notesequences.tfrecord"


@pytest.fixture(scope="module")
def summary(magenta_dir):
    return json.loads((magenta_dir / "tfrecord" / "groove10_summary.json").read_text())


def test_masked_crc_of_empty_input_is_the_mask_delta():
    # crc32c(b"") == 0, so the masked value is just TF's constant.
    assert masked_crc32c(b"") == 0xA282EAD8


@pytest.mark.slow
def test_reads_magenta_records_like_the_summary(tfrecord, summary):
    seqs = list(read_note_sequences(tfrecord))
    assert len(seqs) == summary["num_records"] == 10
    for ns, rec in zip(seqs, summary["records"], strict=True):
        assert ns.id == rec["id"] and ns.id.startswith("/id/midi/groove10/")
        assert ns.filename == rec["filename"]
        assert ns.meta == {"collection_name": rec["collection_name"]}
        assert len(ns) == rec["num_notes"]
        assert ns.total_time == rec["total_time"]
        assert ns.ticks_per_quarter == rec["ticks_per_quarter"]
        assert ns.tempos == [Tempo(t["time"], t["qpm"]) for t in rec["tempos"]]
        assert ns.time_signatures == [
            TimeSignature(t["time"], t["numerator"], t["denominator"])
            for t in rec["time_signatures"]
        ]
        first = rec["first_5_notes"]
        assert [n[:4] for n in ns.notes[:5]] == [
            (n["pitch"], n["velocity"], n["start_time"], n["end_time"]) for n in first
        ]
        assert list(ns.is_drum[:5]) == [n["is_drum"] for n in first]
        assert list(ns.program[:5]) == [n["program"] for n in first]
    assert seqs[0].tempos[0].qpm == pytest.approx(78.000078)


@pytest.mark.slow
def test_is_tfrecord_sniffs(tfrecord, tmp_path, magenta_dir):
    assert is_tfrecord(tfrecord)
    assert not is_tfrecord(magenta_dir / "groovae_tiny" / "model.ckpt-5.index")
    assert not is_tfrecord(tmp_path / "missing.tfrecord")
    (tmp_path / "short").write_bytes(b"\x01\x02")
    assert not is_tfrecord(tmp_path / "short")


@pytest.mark.slow
def test_flipped_byte_names_file_and_record(tfrecord, tmp_path):
    data = bytearray(tfrecord.read_bytes())
    # Offset of record 3's data: walk the first three records' headers.
    pos = 0
    for _ in range(3):
        pos += 12 + struct.unpack_from("<Q", data, pos)[0] + 4
    bad = tmp_path / "bad.tfrecord"
    data[pos + 12 + 100] ^= 0x01
    bad.write_bytes(bytes(data))
    records = iter_records(bad)
    assert [len(next(records)) > 0 for _ in range(3)] == [True] * 3  # earlier records still read
    records.close()
    with pytest.raises(MusicVAEError, match=r"bad\.tfrecord: record 3 has a data CRC mismatch"):
        list(read_note_sequences(bad))

    data[pos + 12 + 100] ^= 0x01
    data[pos] ^= 0x01  # now the length field
    bad.write_bytes(bytes(data))
    with pytest.raises(MusicVAEError, match="record 3 has a length CRC mismatch"):
        list(iter_records(bad))


@pytest.mark.slow
def test_truncated_file_is_reported(tfrecord, tmp_path):
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(tfrecord.read_bytes()[:-10])
    with pytest.raises(MusicVAEError, match=r"cut\.tfrecord: record 9 is truncated"):
        list(iter_records(cut))


@pytest.mark.slow
def test_round_trip_of_magenta_records(tfrecord, tmp_path):
    original = list(read_note_sequences(tfrecord))
    out = tmp_path / "sub" / "copy.tfrecord"
    write_note_sequences(iter(original), out)
    assert is_tfrecord(out)
    again = list(read_note_sequences(out))
    assert len(again) == 10
    for a, b in zip(original, again, strict=True):
        assert (a.id, a.filename, a.meta, a.ticks_per_quarter) == (
            b.id,
            b.filename,
            b.meta,
            b.ticks_per_quarter,
        )
        assert a.notes == b.notes
        assert a.tempos == b.tempos and a.time_signatures == b.time_signatures
    assert not list(tmp_path.joinpath("sub").glob(".*.tmp"))


def test_round_trip_of_a_hand_built_sequence(tmp_path):
    ns = NoteSequence(
        pitch=[36, 60],
        velocity=[100, 64],
        start=[0.0, 0.5],
        end=[0.125, 1.25],
        is_drum=[True, False],
        program=[0, 33],
        tempos=[Tempo(0.0, 96.0), Tempo(1.0, 120.0)],
        time_signatures=[TimeSignature(0.0, 6, 8)],
        ticks_per_quarter=960,
        id="x1",
        filename="a/b.mid",
        meta={"collection_name": "mine", "split": "train"},
    )
    path = tmp_path / "one.tfrecord"
    write_note_sequences([ns, NoteSequence()], path)
    (rec, empty) = list(iter_records(path))
    msg = note_sequence_class().FromString(rec)
    assert [n.instrument for n in msg.notes] == [9, 0]  # drum notes go on the drum instrument
    assert msg.total_time == 1.25 and msg.collection_name == "mine"
    back, blank = read_note_sequences(path)
    assert back.notes == ns.notes
    assert list(back.is_drum) == [True, False] and list(back.program) == [0, 33]
    assert back.tempos == ns.tempos and back.time_signatures == ns.time_signatures
    assert (back.ticks_per_quarter, back.id, back.filename) == (960, "x1", "a/b.mid")
    assert back.meta == {"collection_name": "mine"}  # other meta has no NoteSequence field
    assert len(blank) == 0 and blank.ticks_per_quarter == 220 and blank.meta == {}
    assert back.pitch.dtype == np.int16 and back.start.dtype == np.float64


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep.tfrecord"
    write_note_sequences([NoteSequence.from_notes([(36, 90, 0.0, 0.1)])], path)
    before = path.read_bytes()

    def broken():
        yield NoteSequence()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_note_sequences(broken(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tfrecord"]


def test_garbage_record_is_not_a_note_sequence(tmp_path):
    path = tmp_path / "junk.tfrecord"
    data = b"\xff\xff\xff"
    length = struct.pack("<Q", len(data))
    path.write_bytes(
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )
    assert list(iter_records(path)) == [data]
    with pytest.raises(MusicVAEError, match=r"junk\.tfrecord: record 0 is not a NoteSequence"):
        list(read_note_sequences(path))
