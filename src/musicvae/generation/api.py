"""The Python API for trained models: ``load()`` and ``TrainedModel``.

``load()`` opens a run folder, a ``.pt`` training checkpoint, a ``.safetensors`` bundle, a
Magenta checkpoint (prefix, folder or .tar) or a bundled model by name, and returns a
``TrainedModel`` (see ``trained_model``) that samples, encodes, decodes, interpolates,
reconstructs, humanizes, turns taps into drums and adds instruments.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch

from musicvae.configs import Config, get_config
from musicvae.errors import MusicVAEError
from musicvae.generation.trained_model import TrainedModel

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_BUNDLE",
    "HUMANIZE_BUNDLE",
    "LONG_BUNDLE",
    "LONG_MELODY_BUNDLE",
    "MELODY_BUNDLE",
    "MODE_BUNDLES",
    "TAP_BUNDLE",
    "TrainedModel",
    "bundled_available",
    "bundled_path",
    "load",
]

DEFAULT_BUNDLE = "groovae_4bar"
# The humanize model backs `generate --mode humanize` and the studio's Groove tool by default,
# the tap model `generate --mode tap2drum` and Drumify, where this install ships them.
HUMANIZE_BUNDLE = "groovae_2bar_humanize"
TAP_BUNDLE = "groovae_2bar_tap_fixed_velocity"
# 16 bars with the hierarchical decoder: the studio's second length for Generate and Interpolate.
LONG_BUNDLE = "groovae_16bar_hierdec"
# Melodies: 2 bars (cat-mel_2bar_small) and 16 bars with the conductor (mel_16bar_hierdec), both
# trained on public-domain folk tunes (docs/models.md has their cards).
MELODY_BUNDLE = "mel_2bar"
LONG_MELODY_BUNDLE = "mel_16bar"
BUNDLED_MODELS = (
    DEFAULT_BUNDLE,
    HUMANIZE_BUNDLE,
    TAP_BUNDLE,
    LONG_BUNDLE,
    MELODY_BUNDLE,
    LONG_MELODY_BUNDLE,
)
# The bundled model each input mode uses when no checkpoint is named.
MODE_BUNDLES = {"humanize": HUMANIZE_BUNDLE, "tap2drum": TAP_BUNDLE}


def bundled_path(name: str) -> Path:
    """Where the bundled model ``name`` lives inside the installed package."""
    return Path(str(resources.files("musicvae") / "assets" / f"{name}.safetensors"))


def bundled_available(name: str) -> bool:
    """Whether this install ships the bundled model ``name``."""
    return bundled_path(name).is_file()


def _resolve_config(config: str | Config | None) -> Config | None:
    if config is None or isinstance(config, Config):
        return config
    try:
        return get_config(config)
    except ValueError as e:
        raise MusicVAEError(str(e)) from None


def sniff(path: Path) -> str | None:
    """What a file holds, from its first bytes rather than its name: ``"checkpoint"`` (torch's
    zip format), ``"bundle"`` (safetensors: a length, then a JSON header) or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return None
    if head[:4] == b"PK\x03\x04":
        return "checkpoint"
    if len(head) == 9 and head[8:9] == b"{":
        return "bundle"
    return None


def _is_magenta(path: Path) -> bool:
    if path.name.endswith(".index") or ".data-" in path.name:
        return True
    if Path(f"{path}.index").is_file():
        return True
    if path.is_dir():
        return (path / "checkpoint").is_file() or any(path.rglob("*.index"))
    if path.is_file():
        from musicvae.interop.tf_checkpoint import is_archive

        return path.suffix != ".pt" and is_archive(path)
    return False


def _load_magenta(path: Path, config: Config | None, device: torch.device) -> TrainedModel:
    from musicvae.interop.magenta import read_magenta_model

    model, config, step = read_magenta_model(path, config)
    return TrainedModel(model, config, device=device, source=str(path), step=step, kind="magenta")


def load(
    path_or_name: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    config: str | Config | None = None,
    which: str = "latest",
) -> TrainedModel:
    """Open a trained model.

    ``path_or_name``: None (the bundled ``groovae_4bar``), a bundled model's name, a
    ``.safetensors`` bundle, a ``.pt`` checkpoint, a run folder (its latest checkpoint), or a
    Magenta checkpoint (prefix, ``.index``, folder or ``.tar``). ``config`` (a name or Config)
    is only read for Magenta checkpoints, which do not store one (default: the config
    ``interop.magenta.guess_config`` picks from the variables, e.g. ``cat-mel_2bar_big`` or
    ``groovae_4bar``; one of another family is a one-line error; the sizes are read off the
    weights, which are read one tensor at a time).
    ``which`` picks a run folder's ``latest`` checkpoint (a corrupt newest one is passed over
    with a warning) or its ``best`` by validation loss.
    """
    from musicvae.device import resolve_device
    from musicvae.generation.bundle import load_bundle
    from musicvae.generation.checkpoint_reader import list_checkpoints, load_checkpoint

    device = resolve_device(device)
    cfg = _resolve_config(config)
    name = DEFAULT_BUNDLE if path_or_name is None else os.fspath(path_or_name)
    path = Path(name).expanduser()
    if name in BUNDLED_MODELS and not path.exists():
        path = bundled_path(name)
        if not path.is_file():
            raise MusicVAEError(
                f"{path}: the bundled model {name!r} is not installed in this copy of musicvae; "
                "pass a checkpoint or run folder instead"
            )
    kind = sniff(path) if path.is_file() else None
    if path.suffix == ".safetensors" or kind == "bundle":
        model, bcfg, meta = load_bundle(path, device=device)
        saved_step = meta.get("step")
        return TrainedModel(
            model,
            bcfg,
            device=device,
            source=str(path),
            step=int(saved_step) if saved_step and saved_step.isdigit() else None,
            metadata=meta,
            kind="bundle",
        )
    if path.is_dir() and (list_checkpoints(path / "train") or list_checkpoints(path)):
        model, ccfg, step, _ = load_checkpoint(path, device=device, which=which)
        return TrainedModel(model, ccfg, device=device, source=str(path), step=step)
    if path.suffix == ".pt" or kind == "checkpoint":
        model, ccfg, step, _ = load_checkpoint(path, device=device)
        return TrainedModel(model, ccfg, device=device, source=str(path), step=step)
    if _is_magenta(path):
        return _load_magenta(path, cfg, device)
    if path.is_dir():
        raise MusicVAEError(
            f"{path}: no checkpoints here (expected train/model.ckpt-STEP.pt or a Magenta "
            "checkpoint)"
        )
    if not path.exists():
        raise MusicVAEError(
            f"{path}: no such checkpoint, run folder or bundled model "
            f"(bundled: {', '.join(BUNDLED_MODELS)})"
        )
    raise MusicVAEError(
        f"{path}: not a model file (expected .safetensors, .pt, a run folder or a Magenta "
        "checkpoint)"
    )
