"""When training chooses its own thread count: only on the CPU, in one process, without
``--threads`` and without ``--seed`` (a seeded run must repeat its curve)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from musicvae.cpu import ThreadTuner
from musicvae.training import trainer
from musicvae.training.distributed import DistInfo
from musicvae.training.options import TrainOptions


def _options(**kw) -> TrainOptions:
    return TrainOptions(run_dir=Path("run"), examples=Path("data.parquet"), **kw)


@pytest.mark.parametrize(
    ("kw", "info", "threads", "tuned"),
    [
        ({}, DistInfo(), 2, True),
        ({}, DistInfo(), 1, False),  # nothing to choose between
        ({"threads": 2}, DistInfo(), 2, False),  # the user chose
        ({"seed": 1}, DistInfo(), 2, False),  # a seeded run keeps its count
        ({}, DistInfo(rank=0, world_size=2, local_world_size=2), 2, False),  # torchrun
        ({}, DistInfo(device=torch.device("cuda", 0)), 2, False),
    ],
)
def test_the_tuner_runs_only_where_the_count_is_ours(kw, info, threads, tuned):
    tuner = trainer._thread_tuner(_options(**kw), info, threads)
    assert (tuner is not None) is tuned
    if tuner is not None:
        assert isinstance(tuner, ThreadTuner) and tuner.most == threads == tuner.current
