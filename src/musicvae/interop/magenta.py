"""Magenta (TensorFlow) MusicVAE variables <-> our PyTorch ``state_dict``.

TF's ``LSTMBlockCell`` keeps one kernel ``[in + H, 4H]`` (input rows, then recurrent rows) and one
bias ``[4H]`` with gates ordered (i, j, f, o), and adds a forget bias of 1.0 at run time. Our
``nn.LSTM`` layers have ``weight_ih [4H, in]``, ``weight_hh [4H, H]`` and two biases in the order
(i, f, g, o): import splits the rows, reorders the gate blocks, transposes, and stores
``bias + 1`` (forget block) in ``bias_ih`` with ``bias_hh = 0``. Dense kernels ``[in, out]`` are
transposed into ``nn.Linear`` weights. Adam slots, ``beta1/2_power`` and ``global_step`` are
ignored; any other unknown variable, a missing one or a wrong shape is a :class:`MusicVAEError`.

Scopes: a bidirectional encoder's layer ``k`` is ``encoder/cell_k/bidirectional_rnn/{fw,bw}/...``,
a hierarchical encoder repeats those layers under ``encoder/hierarchical_level_l/``; a flat
decoder lives in ``decoder/``, a hierarchical one keeps its conductor in
``decoder/hierarchical_level_0/`` and its core decoder in ``core_decoder/decoder/``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from musicvae.configs import Config, get_config
from musicvae.errors import MusicVAEError
from musicvae.models import MusicVAE, build_model
from musicvae.models.decoder import LstmDecoder
from musicvae.models.encoder import BidirectionalLstmEncoder, HierarchicalLstmEncoder
from musicvae.models.hierarchical import HierarchicalLstmDecoder
from musicvae.models.lstm import LstmStack
from musicvae.models.nade import MultiLabelRnnNadeDecoder, Nade

IGNORED_NAMES = ("global_step", "beta1_power", "beta2_power")
IGNORED_SUFFIXES = ("/Adam", "/Adam_1")
# Block k of the TF gate layout (i, j, f, o) goes to block _TF_TO_TORCH[k] of (i, f, g, o).
_TORCH_FROM_TF = [0, 2, 1, 3]  # torch block b takes TF block _TORCH_FROM_TF[b]


@dataclass
class _Variable:
    """One TF variable: its shape and how it maps to/from our state-dict tensors."""

    shape: tuple[int, ...]
    to_torch: Callable[[np.ndarray], dict[str, Tensor]]
    from_torch: Callable[[dict[str, Tensor]], np.ndarray]


def _gate_blocks(x: np.ndarray, hidden: int, order: list[int]) -> np.ndarray:
    """Reorder the four gate blocks along the last axis."""
    blocks = [x[..., k * hidden : (k + 1) * hidden] for k in order]
    return np.concatenate(blocks, axis=-1)


def _inverse(order: list[int]) -> list[int]:
    return [order.index(k) for k in range(len(order))]


def _dense(tf_name: str, key: str, layer: nn.Linear) -> dict[str, _Variable]:
    out_f, in_f = layer.weight.shape
    return {
        f"{tf_name}/kernel": _Variable(
            (in_f, out_f),
            lambda a: {f"{key}.weight": torch.from_numpy(np.ascontiguousarray(a.T))},
            lambda sd: sd[f"{key}.weight"].numpy().T.copy(),
        ),
        f"{tf_name}/bias": _Variable(
            (out_f,),
            lambda a: {f"{key}.bias": torch.from_numpy(a.copy())},
            lambda sd: sd[f"{key}.bias"].numpy().copy(),
        ),
    }


def _lstm(
    tf_name: str, key: str, stack: LstmStack, layer: int, reverse: bool
) -> dict[str, _Variable]:
    h = stack.hidden_size
    n_in = stack.layer_input_size(layer)
    names = {
        k: f"{key}.{stack.param_name(k, layer, reverse)}"
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }

    def kernel_to(a: np.ndarray) -> dict[str, Tensor]:
        a = _gate_blocks(a, h, _TORCH_FROM_TF)
        return {
            names["weight_ih"]: torch.from_numpy(np.ascontiguousarray(a[:n_in].T)),
            names["weight_hh"]: torch.from_numpy(np.ascontiguousarray(a[n_in:].T)),
        }

    def kernel_from(sd: dict[str, Tensor]) -> np.ndarray:
        a = torch.cat([sd[names["weight_ih"]], sd[names["weight_hh"]]], dim=1).numpy().T
        return _gate_blocks(a, h, _inverse(_TORCH_FROM_TF))

    def bias_to(a: np.ndarray) -> dict[str, Tensor]:
        b = _gate_blocks(a, h, _TORCH_FROM_TF).copy()
        b[h : 2 * h] += 1.0  # TF's run-time forget bias
        return {
            names["bias_ih"]: torch.from_numpy(b),
            names["bias_hh"]: torch.zeros(4 * h, dtype=torch.from_numpy(b).dtype),
        }

    def bias_from(sd: dict[str, Tensor]) -> np.ndarray:
        b = (sd[names["bias_ih"]] + sd[names["bias_hh"]]).numpy().copy()
        b[h : 2 * h] -= 1.0
        return _gate_blocks(b, h, _inverse(_TORCH_FROM_TF))

    return {
        f"{tf_name}/kernel": _Variable((n_in + h, 4 * h), kernel_to, kernel_from),
        f"{tf_name}/bias": _Variable((4 * h,), bias_to, bias_from),
    }


def _nade(tf_name: str, key: str, nade: Nade) -> dict[str, _Variable]:
    """A NADE's weights: Magenta keeps ``w_enc`` as ``[D, 1, H]`` and ``w_dec_t`` as
    ``[D, H, 1]``; ours are ``(D, H)`` each (``w_enc``, ``w_dec``)."""
    d, h = nade.num_dims, nade.num_hidden

    def weight(ours: str, shape: tuple[int, ...]) -> _Variable:
        name = f"{key}.{ours}"
        return _Variable(
            shape,
            lambda a: {name: torch.from_numpy(a.reshape(d, h).copy())},
            lambda sd: sd[name].numpy().reshape(shape).copy(),
        )

    return {
        f"{tf_name}/w_enc": weight("w_enc", (d, 1, h)),
        f"{tf_name}/w_dec_t": weight("w_dec", (d, h, 1)),
    }


def _lstm_decoder(tf_prefix: str, key: str, dec: LstmDecoder) -> dict[str, _Variable]:
    """A Magenta ``BaseLstmDecoder``'s variables (any number of layers, any output)."""
    out: dict[str, _Variable] = {}
    for k in range(dec.rnn.num_layers):
        out |= _lstm(
            f"{tf_prefix}/multi_rnn_cell/cell_{k}/lstm_cell", f"{key}.rnn", dec.rnn, k, False
        )
    out |= _dense(
        f"{tf_prefix}/z_to_initial_state", f"{key}.z_to_initial_state", dec.z_to_initial_state
    )
    out |= _dense(
        f"{tf_prefix}/output_projection", f"{key}.output_projection", dec.output_projection
    )
    if isinstance(dec, MultiLabelRnnNadeDecoder):
        out |= _nade(f"{tf_prefix}/nade", f"{key}.nade", dec.nade)
    return out


