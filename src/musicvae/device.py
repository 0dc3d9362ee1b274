"""What ``--device`` means, the same in every command and in ``musicvae.load``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from musicvae.errors import MusicVAEError

if TYPE_CHECKING:
    import torch

DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"


def parse_device(name: str) -> tuple[str, int | None]:
    """``(kind, index)`` of a device name; ``ValueError`` for anything else."""
    text = str(name).strip().lower()
    m = re.fullmatch(r"(auto|cpu|mps|cuda)(?::(\d+))?", text)
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise ValueError(f"unknown device {name!r}: expected {DEVICE_NAMES}")
    return m.group(1), int(m.group(2)) if m.group(2) is not None else None


def resolve_device(name: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """The ``torch.device`` for a name: ``auto`` picks CUDA, then MPS, then the CPU; a device
    this machine lacks is one clear :class:`MusicVAEError`."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    try:
        kind, index = parse_device(name or "auto")
    except ValueError as e:
        raise MusicVAEError(f"--device {name}: {e}") from None
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise MusicVAEError(f"--device {name}: CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if index is None:
            return torch.device("cuda", local_rank % count)
        if index >= count:
            raise MusicVAEError(f"--device {name}: this machine has {count} CUDA device(s)")
        return torch.device("cuda", index)
    if kind == "mps":
        if not has_mps:
            raise MusicVAEError(f"--device {name}: Apple's MPS is not available on this machine")
        return torch.device("mps")
    return torch.device("cpu")
