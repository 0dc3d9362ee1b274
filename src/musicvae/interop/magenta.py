"""Magenta (TensorFlow) MusicVAE variables <-> our PyTorch ``state_dict``.

TF's ``LSTMBlockCell`` keeps one kernel ``[in + H, 4H]`` (input rows, then recurrent rows) and one
bias ``[4H]`` with gates ordered (i, j, f, o), and adds a forget bias of 1.0 at run time. Our
``nn.LSTM`` layers have ``weight_ih [4H, in]``, ``weight_hh [4H, H]`` and two biases in the order
(i, f, g, o): import splits the rows, reorders the gate blocks, transposes, and stores
``bias + 1`` (forget block) in ``bias_ih`` with ``bias_hh = 0``. Dense kernels ``[in, out]`` are
transposed into ``nn.Linear`` weights. Adam slots, ``beta1/2_power`` and ``global_step`` are
ignored; any other unknown variable, a missing one or a wrong shape is a :class:`MusicVAEError`.

Import streams: the model is built on the ``meta`` device (no weights allocated), each variable
is read from the checkpoint when its turn comes, converted straight into the tensor the model
keeps, and dropped, so that the peak is the model plus its largest variable
(``benchmarks/import_magenta.py`` measures it).

Scopes: a bidirectional encoder's layer ``k`` is ``encoder/cell_k/bidirectional_rnn/{fw,bw}/...``,
a hierarchical encoder repeats those layers under ``encoder/hierarchical_level_l/``; a flat
decoder lives in ``decoder/``, a hierarchical one keeps its conductor in
``decoder/hierarchical_level_0/`` and its core decoder in ``core_decoder/decoder/``; a split
multi-output core (trios) keeps part ``i`` in ``core_decoder/core_decoder_{i}/decoder/``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from musicvae.configs import Config, get_config
from musicvae.errors import MusicVAEError
from musicvae.models import MusicVAE, build_model
from musicvae.models.decoder import LstmDecoder
from musicvae.models.encoder import BidirectionalLstmEncoder, HierarchicalLstmEncoder
from musicvae.models.hierarchical import HierarchicalLstmDecoder
from musicvae.models.lstm import LstmStack
from musicvae.models.multi_out import SplitMultiOutLstmDecoder
from musicvae.models.nade import MultiLabelRnnNadeDecoder, Nade

IGNORED_NAMES = ("global_step", "beta1_power", "beta2_power")
IGNORED_SUFFIXES = ("/Adam", "/Adam_1")
# Block k of the TF gate layout (i, j, f, o) goes to block _TF_TO_TORCH[k] of (i, f, g, o).
_TORCH_FROM_TF = [0, 2, 1, 3]  # torch block b takes TF block _TORCH_FROM_TF[b]


class Shaped(Protocol):
    """What :func:`guess_config` and :func:`fit_sizes` read of a variable: an array, or a
    :class:`~musicvae.interop.tf_checkpoint.TensorSpec` from a checkpoint's index."""

    @property
    def shape(self) -> tuple[int, ...]: ...


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
        # Gate block by gate block, transposed straight into the two weights: no full-size
        # intermediate copies of what can be the checkpoint's largest variable.
        kernel = torch.from_numpy(a if a.flags.writeable else a.copy())
        ih = torch.empty(4 * h, n_in, dtype=kernel.dtype)
        hh = torch.empty(4 * h, h, dtype=kernel.dtype)
        for ours, theirs in enumerate(_TORCH_FROM_TF):
            block = kernel[:, theirs * h : (theirs + 1) * h]
            ih[ours * h : (ours + 1) * h] = block[:n_in].T
            hh[ours * h : (ours + 1) * h] = block[n_in:].T
        return {names["weight_ih"]: ih, names["weight_hh"]: hh}

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


def _decoder_variables(
    tf_prefix: str, key: str, dec: LstmDecoder | SplitMultiOutLstmDecoder
) -> dict[str, _Variable]:
    """A flat or core decoder's variables under ``tf_prefix`` (``decoder`` or
    ``core_decoder/decoder``). Magenta's ``SplitMultiOutLstmDecoder`` builds part ``i`` in
    scope ``core_decoder_{i}`` beside that last ``decoder`` level, e.g.
    ``core_decoder/core_decoder_0/decoder/...`` under a conductor."""
    if not isinstance(dec, SplitMultiOutLstmDecoder):
        return _lstm_decoder(tf_prefix, key, dec)
    scope, _, leaf = tf_prefix.rpartition("/")
    out: dict[str, _Variable] = {}
    for i, part in enumerate(dec.parts):
        part_scope = f"{scope}/core_decoder_{i}" if scope else f"core_decoder_{i}"
        out |= _lstm_decoder(f"{part_scope}/{leaf}", f"{key}.decoders.{i}", part)
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
        dec, LstmDecoder | HierarchicalLstmDecoder | SplitMultiOutLstmDecoder
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
        out |= _decoder_variables("core_decoder/decoder", "decoder.core", dec.core)
    else:
        out |= _decoder_variables("decoder", "decoder", dec)
    return out


