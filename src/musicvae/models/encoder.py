"""Bidirectional LSTM encoder: sequence -> posterior ``q(z|x) = N(mu, diag(sigma^2))``.

As in Magenta's ``BidirectionalLstmEncoder``: a stack of bidirectional layers (each layer reads
the previous layer's concatenated outputs), zero initial states, the backward direction reads the
length-limited sequence reversed, the summary is ``concat(h_fw after the last valid step,
h_bw after step 0)`` of the top layer, then ``mu = dense(summary)`` and
``sigma = softplus(dense(summary))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from musicvae.models.lstm import LstmStack


class BidirectionalLstmEncoder(nn.Module):
    """Encodes ``(B, T, input_depth)`` sequences of given lengths into ``(mu, sigma)``."""

    def __init__(
        self, input_depth: int, rnn_sizes: tuple[int, ...], z_size: int, keep_prob: float = 1.0
    ) -> None:
        super().__init__()
        self.input_depth = input_depth
        self.z_size = z_size
        self.rnn = LstmStack(input_depth, rnn_sizes, keep_prob, bidirectional=True)
        width = 2 * self.rnn.hidden_size
        self.mu = nn.Linear(width, z_size)
        self.sigma = nn.Linear(width, z_size)
        # Magenta: N(0, 0.001) kernels and zero biases, so q(z|x) starts close to N(0, 0.69^2).
        for layer in (self.mu, self.sigma):
            nn.init.normal_(layer.weight, std=0.001)
            nn.init.zeros_(layer.bias)

    def summary(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Top-layer ``concat(h_fw_last, h_bw_first)``."""
        # x: (B, T, D), lengths: (B,) -> (B, 2H)
        x = self.rnn.drop_input(x)
        t = x.shape[1]
        packed: Tensor | PackedSequence = x
        if lengths is not None and bool((lengths < t).any()):
            # Packing makes the forward state stop at each sequence's own last step and the
            # backward direction start there; zero-length rows are read as length 1.
            packed = pack_padded_sequence(
                x, lengths.clamp(1, t).cpu(), batch_first=True, enforce_sorted=False
            )
        _, (h_n, _) = self.rnn.lstm(packed)
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # x: (B, T, D), lengths: (B,) -> mu (B, Z), sigma (B, Z)
        h = self.summary(x, lengths)
        return self.mu(h), F.softplus(self.sigma(h))
