"""``musicvae convert``, Magenta's ``convert_dir_to_note_sequences`` form, and ``musicvae demo``."""

from __future__ import annotations

import sys

import pytest

from musicvae.cli import convert as convert_cli
from musicvae.cli.magenta import convert_dir_to_note_sequences
from musicvae.cli.main import main
from musicvae.data.convert import hash_split
from musicvae.data.dataset import read_dataset
from musicvae.io import current_umask
from tests.data.helpers import write_groove


@pytest.fixture
def songs(tmp_path):
    root = tmp_path / "songs"
    write_groove(root / "top.mid", bars=4)
    write_groove(root / "x" / "y" / "z.midi", bars=2)
    good = (root / "top.mid").read_bytes()
    (root / "x" / "broken.mid").write_bytes(good[:30])  # cut inside the first track
    return root


def test_convert_reports_skips_and_writes(songs, tmp_path, capsys):
    out = tmp_path / "out" / "data.parquet"
    assert main(["convert", str(songs), "--output", str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"skipped {songs / 'x' / 'broken.mid'}: corrupt MIDI (")
    lines = captured.out.splitlines()
    assert lines[0].startswith("converted 2 of 3 MIDI files (1 skipped) in ")
    assert lines[1] == f"wrote {out}: 2 sequences (train 2)"
    assert [ns.filename for ns in read_dataset(out)] == ["top.mid", "x/y/z.midi"]


def test_split_by_hash_flag(songs, tmp_path, capsys):
    out = tmp_path / "d.parquet"
    assert main(["convert", str(songs), "-o", str(out), "--split-by-hash"]) == 0
    assert hash_split("x/y/z.midi") == "test"
    assert f"wrote {out}: 2 sequences (train 1, test 1)" in capsys.readouterr().out
    assert {ns.filename: ns.meta["split"] for ns in read_dataset(out)} == {
        "top.mid": "train",
        "x/y/z.midi": "test",
    }


def test_all_broken_exits_non_zero(tmp_path, capsys):
    (tmp_path / "a.mid").write_text("not midi")
    (tmp_path / "b.midi").write_bytes(b"")
    out = tmp_path / "d.parquet"
    assert main(["convert", str(tmp_path), "--output", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        f"skipped {tmp_path / 'a.mid'}: not a MIDI file (no MThd header)",
        f"skipped {tmp_path / 'b.midi'}: not a MIDI file (no MThd header)",
    ]
    assert err[2] == f"error: {tmp_path}: no MIDI file could be read (2 found, 2 skipped)"
    assert not out.exists()


def test_unwritable_output_exits_non_zero(songs, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["convert", str(songs), "--output", str(blocker / "d.parquet")]) == 1
    assert "error:" in capsys.readouterr().err


def test_missing_input_is_an_error(tmp_path, capsys):
    assert main(["convert", "--output", str(tmp_path / "d.parquet")]) == 1
    assert "give INPUT_DIR or --from-tfrecord" in capsys.readouterr().err


def test_from_tfrecord(magenta_dir, groove_dir, tmp_path, capsys):
    record = magenta_dir / "tfrecord" / "groove10_notesequences.tfrecord"
    out = tmp_path / "d.parquet"
    argv = ["convert", str(groove_dir), "--from-tfrecord", str(record), "--output", str(out)]
    assert main(argv) == 0
    assert "10 sequences (train 8, validation 2)" in capsys.readouterr().out
    assert len(read_dataset(out, "validation")) == 2


def test_magenta_form_writes_a_real_tfrecord(songs, tmp_path, capsys):
    from musicvae.data.tfrecord import is_tfrecord, iter_records, read_note_sequences

    out = tmp_path / "notesequences.tfrecord"
    argv = [f"--input_dir={songs}", f"--output_file={out}", "--recursive", "--log=INFO"]
    assert convert_cli.magenta_main(argv) == 0
    assert "2 NoteSequences (TFRecord" in capsys.readouterr().out
    assert is_tfrecord(out) and len(list(iter_records(out))) == 2
    assert [ns.filename for ns in read_note_sequences(out)] == ["top.mid", "x/y/z.midi"]
    assert [ns.filename for ns in read_dataset(out)] == ["top.mid", "x/y/z.midi"]
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # not mkstemp's 0600
    # Magenta's default is not to recurse; absl's one-dash spelling works too.
    argv = ["-input_dir", str(songs), "-output_file", str(out), "--log", "ERROR"]
    assert convert_cli.magenta_main(argv) == 0
    assert capsys.readouterr().out == ""
    assert [ns.filename for ns in read_dataset(out)] == ["top.mid"]


def test_other_names_get_parquet_and_format_overrides(songs, tmp_path, capsys):
    out = tmp_path / "notesequences.data"
    assert convert_cli.magenta_main([f"--input_dir={songs}", f"--output_file={out}"]) == 0
    assert "written as a musicvae Parquet dataset" in capsys.readouterr().out
    assert out.read_bytes()[:4] == b"PAR1"
    forced = tmp_path / "x.data"
    assert main(["convert", str(songs), "-o", str(forced), "--format", "tfrecord"]) == 0
    assert forced.read_bytes()[:4] != b"PAR1" and len(read_dataset(forced)) == 2
    # A name of the other format would hold what it does not say (issue 30).
    capsys.readouterr()
    wrong = tmp_path / "x.parquet"
    assert main(["convert", str(songs), "-o", str(wrong), "--format", "tfrecord"]) == 1
    assert "the output is a NoteSequence TFRecord (not .parquet)" in capsys.readouterr().err
    assert not wrong.exists()


def test_magenta_console_entry_point(songs, tmp_path, monkeypatch):
    out = tmp_path / "o.parquet"
    argv = ["convert_dir_to_note_sequences", "--input_dir", str(songs), "--output_file", str(out)]
    monkeypatch.setattr(sys, "argv", [*argv, "--recursive=false"])
    assert convert_dir_to_note_sequences() == 0
    assert len(read_dataset(out)) == 1


def test_demo(capsys):
    assert main(["demo", "--data-tour", "--files", "6"]) == 0
    out = capsys.readouterr().out
    assert "wrote 6 synthetic groove MIDI files" in out
    assert "converted 6 of 6 MIDI files (0 skipped)" in out
    total = out.splitlines()[-1].split()
    # 6 files of 8 bars, each sliding 4-bar windows one bar at a time: 5 windows per file.
    assert total == ["total", "6", "30", "0"]
    # Split by hash of the made-up paths: 5 train, 1 test.
    assert [line.split()[:2] for line in out.splitlines()[-4:-2]] == [["train", "5"], ["test", "1"]]
