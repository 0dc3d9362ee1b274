"""The fused CPU LSTM kernel (``csrc/fused_lstm.cpp``): built on first use, cached, optional.

``nn.LSTM``'s CPU kernels (oneDNN) run well below the speed of the matrix products inside them.
The C++ kernel does a layer's input projection for all steps as one GEMM, then runs the
recurrence in chunks of batch rows in parallel on torch's OpenMP threads (one small GEMM and the
fused gate math per step, no barrier between steps), and its backward does the weight gradients
as single GEMMs over all steps. In fp32 the per-step products run on the kernel's own GEMM over
weights laid out once per call in panels of 16 columns: MKL's packed GEMM packs its operand again
at every call on AMD CPUs, a third of a 32-row product's time (``MUSICVAE_LSTM_PANELS=0`` runs
them on MKL, for comparisons). Same parameters and the same (i, f, g, o) cell as ``nn.LSTM``:
in fp32 it matches it to about 1e-6. Where autograd frees the graph after the backward (no
``retain_graph``), the gate gradients overwrite the saved gates rather than taking a new buffer,
and the kernel's large tensors come from a cache of blocks reused by size, not fresh pages the OS
must zero at every step (``MUSICVAE_LSTM_CACHE=0`` turns it off). GEMMs run in bf16 under bf16
autocast where the CPU has native bf16 (state and gate math stay fp32), in fp32 otherwise.

Sampling runs as one call of the kernel for the whole decode (:func:`categorical_sample` for
melodies, one-hot drums, trios and performances, :func:`groove_sample` for GrooVAE, and
:func:`stack_run` for a conductor's bars): the stack, the output projection and each step's draw,
fed back through rows of the input weights, with the weights kept transposed in panels that stream
through memory (:func:`derived` keeps them). It draws what the Python step loop draws, from the
same generator in the same order (``torch.multinomial``'s exponential draws, the argmax at
temperature 0; ``torch.bernoulli``'s uniforms), so seeded samples stay the same.

The kernel is compiled with ``torch.utils.cpp_extension`` (a C++ compiler and ninja) the first
time a process needs it, into ``<cache>/kernels/fused_lstm-<key>`` (``$MUSICVAE_CACHE`` or
``~/.cache/musicvae``; the key hashes the source, the flags and the torch version), and later
processes load the built library directly. Where it cannot be built (no compiler, a failed
build), one line says so and every LSTM runs on ``nn.LSTM``. ``MUSICVAE_FUSED_LSTM=0`` (or
``musicvae train --no-fused-lstm``) turns it off; CUDA tensors never use it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from musicvae.cpu import fast_bf16
from musicvae.data.download import cache_dir

__all__ = [
    "ENV",
    "DecodeInputs",
    "DecodeWeights",
    "available",
    "categorical_sample",
    "cell",
    "derived",
    "enabled",
    "groove_sample",
    "layer",
    "panels",
    "samples",
    "set_enabled",
    "stack_run",
    "task_threads",
]

ENV = "MUSICVAE_FUSED_LSTM"
SOURCE = Path(__file__).with_name("csrc") / "fused_lstm.cpp"
_OFF = frozenset({"0", "false", "no", "off"})

_lock = threading.Lock()
_loaded: bool | None = None  # None: not tried yet in this process
_switch: bool | None = None  # set_enabled's choice; None follows the environment variable


def enabled() -> bool:
    """Whether the kernel may be used: on unless :func:`set_enabled` or ``$MUSICVAE_FUSED_LSTM``
    turned it off."""
    if _switch is not None:
        return _switch
    return os.environ.get(ENV, "1").strip().lower() not in _OFF


def set_enabled(on: bool | None) -> None:
    """Turn the kernel on or off for this process (``None``: follow the environment again)."""
    global _switch
    _switch = on


def available() -> bool:
    """Whether the kernel is enabled and loaded (building it on the first call)."""
    return enabled() and _load()


def _flags() -> list[str]:
    flags = ["-O3", "-fno-trapping-math", "-fno-math-errno"]
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    if x86 and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]  # the gate math's vector loops
    if _openmp():
        # at::parallel_for is inline: compiled without OpenMP it runs every task on one thread.
        flags.append("-fopenmp")
    return flags


def _openmp() -> bool:
    """Whether the kernel's tasks can share torch's OpenMP threads (Linux wheels: libgomp).

    The extension then links against the libgomp.so.1 torch has already loaded, one runtime.
    """
    return sys.platform.startswith("linux") and "OpenMP" in torch.__config__.parallel_info()


def task_threads() -> int:
    """How many of torch's threads the kernel's tasks run on (1 in a build without OpenMP)."""
    return int(_ops().task_threads()) if _load() else 1


def _build_dir() -> Path:
    key = hashlib.sha256(SOURCE.read_bytes())
    key.update(" ".join([*_flags(), torch.__version__, sys.platform]).encode())
    return cache_dir() / "kernels" / f"fused_lstm-{key.hexdigest()[:16]}"


def _load() -> bool:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _try_load()
    return _loaded


def _registered() -> bool:
    """Whether this process already has the ops (loaded by an earlier call or another copy)."""
    try:
        return hasattr(torch.ops.musicvae_lstm, "forward")
    except (AttributeError, RuntimeError):
        return False


def _try_load() -> bool:
    if _registered():
        return True
    try:
        build = _build_dir()
        library = build / "musicvae_fused_lstm.so"
        if library.exists() and not (build / "lock").exists():
            torch.ops.load_library(str(library))
        else:
            if sys.stderr.isatty():  # a first command otherwise waits in silence
                print(
                    "musicvae: building the fused LSTM kernel (once, about a minute)...",
                    file=sys.stderr,
                    flush=True,
                )
            _compile(build)
        return True
    except Exception as e:  # noqa: BLE001 - any failure to build or load means: use nn.LSTM
        reason = _reason(e)
        print(
            f"musicvae: the fused LSTM kernel is unavailable ({reason}); LSTMs run on nn.LSTM",
            file=sys.stderr,
        )
        return False


def _reason(e: BaseException) -> str:
    """The line of a build failure worth reading: the compiler's first error, else the start."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() and "Error building" not in line]
    text = " ".join((errors or lines or [type(e).__name__])[0].split())
    return text if len(text) <= 200 else text[:197] + "..."


