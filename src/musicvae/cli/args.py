"""Argument types shared by every command: bounded counts, seeds, ports, temperatures, devices.

Each is an ``argparse`` type, so a bad value is argparse's one-line usage error naming the flag,
before any work starts, and the bounds are the same wherever a flag appears.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from musicvae import validation
from musicvae.cpu import usable_cores


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (and exit 2), naming the flag."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


MAX_SEED = validation.MAX_SEED  # what torch.manual_seed accepts, as the API checks it
MAX_OUTPUTS = 10_000  # grooves per generate call: a few hundred MB of MIDI at most
MAX_TEMPERATURE = 100.0


def _int(text: str) -> int:
    try:
        return int(text, 0) if text.strip().lower().startswith("0x") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def bounded_int(lo: int, hi: int, why: str = "") -> Callable[[str], int]:
    """An argparse type for integers in ``[lo, hi]``."""

    def parse(text: str) -> int:
        value = _int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"{value} is out of range: expected {lo} to {hi:,}{' (' + why + ')' if why else ''}"
            )
        return value

    parse.__name__ = "integer"
    return parse


def threads(text: str) -> int:
    n = usable_cores()
    return bounded_int(1, n, f"this machine has {n} cores")(text)


def workers(text: str) -> int:
    n = usable_cores()
    return bounded_int(0, 4 * n, f"at most 4 per core; this machine has {n}")(text)


def processes(text: str) -> int:
    n = usable_cores()
    return bounded_int(1, 4 * n, f"at most 4 per core; this machine has {n}")(text)


seed = bounded_int(0, MAX_SEED, "a 64-bit seed")
port = bounded_int(1, 65535)
num_outputs = bounded_int(1, MAX_OUTPUTS, "generate in several calls for more")


def run_folder(text: str) -> Path:
    """A run folder's name: an empty one would be the current folder (``--run-dir ''``, a
    variable that was not set), which is never meant."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r}: an empty run folder name (it would be the current folder); name a folder"
        )
    return Path(text)


def temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_TEMPERATURE:
        raise argparse.ArgumentTypeError(
            f"{text} is out of range: expected a number above 0, at most {MAX_TEMPERATURE:g}"
        )
    return value


DEVICE_HELP = "auto (CUDA, else Apple's MPS, else the CPU), cpu, cuda, cuda:N or mps"


def device(text: str) -> str:
    """Checks the spelling only; :func:`musicvae.device.resolve_device` checks availability."""
    from musicvae.device import parse_device

    try:
        parse_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_which(p: argparse.ArgumentParser) -> None:
    """``--which latest|best``: which checkpoint of a run folder a command opens."""
    p.add_argument(
        "--which",
        choices=("latest", "best"),
        default="latest",
        help="for a run folder: its latest checkpoint (default; a corrupt newest one is passed "
        "over) or its best by validation loss (model.ckpt-best.pt)",
    )
