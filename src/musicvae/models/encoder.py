"""Bidirectional LSTM encoders: sequence -> posterior ``q(z|x) = N(mu, diag(sigma^2))``.

As in Magenta's ``BidirectionalLstmEncoder``: a stack of bidirectional layers (each layer reads
the previous layer's concatenated outputs), zero initial states, the backward direction reads the
length-limited sequence reversed, the summary is ``concat(h_fw after the last valid step,
h_bw after step 0)`` of the top layer, then ``mu = dense(summary)`` and
``sigma = softplus(dense(summary))``. A sequence of length 0 summarises to zeros (both
directions keep their zero initial state).

Magenta's ``HierarchicalLstmEncoder`` stacks such encoders: level 0 summarises each segment of
``level_lengths[0]`` steps on its own, level 1 reads ``level_lengths[1]`` of those summaries as a
sequence, and so on until one summary is left, from which mu and sigma come.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicvae.errors import MusicVAEError
from musicvae.models.lstm import LstmStack


def bidirectional_summary(rnn: LstmStack, x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Top-layer ``concat(h_fw_last, h_bw_first)`` of a bidirectional stack over ``x``
    (input dropout applied here, in training)."""
    # x: (B, T, D), lengths: (B,) -> (B, 2H)
    x = rnn.drop_input(x)
    t = x.shape[1]
    steps = None
    if lengths is not None and bool((lengths < t).any()):
        # The forward state stops at each sequence's own last step and the backward direction
        # starts there (as packing does). Packing needs a step, so an empty row runs one step
        # and its summary is zeroed below.
        steps = lengths.clamp(1, t)
    h_n = rnn.final_hidden(x, steps)
    summary = torch.cat([h_n[-2], h_n[-1]], dim=-1)
    if lengths is not None and bool((lengths <= 0).any()):
        summary = summary * (lengths > 0).to(summary.device, summary.dtype)[:, None]
    return summary


def _posterior_heads(width: int, z_size: int) -> tuple[nn.Linear, nn.Linear]:
    """The ``mu`` and ``sigma`` dense layers, initialised as Magenta's: N(0, 0.001) kernels and
    zero biases, so q(z|x) starts close to N(0, 0.69^2)."""
    layers = nn.Linear(width, z_size), nn.Linear(width, z_size)
    for layer in layers:
        nn.init.normal_(layer.weight, std=0.001)
        nn.init.zeros_(layer.bias)
    return layers


class BidirectionalLstmEncoder(nn.Module):
    """Encodes ``(B, T, input_depth)`` sequences of given lengths into ``(mu, sigma)``."""

    def __init__(
        self, input_depth: int, rnn_sizes: tuple[int, ...], z_size: int, keep_prob: float = 1.0
    ) -> None:
        super().__init__()
        self.input_depth = input_depth
        self.z_size = z_size
        self.rnn = LstmStack(input_depth, rnn_sizes, keep_prob, bidirectional=True)
        self.mu, self.sigma = _posterior_heads(2 * self.rnn.hidden_size, z_size)

    def summary(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Top-layer ``concat(h_fw_last, h_bw_first)``."""
        # x: (B, T, D), lengths: (B,) -> (B, 2H)
        return bidirectional_summary(self.rnn, x, lengths)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # x: (B, T, D), lengths: (B,) -> mu (B, Z), sigma (B, Z)
        h = self.summary(x, lengths)
        return self.mu(h), F.softplus(self.sigma(h))


def segment_lengths(lengths: Tensor | None, batch: int, segments: int, size: int) -> Tensor:
    """Valid steps of each of ``segments`` consecutive ``size``-step segments, ``(B, segments)``.

    ``lengths`` ``(B,)`` counts the steps of each whole sequence, laid out contiguously: the
    segments before its end are full, the one it ends in is partial, the rest are empty (for
    Magenta's only accepted values, 0 and the full length, this is its even split).
    ``lengths`` ``(B, segments)`` already gives them (Magenta's per-segment padded layout).
    """
    if lengths is None:
        return torch.full((batch, segments), size, dtype=torch.long)
    lengths = lengths.long()
    if lengths.dim() == 2:
        if lengths.shape[1] != segments or bool((lengths > size).any()):
            raise MusicVAEError(
                f"segment lengths of shape {tuple(lengths.shape)} do not fit {segments} "
                f"segments of {size} steps"
            )
        return lengths
    starts = torch.arange(segments, device=lengths.device) * size
    return (lengths[:, None] - starts[None, :]).clamp(0, size)


class HierarchicalLstmEncoder(nn.Module):
    """Magenta's ``HierarchicalLstmEncoder(BidirectionalLstmEncoder, level_lengths)``: one
    bidirectional stack per level (see the module docstring); ``mu``/``sigma`` from the top."""

    def __init__(
        self,
        input_depth: int,
        rnn_sizes: tuple[int, ...],
        z_size: int,
        level_lengths: tuple[int, ...],
        keep_prob: float = 1.0,
    ) -> None:
        super().__init__()
        if not level_lengths or min(level_lengths) < 1:
            raise MusicVAEError(f"encoder level lengths must be positive, got {level_lengths}")
        self.input_depth = input_depth
        self.z_size = z_size
        self.level_lengths = tuple(int(n) for n in level_lengths)
        self.levels = nn.ModuleList()
        depth = input_depth
        for _ in self.level_lengths:
            stack = LstmStack(depth, rnn_sizes, keep_prob, bidirectional=True)
            self.levels.append(stack)
            depth = 2 * stack.hidden_size
        self.mu, self.sigma = _posterior_heads(depth, z_size)

    def level(self, k: int) -> LstmStack:
        """The bidirectional stack of level ``k``."""
        stack = self.levels[k]
        assert isinstance(stack, LstmStack)
        return stack

    @property
    def total_length(self) -> int:
        """The padded sequence length the levels split: the product of the level lengths."""
        return math.prod(self.level_lengths)

    def level_outputs(self, x: Tensor, lengths: Tensor | None = None) -> list[Tensor]:
        """Each level's summaries, ``(B, segments_k, 2H)``; the last one has one segment.

        ``lengths`` is ``(B,)`` or level 0's ``(B, segments)`` (see :func:`segment_lengths`);
        shorter inputs are padded to the total length. Levels above 0 read every summary
        below them, empty segments' zeros included, as Magenta's do."""
        # x: (B, T, D), lengths: (B,) or (B, S0) -> [(B, S0, 2H), (B, S1, 2H), ...]
        b, t, _ = x.shape
        total = self.total_length
        if t > total:
            raise MusicVAEError(f"sequence of {t} steps is longer than the encoder's {total}")
        if t < total:
            x = F.pad(x, (0, 0, 0, total - t))
        outputs = []
        segments = total
        for level, size in enumerate(self.level_lengths):
            segments //= size
            flat_lengths = None  # above level 0 every summary counts
            if level == 0:
                flat_lengths = segment_lengths(lengths, b, segments, size).to(x.device).flatten()
            flat = x.reshape(b * segments, size, x.shape[-1])  # each segment a sequence
            x = bidirectional_summary(self.level(level), flat, flat_lengths)
            x = x.reshape(b, segments, -1)
            outputs.append(x)
        return outputs

    def summary(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The top level's single summary."""
        # x: (B, T, D), lengths: (B,) or (B, S0) -> (B, 2H)
        return self.level_outputs(x, lengths)[-1][:, 0]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # x: (B, T, D), lengths: (B,) or (B, S0) -> mu (B, Z), sigma (B, Z)
        h = self.summary(x, lengths)
        return self.mu(h), F.softplus(self.sigma(h))