def _compile(build: Path) -> None:
    """Build (or finish building) the library into ``build`` and load it."""
    from torch.utils import cpp_extension

    build.mkdir(parents=True, exist_ok=True)
    # ninja from the environment's own bin folder (pip's ninja) when it is not on PATH.
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    try:
        cpp_extension.load(
            name="musicvae_fused_lstm",
            sources=[str(SOURCE)],
            extra_cflags=_flags(),
            extra_ldflags=(["-ldl"] if sys.platform.startswith("linux") else [])
            + (["-fopenmp"] if _openmp() else []),
            build_directory=str(build),
            is_python_module=False,
            verbose=False,
        )
    finally:
        os.environ["PATH"] = path


# -- autograd ------------------------------------------------------------------------------------


def _ops() -> Any:
    if not _load():
        raise RuntimeError("the fused LSTM kernel is unavailable in this process")
    return torch.ops.musicvae_lstm


class _Layer(torch.autograd.Function):
    """One layer, one or two directions: ``(x, h0, c0, lengths, *w_ih, *w_hh, *bias)`` ->
    ``(y, h_n, c_n)``; the tensors already in the kernel's dtypes."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None, *params: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        d = h0.shape[0]
        w_ih, w_hh, bias = params[:d], params[d : 2 * d], params[2 * d :]
        y, hn, cn, gates, cells = _ops().forward(x, h0, c0, w_ih, w_hh, bias, lengths, True)
        ctx.dirs = d
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, h0, c0, y, gates, cells, lengths, *w_ih, *w_hh)
        return y, hn, cn

    @staticmethod
    def backward(ctx: Any, dy: Tensor | None, dhn: Tensor | None, dcn: Tensor | None) -> Any:
        x, h0, c0, y, gates, cells, lengths, *weights = ctx.saved_tensors
        d = ctx.dirs
        w_ih, w_hh = weights[:d], weights[d:]
        need_dx, reuse_gates = ctx.needs_input_grad[0], _last_backward()
        dx, dh0, dc0, dw_ih, dw_hh, db = _ops().backward(
            x, h0, c0, w_ih, w_hh, y, gates, cells, lengths, dy, dhn, dcn, need_dx, reuse_gates
        )
        return dx, dh0, dc0, None, *dw_ih, *dw_hh, *db


def _last_backward() -> bool:
    """Whether the backward running now frees the graph after it (no ``retain_graph``): then
    the kernel writes the gate gradients over the saved gates instead of a new buffer."""
    keep = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    try:
        return keep is not None and not keep()
    except RuntimeError:  # not inside an autograd graph task
        return False


def _gemm_dtype(x: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(GEMM dtype, output dtype) for ``x``: bf16 GEMMs only under bf16 autocast on a CPU with
    native bf16; the output is bf16 under bf16 autocast either way, as ``nn.LSTM``'s is."""
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
        return (torch.bfloat16 if fast_bf16() else torch.float32), torch.bfloat16
    return x.dtype, x.dtype


