"""Shared test helpers: a synthetic drum groove and a tiny randomly initialised model on disk."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.sequence import NoteSequence
from musicvae.models import build_model
from musicvae.training.checkpoint import save_checkpoint

KICK, SNARE, CLOSED_HH = 36, 38, 42


def groove(
    bars: int, qpm: float = 120.0, time_signature: tuple[int, int] = (4, 4), **kwargs
) -> NoteSequence:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on 8ths (slightly late, varied
    velocity), plus one snare in the last 16th of every bar so each bar has an onset."""
    step = 60.0 / qpm / 4
    notes = []
    for bar in range(bars):
        base = bar * 16
        for s in (0, 8):
            notes.append((KICK, 110, (base + s) * step, (base + s + 1) * step))
        for s in (4, 12):
            notes.append((SNARE, 100, (base + s) * step, (base + s + 1) * step))
        for s in range(0, 16, 2):
            t = (base + s) * step + 0.1 * step
            notes.append((CLOSED_HH, 60 + 4 * (s % 4), t, t + step))
        notes.append((SNARE, 40, (base + 15) * step, (base + 16) * step))
    return NoteSequence.from_notes(notes, qpm=qpm, time_signature=time_signature, **kwargs)


def debug_run(root: Path, overrides: str | None = None, seed: int = 0) -> Path:
    """A run folder holding one checkpoint of a fresh ``debug`` model; returns the folder."""
    config = get_config("debug", overrides)
    torch.manual_seed(seed)
    save_checkpoint(root / "train", model=build_model(config), config=config, step=1)
    return root


@contextmanager
def single_torch_thread():
    """One torch thread inside the block: step-by-step decoding of tiny models is faster that
    way, and much faster on a busy machine; the thread count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def requires_bundle(name: str) -> pytest.MarkDecorator:
    """Skip unless this copy ships the bundled model ``name`` (large weights are optional)."""
    from musicvae.generation.api import bundled_available

    return pytest.mark.skipif(not bundled_available(name), reason=f"no bundled {name} here")
