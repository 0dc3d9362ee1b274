"""TF V2 checkpoint reading: Magenta's real tiny checkpoints, plus hand-built bundles for rare paths."""

from __future__ import annotations

import json
import shutil
import struct
import tarfile

import crc32c
import numpy as np
import pytest

from musicvae.errors import MusicVAEError
from musicvae.interop import tf_checkpoint
from musicvae.interop.tf_checkpoint import (
    TensorSpec,
    _encode_varint,
    bundle_entry,
    list_variables,
    open_checkpoint,
    read_checkpoint,
    write_bundle,
    write_index,
)

MODELS = ["groovae_tiny", "hierdec_tiny"]


def _copy(src_dir, dst_dir):
    dst_dir.mkdir()
    for f in src_dir.glob("model.ckpt-5*"):
        shutil.copy(f, dst_dir / f.name)
    shutil.copy(src_dir / "checkpoint", dst_dir / "checkpoint")
    for f in dst_dir.iterdir():
        f.chmod(0o644)  # the shared fixtures are read-only
    return dst_dir


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_variable_has_the_listed_shape_and_dtype(magenta_dir, model):
    spec = json.loads((magenta_dir / model / "variables.json").read_text())
    tensors = read_checkpoint(magenta_dir / model)
    expected = {v["name"]: (tuple(v["shape"]), v["dtype"]) for v in spec["variables"]}
    assert {k: (a.shape, str(a.dtype)) for k, a in tensors.items()} == expected
    assert list_variables(magenta_dir / model) == expected
    assert tensors["global_step"] == 5 == spec["global_step"]
    assert tensors["global_step"].dtype == np.int64
    # Adam's beta powers start at beta and are multiplied (in float32) once per step: beta ** 6.
    for beta, key in ((0.9, "beta1_power"), (0.999, "beta2_power")):
        power = np.float32(beta)
        for _ in range(5):
            power = np.float32(power * np.float32(beta))
        assert tensors[key] == power


