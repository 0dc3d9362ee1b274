"""LSTM building blocks with TensorFlow ``LSTMBlockCell`` semantics on top of ``nn.LSTM``.

Parameters are exactly ``nn.LSTM``'s (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``), so a whole stack runs as one fused (cuDNN / oneDNN) call. TF's run-time
forget bias of +1 lives inside ``bias_ih`` (stored there at init and on import); ``bias_hh`` is
kept at zero and frozen so that, like TF, each gate has exactly one trainable bias.

A per-step path (:meth:`LstmStack.step`) reuses the same tensors for sampling and scheduled
sampling. Magenta's ``DropoutWrapper(input_keep_prob)`` on every layer maps to dropout on the
layer-0 input (done by the caller) plus dropout between layers. On the CPU, training with
dropout runs the layers one kernel call each with the cheap dropout masks in between (both in
:mod:`musicvae.cpu`).

On the CPU every LSTM here (whole sequences, packed lengths, the per-step cell) runs on the fused
kernel of :mod:`musicvae.models.fused_lstm` when it is available, one layer per call with the
same cheap dropout between layers; ``nn.LSTM`` (and plain PyTorch for the cell) otherwise.

Flat LSTM states follow Magenta's layout ``[c_0, h_0, c_1, h_1, ...]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from musicvae.cpu import dropout, dropout_mask, has_layer_kernel, lstm_layer
from musicvae.errors import MusicVAEError
from musicvae.models import fused_lstm

__all__ = ["LayerStates", "LstmStack", "dropout", "dropout_mask", "lstm_cell"]

# A per-layer state list [(h, c), ...] for the step-by-step path.
LayerStates = list[tuple[Tensor, Tensor]]


_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _lstm_attr(kind: str, layer: int, reverse: bool) -> str:
    return f"{kind}_l{layer}{'_reverse' if reverse else ''}"


def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM update from pre-activation gates in PyTorch order (i, f, g, o)."""
    fused = fused_lstm.cell(gates, c)
    if fused is not None:
        return fused
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class LstmStack(nn.Module):
    """A stack of equal-width LSTM layers, fused into one ``nn.LSTM``.

    ``keep_prob`` is Magenta's ``dropout_keep_prob``: ``nn.LSTM`` drops the input of layers
    1..L-1; the caller drops the layer-0 input with :meth:`drop_input`.
    """

    def __init__(
        self,
        input_size: int,
        sizes: tuple[int, ...],
        keep_prob: float = 1.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        sizes = tuple(int(s) for s in sizes)
        if not sizes or len(set(sizes)) != 1:
            raise MusicVAEError(f"LSTM layer sizes must be non-empty and all equal, got {sizes}")
        if not 0.0 < keep_prob <= 1.0:
            raise MusicVAEError(f"dropout_keep_prob must be in (0, 1], got {keep_prob}")
        self.input_size = input_size
        self.hidden_size = sizes[0]
        self.num_layers = len(sizes)
        self.num_directions = 2 if bidirectional else 1
        self.dropout = 1.0 - keep_prob
        self.lstm = nn.LSTM(
            input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            batch_first=True,
            dropout=self.dropout if self.num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.reset_parameters()

    @property
    def state_size(self) -> int:
        """Width of the flat ``[c_0, h_0, ...]`` state vector (one direction)."""
        return 2 * self.hidden_size * self.num_layers

    def param_name(self, kind: str, layer: int, reverse: bool = False) -> str:
        """State-dict suffix of one tensor, e.g. ``lstm.weight_ih_l0_reverse``."""
        return "lstm." + _lstm_attr(kind, layer, reverse)

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.hidden_size * self.num_directions

    def reset_parameters(self) -> None:
        """TF defaults: Glorot-uniform over the joint ``[in + H, 4H]`` kernel, zero bias, +1 forget."""
        h = self.hidden_size
        for layer in range(self.num_layers):
            limit = math.sqrt(6.0 / (self.layer_input_size(layer) + h + 4 * h))
            for reverse in range(self.num_directions):
                p = {
                    k: getattr(self.lstm, _lstm_attr(k, layer, bool(reverse)))
                    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                }
                with torch.no_grad():
                    p["weight_ih"].uniform_(-limit, limit)
                    p["weight_hh"].uniform_(-limit, limit)
                    p["bias_ih"].zero_()
                    p["bias_ih"][h : 2 * h] = 1.0
                    p["bias_hh"].zero_()
                p["bias_hh"].requires_grad_(False)

    def drop_input(self, x: Tensor, force: bool = False) -> Tensor:
        """Dropout on the layer-0 input (active in training, or when ``force``)."""
        if self.dropout > 0.0 and (self.training or force):
            return dropout(x, self.dropout)
        return x

    def split_state(self, flat: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, state_size)`` as ``[c0, h0, c1, h1, ...]`` -> ``(h, c)``, each ``(L, B, H)``."""
        b = flat.shape[0]
        v = flat.view(b, self.num_layers, 2, self.hidden_size).transpose(0, 1)
        return v[:, :, 1].contiguous(), v[:, :, 0].contiguous()

    def layer_states(self, flat: Tensor) -> LayerStates:
        """``(B, state_size)`` -> ``[(h_k, c_k), ...]`` for :meth:`step`."""
        chunks = flat.split(self.hidden_size, dim=1)
        return [(chunks[2 * k + 1], chunks[2 * k]) for k in range(self.num_layers)]

    def forward(self, x: Tensor, flat_state: Tensor | None = None) -> Tensor:
        """Fused run over a whole sequence; returns the top layer's outputs."""
        # x: (B, T, in) (already input-dropped); flat_state: (B, state_size) -> (B, T, H * dirs)
        state = None
        if flat_state is not None:
            state = self.split_state(flat_state.to(x.dtype))
        if fused_lstm.supports(x):
            return self._fused(x, state)[0]
        layered = (
            self.training
            and self.dropout > 0.0
            and self.num_layers > 1
            and self.num_directions == 1
            and x.device.type == "cpu"
            and has_layer_kernel()
        )
        if not layered:
            out, _ = self.lstm(x, state)
            return out
        for k in range(self.num_layers):
            if k:
                x = dropout(x, self.dropout)
            weights = [getattr(self.lstm, _lstm_attr(kind, k, False)) for kind in _KINDS]
            if state is None:
                zeros = x.new_zeros(1, x.shape[0], self.hidden_size)
                hx = (zeros, zeros)
            else:
                hx = (state[0][k : k + 1], state[1][k : k + 1])
            x = lstm_layer(x, hx, weights)
        return x

    def final_hidden(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``h_n`` ``(L * D, B, H)`` from zero states, each row stopping after its first
        ``lengths`` steps (all of them without ``lengths``; the reverse direction starts there)."""
        # x: (B, T, in) (already input-dropped), lengths: (B,) in [1, T] -> (L * D, B, H)
        if fused_lstm.supports(x):
            return self._fused(x, None, lengths)[1]
        packed: Tensor | PackedSequence = x
        if lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return h_n

    def _fused(
        self,
        x: Tensor,
        state: tuple[Tensor, Tensor] | None,
        lengths: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The stack on the fused kernel, a layer per call with dropout between layers in
        training: the top layer's outputs and ``h_n`` ``(L * D, B, H)``."""
        dirs, h_n = self.num_directions, []
        for k in range(self.num_layers):
            if k and self.training:
                x = dropout(x, self.dropout)
            weights = [
                tuple(getattr(self.lstm, _lstm_attr(kind, k, bool(r))) for kind in _KINDS)
                for r in range(dirs)
            ]
            if state is None:
                h0 = c0 = x.new_zeros(dirs, x.shape[0], self.hidden_size)
            else:
                h0, c0 = state[0][k * dirs : (k + 1) * dirs], state[1][k * dirs : (k + 1) * dirs]
            x, hn, _ = fused_lstm.layer(x, h0, c0, weights, lengths)
            h_n.append(hn)
        return x, torch.cat(h_n)

    def weight(self, kind: str, layer: int) -> Tensor:
        """One layer's ``nn.LSTM`` tensor (``kind``: weight_ih, weight_hh, bias_ih, bias_hh)."""
        w: Tensor = getattr(self.lstm, _lstm_attr(kind, layer, False))
        return w

    def kernel_weights(self) -> tuple[list[Tensor], list[Tensor]]:
        """The fused kernel's whole-sequence ops' weights (see ``fused_lstm.DecodeWeights``):
        panels of ``W_hh0^T``, then per layer of ``[W_ih^T; W_hh^T]``, and the summed biases of
        the layers above 0; made once and kept until the parameters change."""
        params = [[self.weight(kind, k) for kind in _KINDS] for k in range(self.num_layers)]

        def make() -> tuple[list[Tensor], list[Tensor]]:
            w = [[t.detach() for t in layer] for layer in params]
            w_rec = [fused_lstm.panels(w[0][1].t())]
            w_rec += [
                fused_lstm.panels(torch.cat([w_ih.t(), w_hh.t()])) for w_ih, w_hh, _, _ in w[1:]
            ]
            bias = [(b_ih + b_hh).contiguous() for _, _, b_ih, b_hh in w[1:]]
            return w_rec, bias

        return fused_lstm.derived(self, [t for layer in params for t in layer], make)

    def kernel_run(self, x: Tensor, flat_state: Tensor) -> Tensor | None:
        """The top layer's outputs ``(B, T, H)`` of a run over ``x`` ``(B, T, in)`` from
        ``flat_state``, in one call of the fused kernel's stack op, where it takes it: inference
        (no dropout, no gradients) of one direction in float32 on the CPU; None otherwise. For
        few rows (a conductor's), where :meth:`forward`'s library GEMMs cost most."""
        if (
            self.training
            or torch.is_grad_enabled()
            or self.num_directions != 1
            or x.dtype != torch.float32
            or flat_state.dtype != torch.float32
            or x.dim() != 3
            or x.shape[1] == 0
            or not fused_lstm.samples(x)
        ):
            return None
        b = self.weight("bias_ih", 0) + self.weight("bias_hh", 0)
        gates = torch.matmul(x, self.weight("weight_ih", 0).t()) + b
        w_rec, bias = self.kernel_weights()
        return fused_lstm.stack_run(gates.contiguous(), flat_state.contiguous(), w_rec, bias)

    def step_weights(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per layer ``(W_ih^T, W_hh^T, b_ih + b_hh)`` for the step path."""
        out = []
        for k in range(self.num_layers):
            w_ih = getattr(self.lstm, f"weight_ih_l{k}")
            w_hh = getattr(self.lstm, f"weight_hh_l{k}")
            b = getattr(self.lstm, f"bias_ih_l{k}") + getattr(self.lstm, f"bias_hh_l{k}")
            out.append((w_ih.t(), w_hh.t(), b))
        return out

    def step(
        self,
        gates0: Tensor,
        states: LayerStates,
        weights: list[tuple[Tensor, Tensor, Tensor]],
        drop: bool,
    ) -> tuple[Tensor, LayerStates]:
        """One time step; ``gates0`` is layer 0's input contribution incl. both biases."""
        # gates0: (B, 4H); states: L x ((B, H), (B, H)) -> top h (B, H), new states
        new: LayerStates = []
        x = gates0
        for k, (h, c) in enumerate(states):
            w_ih_t, w_hh_t, b = weights[k]
            if k == 0:
                gates = torch.addmm(gates0, h, w_hh_t)
            else:
                if drop and self.dropout > 0.0:
                    x = F.dropout(x, self.dropout, training=True)
                gates = torch.addmm(torch.addmm(b, x, w_ih_t), h, w_hh_t)
            x, c = lstm_cell(gates, c)
            new.append((x, c))
        return x, new

    def run_steps(self, x: Tensor, flat_state: Tensor, drop: bool) -> Tensor:
        """The step path over a whole input sequence (for tests and forced dropout)."""
        # x: (B, T, in) -> (B, T, H)
        weights = self.step_weights()
        w_ih_t, _, b = weights[0]
        states = self.layer_states(flat_state)
        if drop and self.dropout > 0.0:
            x = F.dropout(x, self.dropout, training=True)
        gates = torch.matmul(x, w_ih_t) + b
        outs = []
        for t in range(x.shape[1]):
            h, states = self.step(gates[:, t], states, weights, drop)
            outs.append(h)
        return torch.stack(outs, dim=1)