def is_ignored(name: str) -> bool:
    """Optimizer and bookkeeping variables that carry no model weights."""
    return name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES)


# Initialisers, in torch.nn.init and as tensor methods: nothing to do for weights with no values.
_INITIALISERS = frozenset(
    [
        "normal_",
        "uniform_",
        "trunc_normal_",
        "xavier_uniform_",
        "xavier_normal_",
        "kaiming_uniform_",
        "kaiming_normal_",
        "orthogonal_",
        "zeros_",
        "ones_",
        "constant_",
        "zero_",
        "fill_",
    ]
)


class _SkipInitialisers(TorchFunctionMode):
    """Skips weight initialisation on the meta device: meta's ``normal_`` is a Python
    decomposition whose first use imports some 800 torch modules (seconds, ~75 MB)."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in _INITIALISERS:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def _meta_model(config: Config) -> MusicVAE:
    """``config``'s model with no storage behind its weights (shapes only)."""
    with torch.device("meta"), _SkipInitialisers():
        return build_model(config)


def magenta_state_dict(
    tf_vars: Mapping[str, np.ndarray],
    config: Config,
    source: str = "checkpoint",
    model: MusicVAE | None = None,
) -> dict[str, Tensor]:
    """Our ``state_dict`` for ``config`` (or ``model``, its architecture) from Magenta's
    variables: ``read_checkpoint``'s arrays, or an open ``TensorBundle``, from which each is read
    once, converted and dropped."""
    expected = variable_map(model if model is not None else _meta_model(config))
    for name in sorted(tf_vars):
        if not is_ignored(name) and name not in expected:
            raise MusicVAEError(
                f"{source}: unknown variable {name!r} for config {config.name!r} "
                f"(is this checkpoint from another config or hparams?)"
            )
    for name in expected:
        if name not in tf_vars:
            raise MusicVAEError(f"{source}: missing variable {name!r} for config {config.name!r}")
    state: dict[str, Tensor] = {}
    for name, var in expected.items():
        value = np.asarray(tf_vars[name], np.float32)  # no copy of a float32 array
        if tuple(value.shape) != var.shape:
            raise MusicVAEError(
                f"{source}: variable {name!r} has shape {list(value.shape)}, config "
                f"{config.name!r} expects {list(var.shape)} (check z_size / rnn sizes)"
            )
        state |= var.to_torch(value)
        del value
    return state


def import_magenta_weights(
    tf_vars: Mapping[str, np.ndarray], config: Config, source: str = "checkpoint"
) -> MusicVAE:
    """A model built from ``config`` holding Magenta's weights, in eval mode. It is built
    without weights and takes the converted tensors as its own (nothing is allocated twice)."""
    model = _meta_model(config)
    model.load_state_dict(magenta_state_dict(tf_vars, config, source, model), assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise MusicVAEError(f"{source}: config {config.name!r} has weights no variable fills")
    return model.eval()


def export_magenta_variables(model: MusicVAE) -> dict[str, np.ndarray]:
    """The inverse mapping: Magenta's variable names and layouts from our weights."""
    sd = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}
    return {
        name: var.from_torch(sd).astype(np.float32) for name, var in variable_map(model).items()
    }


def fit_sizes(tf_vars: Mapping[str, Shaped], config: Config) -> Config:
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
    # A split multi-output decoder's parts all have the layers of dec_rnn_size.
    flat = sizes("decoder/multi_rnn_cell/cell_{}/lstm_cell/kernel") or sizes(
        "core_decoder_0/decoder/multi_rnn_cell/cell_{}/lstm_cell/kernel"
    )
    core = sizes("core_decoder/decoder/multi_rnn_cell/cell_{}/lstm_cell/kernel") or sizes(
        "core_decoder/core_decoder_0/decoder/multi_rnn_cell/cell_{}/lstm_cell/kernel"
    )
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
TRIO_WIDTH = 692  # TrioConverter: one-hot melody (90), bass (90) and drum pattern (512)
# MultiInstrumentPerformanceConverter: 360 performance events (note-on / off, time shifts, 8
# velocity bins), 129 program tokens (128 programs and drums) and the end token.
PERFORMANCE_WIDTH = 490
CHORD_WIDTH = 49  # TriadChordOneHotEncoding controls: N.C. and 48 triads
# Decoder layers from which a multi-track performance model is Magenta's _big one.
PERFORMANCE_BIG_DEC = 1024
# NADE drums by the number of drum classes the NADE spans (decoder/nade/w_enc is [D, 1, H]).
NADE_CONFIGS = {9: "nade-drums_2bar_reduced", 61: "nade-drums_2bar_full"}


