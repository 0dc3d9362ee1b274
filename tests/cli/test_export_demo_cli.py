"""`musicvae export` writes a bundle that loads back identically; `musicvae demo` samples from it."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.cli.main import main
from musicvae.data.midi import read_midi
from musicvae.generation.api import load


def test_export_magenta_checkpoint_round_trips(tmp_path, magenta_dir, capsys):
    out = tmp_path / "tiny.safetensors"
    code = main(
        ["export", str(magenta_dir / "groovae_tiny"), "-o", str(out), "--meta", "data=GMD test"]
    )
    assert code == 0
    assert "step 5" in capsys.readouterr().out
    original = load(magenta_dir / "groovae_tiny")
    bundled = load(out)
    assert bundled.metadata["data"] == "GMD test"
    assert bundled.step == 5
    ref = np.load(magenta_dir / "groovae_tiny" / "reference.npz")
    inputs = ref["inputs"][:1]
    import torch

    with torch.no_grad():
        a = original.model.encode(torch.from_numpy(inputs), torch.tensor([64]))[0]
        b = bundled.model.encode(torch.from_numpy(inputs), torch.tensor([64]))[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_allclose(a.numpy(), ref["mu"][:1], atol=1e-5)


def test_export_float16(tmp_path, magenta_dir):
    out = tmp_path / "tiny16.safetensors"
    assert (
        main(["export", str(magenta_dir / "groovae_tiny"), "-o", str(out), "--dtype", "float16"])
        == 0
    )
    bundled = load(out)
    assert bundled.metadata["weights_dtype"] == "float16"
    ref = np.load(magenta_dir / "groovae_tiny" / "reference.npz")
    import torch

    with torch.no_grad():
        mu = bundled.model.encode(torch.from_numpy(ref["inputs"][:1]), torch.tensor([64]))[0]
    np.testing.assert_allclose(mu.numpy(), ref["mu"][:1], atol=2e-3)


def test_export_rejects_bad_name_and_meta(tmp_path, magenta_dir, capsys):
    assert main(["export", str(magenta_dir / "groovae_tiny"), "-o", str(tmp_path / "x.pt")]) == 1
    assert "must end in .safetensors" in capsys.readouterr().err
    args = ["export", str(magenta_dir / "groovae_tiny"), "-o", str(tmp_path / "x.safetensors")]
    assert main([*args, "--meta", "novalue"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_demo_samples_five_grooves_from_the_bundle(tmp_path, magenta_dir, monkeypatch, capsys):
    bundle = tmp_path / "groovae_4bar.safetensors"
    assert main(["export", str(magenta_dir / "groovae_tiny"), "-o", str(bundle)]) == 0
    monkeypatch.setattr("musicvae.generation.api.bundled_path", lambda name: bundle)
    out = tmp_path / "generated"
    assert main(["demo", "--output-dir", str(out), "--seed", "3"]) == 0
    mids = sorted(out.glob("*.mid"))
    assert len(mids) == 5
    assert all(p.with_suffix(".png").stat().st_size > 1000 for p in mids)
    assert [p.name for p in mids] == [f"sample_groovae_4bar_{i:03d}_seed3.mid" for i in range(5)]
    assert str(out.resolve()) in capsys.readouterr().out
    for path in mids:
        ns = read_midi(path)
        # 4 bars at 120 qpm: every onset falls inside the 8-second window.
        assert len(ns) == 0 or ns.start.max() < 8.0


def test_demo_without_bundle_tours_the_data_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("musicvae.generation.api.bundled_path", lambda name: tmp_path / "none")
    assert main(["demo", "--files", "3", "--keep", str(tmp_path / "tour")]) == 0
    out = capsys.readouterr().out
    assert "no bundled model" in out
    assert "converted 3 of 3 MIDI files" in out
    assert (tmp_path / "tour" / "grooves.parquet").is_file()


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_exporting_a_bundle_again_keeps_its_card_and_spread(tmp_path, capsys):
    """A re-export (here to float32) keeps the data and licence lines, the training step and
    source, and GrooVAE's output spread, so it samples exactly as the bundle it came from."""
    from musicvae.generation.api import bundled_available

    if not bundled_available("groovae_4bar"):
        pytest.skip("the bundled groovae_4bar is not in this checkout")
    out = tmp_path / "again.safetensors"
    assert main(["export", "groovae_4bar", "-o", str(out), "--meta", "note=re-export"]) == 0
    original, again = load("groovae_4bar"), load(out)
    for key in ("data", "hparams", "step", "source", "output_spread"):
        assert again.metadata[key] == original.metadata[key], key
    assert again.metadata["note"] == "re-export"
    assert again.metadata["weights_dtype"] == "float32"
    np.testing.assert_array_equal(
        again.sample_tensors(3, temperature=0.5, seed=7),
        original.sample_tensors(3, temperature=0.5, seed=7),
    )
