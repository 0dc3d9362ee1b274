"""LstmStack: TF LSTMBlockCell semantics, state layout, fused == step-by-step."""

from __future__ import annotations

import math

import pytest
import torch

from musicvae.errors import MusicVAEError
from musicvae.models import lstm as lstm_module
from musicvae.models.lstm import LstmStack


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_init_stores_forget_bias_and_freezes_bias_hh():
    stack = LstmStack(3, (4, 4))
    for k in range(2):
        b_ih = getattr(stack.lstm, f"bias_ih_l{k}")
        b_hh = getattr(stack.lstm, f"bias_hh_l{k}")
        assert b_ih.tolist() == [0.0] * 4 + [1.0] * 4 + [0.0] * 8
        assert b_hh.tolist() == [0.0] * 16
        assert not b_hh.requires_grad
    # Glorot limit over the joint [in + H, 4H] kernel: sqrt(6 / (3 + 4 + 16)).
    assert stack.lstm.weight_ih_l0.abs().max() <= math.sqrt(6 / 23)


def test_unequal_layer_sizes_are_rejected():
    with pytest.raises(MusicVAEError, match="all equal"):
        LstmStack(3, (8, 4))


def test_state_layout_is_c0_h0_c1_h1():
    stack = LstmStack(1, (2, 2))
    flat = torch.arange(8.0)[None]  # c0=[0,1] h0=[2,3] c1=[4,5] h1=[6,7]
    h, c = stack.split_state(flat)
    assert h.tolist() == [[[2.0, 3.0]], [[6.0, 7.0]]]
    assert c.tolist() == [[[0.0, 1.0]], [[4.0, 5.0]]]
    states = stack.layer_states(flat)
    assert [s[0].tolist() for s in states] == [[[2.0, 3.0]], [[6.0, 7.0]]]
    assert [s[1].tolist() for s in states] == [[[0.0, 1.0]], [[4.0, 5.0]]]


def test_one_step_matches_hand_computed_cell():
    """H = 1: gates i, f, g, o from x=1, h=0.5 with hand-picked weights and the +1 forget bias."""
    stack = LstmStack(1, (1,))
    with torch.no_grad():
        stack.lstm.weight_ih_l0.copy_(torch.tensor([[0.1], [0.2], [0.3], [0.4]]))
        stack.lstm.weight_hh_l0.copy_(torch.tensor([[0.5], [-0.5], [1.0], [-1.0]]))
        stack.lstm.bias_ih_l0.copy_(torch.tensor([0.0, 1.0, 0.0, 0.0]))
    flat = torch.tensor([[0.25, 0.5]])  # c0 = 0.25, h0 = 0.5
    out = stack(torch.ones(1, 1, 1), flat)
    i, f, g, o = 0.1 + 0.25, 0.2 - 0.25 + 1.0, 0.3 + 0.5, 0.4 - 0.5
    c = _sig(f) * 0.25 + _sig(i) * math.tanh(g)
    assert out.item() == pytest.approx(_sig(o) * math.tanh(c), abs=1e-6)


@pytest.mark.parametrize("sizes", [(5,), (5, 5, 5)])
def test_step_path_equals_fused_call(sizes):
    torch.manual_seed(0)
    stack = LstmStack(3, sizes).eval()
    x = torch.randn(4, 7, 3)
    flat = torch.randn(4, stack.state_size).tanh()
    fused = stack(x, flat)
    stepped = stack.run_steps(x, flat, drop=False)
    assert fused.shape == (4, 7, 5)
    torch.testing.assert_close(stepped, fused, atol=1e-6, rtol=1e-5)


def test_forced_dropout_is_random_and_training_dropout_only_in_training():
    torch.manual_seed(0)
    stack = LstmStack(3, (6, 6), keep_prob=0.3).eval()
    x = torch.randn(2, 5, 3)
    flat = torch.zeros(2, stack.state_size)
    assert torch.equal(stack(stack.drop_input(x), flat), stack(stack.drop_input(x), flat))
    a, b = stack.run_steps(x, flat, drop=True), stack.run_steps(x, flat, drop=True)
    assert not torch.equal(a, b)
    stack.train()
    assert not torch.equal(stack(x, flat), stack(x, flat))


def test_layered_training_run_equals_fused_call_without_masks(monkeypatch):
    """With dropout on, training on the CPU runs one torch.lstm call per layer; with the
    masks taken out it must be the fused nn.LSTM call exactly (same kernel, same state)."""
    torch.manual_seed(2)
    stack = LstmStack(3, (5, 5, 5), keep_prob=0.5).train()
    x = torch.randn(4, 7, 3)
    flat = torch.randn(4, stack.state_size).tanh()
    calls = []

    def no_drop(t, p):
        calls.append(p)
        return t

    monkeypatch.setattr(lstm_module, "dropout", no_drop)
    layered = stack(x, flat)
    assert calls == [0.5, 0.5]  # between layers 0-1 and 1-2
    stack.eval()
    torch.testing.assert_close(layered, stack(x, flat), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(layered, stack.run_steps(x, flat, drop=False), atol=1e-6, rtol=1e-5)


def test_layered_training_run_drops_between_layers_and_runs_under_bf16_autocast():
    torch.manual_seed(3)
    stack = LstmStack(3, (6, 6), keep_prob=0.3).train()
    x = torch.randn(2, 5, 3)
    flat = torch.zeros(2, stack.state_size)
    torch.manual_seed(4)
    a = stack(x, flat)
    torch.manual_seed(4)
    assert torch.equal(a, stack(x, flat))  # masks come from the seeded global generator
    assert not torch.equal(a, stack(x, flat))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = stack(x.bfloat16(), flat)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 5, 6)
    out.float().sum().backward()
    assert stack.lstm.weight_hh_l1.grad is not None


def test_without_the_layer_kernel_training_runs_the_fused_stack(monkeypatch):
    """If torch drops ``torch.lstm`` the stack falls back to nn.LSTM's own dropout: same
    shapes, and the same output as the layered path once dropout is off."""
    torch.manual_seed(5)
    stack = LstmStack(3, (5, 5), keep_prob=0.5).train()
    x, flat = torch.randn(2, 6, 3), torch.zeros(2, stack.state_size)
    monkeypatch.setattr(lstm_module, "has_layer_kernel", lambda: False)
    monkeypatch.setattr(lstm_module, "lstm_layer", None)  # would raise if it were called
    out = stack(x, flat)
    assert out.shape == (2, 6, 5)
    stack.eval()
    assert not torch.equal(out, stack(x, flat))  # training dropped something
