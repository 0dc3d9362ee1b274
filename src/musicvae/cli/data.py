"""``musicvae data download groove``: fetch the Groove MIDI Dataset into the local cache."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="download public datasets",
        description="Download public MIDI datasets into the musicvae cache.",
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


def run(args: argparse.Namespace) -> int:
    from musicvae.data.download import download_groove

    path = download_groove(args.dir)
    print(f"next: musicvae convert {path} --output groove.parquet")
    return 0
