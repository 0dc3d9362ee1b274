"""How much of a Tap2Drum model's haki2022 cell-wise accuracy comes from predicting silence.

Adds one constant to every hit logit of the decoder (a shift of the 0.5 decision threshold)
and scores each shift with the haki2022 protocol's metrics, taps kept and free, on the chosen
splits. The cell-wise accuracy rewards fewer hits on a sparse grid, so a negative shift raises it
while hit F1 falls: the README's Drumify card gives the figures, and the bundle ships unshifted.

    .venv/bin/python scripts/hit_bias_sweep.py --checkpoint groovae_2bar_tap_fixed_velocity \\
        --examples gmd.parquet --split validation --split test --bias -0.6,-0.3,0,0.3,0.6

Prints JSON: one row per split and shift.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from musicvae.data.dataset import read_dataset
from musicvae.evaluation.metrics import NUM_CLASSES
from musicvae.evaluation.protocols import (
    ProtocolWindows,
    haki2022_decodings,
    haki2022_metrics,
    haki2022_windows,
)
from musicvae.generation import load
from musicvae.generation.trained_model import TrainedModel

REPORTED = ("hit_accuracy", "silent_grid_hit_accuracy", "hit_precision", "hit_recall", "hit_f1")


@contextmanager
def hit_logit_shift(trained: TrainedModel, bias: float) -> Iterator[None]:
    """Add ``bias`` to the decoder's hit logits for the duration of the block."""
    proj = trained.model.decoder.output_projection
    saved = proj.bias.detach().clone()
    with torch.no_grad():
        proj.bias[:NUM_CLASSES] += bias
    try:
        yield
    finally:
        with torch.no_grad():
            proj.bias.copy_(saved)


def sweep(
    trained: TrainedModel, windows: ProtocolWindows, biases: list[float], seed: int = 0
) -> list[dict]:
    """One row per shift: the haki2022 hit metrics of each decoding (free, kept taps)."""
    rows = []
    for bias in biases:
        with hit_logit_shift(trained, bias):
            decodings = haki2022_decodings(trained, windows.inputs, 256, seed)
        row: dict = {"bias": bias}
        for name, pred in decodings.items():
            m = haki2022_metrics(pred, windows.outputs, windows.qpm)
            row[name] = {k: round(float(m[k]), 4) for k in REPORTED}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a 2-bar tap model: bundle or run")
    parser.add_argument("--examples", required=True, help="the GMD dataset (musicvae convert)")
    parser.add_argument(
        "--split", action="append", help="split(s) to score (repeatable; default test)"
    )
    parser.add_argument(
        "--bias", default="-0.6,-0.3,0,0.3,0.6", help="comma-separated hit-logit shifts"
    )
    parser.add_argument("--seed", type=int, default=0, help="decoding seed (near-greedy hits)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    trained = load(args.checkpoint)
    windows = haki2022_windows(read_dataset(args.examples), trained.converter)  # type: ignore[arg-type]
    biases = [float(b) for b in args.bias.split(",")]
    out = {}
    for split in args.split or ["test"]:
        out[split] = sweep(trained, windows.select(split), biases, args.seed)
    print(json.dumps({"checkpoint": args.checkpoint, "splits": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
