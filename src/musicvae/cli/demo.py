"""``musicvae demo``: the main job with no set-up: new grooves from the bundled GrooVAE.

With the bundled model it samples 5 grooves into ``generated/`` (MIDI plus a drum-grid PNG each).
``--data-tour`` (or a copy without the bundled weights) instead writes a few made-up grooves as
MIDI, converts them to a dataset file and prints the per-split example counts, with no download.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from musicvae.cli import args as types

# (pitch, sixteenth-note steps in one bar) per instrument of a basic rock beat.
_PATTERN = {36: (0, 8, 10), 38: (4, 12), 42: tuple(range(0, 16, 2))}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="sample 5 grooves from the bundled model into generated/",
        description="Sample grooves from the bundled groovae_4bar model and write them as MIDI "
        "files with drum-grid PNGs. With --data-tour: write a few synthetic drum grooves as MIDI "
        "into a temporary folder, convert them to a dataset file and print the training examples "
        "per split.",
    )
    p.add_argument(
        "--output-dir", default="generated", help="where sampled grooves go (default generated/)"
    )
    p.add_argument(
        "--num-outputs", type=types.num_outputs, default=5, help="grooves to sample (default 5)"
    )
    p.add_argument(
        "--temperature",
        type=types.temperature,
        default=0.5,
        help="sampling temperature (default 0.5)",
    )
    p.add_argument("--seed", type=types.seed, default=None, help="seed for reproducible samples")
    p.add_argument(
        "--data-tour",
        action="store_true",
        help="tour the data stage on synthetic MIDI instead of sampling",
    )
    p.add_argument(
        "--files",
        type=types.bounded_int(1, 1000),
        default=12,
        help="number of MIDI files (default 12)",
    )
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
    from musicvae.errors import MusicVAEError
    from musicvae.generation.api import DEFAULT_BUNDLE, bundled_path

    if not args.data_tour:
        if bundled_path(DEFAULT_BUNDLE).is_file():
            if args.keep:  # it would be ignored, the grooves landing elsewhere
                raise MusicVAEError("--keep is for --data-tour; sampled grooves go to --output-dir")
            return sample_grooves(args)
        print("this copy of musicvae has no bundled model; touring the data stage instead")
    return data_tour(args)


def sample_grooves(args: argparse.Namespace) -> int:
    from musicvae.cli.generate import generate
    from musicvae.generation.api import load

    model = load()
    out = Path(args.output_dir)
    paths = generate(
        model,
        "sample",
        [],
        num_outputs=args.num_outputs,
        temperature=args.temperature,
        output_dir=out,
        config_name=model.config.name,
        seed=args.seed,
    )
    print(
        f"sampled {len(paths)} grooves from the bundled {model.config.name} model ({model.source})"
    )
    for path in paths:
        print(f"  {path}  (+ {path.with_suffix('.png').name})")
    print(f"MIDI files and drum-grid pictures are in {out.resolve()}/")
    return 0


def data_tour(args: argparse.Namespace) -> int:
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
