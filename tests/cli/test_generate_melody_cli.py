"""``musicvae generate`` with a melody model: 2-bar melodies as MIDI, through the converter."""

from __future__ import annotations

import pytest
from PIL import Image

from musicvae.cli.main import main
from musicvae.data.midi import read_midi
from tests.generation.helpers import single_torch_thread
from tests.helpers_melody import TINY_MELODY, folk_dataset, train_tiny_melody

TWO_BARS_AT_120 = 4.0  # seconds


@pytest.fixture(scope="module")
def melody_run(magenta_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("melody")
    dataset = folk_dataset(magenta_dir / "melody", root / "folk.parquet")
    with single_torch_thread():
        train_tiny_melody(root / "run", dataset, steps=3)
    return root / "run"


@pytest.mark.slow
def test_sample_writes_two_bar_melodies(melody_run, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["generate", "--config", TINY_MELODY, "--checkpoint", str(melody_run),
            "--mode", "sample", "--output-dir", str(out), "--num-outputs", "2", "--seed", "0"]  # fmt: skip
    with single_torch_thread():
        assert main(argv) == 0
    assert "wrote 2 MIDI file(s)" in capsys.readouterr().out
    mids = sorted(out.glob(f"sample_{TINY_MELODY}_*_seed0.mid"))
    assert len(mids) == 2
    # Each melody beside its piano roll, two bars wide.
    assert all(Image.open(p.with_suffix(".png")).size[0] > 300 for p in mids)
    for path in mids:
        ns = read_midi(path)
        assert len(ns) > 0
        assert ns.pitch.min() >= 21 and ns.pitch.max() <= 108
        assert not ns.is_drum.any() and set(ns.program.tolist()) == {0}
        assert set(ns.velocity.tolist()) == {80}
        assert ns.qpm == pytest.approx(120.0)
        assert [(s.numerator, s.denominator) for s in ns.time_signatures] == [(4, 4)]
        assert ns.start.min() >= 0.0 and ns.end.max() <= TWO_BARS_AT_120 + 1e-6
        # Every onset is on the 16th-note grid of the 32 steps.
        steps = ns.start / (TWO_BARS_AT_120 / 32)
        assert (abs(steps - steps.round()) < 1e-3).all() and steps.max() < 32
