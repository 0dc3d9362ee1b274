"""The ``musicvae`` command: one sub-command per stage, each defined in its own module.

Every module in ``COMMANDS`` provides ``add_parser(subparsers)``, which registers its sub-command
and sets ``func`` (called with the parsed args; returns an exit code or None). Modules import their
heavy dependencies (torch, pyarrow) inside ``func`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from musicvae.cli import args as types
from musicvae.cpu import tune_environment
from musicvae.errors import MusicVAEError

# Sub-command modules under musicvae.cli, in the order --help lists them.
COMMANDS = [
    "convert",
    "data",
    "dataset",
    "train",
    "plot",
    "generate",
    "render",
    "evaluate",
    "explain",
    "import_magenta",
    "export",
    "studio",
    "demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = types.Parser(
        prog="musicvae",
        description="MusicVAE and GrooVAE in PyTorch: MIDI folders to datasets, training, "
        "generation, evaluation and a browser studio.",
    )
    from musicvae import __version__

    parser.add_argument(
        "--version", action="version", version=f"musicvae {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"musicvae.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"musicvae.cli.{name}":
                continue  # a stage that is not built yet
            raise
        module.add_parser(sub)
    return parser


def run(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Call a command, turning user-facing errors into one line on stderr and exit code 1."""
    try:
        code = func(args)
    except MusicVAEError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory (try smaller sizes or inputs)", file=sys.stderr)
        return 1
    except RuntimeError as e:
        # torch's allocator failing is the same condition, raised as a RuntimeError.
        if "can't allocate memory" not in str(e) and "out of memory" not in str(e):
            raise
        print("error: out of memory (try smaller sizes or inputs)", file=sys.stderr)
        return 1
    return int(code or 0)


def quiet_numpy_warnings() -> None:
    """Empty means and NaN comparisons are handled where they occur (reports show "-"); numpy's
    RuntimeWarnings about them would only be noise on a user's console."""
    import warnings

    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"numpy(\..*)?")
    warnings.filterwarnings("ignore", message=r".*(Mean of empty slice|invalid value encountered)")


def main(argv: list[str] | None = None) -> int:
    tune_environment()  # before anything loads torch
    quiet_numpy_warnings()
    args = build_parser().parse_args(argv)
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
