"""Training: the loop, checkpoints, validation, TensorBoard summaries and multi-process helpers.

The names below load on first use, so that ``musicvae.training.options`` (which the command
line reads for its defaults) comes without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from musicvae.training.checkpoint import (
        latest_checkpoint,
        list_checkpoints,
        load_checkpoint,
        read_checkpoint,
        save_checkpoint,
    )
    from musicvae.training.optim import train_step
    from musicvae.training.options import TrainOptions
    from musicvae.training.trainer import TrainResult, train
    from musicvae.training.validation import validate, validate_checkpoint

_MODULE_OF = {
    "latest_checkpoint": "checkpoint",
    "list_checkpoints": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "train_step": "optim",
    "TrainOptions": "options",
    "TrainResult": "trainer",
    "train": "trainer",
    "validate": "validation",
    "validate_checkpoint": "validation",
}

__all__ = [
    "TrainOptions",
    "TrainResult",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "train",
    "train_step",
    "validate",
    "validate_checkpoint",
]


def __getattr__(name: str) -> object:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