def supports(x: Tensor) -> bool:
    """Whether a layer over ``x`` (with parameters of its dtype) can run on the kernel now."""
    return (
        x.device.type == "cpu"
        and x.dim() == 3
        and x.shape[0] > 0
        and x.shape[1] > 0
        and (x.dtype in (torch.float32, torch.float64) or torch.is_autocast_enabled("cpu"))
        and available()
    )


def layer(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weights: Sequence[tuple[Tensor, Tensor, Tensor, Tensor]],
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One batch-first LSTM layer, ``nn.LSTM``'s ``(w_ih, w_hh, b_ih, b_hh)`` per direction (the
    second one reversed, over each row's first ``lengths`` steps as packing does).

    ``x`` (B, T, I), ``h0``/``c0`` (D, B, H) -> ``y`` (B, T, D * H), ``h_n``, ``c_n`` (D, B, H).
    Steps past a row's length give zeros and leave its state alone."""
    gemm, out = _gemm_dtype(x)
    state = torch.float64 if gemm == torch.float64 else torch.float32
    x = x.to(gemm).contiguous()
    h0 = h0.to(gemm).contiguous()
    c0 = c0.to(state).contiguous()
    w_ih = [w[0].to(gemm).contiguous() for w in weights]
    w_hh = [w[1].to(gemm).contiguous() for w in weights]
    bias = [(w[2] + w[3]).to(state) for w in weights]
    if lengths is not None:
        lengths = lengths.to(device="cpu", dtype=torch.int64).contiguous()
    params = [*w_ih, *w_hh, *bias]
    with torch.autocast("cpu", enabled=False):
        if torch.is_grad_enabled() and any(t.requires_grad for t in (x, h0, c0, *params)):
            y, hn, cn = _Layer.apply(x, h0, c0, lengths, *params)
        else:
            y, hn, cn, _, _ = _ops().forward(x, h0, c0, w_ih, w_hh, bias, lengths, False)
    return y.to(out), hn.to(out), cn


class _Cell(torch.autograd.Function):
    """One step's gate math: pre-activation gates (B, 4H) and c (B, H) -> (h, c_new)."""

    @staticmethod
    def forward(ctx: Any, gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        h, c_new, act = _ops().cell(gates, c)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(act, c, c_new)
        return h, c_new

    @staticmethod
    def backward(ctx: Any, dh: Tensor | None, dc: Tensor | None) -> Any:
        act, c, c_new = ctx.saved_tensors
        return tuple(_ops().cell_backward(act, c, c_new, dh, dc))


def cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(h, c_new)`` from pre-activation gates in (i, f, g, o) order, or None where the kernel
    does not take these tensors (the caller then does the math itself)."""
    if not (
        gates.device.type == "cpu"
        and gates.dtype == c.dtype
        and gates.dtype in (torch.float32, torch.float64)
        and available()
    ):
        return None
    if torch.is_grad_enabled() and (gates.requires_grad or c.requires_grad):
        return _Cell.apply(gates, c)
    h, c_new, _ = _ops().cell(gates, c)
    return h, c_new


# -- whole categorical decodes -------------------------------------------------------------------


T = TypeVar("T")
PANEL = 16  # the columns of one panel of the whole-decode op's weights (see panels)
# derived()'s values: owner -> (source tensors, their stamps, value).
_derived: weakref.WeakKeyDictionary[
    Any, tuple[tuple[Tensor, ...], tuple[tuple[int, int], ...], Any]
]
_derived = weakref.WeakKeyDictionary()


def derived(owner: Any, sources: Sequence[Tensor], make: Callable[[], T]) -> T:
    """``make()``, kept for ``owner`` until one of ``sources`` is replaced or changed (in place,
    or its data swapped): the kernel's transposed copies of a model's weights, made once instead
    of at every call. Holds the sources, not the owner."""
    stamps = tuple((t._version, t.data_ptr()) for t in sources)
    hit = _derived.get(owner)
    if (
        hit is not None
        and hit[1] == stamps
        and len(hit[0]) == len(sources)
        and all(a is b for a, b in zip(hit[0], sources, strict=True))
    ):
        return hit[2]
    value = make()
    _derived[owner] = (tuple(sources), stamps, value)
    return value


def samples(z: Tensor) -> bool:
    """Whether a decode from latent vectors ``z`` can draw on the kernel: float32 on the CPU,
    with the kernel available."""
    return z.device.type == "cpu" and z.dtype == torch.float32 and z.shape[0] > 0 and available()


def panels(w_t: Tensor) -> Tensor:
    """``w_t`` ``(K, N)`` as the whole-decode op reads it: panels of 16 columns ``(N / 16, K,
    16)``, N padded with zeros to whole panels."""
    k, n = w_t.shape
    width = -(-n // PANEL) * PANEL
    w = torch.nn.functional.pad(w_t, (0, width - n))
    return w.reshape(k, width // PANEL, PANEL).transpose(0, 1).contiguous()


@dataclass(frozen=True)
class DecodeWeights:
    """A decoder's weights as the whole-decode ops read them (all float32, contiguous):
    ``w_x`` ``(D, G)``, the rows of ``W_ih0^T`` that read the previous output; ``w_rec``, the
    :func:`panels` of ``W_hh0^T`` ``(H, G)``, then per layer of ``[W_ih^T; W_hh^T]`` ``(2H,
    G)``; ``bias``, the layers above 0's ``(G)``; ``w_out`` (panels of ``W_out^T``, ``(H, D)``)
    and ``b_out`` ``(D)``, the output projection."""

    w_x: Tensor
    w_rec: list[Tensor]
    bias: list[Tensor]
    w_out: Tensor
    b_out: Tensor


@dataclass(frozen=True)
class DecodeInputs:
    """What both whole-decode ops start from: ``static_gates`` ``(B, n, G)``, layer 0's gates
    from z and controls with both biases (steps ``T / n`` share a row); ``init`` ``(m, B, S)``,
    flat ``[c0, h0, c1, h1, ...]`` states, each segment of ``T / m`` steps starting from its own;
    ``first`` ``(B, D)``, the first step's input; and the :class:`DecodeWeights`."""

    static_gates: Tensor
    init: Tensor
    first: Tensor
    weights: DecodeWeights

    def args(self) -> list[Any]:
        w = self.weights
        return [self.static_gates, self.init, self.first, w.w_x, w.w_rec, w.bias, w.w_out, w.b_out]


def categorical_sample(
    inputs: DecodeInputs,
    depths: Sequence[int],
    steps: int,
    temperature: float,
    generator: torch.Generator | None,
) -> Tensor:
    """A categorical decoder's whole free-running decode in one call: one-hot samples
    ``(B, steps, D)``, one draw per part in ``depths`` and step (``torch.multinomial``'s, from
    the same generator in the same order; the argmax at temperature 0)."""
    with torch.autocast("cpu", enabled=False):
        return _ops().categorical_sample(
            *inputs.args(), [int(d) for d in depths], int(steps), float(temperature), generator
        )


def groove_sample(
    inputs: DecodeInputs,
    steps: int,
    temperature: float,
    uniforms: Tensor,
    spread: tuple[Tensor, Tensor] | None,
    hit_conditioned: bool,
) -> Tensor:
    """GrooVAE's whole free-running decode in one call: ``(B, steps, 3N)`` samples. Per step
    and class a hit where ``uniforms`` ``(steps, B, N)`` is below ``sigmoid(logit /
    temperature)`` (so ``torch.rand`` draws give ``torch.bernoulli``'s hits), the sigmoid
    velocity and the tanh offset, drawn around with the spread's velocity factors and offset
    shifts ``(steps, B, N)`` (None: none), no velocity or offset without a hit when
    ``hit_conditioned``."""
    factor, shift = (None, None) if spread is None else spread
    with torch.autocast("cpu", enabled=False):
        return _ops().groove_sample(
            *inputs.args(),
            int(steps),
            float(temperature),
            uniforms,
            factor,
            shift,
            bool(hit_conditioned),
        )


def stack_run(
    gates: Tensor, init: Tensor, w_rec: Sequence[Tensor], bias: Sequence[Tensor]
) -> Tensor:
    """A one-direction stack over a whole sequence in one call: the top layer's outputs
    ``(B, T, H)`` from layer 0's input gates ``gates`` ``(B, T, G)`` (the inputs times
    ``W_ih0^T``, both biases included) and the flat state ``init`` ``(B, S)``; ``w_rec`` and
    ``bias`` as :class:`DecodeWeights`'. Inference only."""
    with torch.autocast("cpu", enabled=False):
        return _ops().stack_run(gates, init, list(w_rec), list(bias))
