"""TensorBoard event files under Magenta's scalar names, for ``RUN/train`` and ``RUN/eval``.

The model returns plain keys (``r_loss``, ``kl_bits``, ...); ``TAGS`` maps them to the summary
names Magenta's graph writes (``losses/r_loss``, ``metrics/hits_loss``, ...), so curves from both
implementations line up in one TensorBoard.
"""

from __future__ import annotations

import os
from pathlib import Path

from musicvae.configs import Config

TAGS: dict[str, str] = {
    "loss": "loss",
    "r_loss": "losses/r_loss",
    "kl_loss": "losses/kl_loss",
    "kl_bits": "losses/kl_bits",
    "kl_beta": "losses/kl_beta",
    "hits_loss": "metrics/hits_loss",
    "velocities_loss": "metrics/velocities_loss",
    "offsets_loss": "metrics/offsets_loss",
    "hit_accuracy": "metrics/hit_accuracy",
    "sampling_probability": "sampling_probability",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    # Magenta's own name for the pre-clipping gradient norm.
    "global_norm": "global_norm",
    "steps_per_sec": "global_step/sec",
    "examples_per_sec": "examples_per_sec",
}
# Model outputs that are logged (the rest, e.g. "per_example", are not scalars).
MODEL_SCALARS = tuple(
    k
    for k in TAGS
    if k not in ("learning_rate", "grad_norm", "global_norm", "steps_per_sec", "examples_per_sec")
)


def hparams_table(config: Config) -> str:
    """The config as a markdown table (what Magenta's trial summary shows in TensorBoard)."""
    flat = {"config": config.name, "encoder": config.encoder, "decoder": config.decoder}
    if config.level_lengths:
        flat["level_lengths"] = config.level_lengths
    for section in ("hparams", "data"):
        flat.update(config.to_dict()[section])
    lines = ["| Key | Value |", "| :--- | :--- |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(flat.items())]
    return "\n".join(lines) + "\n"


class Summaries:
    """A SummaryWriter that only exists on the main process (``enabled``), else a no-op."""

    def __init__(
        self, log_dir: str | os.PathLike, *, enabled: bool = True, purge_step: int | None = None
    ) -> None:
        self.log_dir = Path(log_dir)
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.log_dir.mkdir(parents=True, exist_ok=True)
            # purge_step hides events a crashed run logged after its last checkpoint.
            self.writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            self.writer.add_scalar(TAGS.get(key, key), float(value), global_step=step)

    def trial(self, config: Config, examples_path: str | os.PathLike) -> None:
        """Text summaries of the run's settings, as Magenta's ``_trial_summary`` writes them."""
        if self.writer is None:
            return
        self.writer.add_text("examples_path", str(examples_path), global_step=0)
        self.writer.add_text("hparams", hparams_table(config), global_step=0)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
