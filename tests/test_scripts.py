"""The scripts behind the docs' tables still run and print what the docs show."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from musicvae.configs import get_config
from musicvae.data.dataset import read_dataset, write_dataset
from musicvae.models import build_model
from musicvae.training.checkpoint import save_checkpoint
from tests.evaluation.test_evaluate import make_dataset
from tests.generation.helpers import debug_run, groove, single_torch_thread

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_models(tmp_path, capsys):
    compare = _script("compare_models")
    seqs = read_dataset(make_dataset(tmp_path / "d0.parquet"))
    long = groove(16, qpm=100.0, id="long", filename="long.mid")
    long.meta["split"] = "test"
    data = write_dataset([*seqs, long], tmp_path / "d.parquet")  # one 16-bar test window
    flat = debug_run(tmp_path / "flat")
    config = get_config("groovae_4bar_hierdec", "z_size=8,enc_rnn_size=(16,),dec_rnn_size=(16,16)")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "hier/train", model=build_model(config), config=config, step=3)
    compare.PRIOR_SAMPLES = 8
    out_json, out_png = tmp_path / "c.json", tmp_path / "c.png"
    args = ["--examples", str(data), "--model", str(flat), "--model", str(tmp_path / "hier")]
    with single_torch_thread():
        assert compare.main([*args, "--json", str(out_json), "--plot", str(out_png)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| measure | debug | groovae_4bar_hierdec |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table[2:]}
    # Bar windows slid one bar at a time: 6, 4 and 16 bars give 3, 1 and 13 windows.
    assert rows["test windows"].endswith("| 17 | 17 |")
    assert rows["training steps"].endswith("| 1 | 3 |")
    # Only the hierarchical model has a conductor to score.
    assert rows["conductor follows bar similarity (r)"].split(" | ")[1] == "–"
    reports = json.loads(out_json.read_text())
    assert [r["config"] for r in reports] == ["debug", "groovae_4bar_hierdec"]
    assert reports[1]["comparison"]["conductor"]["num_windows"] == 17
    # Both continue the one 16-bar window's first 4 bars; looping its beat is exact.
    cont = reports[0]["comparison"]["continuation"]
    assert (cont["prompts"], cont["repeat_f1"], cont["real_prompt_similarity"]) == (1, 1.0, 1.0)
    # 4-bar windows: bar i against bar i + 1, 2 and 3.
    assert len(reports[0]["comparison"]["lag_similarity"]["real"]) == 3
    # An earlier run's reports come first, as they were; no model need be evaluated.
    assert compare.main(["--examples", str(data), "--reports", str(out_json)]) == 0
    assert capsys.readouterr().out.splitlines() == table
    # A model named as a stored one is evaluated again in its place.
    again = ["--examples", str(data), "--reports", str(out_json), "--model", str(flat)]
    with single_torch_thread():
        assert compare.main([*again, "--rename", "debug=flat"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "| measure | flat | groovae_4bar_hierdec |"
    assert out_png.read_bytes()[:4] == b"\x89PNG"


def _script_bundles(script: Path) -> list[tuple[str, str]]:
    import re

    blocks = re.findall(r"bundles\+?=\(([^)]*)\)", script.read_text())  # bundles=(…), bundles+=(…)
    return [pair for block in blocks for pair in re.findall(r'"([^\s"]+) ([^\s"]+)[^"]*"', block)]


def test_train_bundles_trains_every_bundle_under_a_registered_config(tmp_path):
    import subprocess

    from musicvae.configs import CONFIGS

    scripts = [ROOT / "scripts" / name for name in ("train_bundles.sh", "train_melody_bundles.sh")]
    pairs = [pair for script in scripts for pair in _script_bundles(script)]
    bundled = {p.stem for p in (ROOT / "src" / "musicvae" / "assets").glob("*.safetensors")}
    # Every shipped bundle has its training command in a script; the melody script also trains
    # the flat 16-bar model its hierarchical one is compared with.
    assert bundled <= {name for name, _ in pairs}
    assert {name for name, _ in pairs} - bundled <= {
        "mel_16bar_flat",
        "mel_16bar_zeros",
        "mel_16bar_z",
        "mel_2bar",
        "mel_16bar",
    }
    assert all(config in CONFIGS for _, config in pairs)
    # Each run trains the config its bundle was exported from.
    from musicvae.generation import load

    assert all(load(name).config.name == config for name, config in pairs if name in bundled)
    for script in scripts:
        usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
        assert usage.returncode == 2 and "usage:" in usage.stderr
    missing = tmp_path / "nothing.parquet"
    run = subprocess.run(
        ["bash", str(scripts[0]), str(missing), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and f"{missing}: no such dataset file" in run.stderr
    assert not (tmp_path / "out").exists()


def test_hit_bias_sweep_shifts_the_decision_threshold_and_restores_the_model(tmp_path, capsys):
    from musicvae.evaluation.protocols import run_haki2022
    from musicvae.generation import load
    from tests.evaluation.test_protocols import NOTES, beat

    sweep = _script("hit_bias_sweep")
    data = write_dataset([beat(NOTES, split=s) for s in ("train", "test")], tmp_path / "d.parquet")
    run = debug_run(tmp_path, "split_bars=2,max_seq_len=32,tapify=True,fixed_velocities=True")
    with single_torch_thread():
        before = run_haki2022(load(run), data, "test")["metrics"]
        assert (
            sweep.main(["--checkpoint", str(run), "--examples", str(data), "--bias", "0,-50,50"])
            == 0
        )
        after = run_haki2022(load(run), data, "test")["metrics"]
    rows = {r["bias"]: r for r in json.loads(capsys.readouterr().out)["splits"]["test"]}
    assert rows[0.0]["kept_taps"]["hit_accuracy"] == round(before["kept_taps"]["hit_accuracy"], 4)
    # Far below the threshold: free decoding is the silent grid, and with the taps kept each of
    # the 3 tapped steps gets exactly its likeliest drum, so as many hits as the drummer played.
    low = rows[-50.0]
    assert low["free"]["hit_accuracy"] == low["free"]["silent_grid_hit_accuracy"]
    assert low["kept_taps"]["hit_precision"] == low["kept_taps"]["hit_recall"]
    # Far above it: all 9 drums on every tapped step, none elsewhere.
    high = rows[50.0]["kept_taps"]
    assert high["hit_recall"] == 1.0 and high["hit_precision"] == round(1 / 9, 4)
    assert after == before  # the model's weights are back as they were


def test_compare_models_on_melody_models(magenta_dir, tmp_path, capsys):
    """The paper's flat-versus-hierarchical table for melodies, on two tiny 16-bar models."""
    from tests.helpers_melody import folk_dataset

    compare = _script("compare_models")
    seqs = read_dataset(folk_dataset(magenta_dir / "melody", tmp_path / "f0.parquet"))
    for i, ns in enumerate(seqs):
        ns.meta["split"] = "test" if i % 2 else "train"
    data = write_dataset(seqs, tmp_path / "folk.parquet")
    tiny = "z_size=8,enc_rnn_size=(16,),dec_rnn_size=(16,16),batch_size=4"
    for name in ("mel_16bar_flat", "mel_16bar_hierdec"):
        config = get_config(name, tiny)
        torch.manual_seed(0)
        save_checkpoint(tmp_path / name / "train", model=build_model(config), config=config, step=2)
    compare.PRIOR_SAMPLES = 8
    args = ["--examples", str(data), "--model", str(tmp_path / "mel_16bar_flat"),
            "--model", str(tmp_path / "mel_16bar_hierdec"), "--json", str(tmp_path / "m.json")]  # fmt: skip
    with single_torch_thread():
        assert compare.main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| measure | mel_16bar_flat | mel_16bar_hierdec |"
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in table[2:]}
    for label in ("sampled accuracy (temperature 1)", "sampled accuracy (argmax)",
                  "teacher-forced, another tune's z", "prior: in-key share",
                  "real: bar similarity lag 4", "interpolation: events changed per move"):  # fmt: skip
        assert label in rows, label
    # The real tunes are the same for both columns, and most of their notes are in one key.
    real = rows["real: in-key share"]
    assert real[0] == real[1].rstrip(" |") and float(real[0]) > 0.9
    reports = json.loads((tmp_path / "m.json").read_text())
    assert [r["family"] for r in reports] == ["melody", "melody"]
    assert len(reports[0]["comparison"]["lag_similarity"]["real"]) == 15  # lags 1..15 of 16 bars
