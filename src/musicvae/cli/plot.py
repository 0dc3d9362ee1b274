"""``musicvae plot RUN``: the training curves of a run folder as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot",
        help="plot a run's training and evaluation curves to a PNG",
        description="Read RUN/train and RUN/eval TensorBoard event files and draw loss, "
        "reconstruction loss, KL bits, KL beta, hit accuracy and learning rate.",
    )
    p.add_argument(
        "run_dir", type=Path, metavar="RUN", help="run folder written by `musicvae train`"
    )
    p.add_argument("--output", "-o", type=Path, help="PNG to write (default: RUN/curves.png)")
    p.set_defaults(func=run_plot)
    return p


def run_plot(args: argparse.Namespace) -> int:
    from musicvae.plotting.curves import plot_run

    path = plot_run(args.run_dir, args.output)
    print(f"wrote {path}")
    return 0
