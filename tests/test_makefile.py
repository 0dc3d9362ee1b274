"""The README's set-up commands pick the right PyTorch build (checked with make's dry run)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def _torch_line(*variables: str) -> str:
    out = subprocess.run(
        ["make", "-n", "-B", "venv", *variables], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    (line,) = [x for x in out.splitlines() if "pip install" in x and "torch" in x]
    return line


def test_cpu_machines_get_the_cpu_wheel_index():
    line = _torch_line("NVIDIA=", "OS=Linux")
    assert "'torch==2.13.0' --index-url https://download.pytorch.org/whl/cpu" in line


def test_nvidia_machines_and_macos_get_the_default_build():
    assert "--index-url" not in _torch_line("NVIDIA=yes", "OS=Linux")
    assert "--index-url" not in _torch_line("NVIDIA=", "OS=Darwin")


def test_torch_index_overrides():
    line = _torch_line("TORCH_INDEX=https://download.pytorch.org/whl/cu126")
    assert line.endswith("--index-url https://download.pytorch.org/whl/cu126")
