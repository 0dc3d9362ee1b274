"""Shared test fixtures: where the shared data lives, and tiny MIDI built in code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training.helpers import make_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GROOVE_DIR = SHARED / "groove"
MAGENTA_DIR = SHARED / "magenta"


@pytest.fixture(scope="session")
def groove_dir() -> Path:
    if not (GROOVE_DIR / "info.csv").exists():
        pytest.skip("the Groove MIDI Dataset is not at ../shared/data/groove")
    return GROOVE_DIR


@pytest.fixture(scope="session")
def magenta_dir() -> Path:
    if not (MAGENTA_DIR / "README.md").exists():
        pytest.skip("Magenta reference data is not at ../shared/data/magenta")
    return MAGENTA_DIR


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