def guess_config(tf_vars: Mapping[str, Shaped], source: str = "checkpoint") -> Config:
    """The registered config a Magenta checkpoint most likely comes from, by its variables
    (the one :func:`guess_config_name` names)."""
    return get_config(guess_config_name(tf_vars, source))


def guess_config_name(tf_vars: Mapping[str, Shaped], source: str = "checkpoint") -> str:
    """The name of Magenta's config a checkpoint most likely comes from, by its variables.

    A checkpoint stores no sequence length, so each family maps to its published config:
    a hierarchical encoder or decoder over melodies is ``hier-mel_16bar`` /
    ``hierdec-mel_16bar``, a flat melody model with a multi-layer encoder ``flat-mel_16bar``,
    any other melody model ``cat-mel_2bar_big`` (3 decoder layers) or ``_small``, one whose
    encoder also reads 49-wide chords ``cat-mel_2bar_med_chords``; one-hot drums are
    ``cat-drums_2bar_big`` / ``_small`` alike; GrooVAE is ``groovae_4bar`` or
    ``groovae_4bar_hierdec``; trios are ``flat-trio_16bar``, ``hierdec-trio_16bar`` (split
    multi-output core) or ``hier-trio_16bar``; multi-track performances are
    ``hier-multiperf_vel_1bar_med`` or ``_big`` (decoder layers of 1024 or more), with
    ``_chords`` when the encoder also reads chords. Any other encoder input (other controls)
    fits none. Sizes are the config's until :func:`fit_sizes` reads them."""
    layout = _Layout.read(tf_vars)
    name = layout.config_name()
    if name is None:
        raise MusicVAEError(
            f"{source}: no registered config fits this checkpoint (output width "
            f"{layout.width}, encoder input width {layout.enc_input}, hierarchical encoder "
            f"{layout.hier_enc}, decoder {layout.hier_dec}); pass its config by name"
        )
    return name


