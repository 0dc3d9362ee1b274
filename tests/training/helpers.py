"""Small dataset files built from a few real Groove MIDI Dataset files, for training tests."""

from __future__ import annotations

from pathlib import Path

from musicvae.data.dataset import write_dataset
from musicvae.data.midi import read_midi

# (GMD path, split): short 4/4 files (the first train and validation picks of the Magenta fixtures).
FILES = (
    ("drummer1/session1/1_funk_80_beat_4-4.mid", "train"),
    ("drummer1/session1/100_neworleans-secondline_94_beat_4-4.mid", "train"),
    ("drummer1/session1/126_funk-fast_125_beat_4-4.mid", "validation"),
)


def make_dataset(groove_dir: Path, path: Path, files=FILES) -> Path:
    """Write a dataset file of ``files`` (relative GMD paths with their split) to ``path``."""
    sequences = []
    for i, (rel, split) in enumerate(files):
        ns = read_midi(groove_dir / rel, filename=rel)
        ns.id = f"/id/midi/groove/{i}"
        ns.meta["split"] = split
        sequences.append(ns)
    return write_dataset(sequences, path)


def logged_steps(log_dir: Path, tag: str = "loss") -> list[int]:
    """The steps of ``tag`` in every event file of ``log_dir``, each file read alone, as a
    reader that ignores TensorBoard's purge markers sees them (sorted, repeats kept)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path), purge_orphaned_data=False)
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            steps += [e.step for e in acc.Scalars(tag)]
    return sorted(steps)
