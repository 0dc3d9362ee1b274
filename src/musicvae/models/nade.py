"""Magenta's ``MultiLabelRnnNadeDecoder``: an LSTM whose every step is a NADE over ``D`` bits.

A NADE (neural autoregressive distribution estimator, Uria et al. 2016) factorises the law of one
multi-hot step ``x`` in ``{0, 1}^D`` dim by dim, ``p(x) = prod_i p(x_i | x_<i)``. A hidden
pre-activation ``a`` starts at the bias ``b_enc`` (``H`` wide); dim ``i`` reads

    logit_i = b_dec[i] + sigmoid(a) . w_dec[i],    p(x_i = 1 | x_<i) = sigmoid(logit_i)

and then adds ``x_i * w_enc[i]`` to ``a``. ``w_enc`` and ``w_dec`` (``(D, H)`` each) are the
decoder's own weights; ``b_enc`` and ``b_dec`` come from the LSTM: the output projection is
``H + D`` wide and split ``[b_enc | b_dec]``. The log-probability uses Magenta's floor,
``x log(p + 1e-6) + (1 - x) log(1 - p + 1e-6)``, so a confident mistake costs at most
``-log(1e-6)`` per dim.

The rest is Magenta's ``BaseLstmDecoder`` (``models.decoder.LstmDecoder``): initial state
``tanh(dense(z))``, step input ``concat(previous multi-hot step, z, controls)``. The loss is
``-log p`` of each target step summed over the valid steps. Sampling draws the dims in order,
each from ``Bernoulli(sigmoid(logit_i / temperature))`` and each feeding the next; temperature
0 takes ``logit_i > 0`` (Magenta's ``TrainedModel`` decodes at temperature 1e-10, which is the
same rule). Scheduled sampling feeds the greedy step back, as Magenta's training graph does
(its sampler runs without a temperature there and thresholds ``p >= 0.5``: the same but at a
logit of exactly 0).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicvae.configs import Config
from musicvae.models.decoder import LstmDecoder, step_mask

if TYPE_CHECKING:
    from musicvae.models.base import DecodeOptions

# Magenta's floor inside the NADE's logarithms.
NADE_LOG_EPSILON = 1e-6


class Nade(nn.Module):
    """A NADE over ``num_dims`` bits with ``num_hidden`` hidden units and external biases
    (see the module docstring). ``w_enc[i]`` is what bit ``i`` adds to the hidden
    pre-activation, ``w_dec[i]`` how the hidden units read out bit ``i``."""

    def __init__(self, num_dims: int, num_hidden: int) -> None:
        super().__init__()
        self.num_dims = num_dims
        self.num_hidden = num_hidden
        self.w_enc = nn.Parameter(torch.empty(num_dims, num_hidden))
        self.w_dec = nn.Parameter(torch.empty(num_dims, num_hidden))
        # Magenta: a normal truncated at two standard deviations, std 1 / sqrt(D).
        std = 1.0 / math.sqrt(num_dims)
        for w in (self.w_enc, self.w_dec):
            nn.init.trunc_normal_(w, std=std, a=-2.0 * std, b=2.0 * std)

    def conditional_logits(self, x: Tensor, b_enc: Tensor, b_dec: Tensor) -> Tensor:
        """``logit_i`` of ``p(x_i = 1 | x_<i)`` for every dim at once, ``(..., D)``."""
        # x: (..., D), b_enc: (..., H), b_dec: (..., D) -> (..., D)
        # What the earlier dims added to the hidden pre-activation: an exclusive running sum.
        added = x.unsqueeze(-1) * self.w_enc  # (..., D, H)
        earlier = F.pad(torch.cumsum(added[..., :-1, :], dim=-2), (0, 0, 1, 0))
        hidden = torch.sigmoid(earlier.add_(b_enc.unsqueeze(-2)))  # (..., D, H)
        return b_dec + (hidden * self.w_dec).sum(-1)

    def forward(self, x: Tensor, b_enc: Tensor, b_dec: Tensor) -> tuple[Tensor, Tensor]:
        """``(log p(x), conditional probabilities)``: ``log p`` ``(...)`` with Magenta's 1e-6
        floor, and ``p(x_i = 1 | the true x_<i)`` ``(..., D)``."""
        # x: (..., D), b_enc: (..., H), b_dec: (..., D) -> (...), (..., D)
        probs = torch.sigmoid(self.conditional_logits(x, b_enc, b_dec))
        log_p = x * torch.log(probs + NADE_LOG_EPSILON) + (1 - x) * torch.log(
            1 - probs + NADE_LOG_EPSILON
        )
        return log_p.sum(-1), probs

    def log_prob(self, x: Tensor, b_enc: Tensor, b_dec: Tensor) -> tuple[Tensor, Tensor]:
        """Same as calling the module (see :meth:`forward`)."""
        return self(x, b_enc, b_dec)

    def sample(
        self,
        b_enc: Tensor,
        b_dec: Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(samples, conditional logits)``, both ``(N, D)``: dims drawn in order from
        ``Bernoulli(sigmoid(logit / temperature))`` (temperature 0: ``logit > 0``), each drawn
        bit feeding the next dim's logit, which is returned as computed."""
        # b_enc: (N, H), b_dec: (N, D) -> (N, D), (N, D)
        a = b_enc
        bits: list[Tensor] = []
        logits: list[Tensor] = []
        for i in range(self.num_dims):
            logit = b_dec[:, i] + torch.sigmoid(a) @ self.w_dec[i]  # (N,)
            if temperature == 0:
                bit = (logit > 0).to(logit.dtype)
            else:
                bit = torch.bernoulli(torch.sigmoid(logit / temperature), generator=generator)
            a = a + bit[:, None] * self.w_enc[i]
            bits.append(bit)
            logits.append(logit)
        return torch.stack(bits, dim=-1), torch.stack(logits, dim=-1)


