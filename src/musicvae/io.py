"""Safe output files: the one atomic-write helper of the package.

Every file musicvae writes goes through :func:`atomic_writer`: the data goes to a temporary file
beside the target, is flushed to disk, takes the permissions the umask gives a new file, and is
renamed over the target only when complete, so readers see the old file or the whole new one.
What it refuses, each as one :class:`MusicVAEError` line naming the path:

- a target that is a directory, or a device, FIFO or socket (``-o /dev/null`` must not turn the
  device into a plain file, as a rename over it would);
- a parent that is a file, an unwritable folder, a full disk.

Before any long work, a command checks the file a user named with :func:`check_output`, which
also refuses an output that is one of the command's inputs (``render song.mid -o song.mid``), a
trailing slash, and a suffix of another format than the one written (``render -o x.mp3``).

Temporary files that an interrupted write left behind (``.NAME.*.tmp``, older than a minute)
are removed the next time the same target is written.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from musicvae.errors import MusicVAEError

STALE_TEMP_S = 60.0


def current_umask() -> int:
    """The process umask, read without changing it (Linux's /proc), else by a set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def os_error(path: str | os.PathLike, e: OSError, what: str = "") -> MusicVAEError:
    """A one-line error for a failed write of ``path`` (``what``: e.g. "checkpoint")."""
    reasons: dict[int | None, str] = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOTDIR: "a parent of it is a file, not a folder",
        errno.EISDIR: "it is a folder",
        errno.ENAMETOOLONG: "the name is too long",
    }
    reason = reasons.get(e.errno, e.strerror or type(e).__name__)
    return MusicVAEError(f"{path}: cannot write{' ' + what if what else ''} ({reason})")


def check_writable(path: str | os.PathLike, what: str = "") -> Path:
    """Refuse, before any long work, a target that :func:`atomic_writer` could not write."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise os_error(path, e, what) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise MusicVAEError(f"{path}: is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise MusicVAEError(
                f"{path}: is a device, FIFO or socket, not a regular file; refusing to replace it"
            )
    parent = path.parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    w = f"cannot write{' ' + what if what else ''}"
    if not existing.is_dir():
        raise MusicVAEError(f"{path}: {w} ({existing} is a file, not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MusicVAEError(f"{path}: {w} (permission denied in {existing})")
    return path


# Suffixes of the files musicvae reads or writes, each the name of a format: an output named with
# one of them must hold that format (``render -o x.mid`` must not put a WAV under a MIDI name).
KNOWN_SUFFIXES = frozenset(
    {
        ".mid", ".midi", ".wav", ".mp3", ".flac", ".ogg", ".aif", ".aiff", ".png", ".jpg",
        ".svg", ".pdf", ".json", ".csv", ".txt", ".parquet", ".tfrecord", ".tfrecords",
        ".safetensors", ".pt", ".index", ".tar", ".gz", ".tgz", ".zip", ".sf2",
    }
)  # fmt: skip


def check_output(
    path: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    *,
    suffix: str | tuple[str, ...] | None = None,
    kind: str = "",
    strict: bool = True,
    what: str = "",
) -> Path:
    """The output file a user named, checked before any work: one :class:`MusicVAEError` line
    naming it when it would replace one of the command's ``inputs`` (the same file, or the same
    resolved path), names a folder (an existing one, an empty name or a trailing slash), a
    device, FIFO or socket, or lies under a file; or when its suffix is not one of ``suffix``,
    the suffixes of the format the command writes (``kind``, e.g. "a WAV file"). With
    ``strict=False`` any other suffix is allowed except those of another known format
    (:data:`KNOWN_SUFFIXES`): an output whose content, not its name, says what it is."""
    text = os.fspath(path)
    if not text.strip():
        raise MusicVAEError(f"{text!r}: an empty output name; give a file name")
    if text.endswith(("/", os.sep)):
        raise MusicVAEError(f"{text}: names a folder (it ends in '/'); give a file name")
    out = Path(text)
    for source in inputs:
        if source is None or not os.fspath(source):
            continue
        if _same_file(out, Path(source)):
            also = "" if os.fspath(source) == text else f" ({source})"
            raise MusicVAEError(
                f"{text}: is one of the command's inputs{also}; refusing to write over it "
                "(give the output another name)"
            )
    check_writable(out, what)
    if suffix is not None:
        suffixes = (suffix,) if isinstance(suffix, str) else suffix
        have = out.suffix.lower()
        if have not in suffixes and (strict or have in KNOWN_SUFFIXES):
            kind = kind or f"a {suffixes[0].lstrip('.').upper()} file"
            given = f"not {have}" if have else "it has no suffix"
            raise MusicVAEError(
                f"{text}: the output is {kind} ({given}); give it a name ending in "
                f"{' or '.join(suffixes)}"
            )
    return out


def check_output_dir(folder: str | os.PathLike) -> Path:
    """A folder a command will write its files into (see :func:`staged_folder`), checked before
    any work: one :class:`MusicVAEError` line when it is a file, lies under one, or cannot be
    made or written."""
    text = os.fspath(folder)
    if not text.strip():
        raise MusicVAEError(f"{text!r}: an empty folder name; give a folder")
    path = Path(text)
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing == path and not path.is_dir():
        raise MusicVAEError(f"{path}: is a file, not a folder")
    if not existing.is_dir():
        raise MusicVAEError(f"{path}: cannot write ({existing} is a file, not a folder)")
    try:
        os.stat(path)  # a name too long fails here, not after the work
    except FileNotFoundError:
        pass
    except OSError as e:
        raise os_error(path, e) from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MusicVAEError(f"{path}: cannot write (permission denied in {existing})")
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode where both exist, else the same
    resolved path."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):  # a name too long, a NUL byte: not one of the inputs
        return False


def _remove_stale_temps(path: Path) -> None:
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()
        except OSError:
            pass


@contextmanager
def atomic_writer(path: str | os.PathLike, what: str = "") -> Iterator[BinaryIO]:
    """``with atomic_writer(p) as f: f.write(...)``: ``p`` appears whole, or not at all."""
    path = check_writable(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise os_error(path, e, what) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise os_error(path, e, what) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_with(
    path: str | os.PathLike, write: Callable[[BinaryIO], object], what: str = ""
) -> Path:
    """Call ``write(f)`` on the temporary file, then move it into place."""
    with atomic_writer(path, what) as f:
        write(f)
    return Path(path)


@contextmanager
def staged_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """A scratch folder beside ``folder`` to write a set of files in; when the block ends
    normally they are moved into ``folder`` (created if missing), else all are removed."""
    import shutil

    folder = Path(folder)
    try:  # inside the try: stat itself fails on a name too long
        if folder.exists() and not folder.is_dir():
            raise MusicVAEError(f"{folder}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    except OSError as e:
        raise os_error(folder, e) from None
    try:
        yield scratch
        for f in sorted(scratch.iterdir()):
            os.replace(f, folder / f.name)
    except OSError as e:
        raise os_error(folder, e) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