def _bidirectional_stack(tf_prefix: str, key: str, stack: LstmStack) -> dict[str, _Variable]:
    """A ``BidirectionalLstmEncoder``'s layers: one ``cell_k`` scope per layer, each holding a
    one-cell forward and backward ``MultiRNNCell``."""
    out: dict[str, _Variable] = {}
    for k in range(stack.num_layers):
        for direction, reverse in (("fw", False), ("bw", True)):
            layer = f"{tf_prefix}/cell_{k}/bidirectional_rnn/{direction}"
            out |= _lstm(f"{layer}/multi_rnn_cell/cell_0/lstm_cell", key, stack, k, reverse)
    return out


def variable_map(model: MusicVAE) -> dict[str, _Variable]:
    """Every Magenta model variable of ``model``'s architecture, by TF name."""
    enc, dec = model.encoder, model.decoder
    if not isinstance(enc, BidirectionalLstmEncoder | HierarchicalLstmEncoder) or not isinstance(
        dec, LstmDecoder | HierarchicalLstmDecoder
    ):
        raise MusicVAEError("Magenta variables exist for the LSTM encoders and decoders only")
    out: dict[str, _Variable] = {}
    if isinstance(enc, HierarchicalLstmEncoder):
        for k in range(len(enc.level_lengths)):
            out |= _bidirectional_stack(
                f"encoder/hierarchical_level_{k}", f"encoder.levels.{k}", enc.level(k)
            )
    else:
        out |= _bidirectional_stack("encoder", "encoder.rnn", enc.rnn)
    out |= _dense("encoder/mu", "encoder.mu", enc.mu)
    out |= _dense("encoder/sigma", "encoder.sigma", enc.sigma)
    if isinstance(dec, HierarchicalLstmDecoder):
        level = "decoder/hierarchical_level_0"
        for k in range(dec.conductor.num_layers):
            out |= _lstm(
                f"{level}/cell_{k}/lstm_cell", "decoder.conductor", dec.conductor, k, False
            )
        out |= _dense(
            f"{level}/initial_state", "decoder.conductor_initial_state", dec.conductor_initial_state
        )
        out |= _lstm_decoder("core_decoder/decoder", "decoder.core", dec.core)
    else:
        out |= _lstm_decoder("decoder", "decoder", dec)
    return out


