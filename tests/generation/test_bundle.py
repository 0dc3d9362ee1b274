"""Model bundles: weights and config in one safetensors file, round trip and bad files."""

from __future__ import annotations

import json

import pytest
import torch

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.generation.bundle import FORMAT, load_bundle, read_bundle, save_bundle
from musicvae.models import build_model


def test_round_trip(tmp_path):
    config = get_config("debug", "z_size=4")
    torch.manual_seed(0)
    model = build_model(config)
    path = save_bundle(model, config, tmp_path / "m.safetensors", {"step": 12, "data": "gmd"})
    loaded, cfg, meta = load_bundle(path)
    assert cfg == config
    assert meta["format"] == FORMAT
    assert meta["step"] == "12" and meta["data"] == "gmd"
    assert json.loads(meta["config"])["hparams"]["z_size"] == 4
    assert not loaded.training
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    config = get_config("debug")
    torch.manual_seed(0)
    model = build_model(config).eval()
    full = save_bundle(model, config, tmp_path / "full.safetensors")
    half = save_bundle(model, config, tmp_path / "half.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded, _, meta = load_bundle(half)
    assert meta["weights_dtype"] == "float16"
    for k, w in model.state_dict().items():
        got = loaded.state_dict()[k]
        assert got.dtype == torch.float32, k
        torch.testing.assert_close(got, w.half().float(), rtol=0, atol=0)
    x = torch.rand(2, 64, 27)
    lengths = torch.tensor([64, 64])
    with torch.no_grad():
        mu_full = model.encode(x, lengths)[0]
        mu_half = loaded.encode(x, lengths)[0]
    torch.testing.assert_close(mu_half, mu_full, rtol=0, atol=2e-3)


def test_bad_files(tmp_path):
    with pytest.raises(MusicVAEError, match="no such model bundle"):
        load_bundle(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(MusicVAEError, match="junk.safetensors: not a readable safetensors file"):
        read_bundle(junk)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(MusicVAEError, match="not a musicvae model bundle"):
        read_bundle(plain)


def test_weights_must_fit_the_config(tmp_path):
    config = get_config("debug")
    path = save_bundle(build_model(config), config, tmp_path / "m.safetensors")
    tensors, meta = read_bundle(path)
    meta["config"] = json.dumps(get_config("debug", "z_size=16").to_dict())
    from safetensors.torch import save_file

    save_file(tensors, tmp_path / "wrong.safetensors", metadata=meta)
    with pytest.raises(MusicVAEError, match="weights do not fit config 'debug'"):
        load_bundle(tmp_path / "wrong.safetensors")
