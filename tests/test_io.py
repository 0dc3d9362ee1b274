"""The one atomic-write helper: what it refuses, what it cleans up, what it leaves."""

from __future__ import annotations

import errno
import os
import time

import pytest

from musicvae.errors import MusicVAEError
from musicvae.io import atomic_write_bytes, atomic_writer, check_writable, current_umask


def test_writes_whole_files_with_umask_permissions(tmp_path):
    out = atomic_write_bytes(tmp_path / "a" / "b.bin", b"hello")
    assert out.read_bytes() == b"hello"
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert [p.name for p in out.parent.iterdir()] == ["b.bin"]


def test_current_umask_matches_the_process():
    before = os.umask(0o027)
    try:
        assert current_umask() == 0o027
    finally:
        os.umask(before)


@pytest.mark.parametrize("target", ["/dev/null", "fifo", "folder", "file/child"])
def test_refuses_special_files_folders_and_file_parents(tmp_path, target):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    path = target if target.startswith("/") else tmp_path / target
    with pytest.raises(MusicVAEError) as e:
        atomic_write_bytes(path, b"data")
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert (tmp_path / "file").read_text() == "x"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    out = atomic_write_bytes(tmp_path / "keep.bin", b"old")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(MusicVAEError, match=r"keep.bin: cannot write \(no space left"):
        atomic_write_bytes(out, b"new")
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["keep.bin"]


def test_an_exception_inside_the_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "x.bin") as f:
        f.write(b"partial")
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_stale_temps_of_interrupted_writes_are_removed(tmp_path):
    stale = tmp_path / ".x.bin.abc123.tmp"
    fresh = tmp_path / ".x.bin.def456.tmp"  # maybe another writer at work right now
    other = tmp_path / ".y.bin.abc123.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"0" * 100)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write_bytes(tmp_path / "x.bin", b"done")
    assert not stale.exists() and fresh.exists() and other.exists()


def test_check_writable_is_cheap_and_early(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper" / "f.json") == tmp_path / "new/deeper/f.json"
    assert not (tmp_path / "new").exists()  # checking creates nothing
