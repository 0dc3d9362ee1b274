"""The groovae_4bar model that ships inside the package: it loads with no path and makes music."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.data.converters.groove import REDUCED_DRUM_PITCH_CLASSES
from musicvae.generation import load
from musicvae.generation.api import DEFAULT_BUNDLE, bundled_path

OUTPUT_PITCHES = {c[0] for c in REDUCED_DRUM_PITCH_CLASSES}


@pytest.fixture(scope="module")
def bundled():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load()
    torch.set_num_threads(threads)


def test_bundle_is_installed_small_and_self_describing(bundled):
    path = bundled_path(DEFAULT_BUNDLE)
    assert path.is_file()
    assert path.stat().st_size <= 20e6
    assert bundled.config.name in ("groovae_4bar", "groovae_4bar_hitcond")
    assert bundled.config.hparams.z_size == 256
    assert bundled.step is not None and bundled.step > 1000
    assert "Groove MIDI Dataset" in bundled.metadata["data"]


def test_bundled_samples_are_four_bars_of_drums(bundled):
    out = bundled.sample(5, temperature=0.5, seed=0)
    assert len(out) == 5
    notes_per_groove = [len(ns) for ns in out]
    # A trained model plays: every groove has hits, but far from all 576 cells.
    assert all(10 <= n <= 300 for n in notes_per_groove), notes_per_groove
    for ns in out:
        assert set(ns.pitch.tolist()) <= OUTPUT_PITCHES
        assert ns.start.min() >= 0.0 and ns.start.max() < 8.0  # 4 bars at 120 qpm
        assert ns.velocity.min() >= 1 and ns.velocity.max() <= 127


def test_bundled_model_reconstructs_a_groove_better_than_chance(bundled):
    grooves = bundled.sample_tensors(8, temperature=0.5, seed=1)
    z, mu, _ = bundled.encode_tensors(grooves)
    again = bundled.decode_tensors(mu, temperature=1e-6, seed=0)
    hits, hits_again = grooves[..., :9] > 0.5, again[..., :9] > 0.5
    overlap = (hits & hits_again).sum() / max(1, (hits | hits_again).sum())
    assert overlap > 0.5, overlap
    assert np.isfinite(z).all()


@pytest.mark.slow
def test_bundled_prior_samples_play_at_a_drummers_dynamics(bundled, groove_dir, tmp_path):
    # Issue 16's targets, measured as a listener meets them (MIDI velocities), against the
    # GMD test split: mean velocity within 10%, quiet hits at most 3%, accents per bar within
    # 25%, every kit group's mean velocity within 20%; and a drummer's timing spread.
    from musicvae.data.convert import convert_folder, write_report
    from musicvae.evaluation.evaluate import load_split
    from musicvae.evaluation.realism import realism_report

    data = write_report(convert_folder(groove_dir), tmp_path / "gmd.parquet", str(groove_dir))
    test, _, _ = load_split(data, bundled.config, "test")
    samples = bundled.sample_tensors(256, 1.0, seed=0)
    r = realism_report(samples, test.outputs.numpy())
    q = r["ratio"]
    assert abs(q["velocity_mean"] - 1) <= 0.10, q["velocity_mean"]
    assert r["generated"]["quiet_share"] <= 0.03
    assert abs(q["accents_per_bar"] - 1) <= 0.25, q["accents_per_bar"]
    for group, ratio in q["group_velocity_mean"].items():
        assert abs(ratio - 1) <= 0.20, (group, ratio)
    assert q["offset_std_steps"] >= 0.8
