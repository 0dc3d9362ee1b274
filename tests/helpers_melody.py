"""The 24 folk tunes of Magenta's melody reference data as a dataset, and a tiny melody run.

The tunes are from Francis O'Neill's *O'Neill's Music of Ireland* (Chicago, 1903; public domain),
in the ABC transcriptions of music21's corpus (``oneills1850``) by Norbert Paap, John Chambers
and Trish O'Neil; ../shared/data/magenta/melody/README.md has the details and licences.
"""

from __future__ import annotations

from pathlib import Path

from musicvae.configs import get_config
from musicvae.data.dataset import write_dataset
from musicvae.data.midi import read_midi
from musicvae.training.trainer import TrainOptions, TrainResult, train

TINY_MELODY = "debug-mel_2bar"


def folk_dataset(melody_dir: Path, path: Path) -> Path:
    """A dataset file of the 24 tunes, all in the train split (20 of them make windows)."""
    sequences = []
    for i, midi in enumerate(sorted((melody_dir / "melodies").glob("*.mid"))):
        ns = read_midi(midi, filename=midi.name)
        ns.id = f"/id/midi/oneills1850/{i}"
        ns.meta["split"] = "train"
        sequences.append(ns)
    return write_dataset(sequences, path)


def train_tiny_melody(run_dir: Path, dataset: Path, steps: int = 2) -> TrainResult:
    """``steps`` steps of the tiny melody config on one thread, a checkpoint at the end."""
    options = TrainOptions(
        run_dir=run_dir,
        examples=dataset,
        num_steps=steps,
        seed=0,
        eval_every=0,
        checkpoint_every=steps,
        log_every=1,
        threads=1,
        progress=False,
    )
    return train(get_config(TINY_MELODY), options)
