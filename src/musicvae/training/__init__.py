"""Training: the loop, checkpoints, TensorBoard summaries, multi-process helpers and plots."""

from musicvae.training.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from musicvae.training.evaluate import evaluate, evaluate_checkpoint
from musicvae.training.optim import train_step
from musicvae.training.trainer import TrainOptions, TrainResult, train

__all__ = [
    "TrainOptions",
    "TrainResult",
    "evaluate",
    "evaluate_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "train",
    "train_step",
]
