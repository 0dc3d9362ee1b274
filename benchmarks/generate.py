"""Generation latency on CPU, printed as JSON.

Times ``TrainedModel.sample`` for 5 and 64 grooves (tensors and NoteSequences) and one
encode + decode of a 4-bar MIDI file (read, convert, encode, decode, back to a NoteSequence).
Uses the bundled groovae_4bar when installed, else a freshly initialised groovae_4bar (same
architecture, so the same cost). Target: under 50 ms to sample 5 grooves.

    .venv/bin/python benchmarks/generate.py [--repeats 20] [--threads 2,1] [--midi FILE]

Small-batch step-by-step decoding is often fastest on one thread (tiny matmuls gain nothing from
more, and lose a lot when the machine is busy), so both the default and 1 are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
GMD = ROOT.parent / "shared" / "data" / "groove"
DEFAULT_MIDI = GMD / "drummer1" / "session1" / "1_funk_80_beat_4-4.mid"


def timed(fn, repeats: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return {
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "repeats": repeats,
    }


def four_bar_midi(model, midi: Path | None, tmp: Path) -> Path:
    """A 4-bar input file: the first 4 bars of ``midi``, or a sampled groove when it is absent."""
    from musicvae.data.midi import read_midi, write_midi

    if midi is not None and midi.is_file():
        ns = read_midi(midi)
        bar = 60.0 / ns.qpm * 4
        ns = ns.select(ns.start < 4 * bar - 1e-6)
    else:
        (ns,) = model.sample(1, seed=0)
    return write_midi(ns, tmp / "input_4bar.mid")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per measurement")
    parser.add_argument(
        "--threads",
        default=f"{torch.get_num_threads()},1",
        help="comma-separated torch thread counts to measure (default: torch's default, then 1)",
    )
    parser.add_argument("--midi", type=Path, default=DEFAULT_MIDI, help="input for encode+decode")
    args = parser.parse_args()
    thread_counts = list(dict.fromkeys(int(t) for t in args.threads.split(",")))

    from musicvae.configs import get_config
    from musicvae.data.midi import read_midi
    from musicvae.generation import TrainedModel, bundled_path, load
    from musicvae.models import build_model

    if bundled_path("groovae_4bar").is_file():
        model, source = load(), "bundled groovae_4bar"
    else:
        torch.manual_seed(0)
        config = get_config("groovae_4bar")
        model = TrainedModel(build_model(config), config, source="fresh groovae_4bar")
        source = "fresh groovae_4bar (no bundle installed)"

    with tempfile.TemporaryDirectory() as tmp:
        midi = four_bar_midi(model, args.midi, Path(tmp))

        def encode_decode():
            ns = read_midi(midi)
            _, mu, _ = model.encode([ns])
            return model.decode(mu, temperature=0.5, qpm=ns.qpm)

        results = {}
        for threads in thread_counts:
            torch.set_num_threads(threads)
            results[f"threads_{threads}"] = {
                "sample_5": timed(lambda: model.sample(5, temperature=1.0), args.repeats),
                "sample_5_tensors": timed(lambda: model.sample_tensors(5), args.repeats),
                "sample_64": timed(
                    lambda: model.sample(64, temperature=1.0), max(3, args.repeats // 4)
                ),
                "encode_decode_4bar_midi": timed(encode_decode, args.repeats),
            }
    best = min(r["sample_5"]["median_ms"] for r in results.values())
    report = {
        "benchmark": "generate",
        "model": source,
        "device": "cpu",
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "target_sample_5_ms": 50,
        "best_sample_5_ms": best,
        "meets_target": best < 50,
        "results": results,
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
