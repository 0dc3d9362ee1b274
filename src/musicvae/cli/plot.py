"""``musicvae plot RUN``: the training curves of a run folder as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot",
        help="plot a run's training and evaluation curves to a PNG",
        description="Read RUN/train and RUN/eval TensorBoard event files and draw loss, "
        "reconstruction loss, KL bits, KL beta, hit accuracy and learning rate. Several runs are "
        "drawn on the same axes, a colour each, to compare them.",
    )
    p.add_argument(
        "run_dir",
        type=Path,
        nargs="*",
        metavar="RUN",
        help="run folder written by `musicvae train` (several: overlaid; needs --output)",
    )
    p.add_argument("--run-dir", dest="run_dir_flag", type=Path, help="the run folder, as a flag")
    p.add_argument(  # a string: Path would drop the trailing slash of "-o p/"
        "--output", "-o", help="PNG to write (default for one run: RUN/curves.png)"
    )
    p.set_defaults(func=run_plot)
    return p


def run_plot(args: argparse.Namespace) -> int:
    from musicvae.errors import MusicVAEError
    from musicvae.io import check_output
    from musicvae.plotting.curves import plot_run, plot_runs

    runs = [*args.run_dir, *([args.run_dir_flag] if args.run_dir_flag else [])]
    if not runs:
        raise MusicVAEError("plot: give the run folder (RUN or --run-dir RUN)")
    if args.output is not None:
        args.output = check_output(args.output, runs, suffix=".png", kind="a PNG picture")
    if len(runs) == 1:
        path = plot_run(runs[0], args.output)
    elif args.output is None:
        raise MusicVAEError(f"plot: {len(runs)} runs share one figure; name it with --output")
    else:
        path = plot_runs(runs, args.output)
    print(f"wrote {path}")
    return 0
