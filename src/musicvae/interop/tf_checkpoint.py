"""Read TensorFlow V2 ("tensor bundle") checkpoints, such as Magenta's, without TensorFlow.

A checkpoint ``<prefix>`` is two kinds of files:

* ``<prefix>.index``: an immutable sorted key/value table in LevelDB's SSTable layout. Its last 48
  bytes are a footer (two varint block handles, zero padding, the 64-bit magic number); the index
  block it points to maps keys to data-block handles. Each block is a run of prefix-compressed
  entries (varints shared/unshared/value lengths, key suffix, value) followed by a restart array,
  and is stored with a 5-byte trailer: compression type and the masked CRC-32C of contents+type.
  The value for key ``""`` is a ``BundleHeaderProto``; every other key is a tensor name whose value
  is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked CRC-32C of the bytes).
* ``<prefix>.data-SSSSS-of-NNNNN``: the raw tensor bytes, at ``offset`` in shard ``shard_id``.

Numeric tensors are stored as their raw buffer (endianness from the header); string tensors as
varint lengths, a masked CRC of the lengths, then the bytes. Partitioned (sliced) variables, which
Magenta does not use, are rejected with a clear error.

:func:`open_checkpoint` reads the index only and each tensor when it is asked for (by offset, into
one fresh array), so that an import holds one source tensor at a time; an uncompressed ``.tar``
(Magenta's published files) is read in place, a compressed one is extracted to a temporary folder
first. :func:`read_checkpoint` reads every tensor; :func:`write_bundle` writes a bundle.
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import crc32c
import numpy as np

from musicvae.data.notesequence_proto import message_classes
from musicvae.data.tfrecord import masked_crc32c
from musicvae.errors import MusicVAEError

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two block handles padded to 2 * 10 bytes, plus the 8-byte magic
_TRAILER_SIZE = 5  # block type byte + masked crc32c
_MASK_DELTA = 0xA282EAD8

# TF DataType enum value -> (numpy dtype, name); 7 is DT_STRING, 14 DT_BFLOAT16 (both special-cased).
_DTYPES: dict[int, tuple[str, str]] = {
    1: ("f4", "float32"),
    2: ("f8", "float64"),
    3: ("i4", "int32"),
    4: ("u1", "uint8"),
    5: ("i2", "int16"),
    6: ("i1", "int8"),
    7: ("O", "string"),
    8: ("c8", "complex64"),
    9: ("i8", "int64"),
    10: ("?", "bool"),
    14: ("u2", "bfloat16"),
    17: ("u2", "uint16"),
    18: ("c16", "complex128"),
    19: ("f2", "float16"),
    22: ("u4", "uint32"),
    23: ("u8", "uint64"),
}

_BUNDLE_SCHEMA = {
    "VersionDef": [
        ("producer", 1, "int32", False),
        ("min_consumer", 2, "int32", False),
        ("bad_consumers", 3, "int32", True),
    ],
    "BundleHeaderProto": [
        ("num_shards", 1, "int32", False),
        ("endianness", 2, "int32", False),  # enum LITTLE = 0, BIG = 1; same varint on the wire
        ("version", 3, "VersionDef", False),
    ],
    "TensorShapeProto": [
        ("dim", 2, "TensorShapeProto.Dim", True),
        ("unknown_rank", 3, "bool", False),
    ],
    "TensorShapeProto.Dim": [("size", 1, "int64", False), ("name", 2, "string", False)],
    "BundleEntryProto": [
        ("dtype", 1, "int32", False),  # DataType enum
        ("shape", 2, "TensorShapeProto", False),
        ("shard_id", 3, "int32", False),
        ("offset", 4, "int64", False),
        ("size", 5, "int64", False),
        ("crc32c", 6, "fixed32", False),
        ("slices", 7, "bytes", True),  # TensorSliceProto; only its presence matters here
    ],
}


@cache
def _bundle_classes() -> dict[str, Any]:  # generated protobuf message classes
    return message_classes("musicvae_tensor_bundle.proto", "tensorflow", _BUNDLE_SCHEMA)


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise MusicVAEError(f"{where}: corrupt varint")


# --- SSTable -------------------------------------------------------------------------------------


def _read_block(buf: bytes, handle: bytes, where: str) -> bytes:
    offset, pos = _varint(handle, 0, where)
    size, _ = _varint(handle, pos, where)
    end = offset + size + _TRAILER_SIZE
    if end > len(buf) - _FOOTER_SIZE:
        raise MusicVAEError(f"{where}: truncated (block at {offset} runs past the end)")
    contents, kind = buf[offset : offset + size], buf[offset + size]
    (stored,) = struct.unpack_from("<I", buf, offset + size + 1)
    if masked_crc32c(buf[offset : offset + size + 1]) != stored:
        raise MusicVAEError(f"{where}: CRC mismatch in table block at offset {offset}")
    if kind == 0:
        return contents
    if kind == 1:
        try:
            import cramjam
        except ImportError:
            raise MusicVAEError(
                f"{where}: snappy-compressed index; install 'cramjam' to read it"
            ) from None
        return bytes(cramjam.snappy.decompress_raw(contents))
    raise MusicVAEError(f"{where}: unknown block compression type {kind}")


def _block_entries(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise MusicVAEError(f"{where}: corrupt table block (too short)")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise MusicVAEError(f"{where}: corrupt table block (bad restart count)")
    key, pos = b"", 0
    while pos < limit:
        shared, pos = _varint(block, pos, where)
        unshared, pos = _varint(block, pos, where)
        value_len, pos = _varint(block, pos, where)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise MusicVAEError(f"{where}: corrupt table block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _table_items(buf: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    if len(buf) < _FOOTER_SIZE:
        raise MusicVAEError(f"{where}: truncated checkpoint index ({len(buf)} bytes)")
    footer = buf[-_FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != _TABLE_MAGIC:
        raise MusicVAEError(f"{where}: bad magic number (not a TF checkpoint index, or truncated)")
    _, pos = _varint(footer, 0, where)  # metaindex handle: unused by tensor bundles
    _, pos = _varint(footer, pos, where)
    index_block = _read_block(buf, footer[pos:], where)
    for _, handle in _block_entries(index_block, where):
        yield from _block_entries(_read_block(buf, handle, where), where)


def _block(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """One table block of sorted ``(key, value)`` entries, keys stored whole (one restart)."""
    body = b"".join(
        _encode_varint(0) + _encode_varint(len(k)) + _encode_varint(len(v)) + k + v
        for k, v in entries
    )
    return body + struct.pack("<II", 0, 1)  # one restart point, at offset 0


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _write_table(path: Path, items: list[tuple[bytes, bytes]], block_type: int = 0) -> None:
    """An SSTable of sorted ``items`` in one data block. ``block_type`` is the byte that names
    the data block's compression (0: none); the block itself is always written as given."""
    out = bytearray()

    def put(block: bytes, kind: int = 0) -> bytes:
        handle = _encode_varint(len(out)) + _encode_varint(len(block))
        out.extend(block + bytes([kind]) + struct.pack("<I", masked_crc32c(block + bytes([kind]))))
        return handle

    data_handle = put(_block(items), block_type)
    meta_handle = put(_block([]))
    last_key = items[-1][0] if items else b""
    index_handle = put(_block([(last_key, data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", _TABLE_MAGIC)
    path.write_bytes(bytes(out) + footer)


# --- Where the files are -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """One checkpoint file's bytes: all of ``path``, or ``size`` bytes from ``start`` (a member
    of an uncompressed tar, read in place)."""

    path: Path
    start: int = 0
    size: int | None = None


@dataclass(frozen=True)
class _Location:
    """A checkpoint prefix. ``name`` is what messages call it (``/run/model.ckpt-5``, or
    ``/dl/x.tar: model.ckpt-5``); ``key`` is the prefix on disk, or inside the tar whose
    regular files ``members`` holds (None for files on disk)."""

    name: str
    key: str
    members: Mapping[str, _Span] | None = None

    def span(self, suffix: str) -> _Span | None:
        """The file ``<prefix><suffix>``, or None where it does not exist."""
        if self.members is not None:
            return self.members.get(self.key + suffix)
        path = Path(self.key + suffix)
        return _Span(path) if path.is_file() else None


def _read_span(span: _Span, limit: int = -1) -> bytes:
    """A whole small file (the index, a ``checkpoint`` state file), or its first ``limit``
    bytes; raises OSError."""
    size = span.size if span.size is not None else -1
    if limit >= 0:
        size = limit if size < 0 else min(size, limit)
    with span.path.open("rb") as f:
        f.seek(span.start)
        return f.read(size)


# --- Bundle --------------------------------------------------------------------------------------


def _read_bundle_index(location: _Location) -> tuple[Any, dict[str, Any]]:
    """Return (BundleHeaderProto, {tensor name: BundleEntryProto}) from ``<prefix>.index``."""
    where = f"{location.name}.index"
    span = location.span(".index")
    if span is None:
        raise MusicVAEError(f"{where}: checkpoint index not found")
    try:
        buf = _read_span(span)
    except OSError as e:
        raise MusicVAEError(f"{where}: cannot read checkpoint index ({e.strerror or e})") from None
    classes = _bundle_classes()
    header, entries = None, {}  # protobuf messages
    try:
        for key, value in _table_items(buf, where):
            if key == b"":
                header = classes["BundleHeaderProto"].FromString(value)
            else:
                entries[key.decode()] = classes["BundleEntryProto"].FromString(value)
    except MusicVAEError:
        raise
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError / bad UTF-8 (and upb's other errors): the table held garbage
        raise MusicVAEError(f"{where}: corrupt checkpoint index ({e})") from None
    if header is None:
        raise MusicVAEError(f"{where}: no bundle header (not a V2 checkpoint)")
    if header.version.min_consumer > 1:
        raise MusicVAEError(f"{where}: needs a newer checkpoint reader (format version)")
    return header, entries


def _entry_info(name: str, entry: Any, where: str) -> tuple[tuple[int, ...], str, str]:
    if entry.slices:
        raise MusicVAEError(f"{where}: partitioned variable {name!r} is not supported")
    if entry.dtype not in _DTYPES:
        raise MusicVAEError(f"{where}: unsupported dtype (TF DataType {entry.dtype}) for {name!r}")
    np_code, dtype_name = _DTYPES[entry.dtype]
    return tuple(int(d.size) for d in entry.shape.dim), np_code, dtype_name


def _decode_strings(raw: bytes, count: int, where: str) -> tuple[np.ndarray, int]:
    """Decode a DT_STRING tensor; return (object array of bytes, crc32c over what TF checksums)."""
    lengths, pos, crc = [], 0, 0
    for _ in range(count):
        n, pos = _varint(raw, pos, where)
        lengths.append(n)
        crc = crc32c.crc32c(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n), crc)
    if pos + 4 > len(raw):
        raise MusicVAEError(f"{where}: truncated string tensor")
    length_crc = raw[pos : pos + 4]
    if _unmask(struct.unpack("<I", length_crc)[0]) != crc:
        raise MusicVAEError(f"{where}: CRC mismatch in string tensor lengths")
    crc, start = crc32c.crc32c(length_crc, crc), pos + 4
    if start + sum(lengths) != len(raw):
        raise MusicVAEError(f"{where}: string tensor lengths do not match its size")
    out = np.empty(count, object)
    pos = start
    for i, n in enumerate(lengths):
        out[i] = raw[pos : pos + n]
        pos += n
    return out, crc32c.crc32c(raw[start:], crc)


@dataclass(frozen=True)
class TensorSpec:
    """A stored tensor's shape and dtype name (``"float32"``), known from the index alone."""

    shape: tuple[int, ...]
    dtype: str


class TensorBundle(Mapping[str, np.ndarray]):
    """An open TF V2 checkpoint: a mapping of variable names to arrays that reads each tensor
    from its data file when it is looked up (checked against its CRC, into a fresh array that
    the caller owns) and keeps none. :attr:`specs` has every shape without reading any data.
    Use it as a context manager, or :meth:`close` it, to close the data files."""

    def __init__(self, location: _Location) -> None:
        header, self._entries = _read_bundle_index(location)
        self._location = location
        self.name = location.name
        self._num_shards = max(int(header.num_shards), 1)
        self._order = "<" if header.endianness == 0 else ">"
        self._files: dict[int, tuple[io.BufferedReader, _Span]] = {}

    def __enter__(self) -> TensorBundle:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:  # Mapping's default would read the tensor
        return name in self._entries

    def spec(self, name: str) -> TensorSpec:
        shape, _, dtype_name = _entry_info(name, self._entries[name], f"{self.name}.index")
        return TensorSpec(shape, dtype_name)

    @property
    def specs(self) -> dict[str, TensorSpec]:
        """Every variable's shape and dtype, from the index."""
        return {name: self.spec(name) for name in self._entries}

    def _shard(self, shard_id: int) -> tuple[io.BufferedReader, _Span, str]:
        suffix = f".data-{shard_id:05d}-of-{self._num_shards:05d}"
        where = f"{self.name}{suffix}"
        if shard_id not in self._files:
            span = self._location.span(suffix)
            if span is None and self._location.members is not None:
                raise MusicVAEError(f"{where}: cannot read (not in the archive)")
            span = span or _Span(Path(self._location.key + suffix))
            try:
                self._files[shard_id] = (span.path.open("rb"), span)
            except OSError as e:
                raise MusicVAEError(f"{where}: cannot read ({e.strerror or e})") from None
        f, span = self._files[shard_id]
        return f, span, where

    def __getitem__(self, name: str) -> np.ndarray:
        entry = self._entries[name]
        shape, np_code, _ = _entry_info(name, entry, f"{self.name}.index")
        f, span, where = self._shard(entry.shard_id)
        count = int(np.prod(shape, dtype=np.int64))
        if span.size is not None and entry.offset + entry.size > span.size:
            raise MusicVAEError(f"{where}: truncated (tensor {name!r} runs past the end)")
        f.seek(span.start + entry.offset)
        if np_code == "O":
            raw = f.read(entry.size)
            if len(raw) != entry.size:
                raise MusicVAEError(f"{where}: truncated (tensor {name!r} runs past the end)")
            arr, crc = _decode_strings(raw, count, where)
        else:
            dtype = np.dtype(self._order + np_code)
            if entry.size != count * dtype.itemsize:
                raise MusicVAEError(f"{where}: size of {name!r} does not match its shape")
            arr = np.empty(count, dtype)  # read straight into the array the caller gets
            buf = arr.view(np.uint8).data
            if f.readinto(buf) != entry.size:
                raise MusicVAEError(f"{where}: truncated (tensor {name!r} runs past the end)")
            crc = crc32c.crc32c(buf)
        # proto3 cannot tell an unset crc32c from 0; treat 0 as "no checksum stored".
        if entry.crc32c and _unmask(entry.crc32c) != crc:
            raise MusicVAEError(f"{where}: CRC mismatch for tensor {name!r}")
        if np_code != "O" and not arr.dtype.isnative:
            arr = arr.byteswap(inplace=True).view(arr.dtype.newbyteorder("="))
        if entry.dtype == 14:  # bfloat16 is the top half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.reshape(shape)


# --- Locating the checkpoint ---------------------------------------------------------------------


def _find_prefix(names: Collection[str], read_text: Callable[[str], str], where: str) -> str:
    """The checkpoint prefix among a folder's files (relative POSIX names): the one its
    ``checkpoint`` state file names (at the top, else the only one anywhere), else its one
    ``.index``."""
    states = ["checkpoint"] if "checkpoint" in names else []
    if not states:  # e.g. an archive holding the training folder
        states = sorted(n for n in names if PurePosixPath(n).name == "checkpoint")
    if len(states) == 1:
        state, folder = states[0], PurePosixPath(states[0]).parent
        for line in read_text(state).splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model_checkpoint_path":
                rel = PurePosixPath(value.strip().strip('"'))
                # An absolute path from the training machine: look next to the state file instead.
                for cand in (folder / rel, folder / rel.name):
                    if f"{cand}.index" in names:
                        return str(cand)
                raise MusicVAEError(f"{where}/{state}: names {rel}, whose .index is missing")
    indexes = sorted(n for n in names if n.endswith(".index"))
    if len(indexes) == 1:
        return indexes[0].removesuffix(".index")
    problem = "no checkpoint (.index) found" if not indexes else "several checkpoints; name one"
    raise MusicVAEError(f"{where}: {problem}")


def _prefix_in_dir(directory: Path) -> Path:
    """The checkpoint prefix a directory holds: its ``checkpoint`` state file, else its one index."""
    names = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}

    def read_text(name: str) -> str:
        return (directory / name).read_text(errors="replace")

    return directory / _find_prefix(names, read_text, str(directory))


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a tar (or compressed tar) file; a truncated .tar.gz counts, so that
    extracting it reports the damage instead of a different guess at what the file is."""
    try:
        return tarfile.is_tarfile(path)
    except EOFError:  # gzip/bz2/xz stream cut short after a valid start
        return True


def _safe_name(member: tarfile.TarInfo) -> str | None:
    """A regular file's relative name, or None for what is never read (links, devices, names
    that would escape the folder)."""
    parts = PurePosixPath(member.name).parts
    if not member.isfile() or member.name.startswith("/") or ".." in parts or not parts:
        return None
    return "/".join(parts)


def _tar_members(archive: Path) -> dict[str, _Span] | None:
    """An uncompressed tar's regular files, by name, as spans of the archive itself (nothing
    is copied); None for a compressed or damaged one, which is extracted instead (and then
    reports the damage)."""
    try:
        size = archive.stat().st_size
        members: dict[str, _Span] = {}
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                name = _safe_name(member)
                if name is None:
                    continue
                if member.issparse() or member.offset_data + member.size > size:
                    return None
                members[name] = _Span(archive, member.offset_data, member.size)
    except (tarfile.TarError, OSError, EOFError):
        return None
    return members


def _extract_tar(archive: Path, dest: Path) -> None:
    """Extract only regular files with safe relative names (no links, no escaping ``dest``)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = _safe_name(member)
                if name is None:
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)  # None only for non-files, skipped above
                if src is None:
                    continue
                with src, target.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise MusicVAEError(f"{archive}: cannot extract checkpoint archive ({e})") from None


