"""How to run training: :class:`TrainOptions`, checked when made.

Free of torch, so the command line takes its flags' defaults from these fields without loading
the model code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from musicvae.errors import MusicVAEError

# What --init-from may copy: the whole model, or one of its two parts.
INIT_PARTS = ("all", "encoder", "decoder")


@dataclass
class TrainOptions:
    """How to run training; the model and objective come from the ``Config``."""

    run_dir: Path
    examples: Path
    num_steps: int | None = 200_000  # Magenta's --num_steps default; None: until interrupted
    device: str = "cpu"
    seed: int | None = None
    eval_every: int = 1000  # steps; 0 turns periodic evaluation off
    eval_num_batches: int | None = None  # None: the whole validation split
    checkpoint_every: int | None = None  # steps; None: every checkpoint_secs, as Magenta
    checkpoint_secs: float = 60.0
    checkpoints_to_keep: int = 5  # 0 keeps all
    log_every: int = 10
    workers: int = 0  # DataLoader processes; 0 gathers batches from the stacked tensors
    progress: bool | None = None  # None: tqdm decides (a bar on a terminal only)
    amp: bool = True  # bf16 autocast on CUDA and on CPUs with native bf16 (optim.amp_enabled)
    threads: int | None = None  # CPU threads per process; None: the cores shared out evenly
    # Warm start of a new run: another model's weights (fine-tuning); the optimizer starts fresh.
    init_from: str | None = None
    # Which of its parts: "all", or only the "encoder" or "decoder" (the rest starts fresh), e.g.
    # a hierarchical decoder over the encoder of a flat model that already encodes.
    init_parts: str = "all"
    max_time: float | None = None  # seconds; stop cleanly (with a checkpoint) after this long
    print_every: int = 100  # steps between log lines when no progress bar is drawn

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.examples = Path(self.examples)
        # The least value of each count (None, where allowed, means the default behaviour).
        least: tuple[tuple[str, float | None, int], ...] = (
            ("num_steps", self.num_steps, 0),
            ("eval_every", self.eval_every, 0),
            ("eval_num_batches", self.eval_num_batches, 1),
            ("checkpoint_every", self.checkpoint_every, 1),
            ("checkpoint_secs", self.checkpoint_secs, 0),
            ("checkpoints_to_keep", self.checkpoints_to_keep, 0),
            ("log_every", self.log_every, 1),
            ("workers", self.workers, 0),
            ("threads", self.threads, 1),
            ("print_every", self.print_every, 1),
        )
        for name, value, low in least:
            if value is not None and not value >= low:  # NaN too
                raise MusicVAEError(f"--{name.replace('_', '-')} {value}: must be {low} or more")
        if self.init_parts not in INIT_PARTS:
            raise MusicVAEError(
                f"--init-parts {self.init_parts}: choose from {', '.join(INIT_PARTS)}"
            )
        if self.init_parts != "all" and not self.init_from:
            raise MusicVAEError(f"--init-parts {self.init_parts} needs --init-from MODEL")
        if self.max_time is not None and not self.max_time > 0:
            raise MusicVAEError(f"--max-time {self.max_time}: must be more than 0")


def default(name: str) -> object:
    """The default of the ``TrainOptions`` field ``name`` (for the command line's flags)."""
    (value,) = (f.default for f in dataclasses.fields(TrainOptions) if f.name == name)
    if value is dataclasses.MISSING:
        raise KeyError(f"TrainOptions.{name} has no default")
    return value
