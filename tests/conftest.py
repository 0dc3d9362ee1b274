"""Shared test fixtures: where the shared data lives, and tiny MIDI built in code."""

from __future__ import annotations

from pathlib import Path

import pytest

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
