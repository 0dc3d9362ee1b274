"""The data flow of a model, stage by stage, with the tensor shapes a real forward pass makes.

:func:`shape_walk` builds the config's model, runs a batch of zeros through the encoder, the
posterior and the decoder one stage at a time (the same calls ``MusicVAE.forward`` makes), and
records each stage's shape. The shapes are read off the tensors, not computed from the config,
so ``musicvae explain`` and the hierarchical-decoder page it feeds cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from musicvae.configs import Config
from musicvae.errors import MusicVAEError
from musicvae.families import family_of


@dataclass(frozen=True)
class Stage:
    name: str
    shape: tuple[int, ...]
    what: str


def shape_walk(config: Config, batch: int = 2) -> list[Stage]:
    """Every stage of ``config``'s model on a batch of ``batch`` windows."""
    from musicvae.data.converters import build_converter
    from musicvae.models import build_model
    from musicvae.models.decoder import LstmDecoder, shift_right
    from musicvae.models.hierarchical import HierarchicalLstmDecoder

    family = family_of(config)
    torch.manual_seed(0)
    model = build_model(config).eval()
    enc, dec = model.encoder, model.decoder
    summary = getattr(enc, "summary", None)
    if summary is None or not isinstance(dec, LstmDecoder | HierarchicalLstmDecoder):
        raise MusicVAEError(f"config {config.name!r}: explain knows the LSTM encoders and decoders")
    conv = build_converter(config)
    t = config.hparams.max_seq_len
    c = model.control_depth
    controls = torch.zeros(batch, t, c) if c else None
    x = torch.zeros(batch, t, conv.input_depth + c)  # controls ride along with the input
    y = torch.zeros(batch, t, conv.output_depth)
    lengths = torch.full((batch,), t)
    stages = [
        Stage("encoder input", tuple(x.shape), f"a window: per 16th step, {family.input_layout}"),
    ]
    with torch.no_grad():
        h = summary(x, lengths)
        levels = getattr(enc, "level_lengths", None)
        what = "last forward and backward states"
        if levels:  # a hierarchical encoder: each level summarises segments of the one below
            what += f" of the top of {len(levels)} levels ({' x '.join(map(str, levels))} steps)"
        stages.append(Stage("encoder summary", tuple(h.shape), what))
        mu, _sigma = enc(x, lengths)
        stages.append(Stage("mu, sigma", tuple(mu.shape), "the posterior q(z | x)"))
        z = mu
        stages.append(Stage("z", tuple(z.shape), "mu + sigma * eps in training, mu here"))
        if isinstance(dec, HierarchicalLstmDecoder):
            bars = t // dec.bar_length
            init, emb = dec.conduct(z, bars)
            stages += [
                Stage(
                    "conductor initial state", tuple(init.shape), "tanh(dense(z)), [c, h] per layer"
                ),
                Stage(
                    "conductor input",
                    (batch, bars, dec.conductor.input_size),
                    "z at every bar" if dec.conductor_reads_z else "zeros: one step per bar",
                ),
                Stage("bar embeddings", tuple(emb.shape), "the conductor's output, one per bar"),
            ]
            flat = emb.reshape(batch * bars, -1)
            core_init = dec.core.initial_state(flat)
            stages.append(
                Stage(
                    "core initial states",
                    tuple(core_init.reshape(batch, bars, -1).shape),
                    "tanh(dense(embedding)): each bar starts afresh",
                )
            )
            core_in = shift_right(y).reshape(batch * bars, dec.bar_length, -1)
            parts = [core_in, flat[:, None].expand(-1, dec.bar_length, -1)]
            if controls is not None:
                parts.append(controls.reshape(batch * bars, dec.bar_length, -1))
            step_in = torch.cat(parts, dim=-1)
            stages.append(
                Stage(
                    "core input per step",
                    tuple(step_in.shape),
                    "previous step | the bar's embedding, all bars as one batch",
                )
            )
        else:
            init = dec.initial_state(z)
            stages.append(Stage("decoder initial state", tuple(init.shape), "tanh(dense(z))"))
            parts = [shift_right(y), z[:, None].expand(-1, t, -1)]
            if controls is not None:
                parts.append(controls)
            step_in = torch.cat(parts, dim=-1)
            stages.append(
                Stage("decoder input per step", tuple(step_in.shape), "previous step | z")
            )
        out = dec(y, lengths, z, controls).rnn_output
        stages.append(Stage("decoder output", tuple(out.shape), family.output_layout))
    return stages


def format_walk(config: Config, stages: list[Stage]) -> str:
    width = max(len(s.name) for s in stages)
    lines = [f"{config.name}: encoder {config.encoder}, decoder {config.decoder}"]
    for s in stages:
        shape = "(" + ", ".join(str(d) for d in s.shape) + ")"
        lines.append(f"  {s.name:<{width}}  {shape:<18} {s.what}")
    return "\n".join(lines)
