"""Self-describing training checkpoints: one ``.pt`` file is enough to rebuild and sample a model.

A checkpoint is a plain dict saved with ``torch.save`` (loadable with ``weights_only=True``):
``model`` (state dict), ``optimizer`` (state dict), ``step``, ``config`` (``Config.to_dict()``),
``rng`` (torch, CUDA, numpy and Python generator states), ``seed``, ``musicvae_version`` and
``format``. Files are ``RUN/train/model.ckpt-STEP.pt`` (Magenta's name plus ``.pt``), written to a
temporary file in the same folder and renamed, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.errors import MusicVAEError

FORMAT = "musicvae-checkpoint/1"
_NAME = re.compile(r"^model\.ckpt-(\d+)\.pt$")


def musicvae_version() -> str:
    from musicvae import __version__

    return __version__


def checkpoint_path(train_dir: str | os.PathLike, step: int) -> Path:
    return Path(train_dir) / f"model.ckpt-{step}.pt"


def list_checkpoints(train_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``train_dir``, oldest step first."""
    train_dir = Path(train_dir)
    if not train_dir.is_dir():
        return []
    found = []
    for p in train_dir.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


BEST_NAME = "model.ckpt-best.pt"  # the lowest validation loss so far, beside the newest N
WHICH = ("latest", "best")


def latest_checkpoint(path_or_run_dir: str | os.PathLike, which: str = "latest") -> Path:
    """A checkpoint file: ``path`` itself, or in ``RUN/train`` (or the folder given) the newest
    (``which="latest"``) or the best by validation loss (``which="best"``)."""
    path = Path(path_or_run_dir)
    if path.is_file():
        return path
    if not path.exists():
        raise MusicVAEError(f"{path}: no such checkpoint file or run folder")
    if which not in WHICH:
        raise MusicVAEError(f"--which {which}: expected latest or best")
    for folder in (path / "train", path):
        found = list_checkpoints(folder)
        if which == "best" and (folder / BEST_NAME).is_file():
            return folder / BEST_NAME
        if found:
            if which == "best":
                raise MusicVAEError(
                    f"{path}: no best checkpoint yet ({BEST_NAME} is written when the run "
                    "evaluates on a validation split); use --which latest"
                )
            return found[-1][1]
    raise MusicVAEError(f"{path}: no checkpoints (model.ckpt-STEP.pt) in this run folder")


def newest_readable(
    train_dir: str | os.PathLike, set_aside: bool = False
) -> tuple[Path, dict] | None:
    """The newest checkpoint of a folder that reads, with its dict; a corrupt newer one (a
    disk that filled, a copy cut short) is reported on stderr and passed over, and with
    ``set_aside`` renamed to ``*.pt.corrupt`` so that a resumed run's pruning keeps the good."""
    import sys

    for _, path in reversed(list_checkpoints(train_dir)):
        try:
            return path, read_checkpoint(path)
        except MusicVAEError as e:
            note = ""
            if set_aside:
                path.rename(path.with_name(path.name + ".corrupt"))
                note = f" (renamed to {path.name}.corrupt)"
            print(f"warning: {e}{note}; falling back to the previous checkpoint", file=sys.stderr)
    return None


def rng_state() -> dict[str, Any]:
    """Every generator training draws from, in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
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

    def __init__(self, f) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def _torch_save(payload: dict[str, Any], f) -> None:
    out = _WriteErrors(f)
    try:
        torch.save(payload, out)
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
    checkpoint's saved ``Config.to_dict()`` (a resumed run with new ``--hparams``)."""
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


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The raw checkpoint dict of a file (see the module docstring), checked for its format."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise MusicVAEError(f"{path}: no such checkpoint file") from None
    except Exception as e:  # truncated zip, pickle errors, foreign objects
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MusicVAEError(f"{path}: not a readable musicvae checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MusicVAEError(f"{path}: not a musicvae checkpoint (no {FORMAT!r} format tag)")
    return state


def load_weights(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], what: str, config: Config
) -> None:
    """``model.load_state_dict(weights)``, with a one-line error starting with ``what`` that
    names the first mismatch (float16 storage is widened into the float32 parameters)."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        lines = str(e).strip().splitlines()
        reason = lines[1].strip() if len(lines) > 1 else lines[0]
        raise MusicVAEError(f"{what} do not fit config {config.name!r} ({reason})") from None


def load_checkpoint(
    path_or_run_dir: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    config: Config | None = None,
    which: str = "latest",
) -> tuple[torch.nn.Module, Config, int, dict[str, Any]]:
    """Rebuild the model of a checkpoint file or a run folder's latest checkpoint.

    Returns ``(model, config, step, state)``: the model on ``device`` in eval mode, the config it
    was trained with (or ``config`` if given, which must describe the same weights), the global
    step and the whole checkpoint dict (optimizer, RNG states, version, ...).
    """
    from musicvae.models import build_model

    path = latest_checkpoint(path_or_run_dir, which)
    found = (
        newest_readable(path.parent)
        if which == "latest" and Path(path_or_run_dir).is_dir()
        else None
    )
    if found is not None:
        path, state = found
    else:
        state = read_checkpoint(path)
    if config is None:
        try:
            config = Config.from_dict(state["config"])
        except (KeyError, TypeError) as e:
            raise MusicVAEError(f"{path}: checkpoint config is unreadable ({e})") from None
    model = build_model(config)
    load_weights(model, state["model"], f"{path}: weights", config)
    model.to(device).eval()
    return model, config, int(state["step"]), state
