"""Self-describing training checkpoints: one ``.pt`` file is enough to rebuild and sample a model.

A checkpoint is a plain dict saved with ``torch.save`` (loadable with ``weights_only=True``):
``model`` (state dict), ``optimizer`` (state dict), ``step``, ``config`` (``Config.to_dict()``),
``rng`` (torch, CUDA, numpy and Python generator states), ``seed``, ``musicvae_version`` and
``format``. Files are ``RUN/train/model.ckpt-STEP.pt`` (Magenta's name plus ``.pt``), written to a
temporary file in the same folder and renamed, so a crash never leaves a half-written checkpoint.
This module writes them; ``generation.checkpoint_reader`` finds, reads and loads them.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.errors import ConfigError

# Reading lives with load(), which opens checkpoints too; these names stay importable from here.
from musicvae.generation.checkpoint_reader import (
    BEST_NAME,
    FORMAT,
    WHICH,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_weights,
    newest_readable,
    read_checkpoint,
)

__all__ = [
    "BEST_NAME",
    "FORMAT",
    "WHICH",
    "checkpoint_path",
    "checkpoint_payload",
    "config_changes",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_weights",
    "newest_readable",
    "read_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_checkpoint",
]


def musicvae_version() -> str:
    from musicvae import __version__

    return __version__


def checkpoint_path(train_dir: str | os.PathLike, step: int) -> Path:
    return Path(train_dir) / f"model.ckpt-{step}.pt"


def rng_state() -> dict[str, Any]:
    """Every generator training draws from, in a form ``weights_only`` loading accepts."""
    # The legacy tuple (numpy's stubs also allow the dict form, which legacy=True never gives).
    numpy_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, gauss = numpy_state
    version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), gauss],
        "python": [version, list(py_state), py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_state, py_gauss = state["python"]
    random.setstate((version, tuple(py_state), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)


def checkpoint_payload(
    *,
    model: torch.nn.Module,
    config: Config,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The self-describing checkpoint dict: weights, optimizer, step, config, RNG states."""
    return {
        "format": FORMAT,
        "musicvae_version": musicvae_version(),
        "step": int(step),
        "config": config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng": rng_state(),
        "seed": seed,
        **(extra or {}),
    }


def save_checkpoint(
    train_dir: str | os.PathLike,
    *,
    model: torch.nn.Module,
    config: Config,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int | None = None,
    keep: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.ckpt-STEP.pt`` atomically; then keep only the newest ``keep`` (0/None: all)."""
    train_dir = Path(train_dir)
    payload = checkpoint_payload(
        model=model, config=config, step=step, optimizer=optimizer, seed=seed, extra=extra
    )
    path = write_checkpoint(checkpoint_path(train_dir, step), payload)
    if keep:
        for _, old in list_checkpoints(train_dir)[:-keep]:
            old.unlink(missing_ok=True)
    return path


class _WriteErrors:
    """A file that keeps the ``OSError`` its ``write`` raised: ``torch.save`` turns it into a
    ``RuntimeError("... unexpected pos ...")`` that no longer says the disk is full."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def _torch_save(payload: dict[str, Any], f: BinaryIO) -> None:
    out = _WriteErrors(f)
    try:
        torch.save(payload, out)  # type: ignore[arg-type]  # any object with write/flush
    except RuntimeError:
        if out.error is not None:
            raise out.error from None  # the atomic writer makes it one line naming the file
        raise


def write_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write a checkpoint dict to ``path`` atomically (a full disk is one clear line, and
    the previous file stays)."""
    from musicvae.io import atomic_write_with

    return atomic_write_with(path, lambda f: _torch_save(payload, f), "checkpoint")


def config_changes(saved: dict[str, Any], config: Config) -> list[str]:
    """``"hparams.free_bits: 48.0 -> 256.0"`` for every field where ``config`` differs from a
    checkpoint's saved ``Config.to_dict()`` (a resumed run with new ``--hparams``). Fields
    newer than the checkpoint read as their defaults, which is what its model trained with."""
    with contextlib.suppress(ConfigError, TypeError, ValueError):  # else compare what is there
        saved = Config.from_dict(saved).to_dict()
    return _dict_changes(saved, config.to_dict(), "")


def _dict_changes(old: dict[str, Any], new: dict[str, Any], prefix: str) -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += _dict_changes(a, b, f"{prefix}{key}.")
        elif _plain(a) != _plain(b):
            changes.append(f"{prefix}{key}: {_plain(a)!r} -> {_plain(b)!r}")
    return changes


def _plain(value: Any) -> Any:
    # Tuples may come back from a checkpoint as lists; both read as --hparams lists.
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value
