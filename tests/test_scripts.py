"""The scripts behind the docs' tables still run and print what the docs show."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from musicvae.configs import get_config
from musicvae.models import build_model
from musicvae.training.checkpoint import save_checkpoint
from tests.evaluation.test_evaluate import make_dataset
from tests.generation.helpers import debug_run, single_torch_thread

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_models(tmp_path, capsys):
    compare = _script("compare_models")
    data = make_dataset(tmp_path / "d.parquet")
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
    assert rows["test windows"].endswith("| 4 | 4 |")
    assert rows["training steps"].endswith("| 1 | 3 |")
    # Only the hierarchical model has a conductor to score.
    assert rows["conductor follows bar similarity (r)"].split(" | ")[1] == "–"
    reports = json.loads(out_json.read_text())
    assert [r["config"] for r in reports] == ["debug", "groovae_4bar_hierdec"]
    assert reports[1]["comparison"]["conductor"]["num_windows"] == 4
    # 4-bar windows: bar i against bar i + 1, 2 and 3.
    assert len(reports[0]["comparison"]["lag_similarity"]["real"]) == 3
    assert out_png.read_bytes()[:4] == b"\x89PNG"
