"""What the training loop carries from step to step, and how it is saved and restored.

:class:`TrainState` holds the model, its optimizer and data, the event files and where the run
is; its methods are the loop's verbs (one step, evaluation, a checkpoint). :func:`restore` puts a
checkpoint back into a fresh model, optimizer and the RNGs, which is what makes a resumed run
bit-exact; :class:`Window` sums the model's scalars over one logging window. The loop itself is
:mod:`musicvae.training.trainer`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from musicvae.configs import Config
from musicvae.cpu import ThreadTuner
from musicvae.data.augment import Augmentation
from musicvae.data.examples import BatchStream, Examples
from musicvae.data.transpose import Transposition
from musicvae.errors import MusicVAEError
from musicvae.training import checkpoint as ckpt
from musicvae.training import distributed as dist_utils
from musicvae.training.optim import train_step
from musicvae.training.options import TrainOptions
from musicvae.training.summaries import MODEL_SCALARS, Summaries
from musicvae.training.validation import validate

# Schedules: logged at the last step of a logging window instead of averaged over it.
INSTANT = ("kl_beta", "sampling_probability")


@dataclass
class TrainResult:
    """How a run ended: its step and newest checkpoint, and the last logged values."""

    step: int
    checkpoint: Path | None
    rank: int = 0
    stopped_by: str | None = None  # "SIGINT", "SIGTERM" or "max-time" when it ended early
    train: dict[str, float] = field(default_factory=dict)
    eval: dict[str, float] = field(default_factory=dict)


class _Batches(torch.utils.data.Dataset):
    """Maps a tensor of indices to a whole batch, so each worker call builds one batch."""

    def __init__(self, examples: Examples) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.examples.batch(index)


class Loader:
    """Batches for the loop: an index-gather in-process, or ``workers`` DataLoader processes
    (worth it only when encoder inputs are re-drawn per item, e.g. note dropout)."""

    def __init__(self, examples: Examples, stream: BatchStream, workers: int) -> None:
        self.examples, self.stream, self.iter = examples, stream, None
        if workers > 0:
            from torch.utils.data import DataLoader

            loader = DataLoader(
                _Batches(examples), sampler=stream, batch_size=None, num_workers=workers
            )
            self.iter = iter(loader)

    def next(self) -> tuple[torch.Tensor, ...]:
        if self.iter is not None:
            return tuple(next(self.iter))
        return self.examples.batch(next(self.stream))


def warm_start(
    model: torch.nn.Module, config: Config, source: str, parts: str = "all"
) -> list[str]:
    """Copy the weights of ``source`` (anything ``musicvae.load`` opens) into ``model``: all of
    them, or only its ``"encoder"`` or ``"decoder"`` (the model keeps its own for the rest).

    A model whose inputs gained control columns (a config with controls, warm-started from one
    without) keeps the source's weights and starts the new columns at 0, so it begins as the
    source and learns to use them. Returns the names of the widened weights.
    """
    from musicvae.generation.api import load

    donor = load(source).model
    extra = int(getattr(model, "control_depth", 0)) - int(getattr(donor, "control_depth", 0))
    own = model.state_dict()
    weights, widened = widen_inputs(own, donor.state_dict(), extra)
    what = f"--init-from {source}: its weights"
    if parts != "all":
        prefix = f"{parts}."
        weights = {k: v for k, v in weights.items() if k.startswith(prefix)}
        if not weights:
            raise MusicVAEError(f"--init-from {source}: it has no {parts} weights")
        weights = {**{k: v for k, v in own.items() if not k.startswith(prefix)}, **weights}
        widened = [name for name in widened if name.startswith(prefix)]
        what = f"--init-from {source}: its {parts}'s weights"
    ckpt.load_weights(model, weights, what, config)
    return widened


def widen_inputs(
    target: dict[str, torch.Tensor], source: dict[str, torch.Tensor], extra: int
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``source`` with each first-layer LSTM input weight that is ``extra`` columns narrower
    than ``target``'s padded with zeros there: controls are concatenated after an LSTM's other
    inputs, so those columns are the ones that read them."""
    out, widened = dict(source), list[str]()
    if extra <= 0:
        return out, widened
    for name, value in source.items():
        want = target.get(name)
        if (
            want is None
            or not name.rsplit(".", 1)[-1].startswith("weight_ih_l0")
            or want.dim() != 2
            or want.shape[0] != value.shape[0]
            or want.shape[1] != value.shape[1] + extra
        ):
            continue
        grown = torch.zeros(want.shape, dtype=value.dtype)
        grown[..., : value.shape[-1]] = value
        out[name] = grown
        widened.append(name)
    return out, widened


