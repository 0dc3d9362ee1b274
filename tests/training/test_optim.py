"""Magenta's gradient clipping, learning-rate schedule and Adam update, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from musicvae.configs import get_config
from musicvae.training.optim import clip_gradients, set_learning_rate


def _params(*grads):
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(len(g)))
        p.grad = torch.tensor(g, dtype=torch.float32)
        params.append(p)
    return params


def test_clip_by_global_norm_like_magenta():
    config = get_config("debug")  # grad_clip 1.0, grad_norm_clip_to_zero 10000
    params = _params([3.0], [0.0, 4.0])  # global norm 5
    norm = clip_gradients(params, config)
    assert norm.item() == pytest.approx(5.0)
    assert params[0].grad.tolist() == pytest.approx([0.6])
    assert params[1].grad.tolist() == pytest.approx([0.0, 0.8])
    # Below grad_clip nothing changes.
    params = _params([0.3], [0.4])
    clip_gradients(params, config)
    assert params[0].grad.item() == pytest.approx(0.3) and params[1].grad.item() == pytest.approx(
        0.4
    )


def test_huge_or_nan_gradients_are_zeroed():
    config = get_config("debug", "grad_norm_clip_to_zero=100.0")
    params = _params([60.0], [80.0])  # norm exactly 100: Magenta keeps only norm < threshold
    assert clip_gradients(params, config).item() == pytest.approx(100.0)
    assert params[0].grad.item() == 0.0 and params[1].grad.item() == 0.0
    params = _params([float("nan")], [1.0])
    assert math.isnan(clip_gradients(params, config).item())
    assert params[0].grad.item() == 0.0 and params[1].grad.item() == 0.0
    value = get_config("debug", "clip_mode=value,grad_clip=0.5")
    params = _params([3.0, -0.2], [-4.0])
    clip_gradients(params, value)
    assert params[0].grad.tolist() == pytest.approx([0.5, -0.2]) and params[1].grad.item() == -0.5


@pytest.mark.parametrize("fused", [False, True])
def test_learning_rate_and_adam_match_tensorflow(fused):
    config = get_config("debug")
    p = torch.nn.Parameter(torch.tensor([0.5, 0.0]))
    opt = torch.optim.Adam([p], fused=fused)
    grads = [torch.tensor([0.5, 1e-9]), torch.tensor([-0.25, 2e-9])]
    # TF's Adam (epsilon-hat form), by hand: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);
    # x -= lr_t * m / (sqrt(v) + 1e-8); with Magenta's lr = (1e-3 - 1e-5) * 0.9999^step + 1e-5.
    x, m, v = torch.tensor([0.5, 0.0], dtype=torch.float64), 0.0, 0.0
    for step, g in enumerate(grads):
        lr = set_learning_rate(opt, step, config)
        assert lr == pytest.approx((1e-3 - 1e-5) * 0.9999**step + 1e-5, rel=1e-12)
        p.grad = g.clone()
        opt.step()
        t = step + 1
        m = 0.9 * m + 0.1 * g.double()
        v = 0.999 * v + 0.001 * g.double() ** 2
        lr_t = lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        x = x - lr_t * m / (v.sqrt() + 1e-8)
        # The update itself, compared tightly: with torch's own epsilon form the tiny second
        # coordinate would move far less.
        moved = p.detach().double() - torch.tensor([0.5, 0.0], dtype=torch.float64)
        expected = x - torch.tensor([0.5, 0.0], dtype=torch.float64)
        assert moved.tolist() == pytest.approx(expected.tolist(), rel=1e-3)


def test_amp_policy_bf16_for_cpu_training_only_where_native(monkeypatch):
    from musicvae.training import optim

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(optim, "cpu_has_fast_bf16", lambda: True)
    assert optim.amp_enabled(cpu, True) and not optim.amp_enabled(cpu, False)
    assert not optim.amp_enabled(cpu, True, training=False)  # evaluation stays fp32 on CPU
    assert optim.amp_enabled(cuda, True, training=False) and not optim.amp_enabled(cuda, False)
    with optim.autocast(cpu, True, training=True):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with optim.autocast(cpu, True):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(optim, "cpu_has_fast_bf16", lambda: False)
    assert not optim.amp_enabled(cpu, True)
