"""Magenta's ``CategoricalLstmDecoder``: one softmax over the classes at every step.

The LSTM, its initial state ``tanh(dense(z))`` and the step input ``concat(x_prev, z,
controls)`` are GrooVAE's decoder's (both are Magenta ``BaseLstmDecoder`` subclasses); what
differs is what the outputs mean. Each step's ``D`` outputs are logits of one categorical
variable (a melody's 90 event classes): the loss is softmax cross-entropy against the one-hot
target, summed over valid steps; a sample is one-hot, drawn from ``softmax(logits /
temperature)`` (temperature 0: the argmax), and fed back as the next step's input, in free
decoding and in scheduled sampling alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from musicvae.configs import Config
from musicvae.models.decoder import LstmDecoder, step_mask

if TYPE_CHECKING:
    from musicvae.models.base import DecodeOptions


def categorical_loss(
    rnn_output: Tensor, targets: Tensor, lengths: Tensor | None
) -> dict[str, Tensor]:
    """``r_loss`` (B,): softmax cross-entropy per step (``tf.nn.softmax_cross_entropy_with_
    logits`` on the one-hot targets) summed over valid steps; ``accuracy``: the share of valid
    steps whose argmax is the target's. Always float32."""
    # rnn_output, targets: (B, T, D); lengths: (B,)
    logits, tgt = rnn_output.float(), targets.float()
    b, t, _ = logits.shape
    mask = step_mask(lengths, b, t, logits.device)  # (B, T)
    xent = -(tgt * F.log_softmax(logits, dim=-1)).sum(-1)  # (B, T)
    correct = (logits.argmax(-1) == tgt.argmax(-1)).float()  # (B, T)
    return {
        "r_loss": (xent * mask).sum(-1),
        "accuracy": (correct * mask).sum() / mask.sum().clamp(min=1.0),
    }


def sample_categorical(
    logits: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """One-hot draws ``(B, D)`` from ``softmax(logits / temperature)``; temperature 0 takes
    the argmax."""
    # logits: (B, D) -> (B, D)
    logits = logits.float()
    if temperature == 0:
        index = logits.argmax(-1)
    else:
        probs = F.softmax(logits / temperature, dim=-1)
        index = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return F.one_hot(index, logits.shape[-1]).float()


class CategoricalLstmDecoder(LstmDecoder):
    """Autoregressive LSTM decoder over one-hot steps (see the module docstring)."""

    def __init__(
        self,
        output_depth: int,
        z_size: int,
        rnn_sizes: tuple[int, ...],
        control_depth: int = 0,
        keep_prob: float = 1.0,
    ) -> None:
        super().__init__(output_depth, z_size, rnn_sizes, control_depth, keep_prob)

    def reconstruction_loss(
        self, rnn_output: Tensor, targets: Tensor, lengths: Tensor | None
    ) -> dict[str, Tensor]:
        """The decoder's own loss (see :func:`categorical_loss`)."""
        return categorical_loss(rnn_output, targets, lengths)

    def activate(self, rnn_output: Tensor) -> Tensor:
        """Class probabilities ``(..., D)``."""
        return F.softmax(rnn_output.float(), dim=-1)

    def one_hot_parts(self) -> tuple[int, ...] | None:
        """One part: the whole step is one one-hot class."""
        return (self.output_depth,)

    def sample_step(
        self,
        rnn_output: Tensor,
        temperature: float,
        generator: torch.Generator | None,
        spread: Tensor | None = None,
        draws: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """One step's one-hot sample ``(B, D)``; the drum decoder's spread arguments that
        ``_loop`` passes after ``generator`` are ignored."""
        return sample_categorical(rnn_output, temperature, generator)

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
        """Free-running one-hot samples ``(B, length, D)`` from ``z`` ``(B, Z)``; temperature 0
        decodes greedily. Categories take no decoding ``options`` (GrooVAE's fixed hits,
        spread and taps are for drum grooves)."""
        if options is not None:
            raise ValueError(f"a categorical decoder takes no {type(options).__name__}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be non-negative, got {temperature}")
        return self.free_run(z, length, temperature, controls, generator, start_inputs)


def build_categorical_decoder(
    config: Config, output_depth: int, control_depth: int
) -> CategoricalLstmDecoder:
    """The decoder a config with ``decoder="categorical_lstm"`` describes."""
    hp = config.hparams
    return CategoricalLstmDecoder(
        output_depth, hp.z_size, hp.dec_rnn_size, control_depth, hp.dropout_keep_prob
    )
