"""Example counts per split: hand-computed windows, pool == serial, the CLI's JSON and table."""

from __future__ import annotations

import json

from musicvae.cli.main import main
from musicvae.configs import get_config
from musicvae.data.dataset import write_dataset
from musicvae.data.stats import dataset_stats, format_stats

from .helpers import kick_groove


def _dataset():
    """4 sequences at 120 qpm (2 s bars), kick on every beat, each note 0.1 s long."""
    eight = kick_groove(8)  # bars mode: 4-bar windows starting at bars 0..4 -> 5
    two = kick_groove(2)  # shorter than a window -> 0
    waltz = kick_groove(8, time_signature=(3, 4))  # 12 steps per bar, not 16 -> 0
    six = kick_groove(6)  # windows at bars 0..2 -> 3
    for i, (ns, split) in enumerate(
        [(eight, "train"), (two, "train"), (waltz, "validation"), (six, "test")]
    ):
        ns.filename, ns.id, ns.meta = f"s{i}.mid", f"id{i}", {"split": split}
    return [eight, two, waltz, six]


EXPECTED_BARS = {
    "sequences": 4,
    "examples": 8,
    "splits": {
        "train": {"sequences": 2, "examples": 5, "empty": 1},
        "validation": {"sequences": 1, "examples": 0, "empty": 1},
        "test": {"sequences": 1, "examples": 3, "empty": 0},
    },
}


def test_bars_windowing_counts():
    assert dataset_stats(_dataset(), get_config("groovae_4bar"), workers=1) == EXPECTED_BARS


def test_file_windowing_counts():
    # Magenta's route: whole file, hop = window: 8 bars -> 2 windows, 6 bars -> 1.
    stats = dataset_stats(_dataset(), get_config("groovae_4bar", "windowing=file"), workers=1)
    assert stats["examples"] == 3
    assert stats["splits"]["train"] == {"sequences": 2, "examples": 2, "empty": 1}
    assert stats["splits"]["test"] == {"sequences": 1, "examples": 1, "empty": 0}
    # 2-bar windows slid one bar: 8 bars -> 7, 2 bars -> 1, 6 bars -> 5.
    two = dataset_stats(_dataset(), get_config("groovae_2bar_humanize"), workers=1)
    assert [s["examples"] for s in two["splits"].values()] == [8, 0, 5]


def test_process_pool_gives_the_same_counts():
    seqs = []
    for i in range(40):
        ns = kick_groove(1 + i % 9)
        ns.filename, ns.meta = f"{i}.mid", {"split": ("train", "validation", "test")[i % 3]}
        seqs.append(ns)
    config = get_config("groovae_4bar")
    assert dataset_stats(seqs, config, workers=2) == dataset_stats(seqs, config, workers=1)


def test_format_stats_table():
    text = format_stats(EXPECTED_BARS, title="t:")
    assert text.splitlines() == [
        "t:",
        "split       sequences  examples  no examples",
        "----------  ---------  --------  -----------",
        "train               2         5            1",
        "validation          1         0            1",
        "test                1         3            0",
        "----------  ---------  --------  -----------",
        "total               4         8            2",
    ]


def test_cli_json_and_table(tmp_path, capsys):
    path = write_dataset(_dataset(), tmp_path / "d.parquet")
    assert main(["dataset", "stats", str(path), "--config", "groovae_4bar", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED_BARS
    assert main(["dataset", "stats", str(path), "--hparams", "windowing=file"]) == 0
    out = capsys.readouterr().out
    assert "with groovae_4bar" in out and out.splitlines()[-1].split() == ["total", "4", "3", "2"]
    assert main(["dataset", "stats", str(path), "--hparams", "nope=1"]) == 1
    assert "unknown hparam 'nope'" in capsys.readouterr().err
    assert main(["dataset", "stats", str(tmp_path / "missing.parquet")]) == 1
    assert "missing.parquet: cannot read dataset" in capsys.readouterr().err
