"""Decoders whose every step holds several categorical parts: Magenta's trio models.

A trio step is ``[melody (90) | bass (90) | drums (512)]``, each part one-hot. Two layouts
decode it, as in Magenta's ``flat-trio_16bar`` and ``hierdec-trio_16bar``:

- :class:`MultiOutCategoricalLstmDecoder` (``decoder="multi_out_categorical"``): one LSTM reads
  the whole previous step (all parts) and z, and its output projection is cut into one softmax
  per part. The loss of a step is the sum of the parts' cross-entropies; a sample draws each
  part on its own and concatenates the one-hot draws.
- :class:`SplitMultiOutLstmDecoder` (``core_decoder="split_multi_out"``, under a conductor): one
  :class:`~musicvae.models.categorical.CategoricalLstmDecoder` per part, with weights of its
  own. Every part's LSTM starts from the same z (a bar's embedding) and reads it at every step,
  but sees only its own part of the previous step, so the instruments meet only through the
  embedding. Outputs, losses and samples are concatenated / summed across parts.

Neither takes decoding ``options``. The per-part widths come from the converter
(``converter.output_depths``) and must add up to its ``output_depth``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicvae.configs import Config
from musicvae.errors import MusicVAEError
from musicvae.models.categorical import (
    CategoricalLstmDecoder,
    categorical_loss,
    sample_categorical,
)
from musicvae.models.decoder import DecoderOutput, LstmDecoder

if TYPE_CHECKING:
    from musicvae.models.base import DecodeOptions


def check_depths(depths: Sequence[int], output_depth: int | None = None) -> tuple[int, ...]:
    """``depths`` as a tuple of positive ints, which must add up to ``output_depth`` if given."""
    parts = tuple(int(d) for d in depths)
    if not parts or min(parts) < 1:
        raise MusicVAEError(f"output depths must be positive, got {list(depths)}")
    if output_depth is not None and sum(parts) != output_depth:
        raise MusicVAEError(
            f"output depths {list(parts)} add up to {sum(parts)}, not the output depth "
            f"{output_depth}"
        )
    return parts


def multi_part_loss(
    rnn_output: Tensor, targets: Tensor, lengths: Tensor | None, depths: Sequence[int]
) -> dict[str, Tensor]:
    """The categorical loss of each part (``output_{i}_loss``, ``(B,)``) and their sum
    ``r_loss``; ``accuracy_{i}``, each part's share of valid steps predicted right, and
    ``accuracy``, their mean. Always float32."""
    # rnn_output, targets: (B, T, sum(depths)); lengths: (B,)
    out: dict[str, Tensor] = {}
    r_loss: Tensor | None = None
    accuracies = []
    pieces = zip(rnn_output.split(list(depths), -1), targets.split(list(depths), -1), strict=True)
    for i, (logits, target) in enumerate(pieces):
        part = categorical_loss(logits, target, lengths)
        out[f"output_{i}_loss"] = part["r_loss"]
        out[f"accuracy_{i}"] = part["accuracy"]
        accuracies.append(part["accuracy"])
        r_loss = part["r_loss"] if r_loss is None else r_loss + part["r_loss"]
    assert r_loss is not None  # check_depths keeps at least one part
    out["r_loss"] = r_loss
    out["accuracy"] = torch.stack(accuracies).mean()
    return out


def multi_part_probabilities(rnn_output: Tensor, depths: Sequence[int]) -> Tensor:
    """Each part's softmax, concatenated ``(..., sum(depths))``."""
    parts = rnn_output.float().split(list(depths), -1)
    return torch.cat([F.softmax(p, dim=-1) for p in parts], dim=-1)


class PartsOutput:
    """What outputs of several one-hot parts mean: the loss, activations and splitting of
    both decoders (their ``output_depths``)."""

    output_depths: tuple[int, ...]

    def split_parts(self, x: Tensor) -> tuple[Tensor, ...]:
        """``x`` ``(..., D)`` cut into its parts."""
        return x.split(list(self.output_depths), -1)

    def reconstruction_loss(
        self, rnn_output: Tensor, targets: Tensor, lengths: Tensor | None
    ) -> dict[str, Tensor]:
        """The parts' summed cross-entropies (see :func:`multi_part_loss`)."""
        return multi_part_loss(rnn_output, targets, lengths, self.output_depths)

    def activate(self, rnn_output: Tensor) -> Tensor:
        """Each part's class probabilities, concatenated ``(..., D)``."""
        return multi_part_probabilities(rnn_output, self.output_depths)


