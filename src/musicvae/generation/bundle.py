"""Model bundles: one ``.safetensors`` file holding the weights and, in its metadata, the config.

The metadata (string to string, as safetensors requires) holds ``format`` =
``musicvae-bundle/1``, ``config`` (the ``Config.to_dict()`` JSON) and whatever extra keys the
writer adds (training step, data set, licence). safetensors files cannot run code when loaded, so
bundles are safe to download and share.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from musicvae.configs import Config
from musicvae.errors import MusicVAEError

if TYPE_CHECKING:
    from musicvae.models.vae import MusicVAE

FORMAT = "musicvae-bundle/1"
SUFFIX = ".safetensors"
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def save_bundle(
    model: torch.nn.Module,
    config: Config,
    path: str | os.PathLike,
    extra_metadata: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``model``'s weights and ``config`` to ``path`` (a ``.safetensors`` file), atomically.

    ``extra_metadata`` values are stored as strings (non-strings as JSON). ``dtype`` is the
    storage type of floating-point weights: ``torch.float16`` halves the file, and loading
    widens the weights back to float32.
    """
    from safetensors.torch import save

    from musicvae.io import atomic_write_bytes

    path = Path(path)
    meta = {
        str(k): v if isinstance(v, str) else json.dumps(v)
        for k, v in (extra_metadata or {}).items()
    }
    if dtype not in STORAGE_DTYPES.values():
        raise MusicVAEError(f"{path}: cannot store weights as {dtype}")
    meta.update(format=FORMAT, config=json.dumps(config.to_dict(), sort_keys=True))
    meta["weights_dtype"] = str(dtype).removeprefix("torch.")
    # safetensors refuses shared or strided storage: give every tensor its own contiguous copy.
    tensors = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
    }
    try:
        atomic_write_bytes(path, save(tensors, metadata=meta))
    except OSError as e:
        raise MusicVAEError(f"{path}: cannot write bundle ({e.strerror or e})") from None
    return path


def read_bundle(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The raw ``(state_dict, metadata)`` of a bundle, checked for its format tag."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MusicVAEError(f"{path}: no such model bundle") from None
    except OSError as e:
        raise MusicVAEError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        tensors = load(data)
        meta = _metadata(data)
    except (SafetensorError, ValueError) as e:
        raise MusicVAEError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise MusicVAEError(f"{path}: not a musicvae model bundle (no {FORMAT!r} metadata)")
    return tensors, meta


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a serialized safetensors file (its JSON header)."""
    if len(data) < 8:
        raise ValueError("file too short")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("header size exceeds the file")
    header = json.loads(data[8 : 8 + size])
    return dict(header.get("__metadata__") or {})


def load_bundle(
    path: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[MusicVAE, Config, dict[str, str]]:
    """Rebuild the model of a bundle: ``(model in eval mode on device, config, metadata)``."""
    from musicvae.models import build_model

    path = Path(path)
    tensors, meta = read_bundle(path)
    try:
        config = Config.from_dict(json.loads(meta["config"]))
    except (ValueError, KeyError, TypeError) as e:
        raise MusicVAEError(f"{path}: bundle config is unreadable ({e})") from None
    from musicvae.generation.checkpoint_reader import load_weights

    model = build_model(config)
    load_weights(model, tensors, f"{path}: weights", config)
    return model.to(device).eval(), config, meta
