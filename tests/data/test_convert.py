"""MIDI folders to datasets: broken files skipped and reported, ids, info.csv, splits, GMD."""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from musicvae.data.convert import (
    convert_folder,
    convert_tfrecord,
    hash_split,
    sequence_id,
    write_report,
)
from musicvae.data.dataset import read_dataset, write_dataset
from musicvae.data.midi import read_midi
from musicvae.errors import MusicVAEError

from .helpers import write_groove

# Two files per GMD split, plus the info.csv columns they must get.
GMD_PICKS = {
    "drummer1/session1/1_funk_80_beat_4-4.mid": ("train", "funk", "80"),
    "drummer1/session1/100_neworleans-secondline_94_beat_4-4.mid": (
        "train",
        "neworleans/secondline",
        "94",
    ),
    "drummer1/session1/126_funk-fast_125_beat_4-4.mid": ("validation", "funk/fast", "125"),
    "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid": ("test", "funk/groove1", "138"),
}


def _meta(ns) -> dict[str, str]:
    """Metadata without what read_midi itself records (the file's end time)."""
    return {k: v for k, v in ns.meta.items() if k != "end_time"}


def make_folder(root: Path) -> dict[str, Path]:
    """Three good MIDI files (one nested two deep, one .MIDI) and three broken ones."""
    good = {
        "a.mid": write_groove(root / "a.mid", bars=2),
        "sub/b.midi": write_groove(root / "sub" / "b.midi", bars=3, qpm=90.0),
        "sub/deeper/C.MIDI": write_groove(root / "sub" / "deeper" / "C.MIDI", bars=1),
    }
    data = good["a.mid"].read_bytes()
    (root / "sub" / "truncated.mid").write_bytes(data[: len(data) // 2])
    # A valid header followed by a track chunk claiming far more bytes than there are.
    (root / "corrupt.mid").write_bytes(data[:14] + b"MTrk\xff\xff\xff\xff" + b"\x00" * 40)
    (root / "notes.mid").write_text("these are my notes, not MIDI\n")
    (root / "readme.txt").write_text("ignored: not a MIDI suffix\n")
    return good


def test_broken_files_are_reported_by_path_and_skipped(tmp_path):
    root = tmp_path / "songs"
    good = make_folder(root)
    lines: list[str] = []
    report = convert_folder(root, on_skip=lines.append, workers=1)
    assert report.found == 6
    assert [ns.filename for ns in report.sequences] == ["a.mid", "sub/b.midi", "sub/deeper/C.MIDI"]
    assert sorted(lines) == sorted(report.skipped)
    reasons = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines}
    assert set(reasons) == {
        str(root / "corrupt.mid"),
        str(root / "notes.mid"),
        str(root / "sub" / "truncated.mid"),
    }
    assert reasons[str(root / "notes.mid")] == "not a MIDI file (no MThd header)"
    assert reasons[str(root / "corrupt.mid")].startswith("corrupt MIDI")
    assert reasons[str(root / "sub" / "truncated.mid")].startswith("corrupt MIDI")
    assert "converted 3 of 6 MIDI files (3 skipped)" in report.summary
    for ns in report.sequences:
        want = read_midi(good[ns.filename])
        np.testing.assert_array_equal(ns.start, want.start)
        np.testing.assert_array_equal(ns.pitch, want.pitch)
        assert ns.id == "/id/midi/songs/" + hashlib.sha1(ns.filename.encode()).hexdigest()
        assert _meta(ns) == {"split": "train"}
    assert len(report.sequences[1]) == 12  # 3 bars of 4 beats


def test_process_pool_matches_one_process(tmp_path):
    root = tmp_path / "many"
    for i in range(20):
        write_groove(root / f"d{i % 3}" / f"{i:02d}.mid", bars=1 + i % 4)
    (root / "bad.mid").write_bytes(b"MThd")
    one = convert_folder(root, workers=1)
    two = convert_folder(root, workers=2)
    assert [ns.filename for ns in one.sequences] == [ns.filename for ns in two.sequences]
    assert one.skipped == two.skipped == [f"{root / 'bad.mid'}: not a MIDI file (no MThd header)"]
    for a, b in zip(one.sequences, two.sequences, strict=True):
        np.testing.assert_array_equal(a.end, b.end)
    assert (
        write_dataset(one.sequences, tmp_path / "1.parquet").read_bytes()
        == write_dataset(two.sequences, tmp_path / "2.parquet").read_bytes()
    )


def test_not_recursive_keeps_the_top_folder_only(tmp_path):
    make_folder(tmp_path)
    report = convert_folder(tmp_path, recursive=False, workers=1)
    assert [ns.filename for ns in report.sequences] == ["a.mid"]
    assert report.found == 3


def test_nothing_readable_is_an_error(tmp_path):
    (tmp_path / "x.mid").write_bytes(b"junk")
    report = convert_folder(tmp_path, workers=1)
    with pytest.raises(MusicVAEError, match=r"no MIDI file could be read \(1 found, 1 skipped\)"):
        write_report(report, tmp_path / "out.parquet", str(tmp_path))
    assert not (tmp_path / "out.parquet").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MusicVAEError, match="no MIDI files"):
        write_report(convert_folder(empty), tmp_path / "out.parquet", str(empty))
    with pytest.raises(MusicVAEError, match="not a folder"):
        convert_folder(tmp_path / "missing")


