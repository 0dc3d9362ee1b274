"""Reading the training checkpoints ``training.checkpoint`` writes: finding a run folder's
newest (or best) ``model.ckpt-STEP.pt``, reading one with its format check, and rebuilding its
model. ``load()`` opens checkpoints through this module, training resumes through it.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from musicvae.configs import Config
from musicvae.errors import MusicVAEError

if TYPE_CHECKING:
    from musicvae.models.vae import MusicVAE

FORMAT = "musicvae-checkpoint/1"
_NAME = re.compile(r"^model\.ckpt-(\d+)\.pt$")
BEST_NAME = "model.ckpt-best.pt"  # the lowest validation loss so far, beside the newest N
WHICH = ("latest", "best")


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


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The raw checkpoint dict of a file (see the module docstring), checked for its format."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols on stderr
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise MusicVAEError(f"{path}: no such checkpoint file") from None
    except Exception as e:  # noqa: BLE001 - torch.load's errors on a damaged file are open-ended: truncated zip, pickle errors, foreign objects
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights only load failed" in reason.lower():
            # torch's own text suggests weights_only=False, which would run the file's code.
            reason = "it holds Python objects, not only tensors; such a file is never unpickled"
        elif "central directory" in reason or "zip archive" in reason:
            reason = "truncated or not a torch zip archive"
        raise MusicVAEError(f"{path}: not a readable musicvae checkpoint ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MusicVAEError(f"{path}: not a musicvae checkpoint (no {FORMAT!r} format tag)")
    return state


def load_weights(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], what: str, config: Config
) -> None:
    """``model.load_state_dict(weights)``, with a one-line error starting with ``what`` that
    names the first mismatch (float16 storage is widened into the float32 parameters)."""
    # NaN weights (a diverged run, a damaged file) would load and then write empty grooves.
    bad = [k for k, v in weights.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise MusicVAEError(f"{what} hold NaN or infinite values (first: {bad[0]})")
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
) -> tuple[MusicVAE, Config, int, dict[str, Any]]:
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
