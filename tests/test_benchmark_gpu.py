"""benchmarks/gpu.sh, the GPU check prepared for a machine with CUDA: it refuses in one line where
there is none, and a dry run on the CPU writes every JSON file it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"


def _run(out: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHON": sys.executable, **env}
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)], env=environ, capture_output=True, text=True, timeout=600
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_refuses_in_one_line(tmp_path):
    done = _run(tmp_path / "out")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: no CUDA device here (torch.cuda.is_available() is False)"]


def test_a_dry_run_on_the_cpu_writes_every_result(tmp_path):
    out = tmp_path / "out"
    done = _run(
        out,
        DEVICE="cpu",
        BATCH="4",
        STEPS="2",
        MELODY_CONFIG="mel_16bar_hierdec",
        REPEATS="2",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = {p.name for p in out.iterdir()}
    assert names == {
        "env.json",
        "cudnn.json",
        "train_groovae_4bar.json",
        "train_mel_16bar_hierdec.json",
        "sample.json",
    }
    train = json.loads((out / "train_groovae_4bar.json").read_text())
    assert (train["config"], train["batch_size"], train["steps_timed"]) == ("groovae_4bar", 4, 2)
    melody = json.loads((out / "train_mel_16bar_hierdec.json").read_text())
    assert melody["config"] == "mel_16bar_hierdec"
    sample = json.loads((out / "sample.json").read_text())
    assert set(sample) == {
        f"{m}_sample_{n}_ms" for m in ("groovae_4bar", "mel_16bar") for n in (5, 64)
    }
    assert all(v > 0 for v in sample.values())
    cudnn = json.loads((out / "cudnn.json").read_text())
    assert cudnn["cudnn_rnn_ops_called"] == []  # the CPU ran the fused kernel