class Window:
    """The model's scalars summed over one logging window (one host sync per window)."""

    def __init__(self) -> None:
        self.keys = list(MODEL_SCALARS)
        self.sum: torch.Tensor | None = None
        self.last: torch.Tensor | None = None  # the newest step's row
        self.steps, self.started = 0, time.perf_counter()

    def reset(self) -> None:
        self.sum, self.steps, self.started = None, 0, time.perf_counter()

    def add(self, out: dict[str, torch.Tensor], norm: torch.Tensor) -> None:
        if self.sum is None:
            self.keys = [k for k in MODEL_SCALARS if k in out]
        row = torch.stack([out[k].detach().float() for k in self.keys] + [norm.float()])
        self.sum = row if self.sum is None else self.sum + row
        self.last = row
        self.steps += 1

    def means(self, info: dist_utils.DistInfo, lr: float, batch_size: int) -> dict[str, float]:
        """The window's means (schedules at its last step), rates and learning rate."""
        assert self.sum is not None and self.last is not None
        if info.distributed:  # every rank logs at the same steps: average them
            torch.distributed.all_reduce(self.sum)
            self.sum /= info.world_size
        means = (self.sum / self.steps).tolist()
        for i, k in enumerate(self.keys):
            if k in INSTANT:
                means[i] = float(self.last[i])
        dt = max(time.perf_counter() - self.started, 1e-9)
        values = dict(zip(self.keys, means[:-1], strict=True))
        values.update(
            grad_norm=means[-1],
            global_norm=means[-1],
            learning_rate=lr,
            steps_per_sec=self.steps / dt,
            examples_per_sec=self.steps * batch_size / dt,
        )
        return values


