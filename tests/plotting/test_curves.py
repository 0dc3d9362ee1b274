"""``plot_run``: a valid PNG of a run's curves, from its event files."""

from __future__ import annotations

import pytest

from musicvae.errors import MusicVAEError
from musicvae.plotting.curves import PANELS, plot_run, read_scalars
from musicvae.training.summaries import Summaries


def _fake_run(run_dir):
    train, evals = Summaries(run_dir / "train"), Summaries(run_dir / "eval")
    for step in range(0, 100):
        train.scalars(
            {
                "loss": 100.0 - step,
                "r_loss": 90.0 - step,
                "kl_bits": step / 10,
                "kl_beta": 0.2,
                "hit_accuracy": 0.5 + step / 400,
                "learning_rate": 1e-3 * 0.9999**step,
            },
            step,
        )
    for step in (50, 100):
        evals.scalars({"loss": 80.0, "hit_accuracy": 0.7}, step)
    train.close()
    evals.close()


def test_plot_writes_a_png(tmp_path):
    import matplotlib.image

    _fake_run(tmp_path / "run")
    scalars = read_scalars(tmp_path / "run" / "train")
    assert {tag for tag, _ in PANELS} <= set(scalars)
    steps, values = scalars["loss"]
    assert steps.tolist() == list(range(100)) and values[:2].tolist() == [100.0, 99.0]
    out = plot_run(tmp_path / "run")
    assert out == tmp_path / "run" / "curves.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape == (700, 1300, 4)
    custom = plot_run(tmp_path / "run", tmp_path / "plots" / "c.png")
    assert custom.is_file() and not list((tmp_path / "plots").glob(".*tmp"))


def test_plot_errors(tmp_path):
    with pytest.raises(MusicVAEError, match="no such run folder"):
        plot_run(tmp_path / "nope")
    (tmp_path / "run" / "train").mkdir(parents=True)
    with pytest.raises(MusicVAEError, match="no TensorBoard event files"):
        plot_run(tmp_path / "run")
