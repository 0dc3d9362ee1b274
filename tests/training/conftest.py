"""Fixtures for training tests: a small real-GMD dataset file, built once per session."""

from __future__ import annotations

import pytest
import torch

from tests.training.helpers import make_dataset


@pytest.fixture(scope="session")
def small_dataset(groove_dir, tmp_path_factory):
    """Two train files (76 debug windows) and one validation file (69 windows)."""
    return make_dataset(groove_dir, tmp_path_factory.mktemp("data") / "small.parquet")


@pytest.fixture
def one_thread():
    """Tiny models run fastest (and identically) on one thread, whatever the machine's load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
