"""The fused LSTM kernel against ``nn.LSTM`` over a real training run: do the loss curves agree?

Runs the real ``musicvae train`` twice from the same seed on the same GMD windows, once on the
fused CPU kernel (:mod:`musicvae.models.fused_lstm`, the default) and once with
``--no-fused-lstm``, for ``--steps`` steps, and compares the per-step training scalars from
their event files. The two implementations sum in different orders, so the curves part by
rounding noise that training then amplifies; the JSON gives the largest and mean relative loss
difference, over the whole run and over its last tenth, the final losses of both, and, as the
scale of a different run, the same figures for a fused run from another seed (other initial
weights and data order, ``--reference-seed``), when asked for with ``--with-reference``.

    .venv/bin/python benchmarks/lstm_curve.py --examples gmd.parquet [--steps 600]
        [--config groovae_2bar_humanize] [--batch-size 64] [--threads 1] [--with-reference]

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from musicvae.plotting.curves import read_scalars

TAGS = ("loss", "losses/r_loss", "losses/kl_bits")


def run(args: argparse.Namespace, run_dir: Path, fused: bool, seed: int) -> dict:
    """One ``musicvae train`` child; its per-step scalars and wall time."""
    cmd = [sys.executable, "-m", "musicvae", "train", "--config", args.config]
    cmd += ["--run-dir", str(run_dir), "--examples", str(args.examples), "--seed", str(seed)]
    cmd += ["--hparams", f"batch_size={args.batch_size}", "--num-steps", str(args.steps)]
    cmd += ["--log-every", "1", "--eval-every", "0", "--no-progress", "--device", "cpu"]
    cmd += ["--checkpoint-every", str(args.steps), "--threads", str(args.threads)]
    cmd += [] if fused else ["--no-fused-lstm"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed: {done.stderr.strip()[-400:]}")
    scalars = read_scalars(run_dir / "train")
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "curves": {tag: scalars[tag][1].astype(float) for tag in TAGS if tag in scalars},
    }


def compare(a: dict, b: dict) -> dict:
    """Relative differences of b's curves from a's, whole run and last tenth."""
    out = {}
    for tag, x in a["curves"].items():
        y = b["curves"][tag]
        n = min(len(x), len(y))
        rel = np.abs(x[:n] - y[:n]) / np.maximum(np.abs(x[:n]), 1e-9)
        tail = rel[-max(1, n // 10) :]
        out[tag] = {
            "steps": n,
            "max_rel": round(float(rel.max()), 6),
            "mean_rel": round(float(rel.mean()), 6),
            "last_tenth_mean_rel": round(float(tail.mean()), 6),
            "final": [round(float(x[n - 1]), 4), round(float(y[n - 1]), 4)],
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=Path, required=True, help="GMD Parquet (musicvae convert)")
    p.add_argument("--config", default="groovae_2bar_humanize", help="registered config")
    p.add_argument("--steps", type=int, default=600, help="training steps per run (default 600)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run (default 1)")
    p.add_argument("--seed", type=int, default=1, help="seed of both runs")
    p.add_argument(
        "--with-reference",
        action="store_true",
        help="also a fused run with --reference-seed: the scale of run-to-run noise",
    )
    p.add_argument("--reference-seed", type=int, default=2, help="seed of the reference run")
    args = p.parse_args()
    if not args.examples.is_file():
        raise SystemExit(f"error: {args.examples}: no such dataset file")
    if not 1 <= args.steps <= 100_000 or not 1 <= args.batch_size <= 4096:
        raise SystemExit("error: --steps must be 1-100000 and --batch-size 1-4096")
    with tempfile.TemporaryDirectory(prefix="musicvae-curve-") as tmp:
        fused = run(args, Path(tmp) / "fused", True, args.seed)
        plain = run(args, Path(tmp) / "nn", False, args.seed)
        result = {
            "command": " ".join(sys.argv),
            "config": args.config,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "wall_s": {"fused": fused["wall_s"], "nn_lstm": plain["wall_s"]},
            "fused_vs_nn_lstm": compare(fused, plain),
        }
        if args.with_reference:
            other = run(args, Path(tmp) / "reference", True, args.reference_seed)
            result["wall_s"]["reference"] = other["wall_s"]
            result["fused_vs_other_seed"] = compare(fused, other)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