@dataclass
class TrainState:
    """What the loop carries: the model, its optimizer and data, the logs, and where it is."""

    config: Config
    options: TrainOptions
    info: dist_utils.DistInfo
    model: torch.nn.Module
    ddp_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    seed: int
    examples: Examples
    eval_examples: Examples | None
    loader: Loader
    summaries: Summaries
    eval_summaries: Summaries | None
    result: TrainResult
    start_step: int
    best_loss: float = math.inf
    window: Window = field(default_factory=Window)
    tuner: ThreadTuner | None = None
    note: str | None = None  # what the last step changed, for the log (thread count)
    threads_used: int | None = None  # by the last step, when the tuner chooses
    augment: Augmentation | Transposition | None = None  # groove or melody windows

    def __post_init__(self) -> None:
        self.step = self.saved_step = self.start_step  # saved_step: that of result.checkpoint
        self.last_save = time.monotonic()
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    @property
    def train_dir(self) -> Path:
        return self.options.run_dir / "train"

    def train_one_step(self) -> float:
        """One optimisation step on the next batch; returns the learning rate used."""
        device = self.info.device
        started = time.perf_counter()
        batch = self.loader.next()
        if self.augment is not None:
            batch = self.augment(batch, self.step)
        batch = tuple(t.to(device, non_blocking=True) for t in batch)
        out, norm, lr = train_step(
            self.ddp_model,
            self.optimizer,
            batch,
            self.step,
            self.config,
            params=self.params,
            amp=self.options.amp,
        )
        self.window.add(out, norm)
        self.step += 1
        if self.tuner is not None:  # CPU ops are synchronous: this is the step's wall time
            self.threads_used = self.tuner.current
            self.note = self.tuner.record(time.perf_counter() - started)
        return lr

    def checkpoint_due(self) -> bool:
        """Every ``checkpoint_every`` steps, else every ``checkpoint_secs``; the last step's
        checkpoint is saved after the loop."""
        every = self.options.checkpoint_every
        due = (
            self.step % every == 0
            if every
            else time.monotonic() - self.last_save >= self.options.checkpoint_secs
        )
        return due and self.step != self.options.num_steps

    def save(self) -> None:
        """A checkpoint at this step (on the main rank); a full disk is one line that names
        the last good checkpoint."""
        step = self.step
        if self.info.is_main:
            best = self.best_loss
            try:
                self.result.checkpoint = ckpt.save_checkpoint(
                    self.train_dir,
                    model=self.model,
                    config=self.config,
                    step=step,
                    optimizer=self.optimizer,
                    seed=self.seed,
                    keep=self.options.checkpoints_to_keep,
                    extra={"best_eval_loss": best} if math.isfinite(best) else None,
                )
            except MusicVAEError as e:  # a full disk: say what is safe, in the same one line
                kept = self.result.checkpoint
                left = (
                    f"{kept.name} (step {self.saved_step:,}) is kept" if kept else "none saved yet"
                )
                raise MusicVAEError(f"{e}; last good checkpoint: {left}") from None
        self.saved_step, self.last_save = step, time.monotonic()

    def evaluate(self) -> None:
        """Validation at this step, logged; the best weights by validation loss are kept
        beside the newest."""
        if self.eval_examples is None or self.eval_summaries is None:
            return
        step = self.step
        self.result.eval = validate(
            self.model,
            self.eval_examples,
            self.config,
            step=step,
            device=self.info.device,
            num_batches=self.options.eval_num_batches,
            amp=self.options.amp,
        )
        self.eval_summaries.scalars(self.result.eval, step)
        self.eval_summaries.flush()
        loss = float(self.result.eval.get("loss", math.inf))
        if loss < self.best_loss:
            self.best_loss = loss
            ckpt.write_checkpoint(
                self.train_dir / ckpt.BEST_NAME,
                ckpt.checkpoint_payload(
                    model=self.model,
                    config=self.config,
                    step=step,
                    seed=self.seed,
                    extra={"eval_loss": loss, "best_eval_loss": loss},
                ),
            )


def restore(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config: Config,
    options: TrainOptions,
    info: dist_utils.DistInfo,
    seed: int,
    path: Path | None,
    saved: dict[str, Any] | None,
) -> int:
    """Load the checkpoint ``saved`` (read from ``path``) into the model, optimizer and RNGs,
    or warm-start a new run from ``--init-from``; returns the step the run starts at."""
    if saved is None:
        if options.init_from:
            widened = warm_start(model, config, options.init_from, options.init_parts)
            if widened and info.is_main:
                tqdm.write(
                    f"--init-from {options.init_from}: {len(widened)} input weights gain "
                    f"columns for this config's controls, started at 0 ({', '.join(widened)})",
                    file=sys.stderr,
                )
        if info.rank:
            torch.manual_seed(seed + info.rank)  # dropout noise differs across ranks
        return 0
    try:
        model.load_state_dict(saved["model"])
        if saved.get("optimizer"):
            optimizer.load_state_dict(saved["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        # load_state_dict's first line only says "Error(s) in loading"; the next names one.
        lines = str(e).strip().splitlines() or [type(e).__name__]
        reason = lines[1].strip() if len(lines) > 1 else lines[0]
        raise MusicVAEError(
            f"{path}: cannot resume, the checkpoint does not fit config {config.name!r} "
            f"({reason}); use a new --run-dir"
        ) from None
    start_step = int(saved["step"])
    if not info.is_main:
        torch.manual_seed(seed + info.rank + 1_000_003 * start_step)
        return start_step
    ignored = "; --init-from is ignored" if options.init_from else ""
    tqdm.write(f"resuming from step {start_step} ({path}){ignored}", file=sys.stderr)
    # Resuming with new settings is how a run changes course (e.g. more free bits);
    # say so, since the checkpoints from here on record the new config.
    changes = ckpt.config_changes(saved.get("config") or {}, config)
    if changes:
        tqdm.write(
            f"{path}: resuming at step {start_step} with " + "; ".join(changes),
            file=sys.stderr,
        )
    ckpt.set_rng_state(saved["rng"])
    return start_step