def test_conversion_bytes_are_deterministic(tmp_path):
    make_folder(tmp_path / "in")
    a = write_report(convert_folder(tmp_path / "in", workers=1), tmp_path / "a.parquet", "in")
    b = write_report(convert_folder(tmp_path / "in", workers=1), tmp_path / "b.parquet", "in")
    assert a.read_bytes() == b.read_bytes()


def test_hash_split_is_stable_and_80_10_10():
    # Pinned: changing the hash would silently move files between splits.
    assert [hash_split(p) for p in ("a.mid", "g.mid", "x/y/z.midi")] == [
        "train",
        "validation",
        "test",
    ]
    for name in ("a.mid", "drummer1/session1/1_funk_80_beat_4-4.mid"):
        bucket = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 10
        assert hash_split(name) == (
            "train" if bucket < 8 else "validation" if bucket == 8 else "test"
        )
    counts = Counter(hash_split(f"f{i}.mid") for i in range(10000))
    assert counts == {"train": 7939, "validation": 1024, "test": 1037}


def test_split_by_hash(tmp_path):
    make_folder(tmp_path)
    report = convert_folder(tmp_path, split_by_hash=True, workers=1)
    assert {ns.filename: ns.meta["split"] for ns in report.sequences} == {
        name: hash_split(name) for name in ("a.mid", "sub/b.midi", "sub/deeper/C.MIDI")
    }
    assert sequence_id("a.mid", "x") == "/id/midi/x/" + hashlib.sha1(b"a.mid").hexdigest()


def copy_gmd_subset(groove_dir: Path, dest: Path) -> None:
    """The picked GMD files under ``dest`` with an info.csv trimmed to their rows (+ one stray)."""
    with open(groove_dir / "info.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    keep = [r for r in rows if r["midi_filename"] in GMD_PICKS]
    keep.append(dict(rows[-1]))  # a row for a file that is not in the folder: ignored
    dest.mkdir(parents=True)
    with open(dest / "info.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(keep)
    for name in GMD_PICKS:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(groove_dir / name, dest / name)


def test_info_csv_is_merged(groove_dir, tmp_path):
    root = tmp_path / "groove"
    copy_gmd_subset(groove_dir, root)
    write_groove(root / "x" / "y" / "z.midi", bars=2)  # not in info.csv
    report = convert_folder(root, workers=1)
    assert report.info_csv == root / "info.csv"
    meta = {ns.filename: _meta(ns) for ns in report.sequences}
    assert len(meta) == 5
    for name, (split, style, bpm) in GMD_PICKS.items():
        assert meta[name] == {
            "drummer": "drummer1",
            "session": "drummer1/" + name.split("/")[1],
            "style": style,
            "bpm": bpm,
            "beat_type": "beat",
            "time_signature": "4-4",
            "split": split,
        }
    assert meta["x/y/z.midi"] == {"split": "train"}
    # With --split-by-hash only files info.csv does not cover get a hashed split.
    hashed = convert_folder(root, split_by_hash=True, workers=1)
    splits = {ns.filename: ns.meta["split"] for ns in hashed.sequences}
    assert splits["x/y/z.midi"] == "test"
    assert splits["drummer1/session1/126_funk-fast_125_beat_4-4.mid"] == "validation"


def test_tfrecord_input_with_info_csv(magenta_dir, groove_dir):
    path = magenta_dir / "tfrecord" / "groove10_notesequences.tfrecord"
    report = convert_tfrecord(path, info_dir=groove_dir)
    assert report.found == len(report.sequences) == 10
    # README: converter files 0-9 are the 8 train files and the first 2 validation files.
    assert Counter(ns.meta["split"] for ns in report.sequences) == {"train": 8, "validation": 2}
    assert all(ns.meta["drummer"] == "drummer1" for ns in report.sequences)
    with pytest.raises(MusicVAEError, match="not a TFRecord"):
        convert_tfrecord(groove_dir / "info.csv")


@pytest.mark.slow
def test_full_gmd(groove_dir, tmp_path):
    report = convert_folder(groove_dir)
    assert report.skipped == []
    out = write_report(report, tmp_path / "gmd.parquet", str(groove_dir))
    back = read_dataset(out)
    assert len(back) == 1150
    assert Counter(ns.meta["split"] for ns in back) == {
        "train": 897,
        "validation": 124,
        "test": 129,
    }
    assert all(ns.meta.get("drummer") and ns.meta.get("style") for ns in back)
    assert sum(len(ns) for ns in back) == sum(len(ns) for ns in report.sequences)