def multilabel_metrics(predicted: Tensor, truth: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Scalar metrics of multi-hot predictions over the valid steps: ``accuracy`` (the share
    of steps whose every bit is right, Magenta's ``metrics/accuracy``), and ``hit_precision``,
    ``hit_recall`` and ``hit_f1`` over all valid cells (0 where nothing is predicted or
    true)."""
    # predicted, truth: (B, T, D) bool; mask: (B, T) -> scalars
    cells = mask.unsqueeze(-1)
    exact = (predicted == truth).all(-1).float()
    tp = (predicted & truth).float().mul(cells).sum()
    fp = (predicted & ~truth).float().mul(cells).sum()
    fn = (~predicted & truth).float().mul(cells).sum()
    return {
        "accuracy": (exact * mask).sum() / mask.sum().clamp(min=1.0),
        "hit_precision": tp / (tp + fp).clamp(min=1.0),
        "hit_recall": tp / (tp + fn).clamp(min=1.0),
        "hit_f1": 2 * tp / (2 * tp + fp + fn).clamp(min=1.0),
    }


class MultiLabelRnnNadeDecoder(LstmDecoder):
    """Autoregressive LSTM decoder with a NADE over each multi-hot step (see the module
    docstring). Its pass (``LstmDecoder.forward``) maps targets ``(B, T, D)`` to
    ``rnn_output`` ``(B, T, H + D)``: ``[b_enc | b_dec]`` per step."""

    def __init__(
        self,
        output_depth: int,
        z_size: int,
        rnn_sizes: tuple[int, ...],
        num_hidden: int,
        control_depth: int = 0,
        keep_prob: float = 1.0,
    ) -> None:
        super().__init__(output_depth, z_size, rnn_sizes, control_depth, keep_prob)
        self.nade = Nade(output_depth, num_hidden)
        # The NADE's biases instead of one value per output dim.
        self.output_projection = nn.Linear(self.rnn.hidden_size, num_hidden + output_depth)
        nn.init.xavier_uniform_(self.output_projection.weight)
        nn.init.zeros_(self.output_projection.bias)

    def nade_biases(self, rnn_output: Tensor) -> tuple[Tensor, Tensor]:
        """``(b_enc (..., H), b_dec (..., D))`` from ``(..., H + D)`` outputs, in float32."""
        b_enc, b_dec = rnn_output.float().split([self.nade.num_hidden, self.output_depth], -1)
        return b_enc, b_dec

    def reconstruction_loss(
        self, rnn_output: Tensor, targets: Tensor, lengths: Tensor | None
    ) -> dict[str, Tensor]:
        """``r_loss`` (B,): ``-log p`` of each target step under its NADE, summed over the
        valid steps; scalars from :func:`multilabel_metrics`, predicting each bit by
        ``p(x_i | the true x_<i) >= 0.5`` (teacher forcing inside the step, as Magenta)."""
        # rnn_output: (B, T, H + D), targets: (B, T, D), lengths: (B,)
        tgt = targets.float()
        b, t, _ = tgt.shape
        mask = step_mask(lengths, b, t, tgt.device)  # (B, T)
        log_p, probs = self.nade.log_prob(tgt, *self.nade_biases(rnn_output))
        return {
            "r_loss": -(log_p * mask).sum(-1),
            **multilabel_metrics(probs >= 0.5, tgt > 0.5, mask),
        }

    def activate(self, rnn_output: Tensor) -> Tensor:
        """Per-dim probabilities ``(..., D)`` along the greedy path: ``p(x_i = 1 | x_<i)``
        where the earlier dims take the values the temperature-0 sample gives them, so that
        ``probability > 0.5`` is that sample. They are conditionals, not marginals: a dim's
        value depends on what the earlier dims were decided to be."""
        # rnn_output: (..., H + D) -> (..., D)
        b_enc, b_dec = self.nade_biases(rnn_output)
        lead = b_dec.shape[:-1]
        _, logits = self.nade.sample(
            b_enc.reshape(-1, self.nade.num_hidden), b_dec.reshape(-1, self.output_depth), 0.0
        )
        return torch.sigmoid(logits).reshape(*lead, self.output_depth)

    def sample_step(
        self,
        rnn_output: Tensor,
        temperature: float,
        generator: torch.Generator | None,
        spread: Tensor | None = None,
        draws: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """One step's multi-hot sample ``(B, D)`` from its ``(B, H + D)`` outputs; the drum
        decoder's spread arguments that ``_loop`` passes are ignored."""
        samples, _ = self.nade.sample(*self.nade_biases(rnn_output), temperature, generator)
        return samples

    def _scheduled_input(
        self, out: Tensor, x: Tensor, p: float, generator: torch.Generator | None
    ) -> Tensor:
        """Scheduled sampling as Magenta's graph does it for a NADE: the fed-back step is the
        greedy sample, not a draw at temperature 1."""
        if not p > 0.0:
            return x
        greedy = self.sample_step(out, 0.0, generator).to(x.dtype)
        if p < 1.0:  # per example: keep the true step with probability 1 - p
            keep = torch.rand(x.shape[0], 1, generator=generator, device=x.device) >= p
            greedy = torch.where(keep, x, greedy)
        return greedy

    def sample(
        self,
        z: Tensor,
        length: int,
        temperature: float = 1.0,
        controls: Tensor | None = None,
        generator: torch.Generator | None = None,
        start_inputs: Tensor | None = None,
        options: DecodeOptions | None = None,
    ) -> Tensor:
        """Free-running multi-hot samples ``(B, length, D)`` from ``z`` ``(B, Z)``, each step
        fed back as the next input; temperature 0 decodes greedily. A NADE takes no decoding
        ``options`` (GrooVAE's fixed hits, spread and taps are for its own decoder)."""
        # z: (B, Z), controls: (B, length, C), start_inputs: (B, D) -> (B, length, D)
        if options is not None:
            raise ValueError(f"a NADE decoder takes no {type(options).__name__}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be non-negative, got {temperature}")
        return self.free_run(z, length, temperature, controls, generator, start_inputs)


def build_nade_decoder(
    config: Config, output_depth: int, control_depth: int
) -> MultiLabelRnnNadeDecoder:
    """The decoder a config with ``decoder="nade"`` describes."""
    hp = config.hparams
    return MultiLabelRnnNadeDecoder(
        output_depth,
        hp.z_size,
        hp.dec_rnn_size,
        hp.nade_num_hidden,
        control_depth,
        hp.dropout_keep_prob,
    )