def is_ignored(name: str) -> bool:
    """Optimizer and bookkeeping variables that carry no model weights."""
    return name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES)


def magenta_state_dict(
    tf_vars: dict[str, np.ndarray], config: Config, source: str = "checkpoint"
) -> dict[str, Tensor]:
    """Our ``state_dict`` for ``config`` from Magenta's variables (e.g. ``read_checkpoint``)."""
    expected = variable_map(build_model(config))
    for name in sorted(tf_vars):
        if not is_ignored(name) and name not in expected:
            raise MusicVAEError(
                f"{source}: unknown variable {name!r} for config {config.name!r} "
                f"(is this checkpoint from another config or hparams?)"
            )
    state: dict[str, Tensor] = {}
    for name, var in expected.items():
        if name not in tf_vars:
            raise MusicVAEError(f"{source}: missing variable {name!r} for config {config.name!r}")
        value = np.asarray(tf_vars[name])
        if tuple(value.shape) != var.shape:
            raise MusicVAEError(
                f"{source}: variable {name!r} has shape {list(value.shape)}, config "
                f"{config.name!r} expects {list(var.shape)} (check z_size / rnn sizes)"
            )
        state |= var.to_torch(value.astype(np.float32))
    return state


def import_magenta_weights(
    tf_vars: dict[str, np.ndarray], config: Config, source: str = "checkpoint"
) -> MusicVAE:
    """A model built from ``config`` holding Magenta's weights, in eval mode."""
    model = build_model(config)
    model.load_state_dict(magenta_state_dict(tf_vars, config, source), strict=True)
    return model.eval()


def export_magenta_variables(model: MusicVAE) -> dict[str, np.ndarray]:
    """The inverse mapping: Magenta's variable names and layouts from our weights."""
    sd = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}
    return {
        name: var.from_torch(sd).astype(np.float32) for name, var in variable_map(model).items()
    }


