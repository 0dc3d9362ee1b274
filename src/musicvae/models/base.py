"""The decoder interface: what ``MusicVAE`` and the rest of the package call on a decoder.

Like Magenta's ``BaseDecoder``, a decoder owns what its outputs mean: the teacher-forced pass,
its reconstruction loss, its output activations and free-running sampling. What a family can
impose on a free-running decode (GrooVAE's fixed hits, spread and taps) travels as one
``options`` object of that family's own type (:class:`DecodeOptions`), so a new family adds
its options without widening this signature; a decoder given options it does not know refuses
them. Decoders are
``nn.Module`` subclasses that satisfy this protocol structurally (``GrooveLstmDecoder``,
``CategoricalLstmDecoder``, ``HierarchicalLstmDecoder``); a new one registers its builder in
``models.vae.DECODERS``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from musicvae.models.decoder import DecoderOutput

# GrooVAE's decoders give (hit probabilities, velocities, offsets); a categorical one gives
# class probabilities.
Activations = Tensor | tuple[Tensor, Tensor, Tensor]


class DecodeOptions(Protocol):
    """A family's constraints on a free-running decode (e.g. ``decoder.GrooveDecoding``)."""

    def window(self, start: int, stop: int) -> DecodeOptions:
        """The constraints of steps ``start`` to ``stop`` (a hierarchical decoder hands each
        bar its own), unconstrained past the end of what they cover."""
        ...

    def check(self, batch: int, length: int) -> None:
        """Raise ``MusicVAEError`` unless the constraints fit a ``(batch, length)`` decode."""
        ...

    def to(self, device: torch.device) -> DecodeOptions:
        """The constraints on ``device``."""
        ...


@runtime_checkable
class Decoder(Protocol):
    """A MusicVAE decoder (see the module docstring)."""

    @property
    def output_depth(self) -> int:
        """Values per output step ``D``."""
        ...

    @property
    def z_size(self) -> int:
        """Width of the latent code the decoder starts from."""
        ...

    @property
    def hit_conditioned(self) -> bool:
        """Whether velocity/offset heads estimate values given a hit (drum decoders)."""
        ...

    def __call__(
        self,
        targets: Tensor,
        lengths: Tensor | None,
        z: Tensor,
        controls: Tensor | None = None,
        sampling_probability: float = 0.0,
        generator: torch.Generator | None = None,
        loop: bool = False,
    ) -> DecoderOutput:
        """The teacher-forced (or scheduled-sampling) pass, ``forward`` through
        ``nn.Module.__call__``: ``rnn_output`` ``(B, T, D)``."""
        ...

    def reconstruction_loss(
        self, rnn_output: Tensor, targets: Tensor, lengths: Tensor | None
    ) -> dict[str, Tensor]:
        """``r_loss`` ``(B,)``, further ``(B,)`` loss parts and scalar metrics."""
        ...

    def activate(self, rnn_output: Tensor) -> Activations:
        """The outputs' activations (probabilities, velocities, offsets ...)."""
        ...

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
        """Free-running samples ``(B, length, D)`` from ``z`` ``(B, Z)``, under the family's
        ``options``."""
        ...
