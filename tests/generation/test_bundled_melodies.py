"""The bundled melody models, mel_2bar and mel_16bar: they load by name, sample tunes in a
singer's range with no training, interpolate one tune into another, reconstruct a real melody
read from MIDI, and write MIDI and audio through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musicvae.cli.main import main
from musicvae.data.midi import read_midi
from musicvae.evaluation.melody import events
from musicvae.generation import load
from musicvae.generation.api import LONG_MELODY_BUNDLE, MELODY_BUNDLE, bundled_path
from tests.generation.helpers import requires_bundle

# name, config, bars
BUNDLES = [
    pytest.param(MELODY_BUNDLE, "cat-mel_2bar_small", 2, marks=requires_bundle(MELODY_BUNDLE)),
    pytest.param(
        LONG_MELODY_BUNDLE, "mel_16bar_hierdec", 16, marks=requires_bundle(LONG_MELODY_BUNDLE)
    ),
]
MELODIES = "../shared/data/magenta/melody/melodies"


@pytest.fixture(scope="module")
def models():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cache: dict[str, object] = {}
    yield lambda name: cache.setdefault(name, load(name))
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("name", "config", "bars"), BUNDLES)
def test_bundle_is_small_and_carries_its_card(models, name, config, bars):
    model = models(name)
    assert bundled_path(name).stat().st_size <= 20e6
    assert model.config.name == config and model.num_bars == bars
    assert model.family.name == "melody"
    assert "folk" in model.metadata["data"] and "public domain" in model.metadata["licence"]
    assert "essen" not in model.metadata["data"].lower()


@pytest.mark.parametrize(("name", "config", "bars"), BUNDLES)
def test_prior_samples_are_tunes(models, name, config, bars):
    melodies = models(name).sample_tensors(16, temperature=0.5, seed=0)
    assert melodies.shape == (16, 16 * bars, 90)
    classes = events(melodies)  # 0 no event, 1 note off, else a pitch from MIDI 21
    ranges = []
    for row in classes:
        pitches = row[row >= 2] - 2 + 21
        # Every sample plays, a few notes a bar on average, in a singer's or fiddler's register.
        assert bars <= len(pitches) <= 12 * bars, len(pitches)
        assert 48 <= np.median(pitches) <= 84
        ranges.append(pitches.max() - pitches.min())
    # Most stay within two octaves, as the tunes do (the noise of an untrained model spans seven).
    assert np.mean(np.array(ranges) > 24) <= 0.25, ranges


@pytest.mark.parametrize(("name", "config", "bars"), BUNDLES)
def test_interpolation_goes_from_one_tune_to_the_other(models, name, config, bars):
    model = models(name)
    a, b = model.sample(2, temperature=0.5, seed=3)
    path = model.interpolate(a, b, 7, temperature=1e-6, seed=0)
    assert len(path) == 7
    grids = [events(model.prepare(p).inputs[:1]) for p in path]
    # The ends reconstruct near their tunes; the walk changes something at each end.
    assert (grids[0] != grids[-1]).any()
    assert all(len(p.notes) > 0 for p in path)


@pytest.mark.parametrize(("name", "config", "bars"), BUNDLES)
def test_cli_writes_midi_and_audio(tmp_path, name, config, bars):
    argv = ["generate", "--checkpoint", name, "--num-outputs", "2", "--seed", "1", "--audio"]
    assert main([*argv, "--output-dir", str(tmp_path)]) == 0
    mids = sorted(tmp_path.glob("*.mid"))
    assert len(mids) == 2 and len(list(tmp_path.glob("*.wav"))) == 2
    ns = read_midi(mids[0])
    assert 0 < ns.total_time <= bars * 2.0 + 0.5  # 4/4 at 120 qpm
    assert all(not note.is_drum and note.program == 0 for note in ns.notes)


@pytest.mark.parametrize(("name", "config", "bars"), BUNDLES)
def test_reconstruct_a_real_melody(tmp_path, name, config, bars):
    source = sorted(Path(MELODIES).glob("*.mid"))[0]
    argv = ["generate", "--checkpoint", name, "--mode", "reconstruct", "--num-outputs", "1"]
    assert main([*argv, "--input-midi-1", str(source), "--output-dir", str(tmp_path)]) == 0
    (out,) = tmp_path.glob("*.mid")
    assert len(read_midi(out).notes) > 0
