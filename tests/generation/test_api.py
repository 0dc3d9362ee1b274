"""``load()``: run folders, checkpoints, bundles (incl. the default bundled model), Magenta
checkpoints and the loading errors."""

from __future__ import annotations

import shutil
import tarfile

import numpy as np
import pytest

import musicvae
from musicvae.errors import MusicVAEError
from musicvae.generation import api, load
from tests.generation.helpers import debug_run, groove


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load(debug_run(tmp_path_factory.mktemp("run")))


def test_lazy_export():
    assert musicvae.load is api.load


def test_load_errors(tmp_path, monkeypatch):
    with pytest.raises(MusicVAEError, match="no such checkpoint, run folder or bundled model"):
        load(tmp_path / "missing")
    with pytest.raises(MusicVAEError, match="no checkpoints here"):
        load(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MusicVAEError, match="not a model file"):
        load(tmp_path / "notes.txt")
    monkeypatch.setattr(api, "bundled_path", lambda name: tmp_path / f"{name}.safetensors")
    with pytest.raises(MusicVAEError, match="bundled model 'groovae_4bar' is not installed"):
        load()


def test_load_default_bundle(model, tmp_path, monkeypatch):
    model.save(tmp_path / "groovae_4bar.safetensors", {"step": 1})
    monkeypatch.setattr(api, "bundled_path", lambda name: tmp_path / f"{name}.safetensors")
    bundled = load()
    assert bundled.kind == "bundle" and bundled.step == 1
    a = groove(4)
    np.testing.assert_array_equal(bundled.encode(a)[1], model.encode(a)[1])


def test_load_magenta_checkpoint(magenta_dir, tmp_path):
    ref = np.load(magenta_dir / "groovae_tiny" / "reference.npz")
    tiny = load(magenta_dir / "groovae_tiny")
    assert tiny.kind == "magenta" and tiny.step == 5
    assert tiny.config.name == "groovae_4bar" and tiny.z_size == 8  # sizes from the weights
    _, mu, sigma = tiny.encode_tensors(ref["inputs"])
    np.testing.assert_allclose(mu, ref["mu"], atol=1e-5)
    np.testing.assert_allclose(sigma, ref["sigma"], atol=1e-5)
    # The same checkpoint as a .tar archive, as Magenta distributes them.
    folder = tmp_path / "groovae_tiny"
    shutil.copytree(magenta_dir / "groovae_tiny", folder)
    with tarfile.open(tmp_path / "tiny.tar", "w") as tar:
        for p in sorted(folder.glob("model.ckpt-5*")) + [folder / "checkpoint"]:
            tar.add(p, arcname=p.name)
    _, mu_tar, _ = load(tmp_path / "tiny.tar").encode_tensors(ref["inputs"])
    np.testing.assert_array_equal(mu_tar, mu)
    hier = load(magenta_dir / "hierdec_tiny")
    assert hier.config.decoder == "hierarchical"
