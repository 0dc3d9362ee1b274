"""Multi-process training on CPU: torchrun, gloo, DistributedDataParallel, rank-0-only writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from musicvae.training.checkpoint import list_checkpoints, load_checkpoint
from musicvae.training.distributed import DistInfo, resolve_device, setup


def test_single_process_needs_no_process_group(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = setup("cpu")
    assert info == DistInfo() and info.is_main and not info.distributed
    assert not torch.distributed.is_initialized()
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_two_steps(tmp_path, small_dataset):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "musicvae.cli.main", "train", "--config", "debug", "--run-dir", str(run_dir),
        "--examples", str(small_dataset), "--num-steps", "2", "--seed", "1", "--eval-every", "2",
        "--log-every", "1", "--threads", "1", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [s for s, _ in list_checkpoints(run_dir / "train")] == [2]
    # Only rank 0 writes: one event file per folder.
    assert len(list((run_dir / "train").glob("events.*"))) == 1
    assert len(list((run_dir / "eval").glob("events.*"))) == 1
    model, config, step, state = load_checkpoint(run_dir)
    assert step == 2 and config.hparams.batch_size == 8 and state["seed"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
