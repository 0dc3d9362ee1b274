"""Summary names follow Magenta's graph; the trial table lists every setting."""

from __future__ import annotations

from musicvae.configs import get_config
from musicvae.plotting.curves import read_scalars
from musicvae.training.summaries import EVENT_GLOB, TAGS, Summaries, drop_events_from, hparams_table
from tests.training.helpers import logged_steps


def test_magenta_names_and_disabled_writer(tmp_path):
    assert TAGS["r_loss"] == "losses/r_loss" and TAGS["hits_loss"] == "metrics/hits_loss"
    writer = Summaries(tmp_path / "train")
    writer.scalars({"loss": 3.5, "kl_bits": 1.25, "custom/tag": 2.0}, step=7)
    writer.close()
    scalars = read_scalars(tmp_path / "train")
    assert scalars["loss"][0].tolist() == [7] and scalars["loss"][1].tolist() == [3.5]
    assert scalars["losses/kl_bits"][1].tolist() == [1.25] and "custom/tag" in scalars
    off = Summaries(tmp_path / "rank1", enabled=False)
    off.scalars({"loss": 1.0}, 0)
    off.close()
    assert not (tmp_path / "rank1").exists()


def test_hparams_table():
    table = hparams_table(get_config("groovae_4bar_hierdec"))
    lines = table.splitlines()
    assert lines[:2] == ["| Key | Value |", "| :--- | :--- |"]
    assert "| decoder | hierarchical |" in lines and "| level_lengths | (4, 16) |" in lines
    assert "| free_bits | 48.0 |" in lines and "| split_bars | 4 |" in lines


def test_drop_events_from_cuts_old_files_at_a_step(tmp_path):
    writer = Summaries(tmp_path)
    writer.trial(get_config("debug"), "data.parquet")
    for step in range(10):
        writer.scalars({"loss": float(step), "kl_bits": 1.0}, step)
    writer.close()
    (path,) = tmp_path.glob(EVENT_GLOB)
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # a kill in the middle of the last record
    later = path.stat().st_mtime + 10
    assert drop_events_from(tmp_path, 5, since=later) == 0  # too old to hold such steps
    assert drop_events_from(tmp_path, 5) == 1
    assert logged_steps(tmp_path) == [0, 1, 2, 3, 4]
    assert read_scalars(tmp_path)["losses/kl_bits"][0].tolist() == [0, 1, 2, 3, 4]
    assert drop_events_from(tmp_path, 5) == 0  # nothing left to drop
    assert drop_events_from(tmp_path, 0) == 1 and not list(tmp_path.glob(EVENT_GLOB))


def test_melody_runs_log_the_decoders_accuracy(magenta_dir, tmp_path, one_thread):
    """A categorical decoder has no hits: its own ``accuracy`` is logged, under Magenta's name."""
    from tests.helpers_melody import folk_dataset, train_tiny_melody

    data = folk_dataset(magenta_dir / "melody", tmp_path / "folk.parquet")
    train_tiny_melody(tmp_path / "run", data, steps=2)
    scalars = read_scalars(tmp_path / "run" / "train")
    steps, values = scalars["metrics/accuracy"]
    assert len(steps) == 2 and all(0.0 <= v <= 1.0 for v in values)
    assert "metrics/hit_accuracy" not in scalars
