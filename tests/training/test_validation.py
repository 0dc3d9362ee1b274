"""Evaluation: example-weighted means over a split, deterministic, training RNG untouched."""

from __future__ import annotations

import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.examples import Examples
from musicvae.models import build_model
from musicvae.training.validation import validate


def _examples(n=5, t=64):
    g = torch.Generator().manual_seed(0)
    hits = (torch.rand(n, t, 9, generator=g) < 0.15).float()
    x = torch.cat([hits, hits * 0.7, hits * 0.1], -1)
    return Examples(x, x, x.new_zeros(n, t, 0), torch.full((n,), t))


def test_evaluate_weights_batches_by_size_and_keeps_rng(one_thread):
    config = get_config("debug", "batch_size=2")
    torch.manual_seed(0)
    model = build_model(config)
    ex = _examples()
    before = torch.get_rng_state()
    values = validate(model, ex, config, step=10, device=torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), before) and model.training
    # Batches of 2, 2 and 1 give the mean over all 5 examples.
    model.eval()
    with torch.no_grad():
        whole = model(ex.inputs, ex.outputs, ex.lengths, step=10)
    model.train()
    assert values["loss"] == pytest.approx(whole["loss"].item(), rel=1e-5)
    assert values["r_loss"] == pytest.approx(whole["r_loss"].item(), rel=1e-5)
    assert values["kl_beta"] == pytest.approx(0.2)
    # Only the first batch when asked; the same numbers again on a second call.
    first = validate(model, ex, config, step=10, device=torch.device("cpu"), num_batches=1)
    with torch.no_grad():
        model.eval()
        two = model(ex.inputs[:2], ex.outputs[:2], ex.lengths[:2], step=10)
    assert first["loss"] == pytest.approx(two["loss"].item(), rel=1e-5)
    assert validate(model, ex, config, step=10, device=torch.device("cpu")) == values