_STATE_LIMIT = 1 << 20  # a `checkpoint` state file is a few lines


@contextmanager
def _located(path: str | os.PathLike) -> Iterator[_Location]:
    path = Path(path)
    if path.suffix == ".index" or ".data-" in path.name:
        prefix = str(path).rsplit(".index" if path.suffix == ".index" else ".data-", 1)[0]
        yield _Location(prefix, prefix)
    elif path.is_dir() or (path.name == "checkpoint" and path.is_file()):
        prefix = str(_prefix_in_dir(path if path.is_dir() else path.parent))
        yield _Location(prefix, prefix)
    elif path.is_file() and is_archive(path):
        members = _tar_members(path)
        if members is not None:

            def read_text(name: str) -> str:
                try:
                    return _read_span(members[name], _STATE_LIMIT).decode(errors="replace")
                except OSError as e:
                    raise MusicVAEError(
                        f"{path}: {name}: cannot read ({e.strerror or e})"
                    ) from None

            rel = _find_prefix(members, read_text, str(path))
            yield _Location(f"{path}: {rel}", rel, members)
            return
        with tempfile.TemporaryDirectory(prefix="musicvae-ckpt-") as tmp:
            _extract_tar(path, Path(tmp))
            try:
                prefix = str(_prefix_in_dir(Path(tmp)))
                yield _Location(prefix, prefix)
            except MusicVAEError as e:
                # Name the archive the user gave, not the temporary folder it was unpacked in.
                where = str(e).removeprefix(f"{tmp}: ").replace(f"{tmp}/", "")
                raise MusicVAEError(f"{path}: {where}") from None
    else:
        yield _Location(str(path), str(path))


