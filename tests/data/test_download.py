"""Downloading the GMD: served from a local HTTP server, verified, unpacked safely, idempotent."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from musicvae.cli.main import main
from musicvae.data import download
from musicvae.data.download import cache_dir, download_groove, safe_unpack
from musicvae.errors import MusicVAEError

PICKS = [
    "drummer1/session1/1_funk_80_beat_4-4.mid",
    "drummer1/session1/126_funk-fast_125_beat_4-4.mid",
    "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 (random port) serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _groove_zip(groove_dir: Path, path: Path) -> tuple[int, str]:
    """A GMD-shaped zip (groove/info.csv + 3 MIDI files); returns its size and SHA-256."""
    lines = (groove_dir / "info.csv").read_text().splitlines()
    info = [lines[0]] + [ln for ln in lines[1:] if any(f",{p}," in ln for p in PICKS)]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("groove/info.csv", "\n".join(info) + "\n")
        zf.write(groove_dir / "LICENSE", "groove/LICENSE")
        for p in PICKS:
            zf.write(groove_dir / p, f"groove/{p}")
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def test_download_verifies_unpacks_and_is_idempotent(groove_dir, server, tmp_path):
    www, base = server
    size, sha = _groove_zip(groove_dir, www / "groove.zip")
    lines: list[str] = []
    cache = tmp_path / "cache"
    target = download_groove(
        cache, url=f"{base}/groove.zip", size=size, sha256=sha, echo=lines.append, progress=False
    )
    assert target == cache / "groove"
    for p in PICKS:
        assert (target / p).read_bytes() == (groove_dir / p).read_bytes()
    assert len((target / "info.csv").read_text().splitlines()) == 4
    assert sorted(p.name for p in cache.iterdir()) == ["groove"]  # no temp files left
    assert lines[0] == f"Groove MIDI Dataset (3 MIDI files) is at {target}"
    assert "CC BY 4.0" in lines[1] and "Gillick" in lines[1]
    # Second call: the server is not asked again (the file is gone) and the path is printed.
    (www / "groove.zip").unlink()
    lines.clear()
    again = download_groove(
        cache, url=f"{base}/groove.zip", size=size, sha256=sha, echo=lines.append
    )
    assert again == target
    assert lines[0] == f"Groove MIDI Dataset already at {target}"


def test_bad_checksum_and_size_leave_nothing(groove_dir, server, tmp_path):
    www, base = server
    size, sha = _groove_zip(groove_dir, www / "g.zip")
    cache = tmp_path / "cache"
    with pytest.raises(MusicVAEError, match="SHA-256 mismatch"):
        download_groove(cache, url=f"{base}/g.zip", size=size, sha256="0" * 64, echo=print)
    with pytest.raises(MusicVAEError, match=f"got {size} bytes, expected {size + 1}"):
        download_groove(cache, url=f"{base}/g.zip", size=size + 1, sha256=sha, echo=print)
    with pytest.raises(MusicVAEError, match="larger than the expected 100 bytes"):
        download_groove(cache, url=f"{base}/g.zip", size=100, sha256=sha, echo=print)
    with pytest.raises(MusicVAEError, match=r"HTTP 404"):
        download_groove(cache, url=f"{base}/missing.zip", size=size, sha256=sha, echo=print)
    assert list(cache.iterdir()) == []


def test_unreachable_server_is_one_clear_line(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/groove.zip"
    with pytest.raises(MusicVAEError) as e:
        download_groove(tmp_path, url=url, size=1, sha256="0" * 64, timeout=5)
    assert str(e.value).startswith(f"{url}: download failed (")
    assert "\n" not in str(e.value)


def test_evil_zip_member_is_refused(server, tmp_path):
    www, base = server
    evil = www / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("groove/info.csv", "midi_filename\n")
        zf.writestr("../evil", "gotcha")
    data = evil.read_bytes()
    cache = tmp_path / "cache"
    with pytest.raises(MusicVAEError, match="'../evil' escapes the target"):
        download_groove(
            cache, url=f"{base}/evil.zip", size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
    assert not (tmp_path / "evil").exists()
    assert list(cache.iterdir()) == []


def test_absolute_paths_and_symlinks_are_refused(tmp_path):
    link = zipfile.ZipInfo("groove/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    cases = {"abs.zip": ("/etc/evil", "escapes"), "link.zip": (link, "is a symlink")}
    for name, (member, reason) in cases.items():
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            zf.writestr(member, "x")
        with pytest.raises(MusicVAEError, match=reason):
            safe_unpack(tmp_path / name, tmp_path / "out")
    (tmp_path / "not.zip").write_bytes(b"not a zip")
    with pytest.raises(MusicVAEError, match="not a valid zip archive"):
        safe_unpack(tmp_path / "not.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICVAE_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("MUSICVAE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "musicvae"


def test_pinned_archive_is_tfds_groove_midionly():
    # From tensorflow_datasets/url_checksums/groove.txt.
    assert download.GROOVE_URL.endswith("/magentadata/datasets/groove/groove-v1.0.0-midionly.zip")
    assert download.GROOVE_SIZE == 3260318
    assert download.GROOVE_SHA256.startswith("651cbc524ffb891b")


def test_cli_when_already_downloaded(tmp_path, capsys, monkeypatch):
    (tmp_path / "groove").mkdir()
    (tmp_path / "groove" / "info.csv").write_text("midi_filename\n")
    monkeypatch.setenv("MUSICVAE_CACHE", str(tmp_path))
    assert main(["data", "download", "groove"]) == 0
    out = capsys.readouterr().out
    assert f"already at {tmp_path / 'groove'}" in out and "CC BY 4.0" in out
