"""``musicvae demo``: a self-contained tour of the data stage, no download needed.

Writes a few made-up drum grooves as MIDI files into a temporary folder, converts the folder to a
dataset file and prints the per-split example counts for a config. (Placeholder until a trained
model exists; it will then generate and play with grooves instead.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

# (pitch, sixteenth-note steps in one bar) per instrument of a basic rock beat.
_PATTERN = {36: (0, 8, 10), 38: (4, 12), 42: tuple(range(0, 16, 2))}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="write, convert and count a small made-up groove dataset",
        description="Write a few synthetic drum grooves as MIDI into a temporary folder, convert "
        "them to a dataset file and print the training examples per split.",
    )
    p.add_argument("--files", type=int, default=12, help="number of MIDI files (default 12)")
    p.add_argument(
        "--config", default="groovae_4bar", help="config whose converter counts examples"
    )
    p.add_argument("--keep", metavar="DIR", help="write into DIR (kept) instead of a temp folder")
    p.set_defaults(func=run)


def write_grooves(folder: Path, n_files: int, *, seed: int = 0) -> list[Path]:
    """``n_files`` MIDI files of 8 bars each, with jittered timing and velocity, in subfolders."""
    import numpy as np

    from musicvae.data.midi import write_midi
    from musicvae.data.sequence import NoteSequence

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        qpm = float(rng.integers(80, 140))
        step = 60.0 / qpm / 4
        notes = []
        for bar in range(8):
            for pitch, steps in _PATTERN.items():
                for s in steps:
                    t = max(0.0, (bar * 16 + s) * step + rng.normal(0, step * 0.1))
                    notes.append((pitch, int(rng.integers(40, 120)), t, t + step / 2))
        ns = NoteSequence.from_notes(notes, qpm=qpm)
        paths.append(write_midi(ns, folder / f"player{i % 3 + 1}" / f"{i + 1}_rock_{int(qpm)}.mid"))
    return paths


def run(args: argparse.Namespace) -> int:
    import tempfile

    from musicvae.configs import get_config
    from musicvae.data.convert import convert_folder, write_report
    from musicvae.data.stats import dataset_stats, format_stats

    config = get_config(args.config)
    with tempfile.TemporaryDirectory(prefix="musicvae-demo-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        midi_dir = root / "grooves"
        write_grooves(midi_dir, args.files)
        print(f"wrote {args.files} synthetic groove MIDI files under {midi_dir}")
        report = convert_folder(midi_dir, split_by_hash=True, workers=1)
        out = write_report(report, root / "grooves.parquet", str(midi_dir))
        print(report.summary)
        print(f"dataset: {out}" + ("" if args.keep else " (temporary)"))
        stats = dataset_stats(report.sequences, config, workers=1)
        print(format_stats(stats, title=f"examples for {config.name}:"))
    return 0