@contextmanager
def open_checkpoint(path: str | os.PathLike) -> Iterator[TensorBundle]:
    """A TF V2 checkpoint opened for reading tensor by tensor (:class:`TensorBundle`).

    ``path`` is a prefix (``.../model.ckpt-5``), its ``.index`` or a ``.data-`` file, a directory
    with a ``checkpoint`` state file (or a single ``.index``), that state file, or a tar file
    holding one (an uncompressed tar is read in place, a compressed one extracted for as long
    as the bundle is open)."""
    with _located(path) as location, TensorBundle(location) as bundle:
        yield bundle


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a TF V2 checkpoint into numpy arrays, keyed by variable name.

    ``path`` is any form :func:`open_checkpoint` takes.
    """
    with open_checkpoint(path) as bundle:
        return {name: bundle[name] for name in bundle}


def list_variables(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], str]]:
    """Variable name -> (shape, dtype name such as "float32"), from the index alone."""
    with open_checkpoint(path) as bundle:
        return {name: (spec.shape, spec.dtype) for name, spec in bundle.specs.items()}


# --- Writing -------------------------------------------------------------------------------------

_TF_DTYPES = {np.dtype(code): enum for enum, (code, _) in _DTYPES.items() if enum not in (7, 14)}


def write_index(
    prefix: str | os.PathLike,
    entries: Mapping[str, Any],
    *,
    endianness: int = 0,
    block_type: int = 0,
) -> None:
    """``<prefix>.index`` for a one-shard bundle: its header and the ``BundleEntryProto`` of
    each tensor (``entries``, by name), whose bytes the caller wrote to the data file."""
    cls = _bundle_classes()
    header = cls["BundleHeaderProto"](num_shards=1, endianness=endianness)
    header.version.producer = 1
    items = [(b"", header.SerializeToString())]
    items += [(name.encode(), entries[name].SerializeToString()) for name in sorted(entries)]
    _write_table(Path(f"{prefix}.index"), items, block_type)


def bundle_entry(dtype: int, shape: tuple[int, ...], offset: int, raw: bytes | memoryview) -> Any:
    """The ``BundleEntryProto`` of a tensor of TF DataType ``dtype`` whose bytes ``raw`` lie at
    ``offset`` in shard 0 (with their masked CRC-32C)."""
    cls = _bundle_classes()
    entry = cls["BundleEntryProto"](dtype=dtype, offset=offset, size=len(raw))
    entry.shape.dim.extend(cls["TensorShapeProto.Dim"](size=s) for s in shape)
    entry.crc32c = _mask(crc32c.crc32c(raw))
    return entry


def write_bundle(
    prefix: str | os.PathLike, tensors: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]
) -> Path:
    """Write numeric tensors as a one-shard TF V2 checkpoint at ``prefix`` (as TF's ``Saver``
    does; :func:`read_checkpoint` and TensorFlow read it back) and return the prefix.

    ``tensors`` may be a generator of ``(name, array)`` pairs: each is written as it comes, so
    a large checkpoint never needs to be in memory whole."""
    prefix = Path(prefix)
    pairs = tensors.items() if isinstance(tensors, Mapping) else tensors
    entries: dict[str, Any] = {}
    offset = 0
    with open(f"{prefix}.data-00000-of-00001", "wb") as data:
        for name, value in pairs:
            arr = np.asarray(value)
            native = arr.dtype.newbyteorder("=")
            if native not in _TF_DTYPES:
                raise MusicVAEError(f"{name}: cannot write dtype {arr.dtype} to a TF checkpoint")
            flat = np.ascontiguousarray(arr, native.newbyteorder("<")).reshape(-1)
            raw = flat.view(np.uint8).data
            entries[name] = bundle_entry(_TF_DTYPES[native], arr.shape, offset, raw)
            data.write(raw)
            offset += len(raw)
    write_index(prefix, entries)
    return prefix
