"""TrainedModel on a tiny randomly initialised model: shapes, pitches, bars, tempo,
interpolation endpoints, windowing of long inputs, transforms and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.data.converters.groove import REDUCED_DRUM_PITCH_CLASSES
from musicvae.errors import MusicVAEError
from musicvae.generation import load
from musicvae.generation.chunks import stitch
from tests.generation.helpers import debug_run, groove

OUTPUT_PITCHES = {c[0] for c in REDUCED_DRUM_PITCH_CLASSES}  # 36 38 42 46 45 48 50 49 51
# Small enough that hits are the 0.5 threshold of the logits: decoding is deterministic.
GREEDY = 1e-6


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load(debug_run(tmp_path_factory.mktemp("run")))


@pytest.fixture(scope="module")
def decisive(tmp_path_factory):
    """A fresh model has logits near 0; scaled up, near-greedy decoding is deterministic."""
    m = load(debug_run(tmp_path_factory.mktemp("decisive"), seed=1))
    with torch.no_grad():
        m.model.decoder.output_projection.weight.mul_(1e4)
    return m


def test_sample_gives_four_bars_on_the_output_pitches(model):
    out = model.sample(3, seed=0)
    assert len(out) == 3
    bar_seconds = 4 * 60.0 / 120.0
    for ns in out:
        assert len(ns) > 0
        assert set(ns.pitch.tolist()) <= OUTPUT_PITCHES
        assert ns.qpm == 120.0
        assert [(t.numerator, t.denominator) for t in ns.time_signatures] == [(4, 4)]
        assert ns.start.min() >= 0.0
        # A note may be played up to half a step late after the last 16th of bar 4.
        assert ns.start.max() < 4 * bar_seconds
        assert ns.is_drum.all()
    tensors = model.sample_tensors(3, seed=0)
    assert tensors.shape == (3, 64, 27)
    assert set(np.unique(tensors[..., :9])) <= {0.0, 1.0}


def test_sample_is_reproducible_with_a_seed(model):
    a = model.sample_tensors(2, temperature=0.5, seed=7)
    b = model.sample_tensors(2, temperature=0.5, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample_tensors(2, temperature=0.5, seed=8))


def test_sample_tempo(model):
    (ns,) = model.sample(1, seed=0, qpm=90.0)
    assert ns.qpm == 90.0


def test_encode_shapes_and_determinism(model):
    a, b = groove(4, qpm=100.0), groove(4, qpm=100.0)
    b = b.select(b.pitch != 42)  # no hi-hats
    z, mu, sigma = model.encode([a, b], seed=0)
    assert z.shape == mu.shape == sigma.shape == (2, 8)
    assert (sigma > 0).all()
    _, mu_a, _ = model.encode(a)
    np.testing.assert_allclose(mu_a[0], mu[0], rtol=1e-4, atol=1e-7)
    assert np.abs(mu[0] - mu[1]).max() > 1e-3 * np.abs(mu).max()


def test_interpolate_endpoints_decode_from_the_inputs_mu(decisive):
    model = decisive
    a = groove(4, qpm=100.0)
    b = a.select(a.pitch != 42)
    _, mu, _ = model.encode([a, b])
    grooves, z = model.interpolate_tensors(a, b, 5, temperature=GREEDY)
    assert grooves.shape == (5, 64, 27)
    np.testing.assert_array_equal(z[0], mu[0])
    np.testing.assert_array_equal(z[-1], mu[1])
    ends = model.decode_tensors(mu, temperature=GREEDY)
    np.testing.assert_array_equal(grooves[0, :, :9], ends[0, :, :9])
    np.testing.assert_array_equal(grooves[-1, :, :9], ends[1, :, :9])
    # Batch size changes float32 summation order; the drift stays far below a MIDI velocity.
    np.testing.assert_allclose(grooves[[0, -1], :, 9:], ends[:, :, 9:], atol=2e-3)
    out = model.interpolate(a, b, 5, temperature=0.5, seed=0)
    assert len(out) == 5
    assert all(ns.qpm == 100.0 for ns in out)  # the first input's tempo


def test_reconstruct_sixteen_bars_keeps_every_bar_and_the_tempo(decisive):
    model = decisive
    ns = groove(16, qpm=100.0)
    full, prep = model.transform_tensors(ns, temperature=GREEDY)
    assert full.shape == (256, 27)
    assert prep.starts == [0, 64, 128, 192]
    # Windows decode independently: bar 5 is the first bar of window 2.
    window2 = model.decode_tensors(model.encode_tensors(prep.inputs[1:2])[1], temperature=GREEDY)
    np.testing.assert_array_equal(full[64:128, :9], window2[0, :, :9])
    assert full[:, :9].reshape(16, 16, 9).sum(axis=(1, 2)).min() > 0  # no bar left empty
    out = model.reconstruct(ns, temperature=0.5, seed=0)
    assert out.qpm == 100.0
    assert out.start.max() < 16 * 4 * 60.0 / 100.0
    assert model.reconstruct(ns, temperature=0.5, seed=0, qpm=80.0).qpm == 80.0


def test_ten_bars_come_back_as_ten(model):
    full, prep = model.transform_tensors(groove(10), seed=0)
    assert full.shape == (160, 27)
    assert prep.starts == [0, 64, 96]


def test_transforms_need_a_matching_config(model, tmp_path):
    ns = groove(4)
    for method in (model.humanize, model.tap_to_drums, model.add_instrument):
        with pytest.raises(MusicVAEError, match="'debug' was not trained to"):
            method(ns)
    humanizer = load(debug_run(tmp_path / "h", "humanize=True"))
    out = humanizer.humanize(ns, seed=0)
    assert out.qpm == ns.qpm
    tapper = load(debug_run(tmp_path / "t", "tapify=True,fixed_velocities=True"))
    assert tapper.tap_to_drums(groove(8), seed=0).start.max() < 8 * 2.0
    adder = load(debug_run(tmp_path / "a", "add_instruments=[2]"))
    adder.add_instrument(ns, seed=0)


def test_keep_hits_plays_the_input_pattern(tmp_path):
    ns = groove(6)  # 6 bars: three overlapping 4-bar windows, stitched
    humanizer = load(debug_run(tmp_path / "h", "humanize=True"))
    out, prep = humanizer.transform_tensors(ns, 1.0, seed=0, keep_hits=True)
    real = stitch(prep.outputs, prep.starts, prep.total_steps)  # the whole 6 bars
    assert out.shape == (96, 27)
    np.testing.assert_array_equal(out[:, :9], real[:, :9])
    # Velocities come from the model (the input's are flat), offsets too.
    assert np.ptp(out[:, 9:18][real[:, :9] > 0]) > 0
    # Without keep_hits a fresh model's hits have nothing to do with the pattern.
    free, _ = humanizer.transform_tensors(ns, 1.0, seed=0)
    assert not np.array_equal(free[:, :9], real[:, :9])
    # The sequence API keeps them by default.
    kept = humanizer.prepare(humanizer.humanize(ns, seed=0))
    kept = stitch(kept.outputs, kept.starts, kept.total_steps)
    np.testing.assert_array_equal(kept[:, :9], real[:, :9])

    adder = load(debug_run(tmp_path / "a", "add_instruments=[2]"))
    added, _ = adder.transform_tensors(ns, 1.0, seed=0, keep_hits=True)
    others = [c for c in range(9) if c != 2]
    np.testing.assert_array_equal(added[:, others], real[:, others])
    tapper = load(debug_run(tmp_path / "t", "tapify=True,fixed_velocities=True"))
    with pytest.raises(MusicVAEError, match="reads taps, not drum hits"):
        tapper.input_hits(tapper.prepare(ns).inputs)
    # A tap model keeps the tapped steps instead: drums there, and only there.
    drums, prep = tapper.transform_tensors(ns, keep_hits=True, seed=0)
    tapped = stitch(prep.inputs, prep.starts, prep.total_steps)[:, :9].max(axis=1) > 0.5
    np.testing.assert_array_equal(drums[:, :9].max(axis=1) > 0.5, tapped)


def test_bad_inputs(model):
    with pytest.raises(MusicVAEError, match="no 4/4 window"):
        model.reconstruct(groove(8, time_signature=(6, 8), filename="six.mid"))
    with pytest.raises(MusicVAEError, match="temperature must be positive"):
        model.sample(1, temperature=0.0)
    with pytest.raises(MusicVAEError, match=r"z must have shape \(N, 8\)"):
        model.decode(np.zeros((2, 3)))


def test_files_are_recognised_by_content_not_name(tmp_path):
    import shutil

    from musicvae.generation.api import sniff

    run = debug_run(tmp_path / "run")
    (ckpt,) = (run / "train").glob("model.ckpt-*.pt")
    odd = tmp_path / "g.ckpt"
    shutil.copy(ckpt, odd)
    bundle = load(run).save(tmp_path / "b.safetensors")
    weird = tmp_path / "model.bin"
    shutil.copy(bundle, weird)
    assert (sniff(odd), sniff(weird)) == ("checkpoint", "bundle")
    assert load(odd).config.name == load(weird).config.name == "debug"


def test_run_dir_is_accepted_by_every_model_command(tmp_path, capsys):
    from musicvae.cli.main import main

    run = debug_run(tmp_path / "run")
    out = tmp_path / "out"
    assert main(["generate", "--run-dir", str(run), "--output-dir", str(out), "--num-outputs",
                 "1", "--no-png"]) == 0  # fmt: skip
    assert main(["export", "--run-dir", str(run), "-o", str(tmp_path / "m.safetensors")]) == 0
    assert (tmp_path / "m.safetensors").is_file()


@pytest.fixture()
def spread_model(tmp_path):
    m = load(debug_run(tmp_path))
    m.spread = {"velocity": [0.5] * 9, "offset": [0.3] * 9}
    return m


def test_playing_is_the_whole_spread_unless_given(spread_model):
    default = spread_model.sample_tensors(6, 0.5, seed=3)
    np.testing.assert_array_equal(default, spread_model.sample_tensors(6, 0.5, 3, playing=1.0))
    # None follows the temperature: the same draw as min(temperature, 1), to the bit.
    follow = spread_model.sample_tensors(6, 0.5, 3, playing=None)
    np.testing.assert_array_equal(follow, spread_model.sample_tensors(6, 0.5, 3, playing=0.5))
    # 0 plays the heads' means: the same as no spread at all.
    means = spread_model.sample_tensors(6, 0.5, 3, spread=False)
    np.testing.assert_array_equal(means, spread_model.sample_tensors(6, 0.5, 3, playing=0.0))
    # At temperature 0.5 the default's offsets spread about twice as wide as half a spread's.
    spread_of = [g[..., 18:][g[..., :9] > 0.5].std() for g in (means, follow, default)]
    assert spread_of[2] > 1.5 * spread_of[1] > 1.5 * spread_of[0]
    # At temperature 1 the whole spread is what following the temperature gives.
    np.testing.assert_array_equal(
        spread_model.sample_tensors(6, 1.0, 3), spread_model.sample_tensors(6, 1.0, 3, playing=None)
    )


@pytest.mark.parametrize("playing", [-0.1, 1.01, float("nan")])
def test_playing_out_of_range_is_refused(spread_model, playing):
    with pytest.raises(MusicVAEError, match="playing must be 0 to 1"):
        spread_model.sample_tensors(2, 0.5, 0, playing=playing)