class MultiOutCategoricalLstmDecoder(PartsOutput, CategoricalLstmDecoder):
    """One LSTM over steps of several one-hot parts (see the module docstring)."""

    def __init__(
        self,
        output_depths: Sequence[int],
        z_size: int,
        rnn_sizes: tuple[int, ...],
        control_depth: int = 0,
        keep_prob: float = 1.0,
    ) -> None:
        depths = check_depths(output_depths)
        super().__init__(sum(depths), z_size, rnn_sizes, control_depth, keep_prob)
        self.output_depths = depths

    def sample_step(
        self,
        rnn_output: Tensor,
        temperature: float,
        generator: torch.Generator | None,
        spread: Tensor | None = None,
        draws: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """One one-hot draw per part, concatenated ``(B, D)``."""
        parts = self.split_parts(rnn_output)
        return torch.cat([sample_categorical(p, temperature, generator) for p in parts], -1)

    def one_hot_parts(self) -> tuple[int, ...] | None:
        """The parts, each one one-hot draw per step."""
        return self.output_depths


class SplitMultiOutLstmDecoder(PartsOutput, nn.Module):
    """One categorical LSTM decoder per part, each reading only its own part of the previous
    step (see the module docstring)."""

    def __init__(
        self,
        output_depths: Sequence[int],
        z_size: int,
        rnn_sizes: tuple[int, ...],
        control_depth: int = 0,
        keep_prob: float = 1.0,
    ) -> None:
        super().__init__()
        self.output_depths = check_depths(output_depths)
        self.output_depth = sum(self.output_depths)
        self.z_size = z_size
        self.control_depth = control_depth
        self.hit_conditioned = False
        self.decoders = nn.ModuleList(
            CategoricalLstmDecoder(d, z_size, rnn_sizes, control_depth, keep_prob)
            for d in self.output_depths
        )

    def part(self, i: int) -> CategoricalLstmDecoder:
        """The decoder of part ``i``."""
        dec = self.decoders[i]
        assert isinstance(dec, CategoricalLstmDecoder)
        return dec

    @property
    def parts(self) -> list[CategoricalLstmDecoder]:
        return [self.part(i) for i in range(len(self.decoders))]

    def initial_state(self, z: Tensor) -> Tensor:
        """The parts' initial states ``tanh(dense(z))``, concatenated in part order."""
        # z: (B, Z) -> (B, sum of the parts' state sizes)
        return torch.cat([dec.initial_state(z) for dec in self.parts], dim=-1)

    # The teacher-forced (or scheduled-sampling) pass: :meth:`run` on the shifted targets.
    forward = LstmDecoder.forward

    def run(
        self,
        x_input: Tensor,
        z: Tensor,
        controls: Tensor | None = None,
        sampling_probability: float = 0.0,
        generator: torch.Generator | None = None,
        loop: bool = False,
    ) -> DecoderOutput:
        """Each part's decoder on its own part of the (already shifted) inputs; the outputs
        are concatenated in part order, ``extras["initial_state"]`` too."""
        # x_input: (B, T, D), z: (B, Z), controls: (B, T, C) -> rnn_output (B, T, D)
        runs = [
            dec.run(x, z, controls, sampling_probability, generator, loop)
            for dec, x in zip(self.parts, self.split_parts(x_input), strict=True)
        ]
        rnn_output = torch.cat([r.rnn_output for r in runs], dim=-1)
        init = torch.cat([r.extras["initial_state"] for r in runs], dim=-1)
        return DecoderOutput(rnn_output, {"initial_state": init})

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
        """Free-running one-hot samples ``(B, length, D)``: each part decoded on its own from
        ``z`` and its own part of ``start_inputs`` (part after part, for the random draws)."""
        if options is not None:
            raise ValueError(f"a split multi-output decoder takes no {type(options).__name__}")
        starts: Sequence[Tensor | None] = (
            [None] * len(self.output_depths)
            if start_inputs is None
            else self.split_parts(start_inputs)
        )
        return torch.cat(
            [
                dec.sample(z, length, temperature, controls, generator, start)
                for dec, start in zip(self.parts, starts, strict=True)
            ],
            dim=-1,
        )


def converter_output_depths(config: Config, output_depth: int) -> tuple[int, ...]:
    """The per-part widths ``config``'s converter gives (``converter.output_depths``, or
    ``converter.depths``)."""
    from musicvae.data.converters import build_converter

    converter = build_converter(config)
    depths = getattr(converter, "output_depths", None) or getattr(converter, "depths", None)
    if depths is None:
        raise MusicVAEError(
            f"config {config.name!r}: the {config.converter} converter's outputs have no "
            f"parts (output_depths) for a multi-output decoder"
        )
    try:
        return check_depths(depths, output_depth)
    except MusicVAEError as e:
        raise MusicVAEError(f"config {config.name!r}: {e}") from None


PartsDecoder = TypeVar("PartsDecoder", MultiOutCategoricalLstmDecoder, SplitMultiOutLstmDecoder)


def _build(
    cls: type[PartsDecoder], config: Config, output_depth: int, control_depth: int
) -> PartsDecoder:
    hp = config.hparams
    depths = converter_output_depths(config, output_depth)
    return cls(depths, hp.z_size, hp.dec_rnn_size, control_depth, hp.dropout_keep_prob)


def build_multi_out_decoder(
    config: Config, output_depth: int, control_depth: int
) -> MultiOutCategoricalLstmDecoder:
    """The decoder a config with ``decoder="multi_out_categorical"`` describes."""
    return _build(MultiOutCategoricalLstmDecoder, config, output_depth, control_depth)


def build_split_decoder(
    config: Config, output_depth: int, control_depth: int
) -> SplitMultiOutLstmDecoder:
    """The decoder ``split_multi_out`` names (the core of ``hierdec-trio_16bar``)."""
    return _build(SplitMultiOutLstmDecoder, config, output_depth, control_depth)