@dataclass(frozen=True)
class _Layout:
    """What :func:`guess_config_name` reads off a checkpoint's variables."""

    width: int | None  # the decoder's output width (a split decoder's parts added up)
    enc_input: int | None  # what the encoder reads a step: data and controls
    hier_enc: bool
    hier_dec: bool
    split: bool  # a split multi-output decoder (one decoder per part)
    enc_layers: int  # a flat encoder's layers
    dec_layers: int
    dec_size: int | None  # units of the (first) decoder's layers
    nade_dims: int | None  # a NADE decoder's output dims

    @staticmethod
    def read(tf_vars: Mapping[str, Shaped]) -> _Layout:
        names = {k for k in tf_vars if not is_ignored(k)}

        def layers(fmt: str) -> int:
            k = 0
            while fmt.format(k) in names:
                k += 1
            return k

        def dim(key: str, axis: int = -1) -> int | None:
            value = tf_vars.get(key)
            return None if value is None else int(value.shape[axis])

        hier_enc = any(k.startswith("encoder/hierarchical_level_") for k in names)
        hier_dec = any(k.startswith("core_decoder/") for k in names)
        scope = "core_decoder/" if hier_dec else ""
        # A split multi-output decoder keeps part i under core_decoder_{i}/decoder.
        split = layers(f"{scope}core_decoder_{{}}/decoder/output_projection/kernel")
        leaves = [f"{scope}core_decoder_{i}/decoder" for i in range(split)] or [f"{scope}decoder"]
        widths = [dim(f"{leaf}/output_projection/kernel") for leaf in leaves]
        first = (
            f"encoder/{'hierarchical_level_0/' if hier_enc else ''}"
            "cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"
        )  # [input + H, 4H]
        enc_rows, enc_gates = dim(first, 0), dim(first)
        dec_gates = dim(f"{leaves[0]}/multi_rnn_cell/cell_0/lstm_cell/kernel")
        return _Layout(
            width=None if None in widths else sum(w or 0 for w in widths),
            enc_input=None if enc_rows is None or enc_gates is None else enc_rows - enc_gates // 4,
            hier_enc=hier_enc,
            hier_dec=hier_dec,
            split=split > 0,
            enc_layers=layers(
                "encoder/cell_{}/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"
            ),
            dec_layers=layers(f"{leaves[0]}/multi_rnn_cell/cell_{{}}/lstm_cell/kernel"),
            dec_size=None if dec_gates is None else dec_gates // 4,
            nade_dims=dim("decoder/nade/w_enc", 0),
        )

    def config_name(self) -> str | None:
        if self.nade_dims is not None:  # MultiLabelRnnNadeDecoder: the drum map by its width
            return NADE_CONFIGS.get(self.nade_dims)
        family = {
            MELODY_CLASSES: self._melody,
            DRUM_PATTERNS: self._drums,
            GROOVE_WIDTH: self._groove,
            TRIO_WIDTH: self._trio,
            PERFORMANCE_WIDTH: self._performance,
        }.get(self.width or 0)
        return None if family is None else family()

    def _melody(self) -> str | None:
        if self.enc_input == MELODY_CLASSES + CHORD_WIDTH:
            return None if self.hier_enc or self.hier_dec else "cat-mel_2bar_med_chords"
        if self.enc_input != MELODY_CLASSES:
            return None
        if self.hier_enc:
            return "hier-mel_16bar"
        if self.hier_dec:
            return "hierdec-mel_16bar"
        if self.enc_layers >= 2:
            return "flat-mel_16bar"
        return "cat-mel_2bar_big" if self.dec_layers >= 3 else "cat-mel_2bar_small"

    def _drums(self) -> str | None:
        if self.enc_input != DRUM_ROLL_INPUT or self.hier_enc or self.hier_dec:
            return None
        return "cat-drums_2bar_big" if self.dec_layers >= 3 else "cat-drums_2bar_small"

    def _groove(self) -> str | None:
        if self.hier_enc:
            return None
        return "groovae_4bar_hierdec" if self.hier_dec else "groovae_4bar"

    def _trio(self) -> str | None:
        if self.enc_input != TRIO_WIDTH:
            return None
        if self.hier_dec:
            return "hier-trio_16bar" if self.hier_enc else "hierdec-trio_16bar"
        return None if self.hier_enc or self.split else "flat-trio_16bar"

    def _performance(self) -> str | None:
        chords = {PERFORMANCE_WIDTH: "", PERFORMANCE_WIDTH + CHORD_WIDTH: "_chords"}
        if not (self.hier_enc and self.hier_dec) or self.enc_input not in chords:
            return None
        size = "big" if (self.dec_size or 0) >= PERFORMANCE_BIG_DEC else "med"
        return f"hier-multiperf_vel_1bar_{size}{chords[self.enc_input]}"


def check_family(tf_vars: Mapping[str, Shaped], config: Config, source: str) -> None:
    """A one-line error when ``config`` is of another family (melodies, one-hot drums, NADE
    drums, grooves) than the model a checkpoint holds, as :func:`guess_config` reads it; a
    checkpoint no registered config fits is left to the variable checks."""
    from musicvae.families import family_of

    try:
        guessed = guess_config(tf_vars, source)
        theirs, ours = family_of(guessed), family_of(config)
    except MusicVAEError:  # no config fits, or a family the table does not have yet
        return
    if theirs.name != ours.name:
        raise MusicVAEError(
            f"{source}: holds a {theirs.name} model ({theirs.label}, e.g. config "
            f"{guessed.name!r}), not a {ours.name} model ({ours.label}) as config "
            f"{config.name!r} describes"
        )


def read_magenta_model(
    path: str | os.PathLike, config: Config | None = None, overrides: str | None = None
) -> tuple[MusicVAE, Config, int | None]:
    """``(model in eval mode, config, global step or None)`` of a Magenta checkpoint (prefix,
    folder or .tar). Without ``config``, the one :func:`guess_config` picks from the
    variables; a ``config`` of another family is a one-line error (:func:`check_family`).
    ``overrides`` (``--hparams`` text) apply to either; the sizes are always read off the
    weights (:func:`fit_sizes`). Tensors are read one at a time as they are converted."""
    from musicvae.interop.tf_checkpoint import open_checkpoint

    source = str(path)
    with open_checkpoint(path) as bundle:
        specs = bundle.specs
        if config is None:
            config = guess_config(specs, source=source)
        else:
            check_family(specs, config, source)
        if overrides:
            try:
                config = config.override(overrides)
            except ValueError as e:
                raise MusicVAEError(f"config {config.name!r} with {overrides!r}: {e}") from None
        config = fit_sizes(specs, config)
        model = import_magenta_weights(bundle, config, source=source)
        step = int(bundle["global_step"]) if "global_step" in bundle else None
    return model, config, step
