"""``musicvae dataset stats DATA --config NAME``: sequences and training examples per split."""

from __future__ import annotations

import argparse
import json

from musicvae.cli import args as types


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dataset",
        help="inspect a dataset file",
        description="Inspect a dataset file (Parquet, or a NoteSequence TFRecord).",
    )
    sub = p.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    s = sub.add_parser(
        "stats",
        help="sequences and training examples per split",
        description="Count, per split, the sequences and the training examples that the "
        "config's converter makes of them (on all cores), and the sequences that give none.",
    )
    s.add_argument("data", metavar="DATA", help="dataset file (.parquet or NoteSequence TFRecord)")
    s.add_argument(
        "--config", default="groovae_4bar", help="model config name (default: groovae_4bar)"
    )
    s.add_argument(
        "--hparams",
        default="",
        metavar="K=V,...",
        help="comma-separated config overrides, e.g. split_bars=2,windowing=file",
    )
    s.add_argument(
        "--json",
        action="store_true",
        help='print {"sequences": N, "examples": M, "splits": {...}} instead of a table',
    )
    s.add_argument(
        "--workers",
        type=types.processes,
        default=None,
        metavar="N",
        help="processes (default: all cores)",
    )
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicvae.configs import get_config
    from musicvae.data.stats import dataset_stats, format_stats
    from musicvae.errors import MusicVAEError

    try:
        config = get_config(args.config, args.hparams)
    except ValueError as e:
        raise MusicVAEError(f"--config/--hparams: {e}") from None
    stats = dataset_stats(args.data, config, workers=args.workers)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(format_stats(stats, title=f"{args.data} with {config.name}:"))
    return 0
