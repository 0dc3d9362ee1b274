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


def test_several_runs_share_one_figure(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    from musicvae.cli.main import main
    from musicvae.plotting import curves

    _fake_run(tmp_path / "flat")
    _fake_run(tmp_path / "hier")
    figures: list[Figure] = []
    real_savefig = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda self, *a, **k: (figures.append(self), real_savefig(self, *a, **k))
    )
    out = tmp_path / "both.png"
    assert main(["plot", str(tmp_path / "flat"), str(tmp_path / "hier"), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    (fig,) = figures
    assert fig._suptitle.get_text() == "flat (step 100) vs hier (step 100)"
    loss = fig.axes[0]
    labels = [h.get_label() for h in loss.get_legend().legend_handles]
    assert labels == ["flat train", "flat eval", "hier train", "hier eval"]
    # A colour per run: the eval curve takes its run's colour, dashed.
    by_label = {line.get_label(): line for line in loss.get_lines()}
    assert by_label["hier eval"].get_color() == by_label["hier train"].get_color() == "C1"
    assert by_label["flat eval"].get_linestyle() == "--"
    assert curves.read_scalars(tmp_path / "hier" / "eval")["loss"][0].tolist() == [50, 100]
    # Several runs need a name for the shared figure.
    assert main(["plot", str(tmp_path / "flat"), str(tmp_path / "hier")]) == 1
    assert "name it with --output" in capsys.readouterr().err
