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
"""

from __future__ import annotations

import os
import struct
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

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


def _table_items(index_path: Path) -> Iterator[tuple[bytes, bytes]]:
    where = str(index_path)
    try:
        buf = index_path.read_bytes()
    except OSError as e:
        raise MusicVAEError(f"{where}: cannot read checkpoint index ({e.strerror or e})") from None
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


# --- Bundle --------------------------------------------------------------------------------------


def _read_bundle_index(prefix: Path) -> tuple[Any, dict[str, Any]]:
    """Return (BundleHeaderProto, {tensor name: BundleEntryProto}) from ``<prefix>.index``."""
    index_path = Path(f"{prefix}.index")
    if not index_path.is_file():
        raise MusicVAEError(f"{index_path}: checkpoint index not found")
    classes = _bundle_classes()
    header, entries = None, {}  # protobuf messages
    try:
        for key, value in _table_items(index_path):
            if key == b"":
                header = classes["BundleHeaderProto"].FromString(value)
            else:
                entries[key.decode()] = classes["BundleEntryProto"].FromString(value)
    except MusicVAEError:
        raise
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError / bad UTF-8 (and upb's other errors): the table held garbage
        raise MusicVAEError(f"{index_path}: corrupt checkpoint index ({e})") from None
    if header is None:
        raise MusicVAEError(f"{index_path}: no bundle header (not a V2 checkpoint)")
    if header.version.min_consumer > 1:
        raise MusicVAEError(f"{index_path}: needs a newer checkpoint reader (format version)")
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


def _read_tensors(prefix: Path) -> dict[str, np.ndarray]:
    header, entries = _read_bundle_index(prefix)
    num_shards = max(int(header.num_shards), 1)
    order = "<" if header.endianness == 0 else ">"
    out: dict[str, np.ndarray] = {}
    files: dict[int, BinaryIO] = {}
    try:
        for name, entry in entries.items():
            data_path = Path(f"{prefix}.data-{entry.shard_id:05d}-of-{num_shards:05d}")
            where = str(data_path)
            shape, np_code, _ = _entry_info(name, entry, f"{prefix}.index")
            if entry.shard_id not in files:
                try:
                    files[entry.shard_id] = data_path.open("rb")
                except OSError as e:
                    raise MusicVAEError(f"{where}: cannot read ({e.strerror or e})") from None
            f = files[entry.shard_id]
            f.seek(entry.offset)
            raw = f.read(entry.size)
            if len(raw) != entry.size:
                raise MusicVAEError(f"{where}: truncated (tensor {name!r} runs past the end)")
            count = int(np.prod(shape, dtype=np.int64))
            if np_code == "O":
                arr, crc = _decode_strings(raw, count, where)
            else:
                dtype = np.dtype(order + np_code)
                if len(raw) != count * dtype.itemsize:
                    raise MusicVAEError(f"{where}: size of {name!r} does not match its shape")
                arr, crc = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("=")), None
                if entry.dtype == 14:  # bfloat16 is the top half of a float32
                    arr = (arr.astype(np.uint32) << 16).view(np.float32)
            actual = crc32c.crc32c(raw) if crc is None else crc
            # proto3 cannot tell an unset crc32c from 0; treat 0 as "no checksum stored".
            if entry.crc32c and _unmask(entry.crc32c) != actual:
                raise MusicVAEError(f"{where}: CRC mismatch for tensor {name!r}")
            out[name] = arr.reshape(shape)
    finally:
        for f in files.values():
            f.close()
    return out


# --- Locating the checkpoint ---------------------------------------------------------------------


def _prefix_in_dir(directory: Path) -> Path:
    """The checkpoint prefix a directory holds: its ``checkpoint`` state file, else its one index."""
    states = [directory / "checkpoint"]
    if not states[0].is_file():  # e.g. an archive holding the training folder
        states = [p for p in directory.rglob("checkpoint") if p.is_file()]
    if len(states) == 1:
        state, directory = states[0], states[0].parent
        for line in state.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model_checkpoint_path":
                rel = Path(value.strip().strip('"'))
                # An absolute path from the training machine: look next to the state file instead.
                for cand in (directory / rel, directory / rel.name):
                    if Path(f"{cand}.index").is_file():
                        return cand
                raise MusicVAEError(f"{state}: names {rel}, whose .index is missing")
    indexes = sorted(directory.rglob("*.index"))
    if len(indexes) == 1:
        return indexes[0].with_suffix("")
    problem = "no checkpoint (.index) found" if not indexes else "several checkpoints; name one"
    raise MusicVAEError(f"{directory}: {problem}")


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a tar (or compressed tar) file; a truncated .tar.gz counts, so that
    extracting it reports the damage instead of a different guess at what the file is."""
    try:
        return tarfile.is_tarfile(path)
    except EOFError:  # gzip/bz2/xz stream cut short after a valid start
        return True


def _extract_tar(archive: Path, dest: Path) -> None:
    """Extract only regular files with safe relative names (no links, no escaping ``dest``)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or member.name.startswith("/") or ".." in parts:
                    continue
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)  # None only for non-files, skipped above
                if src is None:
                    continue
                with src, target.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise MusicVAEError(f"{archive}: cannot extract checkpoint archive ({e})") from None


@contextmanager
def _resolved_prefix(path: str | os.PathLike) -> Iterator[Path]:
    path = Path(path)
    if path.suffix == ".index" or ".data-" in path.name:
        yield Path(str(path).rsplit(".index" if path.suffix == ".index" else ".data-", 1)[0])
    elif path.is_dir() or (path.name == "checkpoint" and path.is_file()):
        yield _prefix_in_dir(path if path.is_dir() else path.parent)
    elif path.is_file() and is_archive(path):
        with tempfile.TemporaryDirectory(prefix="musicvae-ckpt-") as tmp:
            _extract_tar(path, Path(tmp))
            try:
                yield _prefix_in_dir(Path(tmp))
            except MusicVAEError as e:
                # Name the archive the user gave, not the temporary folder it was unpacked in.
                where = str(e).removeprefix(f"{tmp}: ").replace(f"{tmp}/", "")
                raise MusicVAEError(f"{path}: {where}") from None
    else:
        yield path


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a TF V2 checkpoint into numpy arrays, keyed by variable name.

    ``path`` is a prefix (``.../model.ckpt-5``), its ``.index`` file, a directory with a
    ``checkpoint`` state file (or a single ``.index``), or a .tar/.tar.gz holding one.
    """
    with _resolved_prefix(path) as prefix:
        return _read_tensors(prefix)


def list_variables(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], str]]:
    """Variable name -> (shape, dtype name such as "float32"), from the index alone."""
    with _resolved_prefix(path) as prefix:
        _, entries = _read_bundle_index(prefix)
        where = f"{prefix}.index"
        out = {}
        for name, entry in entries.items():
            shape, _, dtype_name = _entry_info(name, entry, where)
            out[name] = (shape, dtype_name)
        return out
