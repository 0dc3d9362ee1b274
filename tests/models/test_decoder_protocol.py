"""The Decoder protocol: every decoder satisfies it, at run time and for the type checker."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from musicvae.configs import CONFIGS, get_config
from musicvae.models import build_model
from musicvae.models.base import Decoder
from musicvae.models.categorical import CategoricalLstmDecoder
from musicvae.models.decoder import GrooveLstmDecoder
from musicvae.models.hierarchical import HierarchicalLstmDecoder

ROOT = Path(__file__).resolve().parents[2]

# mypy checks these assignments; the last one must be refused, which shows the check has teeth.
SNIPPET = """\
import torch

from musicvae.models.base import Decoder
from musicvae.models.categorical import CategoricalLstmDecoder
from musicvae.models.decoder import GrooveLstmDecoder
from musicvae.models.hierarchical import HierarchicalLstmDecoder

core = GrooveLstmDecoder(27, 4, (8,))
groove: Decoder = core
categorical: Decoder = CategoricalLstmDecoder(90, 4, (8,))
hierarchical: Decoder = HierarchicalLstmDecoder(core, 4, (2, 4), (4,))
not_a_decoder: Decoder = torch.nn.Linear(2, 2)
"""


def _decoders() -> list[object]:
    core = GrooveLstmDecoder(27, 4, (8,))
    return [
        core,
        CategoricalLstmDecoder(90, 4, (8,)),
        HierarchicalLstmDecoder(core, 4, (2, 4), (4,)),
    ]


def test_every_decoder_is_a_decoder_at_run_time():
    for decoder in _decoders():
        assert isinstance(decoder, Decoder), type(decoder).__name__


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_builds_a_decoder(name):
    import torch

    # At the published sizes (LSTMs of 2048 units), on the meta device: shapes, no memory.
    with torch.device("meta"):
        assert isinstance(build_model(get_config(name)).decoder, Decoder)


def test_other_modules_are_not_decoders():
    import torch

    assert not isinstance(torch.nn.Linear(2, 2), Decoder)


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_accepts_every_decoder_as_a_decoder(tmp_path):
    snippet = tmp_path / "decoders.py"
    snippet.write_text(SNIPPET)
    # The project's own mypy settings and cache (``make lint`` fills it), run from the root.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert "decoders.py:12:" in errors[0] and '"Linear"' in errors[0], errors
