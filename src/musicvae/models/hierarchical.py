"""Hierarchical ("conductor") decoder over a core LSTM decoder, one conductor step per bar.

Magenta's ``HierarchicalLstmDecoder`` with two levels and ``disable_autoregression=True``: the
conductor LSTM starts from ``tanh(dense(z))`` and reads a constant zero input of width 1, one step
per bar (``conductor_input="z"``, ours, feeds it z instead). Each conductor output (top-layer h)
is the embedding of one bar: the core decoder starts fresh from ``tanh(dense(embedding))`` for
that bar and gets the embedding concatenated to each step's input (z itself never reaches the
core). Teacher-forcing inputs are the full sequence
shifted by one step, then cut into bars, so bars 2.. start from the previous bar's last target.
With teacher forcing all bars run as one ``(B * bars)`` batch through one fused LSTM call. A
categorical core, or GrooVAE's without imposed hits or taps, samples all bars in one call of the
fused kernel (``LstmDecoder.kernel_sample``).

The core is any of our LSTM decoders (GrooVAE's, or a categorical one as in Magenta's
``hierdec-mel_16bar``): what the outputs mean (loss, activations, one step's sample, fed back as
the next input) is the core's, so a categorical core samples one-hot classes. A split
multi-output core (``hierdec-trio_16bar``) runs one categorical decoder per instrument on the
same bar embedding, each fed only its own part of the previous step.

Segments may be padded one by one, as Magenta's multi-track performances are (one 64-event
segment per instrument slot): lengths ``(B, segments)`` then count each segment's own valid
steps in the loss. The teacher-forcing inputs stay the whole sequence shifted by one, so a
segment starts from the row before it (a padding row, or the previous segment's last event).

Magenta builds the conductor cells without ``is_training``, so its input dropout stays on at
inference. We drop only in training; set ``conductor_dropout_at_inference=True`` to mimic Magenta.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from musicvae.errors import MusicVAEError
from musicvae.models.base import Activations, DecodeOptions
from musicvae.models.categorical import CategoricalLstmDecoder
from musicvae.models.decoder import (
    DecoderOutput,
    GrooveDecoding,
    GrooveLstmDecoder,
    LstmDecoder,
    shift_right,
)
from musicvae.models.encoder import segment_lengths
from musicvae.models.lstm import LstmStack
from musicvae.models.multi_out import SplitMultiOutLstmDecoder

# The decoders a conductor can drive (Config.core_decoder).
CoreDecoder = GrooveLstmDecoder | CategoricalLstmDecoder | SplitMultiOutLstmDecoder


class HierarchicalLstmDecoder(nn.Module):
    """Conductor LSTM over bars feeding a shared core LSTM decoder."""

    def __init__(
        self,
        core: CoreDecoder,
        z_size: int,
        level_lengths: tuple[int, int],
        conductor_sizes: tuple[int, ...],
        keep_prob: float = 1.0,
        conductor_dropout_at_inference: bool = False,
        conductor_reads_z: bool = False,
    ) -> None:
        super().__init__()
        if len(level_lengths) != 2:
            raise ValueError(f"only two-level hierarchies are supported, got {level_lengths}")
        self.level_lengths = tuple(int(n) for n in level_lengths)
        self.output_depth = core.output_depth
        self.z_size = z_size
        self.conductor_reads_z = conductor_reads_z
        self.conductor = LstmStack(z_size if conductor_reads_z else 1, conductor_sizes, keep_prob)
        self.conductor_initial_state = nn.Linear(z_size, self.conductor.state_size)
        nn.init.normal_(self.conductor_initial_state.weight, std=0.001)
        nn.init.zeros_(self.conductor_initial_state.bias)
        if core.z_size != self.conductor.hidden_size:
            raise ValueError(
                f"core decoder takes {core.z_size}-d embeddings, "
                f"conductor gives {self.conductor.hidden_size}"
            )
        self.core = core
        self.conductor_dropout_at_inference = conductor_dropout_at_inference

    @property
    def hit_conditioned(self) -> bool:
        return self.core.hit_conditioned

    def reconstruction_loss(
        self, rnn_output: Tensor, targets: Tensor, lengths: Tensor | None
    ) -> dict[str, Tensor]:
        """The core decoder's loss over the whole sequence. ``lengths`` ``(B, segments)``
        (Magenta's per-segment padded layout, e.g. one length per instrument slot of a
        multi-track performance) counts the first ``lengths[b, s]`` steps of each segment."""
        if lengths is None or lengths.dim() == 1:
            return self.core.reconstruction_loss(rnn_output, targets, lengths)
        return self.segment_losses(rnn_output, targets, lengths, total=True)

    def segment_losses(
        self, rnn_output: Tensor, targets: Tensor, lengths: Tensor | None, total: bool = False
    ) -> dict[str, Tensor]:
        """The core decoder's loss parts per segment, ``(B, segments)`` (summed over the
        segments when ``total``: ``(B,)``); its scalar metrics are over all valid steps.
        ``lengths``: ``(B,)`` for contiguous sequences or ``(B, segments)``."""
        # rnn_output, targets: (B, T, D) with T a whole number of segments
        b, t, d = targets.shape
        size = self.bar_length
        if t % size:
            raise MusicVAEError(f"{t} steps are not whole segments of {size}")
        segments = t // size
        seg_lengths = segment_lengths(lengths, b, segments, size).to(targets.device)
        parts = self.core.reconstruction_loss(
            rnn_output.reshape(b * segments, size, d),
            targets.reshape(b * segments, size, d),
            seg_lengths.flatten(),
        )
        out = {}
        for key, value in parts.items():
            if value.dim() == 1:
                value = value.reshape(b, segments)
                out[key] = value.sum(-1) if total else value
            else:
                out[key] = value
        return out

    def activate(self, rnn_output: Tensor) -> Activations:
        """The core decoder's activations."""
        return self.core.activate(rnn_output)

    @property
    def bar_length(self) -> int:
        return self.level_lengths[-1]

    def conduct(self, z: Tensor, bars: int) -> tuple[Tensor, Tensor]:
        """Conductor initial state ``(B, S)`` and per-bar embeddings ``(B, bars, H)``."""
        # z: (B, Z) -> init (B, S), embeddings (B, bars, H)
        init = torch.tanh(self.conductor_initial_state(z))
        if self.conductor_reads_z:
            inputs = z[:, None].expand(-1, bars, -1)
        else:
            inputs = z.new_zeros(z.shape[0], bars, 1)
        if self.conductor_dropout_at_inference and not self.training:
            return init, self.conductor.run_steps(inputs, init, drop=True)
        embeddings = self.conductor.kernel_run(inputs, init)  # sampling: one kernel call
        if embeddings is None:
            embeddings = self.conductor(self.conductor.drop_input(inputs), init)
        return init, embeddings

    def forward(
        self,
        targets: Tensor,
        lengths: Tensor | None,
        z: Tensor,
        controls: Tensor | None = None,
        sampling_probability: float = 0.0,
        generator: torch.Generator | None = None,
        loop: bool = False,
    ) -> DecoderOutput:
        """Teacher-forced (or scheduled-sampling) pass over all bars at once."""
        # targets: (B, T, D), z: (B, Z), controls: (B, T, C) -> rnn_output (B, T, D)
        b, t, d = targets.shape
        bars = math.ceil(t / self.bar_length)
        padded = bars * self.bar_length
        x_input = shift_right(targets)
        if padded != t:  # a short batch: pad to whole bars (the loss masks by length)
            x_input = nn.functional.pad(x_input, (0, 0, 0, padded - t))
            if controls is not None:
                controls = nn.functional.pad(controls, (0, 0, 0, padded - t))
        init, embeddings = self.conduct(z, bars)
        flat_emb = embeddings.reshape(b * bars, -1)
        bar_controls = None
        if controls is not None and controls.shape[-1]:
            bar_controls = controls.reshape(b * bars, self.bar_length, -1)
        core = self.core.run(
            x_input.reshape(b * bars, self.bar_length, d),
            flat_emb,
            bar_controls,
            sampling_probability,
            generator,
            loop,
        )
        rnn_output = core.rnn_output.reshape(b, padded, d)[:, :t]
        extras = {
            "conductor_initial_state": init,
            "conductor_outputs": embeddings,
            "core_initial_states": core.extras["initial_state"].reshape(b, bars, -1),
        }
        return DecoderOutput(rnn_output, extras)

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
        """Free-running samples ``(B, length, D)``, drawn by the core bar by bar; each bar
        starts from the last sample and gets its own window of the core family's ``options``
        (e.g. GrooVAE's fixed hits)."""
        bars = math.ceil(length / self.bar_length)
        _, embeddings = self.conduct(z, bars)
        if controls is not None and controls.shape[1] < bars * self.bar_length:
            controls = nn.functional.pad(
                controls, (0, 0, 0, bars * self.bar_length - controls.shape[1])
            )
        if isinstance(self.core, LstmDecoder) and (
            options is None or isinstance(options, GrooveDecoding)
        ):
            # Every bar in one call of the fused kernel, where it takes the core and options.
            first = (
                z.new_zeros(z.shape[0], self.output_depth) if start_inputs is None else start_inputs
            )
            drawn = self.core.kernel_sample(
                embeddings, first, controls, bars * self.bar_length, temperature, generator, options
            )
            if drawn is not None:
                return drawn[:, :length]
        start = start_inputs
        pieces = []
        for i in range(bars):
            lo, hi = i * self.bar_length, (i + 1) * self.bar_length
            bar_controls = controls[:, lo:hi] if controls is not None else None
            bar = self.core.sample(
                embeddings[:, i],
                self.bar_length,
                temperature,
                bar_controls,
                generator,
                start,
                None if options is None else options.window(lo, hi),
            )
            pieces.append(bar)
            start = bar[:, -1]
        return torch.cat(pieces, dim=1)[:, :length]
