"""The README's set-up commands: the right PyTorch build (checked with make's dry run), CI's test
command, and how `make demo` says to reach the musicvae command."""

from __future__ import annotations

import re
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
    return " ".join(x.strip() for x in out.splitlines())


def test_cpu_machines_get_the_cpu_wheel_index():
    line = _torch_line("NVIDIA=", "OS=Linux")
    cpu = "https://download.pytorch.org/whl/cpu"
    assert f"'torch==2.13.0' --index-url \"{cpu}\"" in line
    assert f'curl -fsS -o /dev/null --max-time 10 "{cpu}/"' in line  # unreachable: fall back


def test_nvidia_machines_and_macos_get_the_default_build():
    assert '[ -n "" ]' in _torch_line("NVIDIA=yes", "OS=Linux")  # no index: PyPI's default
    assert '[ -n "" ]' in _torch_line("NVIDIA=", "OS=Darwin")


def test_torch_index_overrides():
    line = _torch_line("TORCH_INDEX=https://download.pytorch.org/whl/cu126")
    assert '--index-url "https://download.pytorch.org/whl/cu126"' in line


def test_the_soundfont_renderer_is_installed_without_pyaudio():
    # tinysoundfont names PyAudio (live playback only), which needs PortAudio headers on Linux.
    assert "pip install -q --no-deps 'tinysoundfont>=0.3.7'" in _torch_line()


def test_lint_runs_ruff_mypy_and_the_import_contract():
    out = subprocess.run(
        ["make", "-n", "lint", "BIN=.venv/bin"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    commands = [line.strip() for line in out.splitlines() if line.startswith(".venv/bin/")]
    assert ".venv/bin/ruff check src tests benchmarks scripts" in commands
    assert ".venv/bin/ruff format --check src tests benchmarks scripts" in commands
    assert ".venv/bin/mypy" in commands
    assert ".venv/bin/lint-imports" in commands


def test_ci_lints_before_it_tests():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert lines.index("make lint") < lines.index("make test")


def test_demo_says_how_to_reach_the_musicvae_command():
    # `musicvae --version` right after `make demo` fails unless the virtualenv is active.
    out = subprocess.run(
        ["make", "-n", "demo", "BIN=.venv/bin"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    assert "source .venv/bin/activate" in out
    readme = (ROOT / "README.md").read_text()
    assert "source .venv/bin/activate" in readme.split("## The workflow")[0]  # the first screen


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", readme, flags=re.M)  # CI reads it from the README
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()
