"""TensorBoard event files under Magenta's scalar names, for ``RUN/train`` and ``RUN/eval``.

The model returns plain keys (``r_loss``, ``kl_bits``, ...); ``TAGS`` maps them to the summary
names Magenta's graph writes (``losses/r_loss``, ``metrics/hits_loss``, ...), so curves from both
implementations line up in one TensorBoard.

An attempt that dies (SIGKILL, a crash, a power cut) has logged steps that its last checkpoint
does not hold; the rerun trains them again. :func:`drop_events_from` removes them from the old
files when a run starts, so that every reader (TensorBoard, ``musicvae plot``) sees one curve,
not two overlapping ones. TensorBoard's own ``purge_step`` marker is written too, but not every
reader honours it, and it cannot help when the attempt that died saved no checkpoint at all.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    # The categorical (melody) decoders' share of steps whose class is predicted right; for a
    # NADE, of steps with every label right, beside its label precision, recall and F1.
    "accuracy": "metrics/accuracy",
    "hit_precision": "metrics/hit_precision",
    "hit_recall": "metrics/hit_recall",
    "hit_f1": "metrics/hit_f1",
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
    flat: dict[str, Any] = {
        "config": config.name,
        "encoder": config.encoder,
        "decoder": config.decoder,
    }
    if config.level_lengths:
        flat["level_lengths"] = config.level_lengths
    for section in ("hparams", "data"):
        flat.update(config.to_dict()[section])
    lines = ["| Key | Value |", "| :--- | :--- |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(flat.items())]
    return "\n".join(lines) + "\n"


EVENT_GLOB = "events.out.tfevents.*"


def _records(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(start, end, payload)`` of each TFRecord in an event file's bytes: a little-endian
    uint64 length, its CRC, the payload and the payload's CRC. A record cut short by a kill
    ends the file. CRCs are not checked: the framing is all this needs, and TensorBoard's own
    reader checks them in pure Python (seconds for a long run's file)."""
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        end = pos + 12 + length + 4
        if end > len(data):
            return
        yield pos, end, data[pos + 12 : end - 4]
        pos = end


def drop_events_from(
    log_dir: str | os.PathLike, first_dropped: int, since: float | None = None
) -> int:
    """Remove every summary at step ``first_dropped`` or later from the event files in
    ``log_dir`` (files left with no summary are deleted); return how many files changed.

    ``since``: only files modified at or after this time are read (the checkpoint's time: a
    step past a checkpoint is logged after it was written, so older files hold none).
    """
    from tensorboard.compat.proto.event_pb2 import Event

    from musicvae.io import atomic_write_bytes

    changed = 0
    for path in sorted(Path(log_dir).glob(EVENT_GLOB)):
        if not path.is_file() or (since is not None and path.stat().st_mtime < since):
            continue
        kept, dropped, summaries = [], first_dropped <= 0, 0
        if first_dropped > 0:  # else every summary goes: no need to read the file
            data = path.read_bytes()
            for start, end, payload in _records(data):
                event = Event.FromString(payload)
                stepped = event.HasField("summary") or event.HasField("session_log")
                if stepped and event.step >= first_dropped:
                    dropped = True
                    continue
                kept.append(data[start:end])  # as written, CRCs and all
                summaries += event.HasField("summary")
        if not dropped:
            continue
        changed += 1
        if summaries:
            atomic_write_bytes(path, b"".join(kept))
        else:
            path.unlink()
    return changed


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
