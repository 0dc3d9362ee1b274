"""Fetch the Groove MIDI Dataset (MIDI-only zip) into a local cache, verified and safely unpacked.

The URL, size and SHA-256 are the ones TensorFlow Datasets pins for its ``groove`` builder
(``tensorflow_datasets/url_checksums/groove.txt``). The archive holds one ``groove/`` folder
(``info.csv`` plus ``drummerN/...`` MIDI files), unpacked to ``<cache>/groove``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from musicvae.errors import MusicVAEError

GROOVE_URL = "https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip"
GROOVE_SIZE = 3260318
GROOVE_SHA256 = "651cbc524ffb891be1a3e46d89dc82a1cecb09a57c748c7b45b844c4841dcc1e"
GROOVE_FOLDER = "groove"
GROOVE_CREDIT = (
    "Groove MIDI Dataset (GMD): Jon Gillick, Adam Roberts, Jesse Engel, Douglas Eck and David "
    'Bamman, "Learning to Groove with Inverse Sequence Transformations", ICML 2019. '
    "License: CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); "
    "https://magenta.tensorflow.org/datasets/groove"
)
CACHE_ENV = "MUSICVAE_CACHE"
# Far above the real archive's ~13 MB unpacked: a guard against zip bombs.
MAX_UNPACKED_BYTES = 1 << 30
_CHUNK = 1 << 16


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else $MUSICVAE_CACHE, else ~/.cache/musicvae."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "musicvae"


def download_groove(
    directory: str | os.PathLike | None = None,
    *,
    url: str = GROOVE_URL,
    size: int = GROOVE_SIZE,
    sha256: str = GROOVE_SHA256,
    progress: bool | None = None,
    timeout: float = 60.0,
    echo: Callable[[str], None] = print,
) -> Path:
    """Make sure ``<cache>/groove`` holds the GMD and return its path (idempotent).

    Raises ``MusicVAEError`` (one line) when the download fails, the size or checksum differ,
    or the archive holds unsafe members; nothing is left at the target then.
    """
    root = cache_dir(directory)
    target = root / GROOVE_FOLDER
    if (target / "info.csv").is_file():
        echo(f"Groove MIDI Dataset already at {target}")
        echo(f"Credit: {GROOVE_CREDIT}")
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MusicVAEError(f"{root}: cannot create cache folder ({e.strerror or e})") from None
    with tempfile.TemporaryDirectory(prefix=".groove-", dir=root) as tmp:
        archive = Path(tmp) / "groove.zip"
        fetch(url, archive, size=size, sha256=sha256, progress=progress, timeout=timeout)
        unpacked = Path(tmp) / "unpacked"
        safe_unpack(archive, unpacked, source=url)
        # The official archive wraps everything in one "groove/" folder.
        candidates = [unpacked, *sorted(p for p in unpacked.iterdir() if p.is_dir())]
        found = [p for p in candidates if (p / "info.csv").is_file()]
        if not found:
            raise MusicVAEError(f"{url}: archive has no info.csv; not the Groove MIDI Dataset")
        content = found[0]
        if target.exists():  # a partial folder from elsewhere: replace it whole
            shutil.rmtree(target)
        os.replace(content, target)
    n = sum(1 for p in target.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    echo(f"Groove MIDI Dataset ({n} MIDI files) is at {target}")
    echo(f"Credit: {GROOVE_CREDIT}")
    return target


def fetch(
    url: str,
    dest: Path,
    *,
    size: int,
    sha256: str,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> None:
    """Stream ``url`` to ``dest`` with a tqdm bar, checking the byte count and SHA-256."""
    digest = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            bar = tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc="downloading groove",
                disable=None if progress is None else not progress,
            )
            with bar:
                while chunk := resp.read(_CHUNK):
                    got += len(chunk)
                    if got > size:
                        raise MusicVAEError(f"{url}: larger than the expected {size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        raise MusicVAEError(f"{url}: download failed (HTTP {e.code} {e.reason})") from None
    except urllib.error.URLError as e:
        raise MusicVAEError(f"{url}: download failed ({e.reason}); are you offline?") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
        raise MusicVAEError(f"{url}: download failed ({e})") from None
    except OSError as e:
        raise MusicVAEError(f"{dest}: cannot write download ({e.strerror or e})") from None
    if got != size:
        raise MusicVAEError(f"{url}: got {got} bytes, expected {size}; download incomplete")
    if digest.hexdigest() != sha256.lower():
        raise MusicVAEError(
            f"{url}: SHA-256 mismatch (got {digest.hexdigest()}, expected {sha256.lower()})"
        )


def _member_path(info: zipfile.ZipInfo, source: str) -> PurePosixPath:
    """The member's relative path, or an error for anything that could land outside the target."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise MusicVAEError(f"{source}: archive member {info.filename!r} is a symlink; refusing")
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise MusicVAEError(f"{source}: archive member {info.filename!r} escapes the target")
    return path


def safe_unpack(archive: Path, dest: Path, *, source: str | None = None) -> None:
    """Unpack ``archive`` into ``dest``, refusing symlinks and paths outside ``dest``."""
    source = source or str(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            paths = [_member_path(i, source) for i in infos]  # check all before writing any
            if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
                raise MusicVAEError(f"{source}: archive unpacks to more than 1 GiB; refusing")
            dest.mkdir(parents=True, exist_ok=True)
            base = dest.resolve()
            for info, rel in zip(infos, paths, strict=True):
                out = (base / rel).resolve()
                if not out.is_relative_to(base):
                    raise MusicVAEError(
                        f"{source}: archive member {info.filename!r} escapes the target"
                    )
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except zipfile.BadZipFile as e:
        raise MusicVAEError(f"{source}: not a valid zip archive ({e})") from None
