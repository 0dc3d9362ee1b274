"""Generation latency on CPU, printed as JSON.

For each model named (``--models``, default groovae_4bar): ``TrainedModel.sample`` of 5 and 64
sequences (NoteSequences; 5 also as tensors; under the input's controls for a model that takes
some, e.g. taps) and one encode + decode of a MIDI file (read, convert, encode, decode, back to a
NoteSequence). A name is a bundled model (its weights) or any
registered config (a freshly initialised model of that architecture: the same cost). A drum
model encodes the first 4 bars of ``--midi`` (a GMD groove), any other its own sample written to
MIDI. Target: under 50 ms to sample 5 (``target_sample_5_ms``), for every model measured.

    .venv/bin/python benchmarks/generate.py [--models groovae_4bar,mel_16bar_hierdec,...]
        [--repeats 20] [--threads 2,1] [--reference] [--midi FILE]

``--reference`` also times every measurement with the fused LSTM kernel off (as
``MUSICVAE_FUSED_LSTM=0``: ``nn.LSTM`` and the Python step loop), each run alternating with one
on the kernel in the same process, so that both see the same load. Small-batch step-by-step
decoding is often fastest on one thread (tiny matrix products gain little from more, and lose a
lot when the machine is busy), so both the default and 1 are measured. Besides wall-clock times,
``min_cpu_ms`` is the least CPU time a run took (all threads): on a busy machine it shows the work
done when the wall clock also counts waiting for a core.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
GMD = ROOT.parent / "shared" / "data" / "groove"
DEFAULT_MIDI = GMD / "drummer1" / "session1" / "1_funk_80_beat_4-4.mid"
TARGET_MS = 50
MELODY_SET = "groovae_4bar,mel_16bar_hierdec,mel_16bar_flat,cat-mel_2bar_small"


def timed(
    fn: Callable[[], object], repeats: int, variants: dict[str, Callable[[], None]], warmup: int = 2
) -> dict[str, dict[str, float]]:
    """``fn``'s times under each variant (a setup called before each run), the variants taking
    turns run by run."""
    for setup in variants.values():
        for _ in range(warmup):
            setup()
            fn()
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, setup in variants.items():
            setup()
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append((time.perf_counter() - t0) * 1000.0)
            cpu[name].append((time.process_time() - c0) * 1000.0)
    return {
        name: {
            "median_ms": round(statistics.median(wall[name]), 2),
            "min_ms": round(min(wall[name]), 2),
            "max_ms": round(max(wall[name]), 2),
            "min_cpu_ms": round(min(cpu[name]), 2),
            "repeats": repeats,
        }
        for name in variants
    }


def open_model(name: str) -> tuple[Any, str]:
    """The bundled model ``name``, else a freshly initialised model of the config ``name``."""
    from musicvae.configs import get_config
    from musicvae.generation import TrainedModel, bundled_path, load
    from musicvae.models import build_model

    if bundled_path(name).is_file():
        return load(name), f"bundled {name}"
    torch.manual_seed(0)
    config = get_config(name)
    return TrainedModel(build_model(config), config, source=f"fresh {name}"), f"fresh {name}"


def input_midi(model: Any, midi: Path | None, tmp: Path) -> Path:
    """An input of one window: a drum model's first 4 bars of ``midi`` (when it is there),
    otherwise the model's own sample."""
    from musicvae.data.midi import read_midi, write_midi

    if model.family.name == "groove" and midi is not None and midi.is_file():
        ns = read_midi(midi)
        bar = 60.0 / ns.qpm * 4
        ns = ns.select(ns.start < model.num_bars * bar - 1e-6)
    else:
        (ns,) = model.sample(1, seed=0)
    return write_midi(ns, tmp / f"input_{model.num_bars}bar.mid")


def measure(
    model: Any, midi: Path, threads: list[int], repeats: int, reference: bool
) -> dict[str, Any]:
    from musicvae.data.midi import read_midi
    from musicvae.models import fused_lstm

    # A model that decodes under controls (taps, hits, chords) samples under the input's.
    controls = model.prepare(read_midi(midi)).controls[0] if model.converter.control_depth else None

    def sample(n: int) -> object:  # TrainedModel.sample, with the controls
        return model.to_sequences(model.sample_tensors(n, temperature=1.0, controls=controls))

    def encode_decode() -> object:  # TrainedModel.encode then decode, with the controls
        ns = read_midi(midi)
        prep = model.prepare(ns)
        _, mu, _ = model.encode_tensors(prep.inputs[:1], prep.controls[:1])
        grooves = model.decode_tensors(mu, temperature=0.5, controls=prep.controls[:1])
        return model.to_sequences(grooves, qpm=ns.qpm)

    variants = {"kernel": lambda: fused_lstm.set_enabled(None)}
    if reference:
        variants["reference"] = lambda: fused_lstm.set_enabled(False)
    runs = {
        "sample_5": (lambda: sample(5), repeats),
        "sample_5_tensors": (lambda: model.sample_tensors(5, controls=controls), repeats),
        "sample_64": (lambda: sample(64), max(3, repeats // 4)),
        "encode_decode_midi": (encode_decode, repeats),
    }
    results: dict[str, Any] = {}
    try:
        for n in threads:
            torch.set_num_threads(n)
            per = {key: timed(fn, count, variants) for key, (fn, count) in runs.items()}
            for variant in variants:
                out = results.setdefault(variant, {})
                out[f"threads_{n}"] = {key: times[variant] for key, times in per.items()}
    finally:
        fused_lstm.set_enabled(None)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default="groovae_4bar",
        help=f"comma-separated bundled models or configs (e.g. {MELODY_SET})",
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per measurement")
    parser.add_argument(
        "--threads",
        default=f"{torch.get_num_threads()},1",
        help="comma-separated torch thread counts to measure (default: torch's default, then 1)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also time each run with the fused LSTM kernel off, alternating with it on",
    )
    parser.add_argument("--midi", type=Path, default=DEFAULT_MIDI, help="a drum model's input")
    args = parser.parse_args()
    thread_counts = list(dict.fromkeys(int(t) for t in args.threads.split(",")))
    names = list(dict.fromkeys(n.strip() for n in args.models.split(",") if n.strip()))

    from musicvae.models import fused_lstm

    load_before = os.getloadavg()[0]
    models: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            model, source = open_model(name)
            midi = input_midi(model, args.midi, Path(tmp))
            results = measure(model, midi, thread_counts, args.repeats, args.reference)
            best = min(r["sample_5"]["min_ms"] for r in results["kernel"].values())
            best_median = min(r["sample_5"]["median_ms"] for r in results["kernel"].values())
            models[name] = {
                "model": source,
                "family": model.family.name,
                "steps": model.window_steps,
                "best_sample_5_ms": best,
                "best_median_sample_5_ms": best_median,
                "meets_target": best < TARGET_MS,
                "results": results,
            }
    report = {
        "benchmark": "generate",
        "device": "cpu",
        "torch": torch.__version__,
        "fused_lstm_kernel": fused_lstm.available(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(load_before, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "target_sample_5_ms": TARGET_MS,
        "meets_target": all(m["meets_target"] for m in models.values()),
        "models": models,
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
