"""``musicvae data``: fetch the Groove MIDI Dataset (``download groove``) into the local cache, or
build the O'Neill folk-tune melody dataset from music21's corpus (``folk``, offline)."""

from __future__ import annotations

import argparse

from musicvae.cli import args as types


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="download or build public datasets",
        description="Download public MIDI datasets into the musicvae cache, or build one offline.",
    )
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    d = sub.add_parser(
        "download",
        help="download a dataset (verified by size and SHA-256)",
        description="Download a dataset into the cache folder (default ~/.cache/musicvae, or "
        "$MUSICVAE_CACHE), verify its size and SHA-256 and unpack it. Does nothing but print "
        "the path when it is already there.",
    )
    d.add_argument(
        "dataset",
        choices=["groove"],
        help="groove: the Groove MIDI Dataset, MIDI only (1,150 files, CC BY 4.0)",
    )
    d.add_argument(
        "--dir",
        metavar="DIR",
        default=None,
        help="cache folder to download into (default: $MUSICVAE_CACHE or ~/.cache/musicvae)",
    )
    d.set_defaults(func=run)
    _add_folk(sub)


def _add_folk(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser(
        "folk",
        help="build a melody dataset from O'Neill's Music of Ireland in music21's corpus",
        description="Build a melody dataset (for cat-mel_2bar_small and other melody configs) "
        "from the ABC tunes of music21's corpus folder oneills1850, offline. Each tune is "
        "written to MIDI by music21 and read back, so the notes are what Magenta's pipeline "
        "would see; tunes with several parts, chords or meter changes, or whose notes "
        "overlap, are skipped and counted; grace notes are dropped. Splits are 80/10/10 by "
        "a hash of the tune's X: number. Needs music21: pip install 'musicvae[folk]'. "
        "Source: Francis O'Neill, O'Neill's Music of Ireland (Chicago, 1903; public domain), "
        "in the ABC transcriptions of music21's corpus (music21: BSD-3-Clause); the "
        "transcribers are named in each tune's ABC Z: field, kept as meta 'transcriber'.",
    )
    f.add_argument("-o", "--output", required=True, metavar="FILE", help="dataset file to write")
    f.add_argument(
        "--limit",
        type=types.bounded_int(1, 100_000),
        default=None,
        metavar="N",
        help="only the first N tunes, in file and X: order (a quick try)",
    )
    f.add_argument(
        "--workers", type=types.processes, default=None, help="parser processes (default: all)"
    )
    f.set_defaults(func=run_folk)


def run_folk(args: argparse.Namespace) -> int:
    from musicvae.data.dataset import write_dataset
    from musicvae.data.folk import FOLK_CREDIT, build_folk
    from musicvae.errors import MusicVAEError

    report = build_folk(limit=args.limit, workers=args.workers)
    if not report.sequences:
        raise MusicVAEError(f"no usable tune in {report.read} read ({report.summary})")
    path = write_dataset(report.sequences, args.output)
    print(report.summary)
    print(f"wrote {len(report.sequences)} melodies to {path}")
    print(f"Credit: {FOLK_CREDIT}")
    print(f"next: musicvae dataset stats {path} --config cat-mel_2bar_small")
    return 0


def run(args: argparse.Namespace) -> int:
    from musicvae.data.download import download_groove

    path = download_groove(args.dir)
    print(f"next: musicvae convert {path} --output groove.parquet")
    return 0
