"""The MusicVAE model: an encoder, a decoder and Magenta's training objective.

``loss = mean(r_loss) + beta * mean(max(KL - free_nats, 0))`` with ``KL`` the closed-form
``KL(N(mu, sigma^2) || N(0, I))`` summed over z, free bits applied to each sequence's total KL,
and the reconstruction loss the decoder owns (``decoder.reconstruction_loss``).
Training uses ``z ~ q(z|x)`` (reparameterised); evaluation uses ``z = mu``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from musicvae.configs import Config, HParams
from musicvae.errors import MusicVAEError
from musicvae.models import schedules
from musicvae.models.base import DecodeOptions, Decoder
from musicvae.models.categorical import build_categorical_decoder
from musicvae.models.decoder import GrooveLstmDecoder, LstmDecoder
from musicvae.models.encoder import BidirectionalLstmEncoder, HierarchicalLstmEncoder
from musicvae.models.hierarchical import CoreDecoder, HierarchicalLstmDecoder
from musicvae.models.multi_out import build_multi_out_decoder, build_split_decoder
from musicvae.models.nade import build_nade_decoder


def kl_divergence(mu: Tensor, sigma: Tensor) -> Tensor:
    """``KL(N(mu, diag(sigma^2)) || N(0, I))`` per row, in nats."""
    # mu, sigma: (B, Z) -> (B,)
    mu, sigma = mu.float(), sigma.float()
    return (0.5 * (mu.square() + sigma.square() - 1.0) - torch.log(sigma)).sum(-1)


class MusicVAE(nn.Module):
    """``MusicVAE(encoder, decoder, config)``; see the module docstring for the objective."""

    def __init__(
        self, encoder: nn.Module, decoder: Decoder, config: Config, control_depth: int = 0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder: Decoder = decoder
        self.config = config
        self.control_depth = control_depth

    @property
    def hparams(self) -> HParams:
        return self.config.hparams

    def _with_controls(self, x: Tensor, controls: Tensor | None) -> Tensor:
        if self.control_depth == 0:
            return x
        if controls is None:
            raise MusicVAEError(f"config {self.config.name!r} needs control sequences")
        return torch.cat([x, controls[:, : x.shape[1]].to(x.dtype)], dim=-1)

    def encode(
        self, inputs: Tensor, lengths: Tensor | None, controls: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Posterior ``(mu, sigma)``, each ``(B, z_size)``."""
        # inputs: (B, T, D_in), lengths: (B,), controls: (B, T, C)
        x = self._with_controls(inputs.float(), controls)
        return self.encoder(x, lengths)

    def forward(
        self,
        inputs: Tensor,
        outputs: Tensor,
        lengths: Tensor,
        controls: Tensor | None = None,
        step: int = 0,
    ) -> dict:
        """Training/eval objective; returns batch-mean scalars and ``per_example`` ``(B,)``."""
        # inputs: (B, T, D_in), outputs: (B, T, D_out), lengths: (B,), controls: (B, T, C)
        hp = self.hparams
        step = int(step)
        t = min(outputs.shape[1], hp.max_seq_len)
        target = outputs[:, :t].float()
        lengths = lengths.to(target.device).clamp(max=t)
        if controls is not None:
            controls = controls[:, :t].float()
        mu, sigma = self.encode(inputs[:, :t], lengths, controls)
        z = mu + sigma * torch.randn_like(sigma) if self.training else mu
        p = schedules.sampling_probability(step, hp, training=self.training)
        dec_controls = controls if self.control_depth else None
        decoded = self.decoder(target, lengths, z, dec_controls, sampling_probability=p)
        parts = self.decoder.reconstruction_loss(decoded.rnn_output, target, lengths)
        kl = kl_divergence(mu, sigma)
        kl_cost = (kl - schedules.free_nats(hp)).clamp(min=0.0)
        beta = schedules.beta(step, hp)
        r_loss = parts["r_loss"].mean()
        # The decoder's own (B,) loss parts (GrooVAE: hits, velocities, offsets) and scalars.
        loss_parts = {k: v for k, v in parts.items() if k != "r_loss" and v.dim() == 1}
        metrics = {k: v for k, v in parts.items() if v.dim() == 0}
        kl_loss = beta * kl_cost.mean()
        per_example = {
            "r_loss": parts["r_loss"],
            "kl_nats": kl,
            "kl_bits": kl / math.log(2.0),
            "kl_cost": kl_cost,
            **loss_parts,
        }
        scalar = r_loss.new_tensor
        return {
            "loss": r_loss + kl_loss,
            "r_loss": r_loss,
            "kl_loss": kl_loss,
            "kl_cost": kl_cost.mean(),
            "kl_bits": per_example["kl_bits"].mean(),
            "kl_beta": scalar(beta),
            **{k: v.mean() for k, v in loss_parts.items()},
            **metrics,
            "sampling_probability": scalar(p),
            "per_example": per_example,
        }

    def _decode_controls(self, controls: Tensor | None, n: int, length: int) -> Tensor | None:
        if self.control_depth == 0:
            return None
        if controls is None:
            raise MusicVAEError(f"config {self.config.name!r} needs control sequences")
        if controls.dim() == 2:  # one control sequence shared by the whole batch
            controls = controls[None].expand(n, -1, -1)
        if controls.shape[1] < length:
            raise MusicVAEError(f"control sequence has {controls.shape[1]} steps, need {length}")
        return controls[:, :length].float()

    @torch.no_grad()
    def decode(
        self,
        z: Tensor,
        length: int | None = None,
        temperature: float = 1.0,
        controls: Tensor | None = None,
        generator: torch.Generator | None = None,
        options: DecodeOptions | None = None,
    ) -> Tensor:
        """Sequences ``(B, length, D)`` from ``z`` ``(B, z_size)``, as the decoder samples them
        (GrooVAE: binary hits, velocities in (0, 1), offsets in (-1, 1)), under the decoder
        family's ``options`` (GrooVAE's ``decoder.GrooveDecoding``: fixed hits, spread, taps).
        Call ``model.eval()`` first; ``generator`` must live on the model's device."""
        length = int(length or self.hparams.max_seq_len)
        z = z.to(next(self.parameters()).device).float()
        controls = self._decode_controls(controls, z.shape[0], length)
        if options is not None:
            options.check(z.shape[0], length)
            options = options.to(z.device)
        return self.decoder.sample(z, length, temperature, controls, generator, options=options)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        length: int | None = None,
        temperature: float = 1.0,
        controls: Tensor | None = None,
        generator: torch.Generator | None = None,
        options: DecodeOptions | None = None,
    ) -> Tensor:
        """Decodes ``n`` draws of ``z ~ N(0, I)``."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.hparams.z_size, generator=generator, device=device)
        return self.decode(z, length, temperature, controls, generator, options)


def _groove_decoder(config: Config, output_depth: int, control_depth: int) -> Decoder:
    hp = config.hparams
    return GrooveLstmDecoder(
        output_depth,
        hp.z_size,
        hp.dec_rnn_size,
        control_depth,
        hp.dropout_keep_prob,
        hp.hit_conditioned,
    )


def _hierarchical_decoder(config: Config, output_depth: int, control_depth: int) -> Decoder:
    hp = config.hparams
    bar = config.steps_per_bar
    levels = tuple(config.level_lengths or (hp.max_seq_len // bar, bar))
    if len(levels) != 2 or math.prod(levels) != hp.max_seq_len:
        raise MusicVAEError(
            f"config {config.name!r}: level_lengths {levels} must be two numbers "
            f"whose product is max_seq_len {hp.max_seq_len}"
        )
    conductor = tuple(hp.conductor_rnn_size or hp.dec_rnn_size)
    keep = hp.dropout_keep_prob
    if config.core_decoder not in CORE_DECODERS:
        raise MusicVAEError(
            f"config {config.name!r}: unknown core decoder {config.core_decoder!r}; "
            f"known: {', '.join(CORE_DECODERS)}"
        )
    # The core is the flat decoder of that name, reading the conductor's embedding as its z.
    core_hp = dataclasses.replace(hp, z_size=conductor[-1])
    core = DECODERS[config.core_decoder](
        dataclasses.replace(config, hparams=core_hp), output_depth, control_depth
    )
    assert isinstance(core, CoreDecoder)  # the builders of CORE_DECODERS make these
    return HierarchicalLstmDecoder(
        core,
        hp.z_size,
        levels,
        conductor,
        keep,
        conductor_dropout_at_inference=hp.conductor_dropout_at_inference,
        conductor_reads_z=hp.conductor_input == "z",
    )


def _bidirectional_encoder(config: Config, input_depth: int) -> nn.Module:
    hp = config.hparams
    return BidirectionalLstmEncoder(input_depth, hp.enc_rnn_size, hp.z_size, hp.dropout_keep_prob)


def _hierarchical_encoder(config: Config, input_depth: int) -> nn.Module:
    hp = config.hparams
    levels = tuple(config.encoder_level_lengths or ())
    if len(levels) < 2 or math.prod(levels) != hp.max_seq_len:
        raise MusicVAEError(
            f"config {config.name!r}: encoder_level_lengths {levels} must be two or more "
            f"numbers whose product is max_seq_len {hp.max_seq_len}"
        )
    return HierarchicalLstmEncoder(
        input_depth, hp.enc_rnn_size, hp.z_size, levels, hp.dropout_keep_prob
    )


# Parts built from a config by name (Config.encoder / Config.decoder); a new decoder registers
# here with a builder of the same signature.
ENCODERS: dict[str, Callable[[Config, int], nn.Module]] = {
    "bidirectional_lstm": _bidirectional_encoder,
    "hierarchical_lstm": _hierarchical_encoder,
}
DECODERS: dict[str, Callable[[Config, int, int], Decoder]] = {
    "groove_lstm": _groove_decoder,
    "hierarchical": _hierarchical_decoder,
    "categorical_lstm": build_categorical_decoder,
    "nade": build_nade_decoder,
    "multi_out_categorical": build_multi_out_decoder,
    "split_multi_out": build_split_decoder,
}
# The DECODERS a hierarchical decoder's conductor can drive (Config.core_decoder).
CORE_DECODERS = ("groove_lstm", "categorical_lstm", "split_multi_out")


def build_model(config: Config) -> MusicVAE:
    """The model a registered config describes, with Magenta's initialisation; its depths
    come from the config's converter."""
    from musicvae.data.converters import build_converter

    hp = config.hparams
    if hp.residual_encoder or hp.residual_decoder:
        raise MusicVAEError(f"config {config.name!r}: residual LSTM layers are not supported")
    schedules.validate_sampling(hp)
    converter = build_converter(config)
    for kind, table, key in (
        ("encoder", ENCODERS, config.encoder),
        ("decoder", DECODERS, config.decoder),
    ):
        if key not in table:
            raise MusicVAEError(f"config {config.name!r}: unknown {kind} {key!r}")
    control = converter.control_depth
    encoder = ENCODERS[config.encoder](config, converter.input_depth + control)
    decoder = DECODERS[config.decoder](config, converter.output_depth, control)
    assert isinstance(decoder, nn.Module)  # every DECODERS builder makes one
    for part in decoder.modules():  # a hierarchical or split decoder's cores too
        if isinstance(part, LstmDecoder):
            part.word_dropout = hp.word_dropout
    return MusicVAE(encoder, decoder, config, control_depth=control)
