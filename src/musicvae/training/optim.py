"""One optimisation step with Magenta's objective handling: schedule, clipping, Adam.

Each step: lr = Magenta's decayed schedule at the global step; forward (bf16 autocast on CUDA and
on CPUs with native bf16 instructions, see :func:`amp_enabled`);
backward; gradients clipped to ``grad_clip`` by global norm, or all set to zero when the norm is
``grad_norm_clip_to_zero`` or more (or not finite), as Magenta's ``tf.cond`` does; then Adam, with
its epsilon rescaled so that the update is TensorFlow's.
"""

from __future__ import annotations

import math
import os

import torch

from musicvae.configs import Config
from musicvae.cpu import fast_bf16 as cpu_has_fast_bf16
from musicvae.errors import MusicVAEError

ADAM_EPS = 1e-8
ADAM_BETA2 = 0.999


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_deterministic(device: torch.device) -> None:
    """Deterministic CUDA kernels (CPU kernels already are, for a fixed thread count)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def clip_gradients(params: list[torch.nn.Parameter], config: Config) -> torch.Tensor:
    """Clip in place as Magenta does; return the pre-clipping global norm (no host sync)."""
    hp = config.hparams
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if hp.clip_mode == "global_norm":
        keep = norm < hp.grad_norm_clip_to_zero  # False for NaN/inf norms too
        scale = hp.grad_clip / torch.clamp(norm, min=hp.grad_clip)
        zero = torch.zeros((), device=norm.device, dtype=grads[0].dtype)
        for g in grads:
            # where, not a multiply by 0: a skipped step's gradients may hold NaN or inf
            g.copy_(torch.where(keep, g * scale, zero))
    elif hp.clip_mode == "value":
        for g in grads:
            g.clamp_(-hp.grad_clip, hp.grad_clip)
    else:
        raise MusicVAEError(f"unknown clip_mode {hp.clip_mode!r} (expected global_norm or value)")
    return norm


def make_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Adam:
    """Adam over the trainable parameters; the fused kernel (CPU and CUDA) when it applies."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=config.hparams.learning_rate, eps=ADAM_EPS, fused=fused)


def set_learning_rate(optimizer: torch.optim.Optimizer, step: int, config: Config) -> float:
    """Magenta's lr at ``step``; eps rescaled so torch's Adam takes TF's exact update."""
    from musicvae.models.schedules import learning_rate

    lr = float(learning_rate(step, config.hparams))
    # TF Adam adds eps to sqrt(v) before the bias correction, torch after: at update t the
    # two agree when torch's eps is eps / sqrt(1 - beta2^t).
    eps = ADAM_EPS / math.sqrt(1.0 - ADAM_BETA2 ** (step + 1))
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["eps"] = eps
    return lr


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, ...],
    step: int,
    config: Config,
    *,
    params: list[torch.nn.Parameter] | None = None,
    amp: bool = True,
) -> tuple[dict, torch.Tensor, float]:
    """One optimisation step at global step ``step`` on ``(inputs, outputs, controls, lengths)``
    (already on the model's device). Returns the model's outputs, the pre-clipping gradient
    norm (a tensor, to avoid a host sync) and the learning rate used."""
    inputs, outputs, controls, lengths = batch
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
    lr = set_learning_rate(optimizer, step, config)
    with autocast(inputs.device, amp, training=True):
        out = model(inputs, outputs, lengths, controls=model_controls(controls), step=step)
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    norm = clip_gradients(params, config)
    optimizer.step()
    return out, norm, lr


def model_controls(c: torch.Tensor) -> torch.Tensor | None:
    return c if c.shape[-1] else None


def amp_enabled(device: torch.device, amp: bool, training: bool = True) -> bool:
    """Whether bf16 autocast runs: with ``amp`` on any CUDA device, and for training steps on
    a CPU with native bf16 (there the fused LSTM kernels take about half the time).
    Evaluation on the CPU stays fp32, so its metrics are exact. fp32 master weights and
    optimizer state either way."""
    if not amp:
        return False
    if device.type == "cuda":
        return True
    return training and device.type == "cpu" and cpu_has_fast_bf16()


def autocast(device: torch.device, amp: bool, training: bool = False) -> torch.autocast:
    """bf16 autocast per :func:`amp_enabled` (the evaluation policy unless ``training``)."""
    enabled = amp_enabled(device, amp, training)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