def fit_sizes(tf_vars: dict[str, np.ndarray], config: Config) -> Config:
    """``config`` with z_size and LSTM sizes read off the checkpoint's variable shapes."""
    hp: dict[str, Any] = {}
    mu = tf_vars.get("encoder/mu/kernel")
    if mu is not None:
        hp["z_size"] = int(mu.shape[1])

    def sizes(fmt: str) -> tuple[int, ...]:
        out, k = [], 0
        while (v := tf_vars.get(fmt.format(k))) is not None:
            out.append(int(v.shape[1]) // 4)
            k += 1
        return tuple(out)

    enc_layer = "cell_{}/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"
    # A hierarchical encoder's levels all have the layers of enc_rnn_size.
    enc = sizes(f"encoder/{enc_layer}") or sizes(f"encoder/hierarchical_level_0/{enc_layer}")
    if enc:
        hp["enc_rnn_size"] = enc
    flat = sizes("decoder/multi_rnn_cell/cell_{}/lstm_cell/kernel")
    core = sizes("core_decoder/decoder/multi_rnn_cell/cell_{}/lstm_cell/kernel")
    conductor = sizes("decoder/hierarchical_level_0/cell_{}/lstm_cell/kernel")
    if flat:
        hp["dec_rnn_size"] = flat
    elif core:
        hp["dec_rnn_size"] = core
        if conductor:
            hp["conductor_rnn_size"] = conductor
    nade = tf_vars.get("decoder/nade/w_enc")  # [D, 1, nade_num_hidden]
    if nade is not None:
        hp["nade_num_hidden"] = int(nade.shape[-1])
    if not hp:
        return config
    return dataclasses.replace(config, hparams=dataclasses.replace(config.hparams, **hp))


# What a decoder's output projection width says about the data a checkpoint was trained on.
MELODY_CLASSES = 90  # OneHotMelodyConverter: 88 pitches, note-off and no-event (in and out)
DRUM_PATTERNS = 512  # DrumsConverter one-hot: one class per set of the 9 reduced drums
DRUM_ROLL_INPUT = 10  # DrumsConverter's encoder input: the 9 reduced drums and a no-hit bit
GROOVE_WIDTH = 27  # GrooveConverter: hits, velocities and offsets of 9 drums
# NADE drums by the number of drum classes the NADE spans (decoder/nade/w_enc is [D, 1, H]).
NADE_CONFIGS = {9: "nade-drums_2bar_reduced", 61: "nade-drums_2bar_full"}


def guess_config(tf_vars: dict[str, np.ndarray], source: str = "checkpoint") -> Config:
    """The registered config a Magenta checkpoint most likely comes from, by its variables.

    A checkpoint stores no sequence length, so each family maps to its published config:
    a hierarchical encoder or decoder over melodies is ``hier-mel_16bar`` /
    ``hierdec-mel_16bar``, a flat melody model with a multi-layer encoder ``flat-mel_16bar``,
    any other melody model ``cat-mel_2bar_big`` (3 decoder layers) or ``_small``; one-hot
    drums are ``cat-drums_2bar_big`` / ``_small`` alike; GrooVAE is ``groovae_4bar`` or
    ``groovae_4bar_hierdec``. A melody or drum model whose encoder reads more than the data
    (controls, e.g. chords) fits none. Sizes are the config's until :func:`fit_sizes` reads
    them."""
    names = {k for k in tf_vars if not is_ignored(k)}

    def layers(fmt: str) -> int:
        k = 0
        while fmt.format(k) in names:
            k += 1
        return k

    hier_enc = any(k.startswith("encoder/hierarchical_level_") for k in names)
    hier_dec = any(k.startswith("core_decoder/") for k in names)
    leaf = "core_decoder/decoder" if hier_dec else "decoder"
    projection = tf_vars.get(f"{leaf}/output_projection/kernel")
    width = None if projection is None else int(projection.shape[-1])
    enc_layers = layers(
        "encoder/cell_{}/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"
    )
    dec_layers = layers(f"{leaf}/multi_rnn_cell/cell_{{}}/lstm_cell/kernel")
    first = tf_vars.get(
        f"encoder/{'hierarchical_level_0/' if hier_enc else ''}"
        "cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"
    )  # [input + H, 4H]
    enc_input = None if first is None else int(first.shape[0]) - int(first.shape[1]) // 4
    name: str | None = None
    if any(k.startswith("decoder/nade/") for k in names):
        # MultiLabelRnnNadeDecoder (models.nade): the drum map from the NADE's width.
        nade = tf_vars.get("decoder/nade/w_enc")
        name = None if nade is None else NADE_CONFIGS.get(int(nade.shape[0]))
    elif width == MELODY_CLASSES and enc_input == MELODY_CLASSES:
        if hier_enc:
            name = "hier-mel_16bar"
        elif hier_dec:
            name = "hierdec-mel_16bar"
        elif enc_layers >= 2:
            name = "flat-mel_16bar"
        else:
            name = "cat-mel_2bar_big" if dec_layers >= 3 else "cat-mel_2bar_small"
    elif width == DRUM_PATTERNS and enc_input == DRUM_ROLL_INPUT and not (hier_enc or hier_dec):
        name = "cat-drums_2bar_big" if dec_layers >= 3 else "cat-drums_2bar_small"
    elif width == GROOVE_WIDTH and not hier_enc:
        name = "groovae_4bar_hierdec" if hier_dec else "groovae_4bar"
    if name is None:
        raise MusicVAEError(
            f"{source}: no registered config fits this checkpoint (output width {width}, "
            f"encoder input width {enc_input}, hierarchical encoder {hier_enc}, decoder "
            f"{hier_dec}); pass its config by name"
        )
    return get_config(name)


def read_magenta_model(
    path: str | os.PathLike, config: Config | None = None
) -> tuple[MusicVAE, Config, int | None]:
    """``(model in eval mode, config, global step or None)`` of a Magenta checkpoint (prefix,
    folder or .tar). Without ``config``, the one :func:`guess_config` picks from the
    variables; either way with the sizes read off the weights (:func:`fit_sizes`)."""
    from musicvae.interop.tf_checkpoint import read_checkpoint

    tf_vars = read_checkpoint(path)
    if config is None:
        config = guess_config(tf_vars, source=str(path))
    config = fit_sizes(tf_vars, config)
    model = import_magenta_weights(tf_vars, config, source=str(path))
    step = tf_vars.get("global_step")
    return model, config, int(step) if step is not None else None
