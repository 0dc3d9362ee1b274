"""Training: the loop, checkpoints, validation, TensorBoard summaries and multi-process helpers."""

from musicvae.training.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from musicvae.training.optim import train_step
from musicvae.training.trainer import TrainOptions, TrainResult, train
from musicvae.training.validation import validate, validate_checkpoint

__all__ = [
    "TrainOptions",
    "TrainResult",
    "validate",
    "validate_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "train",
    "train_step",
]