@pytest.mark.slow
def test_weights_reproduce_magentas_posterior(magenta_dir):
    w = read_checkpoint(magenta_dir / "groovae_tiny" / "model.ckpt-5")
    ref = np.load(magenta_dir / "groovae_tiny" / "reference.npz")
    h = ref["encoder_output"].astype(np.float64)
    mu = h @ w["encoder/mu/kernel"] + w["encoder/mu/bias"]
    sigma = np.logaddexp(0.0, h @ w["encoder/sigma/kernel"] + w["encoder/sigma/bias"])
    np.testing.assert_allclose(mu, ref["mu"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma, ref["sigma"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_all_path_forms_agree(magenta_dir):
    d = magenta_dir / "hierdec_tiny"
    forms = [d, d / "checkpoint", d / "model.ckpt-5", d / "model.ckpt-5.index"]
    forms.append(d / "model.ckpt-5.data-00000-of-00001")
    ref = read_checkpoint(d)
    for form in forms:
        got = read_checkpoint(form)
        assert got.keys() == ref.keys()
        assert all(np.array_equal(got[k], ref[k]) for k in ref)


@pytest.mark.slow
def test_tar_archives(magenta_dir, tmp_path):
    src = magenta_dir / "groovae_tiny"
    ref = read_checkpoint(src)
    # Like Magenta's published groovae_4bar.tar: a folder, no `checkpoint` state file.
    plain = tmp_path / "groovae_4bar.tar"
    with tarfile.open(plain, "w") as tar:
        for f in src.glob("model.ckpt-5.*"):
            tar.add(
                f, arcname=f"groovae_4bar/{f.name.replace('model.ckpt-5', 'groovae_4bar.ckpt')}"
            )
        evil = tarfile.TarInfo("../escape.index")
        evil.size = 3
        tar.addfile(evil, __import__("io").BytesIO(b"bad"))
    got = read_checkpoint(plain)
    assert np.array_equal(
        got["decoder/output_projection/kernel"], ref["decoder/output_projection/kernel"]
    )
    assert list_variables(plain) == list_variables(src)
    assert not (tmp_path.parent / "escape.index").exists()
    # A gzipped training directory: its state file picks model.ckpt-5 over an older checkpoint.
    gz = tmp_path / "run.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        tar.add(src, arcname="run")
        tar.add(src / "model.ckpt-5.index", arcname="run/model.ckpt-1.index")
    assert read_checkpoint(gz).keys() == ref.keys()


@pytest.mark.slow
def test_flipped_data_byte_fails_the_crc(magenta_dir, tmp_path):
    d = _copy(magenta_dir / "groovae_tiny", tmp_path / "ck")
    data = d / "model.ckpt-5.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    data.write_bytes(bytes(raw))
    with pytest.raises(MusicVAEError, match=r"data-00000-of-00001: CRC mismatch for tensor '"):
        read_checkpoint(d)
    assert len(list_variables(d)) == 51  # the index alone is still fine


@pytest.mark.slow
def test_corrupt_or_truncated_index(magenta_dir, tmp_path):
    d = _copy(magenta_dir / "groovae_tiny", tmp_path / "ck")
    index = d / "model.ckpt-5.index"
    good = index.read_bytes()
    flipped = bytearray(good)
    flipped[40] ^= 0x01
    index.write_bytes(bytes(flipped))
    with pytest.raises(MusicVAEError, match=r"model\.ckpt-5\.index: CRC mismatch in table block"):
        read_checkpoint(d)
    index.write_bytes(good[: len(good) // 2])
    with pytest.raises(MusicVAEError, match=r"model\.ckpt-5\.index: bad magic number"):
        read_checkpoint(d)
    index.write_bytes(good[:20])
    with pytest.raises(MusicVAEError, match=r"truncated checkpoint index \(20 bytes\)"):
        list_variables(d)
    index.write_bytes(good[:100] + good[-48:])  # footer intact, blocks gone
    with pytest.raises(MusicVAEError, match="truncated"):
        read_checkpoint(d)


@pytest.mark.slow
def test_missing_files(magenta_dir, tmp_path):
    with pytest.raises(MusicVAEError, match=r"nope\.index: checkpoint index not found"):
        read_checkpoint(tmp_path / "nope")
    with pytest.raises(MusicVAEError, match="no checkpoint"):
        read_checkpoint(tmp_path)
    d = _copy(magenta_dir / "groovae_tiny", tmp_path / "ck")
    (d / "model.ckpt-5.data-00000-of-00001").unlink()
    with pytest.raises(MusicVAEError, match=r"data-00000-of-00001: cannot read"):
        read_checkpoint(d)


# --- Hand-built bundles: exercise dtypes and layouts the Magenta fixtures do not contain. --------


def _write_bundle(prefix, tensors, *, endianness=0, block_type=0):
    """tensors: name -> (TF dtype enum, shape, raw bytes, stored crc or None for the right one);
    ``block_type`` is the compression byte of the index's data block (which stays uncompressed)."""
    entries, data = {}, bytearray()
    for name in sorted(tensors):
        dtype, shape, raw, crc = tensors[name]
        entries[name] = bundle_entry(dtype, shape, len(data), raw)
        if crc is not None:
            entries[name].crc32c = crc
        data += raw
    (prefix.parent / f"{prefix.name}.data-00000-of-00001").write_bytes(bytes(data))
    write_index(prefix, entries, endianness=endianness, block_type=block_type)


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_strings_bfloat16_and_big_endian(tmp_path):
    # DT_STRING layout: varint lengths | masked crc of the lengths (as uint32) | bytes; the entry's
    # crc covers the uint32 lengths, the stored length crc and the bytes.
    words = [b"conv", b"", b"\xc3\xa9t\xc3\xa9"]
    len_crc = crc32c.crc32c(b"".join(struct.pack("<I", len(w)) for w in words))
    stored = struct.pack("<I", _mask(len_crc))
    raw_str = b"".join(_encode_varint(len(w)) for w in words) + stored + b"".join(words)
    entry_crc = _mask(crc32c.crc32c(b"".join(words), crc32c.crc32c(stored, len_crc)))
    big = np.array([[1.5, -2.0, 3.25]], ">f4")
    bf16 = (np.array([1.0, -2.5], "<f4").view("<u4") >> 16).astype(">u2")
    prefix = tmp_path / "model.ckpt-1"
    _write_bundle(
        prefix,
        {
            "names": (7, (3,), raw_str, entry_crc),
            "w": (1, (1, 3), big.tobytes(), None),
            "h": (14, (2,), bf16.tobytes(), None),
        },
        endianness=1,
    )
    got = read_checkpoint(prefix)
    assert list(got["names"]) == words
    assert got["w"].dtype == np.float32 and got["w"].dtype.isnative
    assert got["w"].tolist() == [[1.5, -2.0, 3.25]]
    assert got["h"].tolist() == [1.0, -2.5] and got["h"].dtype == np.float32
    assert list_variables(tmp_path) == {
        "names": ((3,), "string"),
        "w": ((1, 3), "float32"),
        "h": ((2,), "bfloat16"),
    }


def test_unsupported_dtype_and_snappy_are_clear(tmp_path):
    _write_bundle(tmp_path / "res", {"handle": (20, (), b"\0" * 4, None)})
    with pytest.raises(MusicVAEError, match=r"res\.index: unsupported dtype \(TF DataType 20\)"):
        list_variables(tmp_path / "res")
    _write_bundle(tmp_path / "snap", {"x": (1, (1,), b"\0" * 4, None)}, block_type=1)
    try:
        import cramjam  # noqa: F401
    except ImportError:
        with pytest.raises(MusicVAEError, match=r"snap\.index: snappy-compressed index"):
            read_checkpoint(tmp_path / "snap")
    _write_bundle(tmp_path / "bad", {"x": (1, (2,), b"\0" * 4, None)})
    with pytest.raises(MusicVAEError, match="size of 'x' does not match its shape"):
        read_checkpoint(tmp_path / "bad")


def test_write_bundle_round_trips_every_numeric_dtype(tmp_path):
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.array([1.5, -2.25]),
        "i64": np.array(7, np.int64),  # a scalar, like global_step
        "i32": np.array([[1], [2]], np.int32),
        "u8": np.array([0, 255], np.uint8),
        "b": np.array([True, False]),
        "be": np.array([1.0, 2.0], ">f4"),  # written little-endian, read back native
        "empty": np.zeros((0, 4), np.float32),
    }
    # A generator: written as it comes, in any order; the index is sorted.
    write_bundle(tmp_path / "model.ckpt-3", ((k, arrays[k]) for k in reversed(list(arrays))))
    got = read_checkpoint(tmp_path / "model.ckpt-3")
    assert got.keys() == arrays.keys()
    for key, value in arrays.items():
        assert got[key].dtype == value.dtype.newbyteorder("=") and got[key].shape == value.shape
        assert np.array_equal(got[key], value), key
    with pytest.raises(MusicVAEError, match="s: cannot write dtype <U1"):
        write_bundle(tmp_path / "bad", {"s": np.array(["x"])})


def test_an_open_bundle_reads_each_tensor_when_asked(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_bundle(tmp_path / "m", {"w": w, "w/Adam": w * 2, "global_step": np.array(9, np.int64)})
    data = tmp_path / "m.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[len(w.tobytes()) + 4] ^= 0xFF  # damage an optimizer slot, which an import never reads
    data.write_bytes(bytes(raw))
    with open_checkpoint(tmp_path / "m") as bundle:
        assert len(bundle) == 3 and "w/Adam" in bundle and "nope" not in bundle
        assert bundle.specs == {
            "global_step": TensorSpec((), "int64"),
            "w": TensorSpec((3, 4), "float32"),
            "w/Adam": TensorSpec((3, 4), "float32"),
        }
        first, second = bundle["w"], bundle["w"]
        assert np.array_equal(first, w) and first is not second and first.flags.writeable
        assert int(bundle["global_step"]) == 9
        with pytest.raises(MusicVAEError, match=r"m\.data-00000-of-00001: CRC mismatch .*'w/Adam'"):
            bundle["w/Adam"]
        with pytest.raises(KeyError):
            bundle["nope"]


@pytest.mark.slow
def test_an_uncompressed_tar_is_read_in_place(magenta_dir, tmp_path, monkeypatch):
    src = magenta_dir / "groovae_tiny"
    plain = tmp_path / "groovae_4bar.tar"
    with tarfile.open(plain, "w") as tar:
        for f in sorted(src.glob("model.ckpt-5.*")):
            tar.add(f, arcname=f"./g/{f.name.replace('model.ckpt-5', 'groovae_4bar.ckpt')}")

    def no_extraction(*args):
        raise AssertionError("extracted")

    monkeypatch.setattr(tf_checkpoint, "_extract_tar", no_extraction)
    ref = read_checkpoint(src)
    got = read_checkpoint(plain)
    assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref)
    # A damaged tensor names the archive and the member.
    cut = tmp_path / "cut.tar"
    data = plain.read_bytes()
    with tarfile.open(plain) as tar:
        member = next(m for m in tar if m.name.endswith(".data-00000-of-00001"))
    damaged = bytearray(data)
    damaged[member.offset_data + 100] ^= 0x01
    cut.write_bytes(bytes(damaged))
    with pytest.raises(
        MusicVAEError, match=r"cut\.tar: g/groovae_4bar\.ckpt\.data-00000-of-00001: CRC"
    ):
        read_checkpoint(cut)
    # An archive cut short inside a member is extracted instead, which names the damage.
    cut.write_bytes(data[: member.offset_data + 100])
    monkeypatch.undo()
    with pytest.raises(MusicVAEError, match=r"cut\.tar: cannot extract checkpoint archive"):
        read_checkpoint(cut)
