"""Benchmark: training throughput of one config, its FLOPs, and the machine's matmul speed.

Times the trainer's own ``train_step`` (forward, backward, Magenta's clipping, Adam) on a fixed
batch of synthetic windows (GMD-like grooves, one class a step for the other families; or real
ones with ``--examples``), ``--steps`` steps back to back as training runs them
(``examples_per_s`` is their sustained rate; the median and best steps are reported too), and
in the same run, before and after them, a "matmul-only step": every GEMM
the step performs, at its exact shape, as a plain fp32 ``torch.mm`` (best round of both). Their
ratio is how close training runs to the machine's matmul speed. ``--interleaved`` pairs then
run one reference round and one step in turn, whose median ratio is the figure least moved by a
drifting machine. Prints one JSON object.

FLOPs are counted analytically from the layer shapes: a (M x K) @ (K x N) product is 2·M·K·N.
Per LSTM layer (input I, hidden H, batch B, T steps) the forward pass is one input GEMM
(T·B x I) @ (I x 4H) plus T recurrent GEMMs (B x H) @ (H x 4H): 8·T·B·H·(I + H) FLOPs; dense
layers (z to state, mu/sigma, output projection) add 2·rows·in·out. Backward does two GEMMs of
the same size per forward GEMM (input and weight gradients), less the input gradient of the
encoder's data input, which no trainer computes, so a training step is about 3 x forward FLOPs;
elementwise gate math and the loss are ignored (a few percent at most).

The step runs as training runs it: bf16 autocast where the trainer uses it (CUDA, CPUs with
native bf16; ``--no-amp`` for fp32; the JSON's ``amp`` says which ran), with the environment
``musicvae`` sets before torch loads (:func:`musicvae.cpu.tune_environment`); ``--keep-heap``
compares glibc's heap kept at its peak. The matmul reference is fp32 either way, so with amp on
``fraction_of_matmul_speed`` can exceed 1.

The LSTMs run on the fused CPU kernel where it builds (:mod:`musicvae.models.fused_lstm`; the
JSON's ``fused_lstm`` says), on ``nn.LSTM`` with ``--no-fused-lstm``.

``--trainer`` then runs the real ``musicvae train`` (a child process, real GMD windows) for
``--trainer-steps`` steps and reports its sustained rate (from its per-step event log, the first
``--trainer-warmup`` steps left out) and the peak RSS of the whole process, in bf16 and in fp32.
``--contend N [N ...]`` (implies ``--trainer``) repeats the bf16 run with N busy competitor
processes started for it (pure-Python spin loops, each bounded to an hour and stopped when the run
ends) and reports each rate as a fraction of the quiet one, with the thread changes the trainer
made. ``--trainer-lstm both`` adds quiet runs on ``nn.LSTM`` (``--no-fused-lstm``), before and
after the others, so the kernel's gain is measured in alternation on the same machine.

    .venv/bin/python benchmarks/train.py --config groovae_4bar --batch-size 512 [--steps N]
    .venv/bin/python benchmarks/train.py --contend 1 2
    .venv/bin/python benchmarks/train.py --skip-loop --trainer --trainer-lstm both
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from musicvae.cpu import keep_heap, tune_environment, usable_cores

TUNED = tune_environment()  # as the musicvae command does, before torch loads

import torch  # noqa: E402

from musicvae.configs import Config, get_config  # noqa: E402
from musicvae.data.converters import build_converter  # noqa: E402
from musicvae.families import family_name  # noqa: E402
from musicvae.models import build_model, fused_lstm  # noqa: E402
from musicvae.training.distributed import resolve_device  # noqa: E402
from musicvae.training.optim import amp_enabled, make_optimizer, set_seed, train_step  # noqa: E402

GMD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "groove"

Gemm = tuple[int, int, int]  # (M, K, N)


def lstm_gemms(batch: int, steps: int, input_size: int, sizes: tuple[int, ...]) -> Counter:
    """Forward GEMMs of a stack of LSTM layers: {(M, K, N): count}."""
    out: Counter = Counter()
    for h in sizes:
        out[(steps * batch, input_size, 4 * h)] += 1  # all steps' input projections at once
        out[(batch, h, 4 * h)] += steps  # the recurrence, one step at a time
        input_size = h
    return out


def depths(config: Config) -> tuple[int, int, int]:
    """The config's (input, output, control) depths, from its converter."""
    converter = build_converter(config)
    return converter.input_depth, converter.output_depth, converter.control_depth


def model_gemms(config: Config, batch: int) -> dict[str, Counter]:
    """Forward GEMMs of one training step, by part of the model (the LSTM stacks and dense
    layers of flat and hierarchical decoders)."""
    hp = config.hparams
    t, z = hp.max_seq_len, hp.z_size
    in_depth, out_depth, controls = depths(config)
    parts: dict[str, Counter] = {"encoder": Counter(), "decoder": Counter()}
    # Bidirectional encoder: each direction is a full LSTM; layer l>0 reads both directions.
    inp = in_depth + controls
    for h in hp.enc_rnn_size:
        for _ in range(2):
            parts["encoder"].update(lstm_gemms(batch, t, inp, (h,)))
        inp = 2 * h
    parts["encoder"][(batch, inp, z)] += 2  # mu and sigma
    dec = tuple(hp.dec_rnn_size)
    if config.decoder == "hierarchical":
        bar = config.level_lengths[-1] if config.level_lengths else config.steps_per_bar
        bars = t // bar
        cond = tuple(hp.conductor_rnn_size or hp.dec_rnn_size)
        parts["conductor"] = Counter({(batch, z, 2 * sum(cond)): 1})
        parts["conductor"].update(lstm_gemms(batch, bars, 1, cond))
        # The core decoder runs every bar as one (B * bars)-row batch, conditioned on the bar's
        # embedding instead of z.
        parts["decoder"][(batch * bars, cond[-1], 2 * sum(dec))] += 1
        parts["decoder"].update(lstm_gemms(batch * bars, bar, out_depth + cond[-1] + controls, dec))
    else:
        parts["decoder"][(batch, z, 2 * sum(dec))] += 1
        parts["decoder"].update(lstm_gemms(batch, t, out_depth + z + controls, dec))
    parts["decoder"][(t * batch, dec[-1], out_depth)] += 1  # output projection
    return parts


def gemm_flops(gemms: Counter) -> int:
    return sum(2 * m * k * n * c for (m, k, n), c in gemms.items())


def data_input_gemms(config: Config, batch: int) -> Counter:
    """The forward GEMMs whose input is the data itself (the encoder's first input projection,
    one a direction): no trainer computes their input gradient."""
    in_depth, _, controls = depths(config)
    h = config.hparams.enc_rnn_size[0]
    return Counter({(config.hparams.max_seq_len * batch, in_depth + controls, 4 * h): 2})


def backward_gemms(forward: Counter, data_inputs: Counter | None = None) -> Counter:
    """Input gradient (M x N)(N x K) and weight gradient (K x M)(M x N) of each forward GEMM,
    less the input gradients of ``data_inputs``."""
    out: Counter = Counter()
    skip = data_inputs or Counter()
    for (m, k, n), c in forward.items():
        if c > skip[(m, k, n)]:
            out[(m, n, k)] += c - skip[(m, k, n)]
        out[(k, m, n)] += c
    return out


class GemmStep:
    """The step's GEMMs as plain ``torch.mm`` calls on preallocated operands (fp32, or bf16:
    what the machine's matmuls reach in the dtype autocast trains in)."""

    def __init__(
        self, gemms: Counter, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> None:
        self.gemms = gemms
        self.device = device
        self.operands = {
            (m, k, n): (
                torch.randn(m, k, device=device, dtype=dtype),
                torch.randn(k, n, device=device, dtype=dtype),
                torch.empty(m, n, device=device, dtype=dtype),
            )
            for (m, k, n) in gemms
        }
        self.best: dict[Gemm, float] = {}

    def run(self) -> float:
        """Run every GEMM as often as a step does; return the seconds taken (and keep each
        shape's best time per product)."""
        total = 0.0
        for shape, count in self.gemms.items():
            a, b, out = self.operands[shape]
            sync(self.device)
            t0 = time.perf_counter()
            for _ in range(count):
                torch.mm(a, b, out=out)
            sync(self.device)
            dt = time.perf_counter() - t0
            total += dt
            self.best[shape] = min(self.best.get(shape, math.inf), dt / count)
        return total

    def rounds(self, n: int) -> tuple[list[float], dict[Gemm, float]]:
        """A warm-up, then ``n`` timed rounds: their times and each shape's best."""
        self.run()
        return [self.run() for _ in range(n)], self.best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batch(config: Config, batch: int, examples: Path | None, device: torch.device):
    t = config.hparams.max_seq_len
    if examples is not None:
        from musicvae.data.examples import load_examples

        ex = load_examples(examples, config, "train")
        idx = torch.arange(batch) % len(ex)
        return tuple(x.to(device) for x in ex.batch(idx))
    g = torch.Generator().manual_seed(0)
    lengths = torch.full((batch,), t, dtype=torch.int64)
    in_depth, out_depth, control_depth = depths(config)
    if family_name(config) != "groove":
        # Other families: one class a step, the same cost for their LSTMs as real data.
        classes = torch.randint(0, out_depth, (batch, t), generator=g)
        x = torch.nn.functional.one_hot(classes, out_depth).float()
        inputs = x if in_depth == out_depth else x.new_zeros(batch, t, in_depth)
        controls = x.new_zeros(batch, t, control_depth)
        return tuple(v.to(device) for v in (inputs, x, controls, lengths))
    hits = (torch.rand(batch, t, 9, generator=g) < 0.12).float()  # about GMD's hit density
    vel = hits * torch.rand(batch, t, 9, generator=g)
    off = hits * (torch.rand(batch, t, 9, generator=g) * 2 - 1) * 0.5
    x = torch.cat([hits, vel, off], -1)
    controls = hits if config.data.hits_as_controls else x.new_zeros(batch, t, 0)
    return tuple(v.to(device) for v in (x, x, controls, lengths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="groovae_4bar", help="registered config name")
    parser.add_argument("--batch-size", type=int, default=512, help="examples per step")
    parser.add_argument(
        "--steps",
        type=int,
        default=10,
        help="timed training steps, back to back (then as many matmul-only rounds)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument(
        "--interleaved",
        type=int,
        default=4,
        help="then this many pairs of one matmul-only round and one training step, in turn "
        "(their median ratio is the fraction least moved by the machine's drift; 0: none)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--hparams", default="", help="extra key=value config overrides")
    parser.add_argument("--examples", type=Path, help="dataset file for real windows")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    parser.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bf16 autocast as training uses it: on CUDA and on CPUs with native bf16 "
        "(default on; --no-amp times fp32)",
    )
    parser.add_argument(
        "--keep-heap",
        action="store_true",
        help="keep freed memory in glibc's heap (mallopt), to compare with training, which no "
        "longer does: faster page-fault-free steps, but a fragmented heap of about 1.7 GB more",
    )
    parser.add_argument(
        "--trainer",
        action="store_true",
        help="also time the real `musicvae train` (child process) in bf16 and fp32, with peak RSS",
    )
    parser.add_argument(
        "--contend",
        type=int,
        nargs="+",
        metavar="N",
        help="with the real trainer, also run it beside N busy competitor processes (each N "
        "given is one run), e.g. --contend 1 2",
    )
    parser.add_argument(
        "--trainer-steps", type=int, default=24, help="steps of each real-trainer run"
    )
    parser.add_argument(
        "--trainer-warmup",
        type=int,
        default=3,
        help="first steps of each real-trainer run left out of its rate",
    )
    parser.add_argument(
        "--no-fused-lstm",
        action="store_true",
        help="run the LSTMs on nn.LSTM, not the fused CPU kernel (step loop and trainer runs)",
    )
    parser.add_argument(
        "--trainer-lstm",
        choices=("fused", "both"),
        default="fused",
        help="both: also time the real trainer on nn.LSTM (--no-fused-lstm), before and after "
        "the other runs",
    )
    parser.add_argument(
        "--skip-loop",
        action="store_true",
        help="only the real-trainer runs (no in-process step loop or matmul reference)",
    )
    args = parser.parse_args()
    if args.no_fused_lstm:
        os.environ[fused_lstm.ENV] = "0"
    result = {} if args.skip_loop else step_loop(args)
    if args.trainer or args.contend:
        result["trainer"] = trainer_runs(args)
    print(json.dumps(result, indent=2))


def step_loop(args: argparse.Namespace) -> dict:
    """The in-process step loop and its matmul-only reference."""
    device = resolve_device(args.device)
    heap_kept = device.type == "cpu" and args.keep_heap and keep_heap()
    cores = usable_cores()
    if device.type == "cpu":
        torch.set_num_threads(args.threads or cores)
    overrides = f"batch_size={args.batch_size}" + (f",{args.hparams}" if args.hparams else "")
    config = get_config(args.config, overrides)
    set_seed(0)
    model = build_model(config).to(device).train()
    optimizer = make_optimizer(model, config)
    batch = make_batch(config, args.batch_size, args.examples, device)

    parts = model_gemms(config, args.batch_size)
    forward: Counter = Counter()
    for gemms in parts.values():
        forward.update(gemms)
    step_gemms = forward + backward_gemms(forward, data_input_gemms(config, args.batch_size))
    fwd_flops = gemm_flops(forward)
    step_flops = gemm_flops(step_gemms)  # about 3 x forward

    # The matmul-only step runs before the training steps as well as after them, and the best
    # round counts: on this project's virtual machines the same products ran up to 20% slower
    # after the steps than before, with the LSTM kernel's block cache holding memory, which
    # would flatter the ratio.
    matmul_before, best_before = GemmStep(step_gemms, device).rounds(max(2, args.steps // 2))
    reset_peak_rss()  # the reference's operands are gone: the peak from here is the steps'
    for step in range(args.warmup):
        train_step(model, optimizer, batch, step, config, amp=args.amp)
    # Training steps back to back, as training runs them: their mean is the sustained rate.
    step_times = []
    for step in range(args.warmup, args.warmup + args.steps):
        sync(device)
        t0 = time.perf_counter()
        out, _, _ = train_step(model, optimizer, batch, step, config, amp=args.amp)
        loss = out["loss"].item()
        sync(device)
        step_times.append(time.perf_counter() - t0)
    peak_rss = own_peak_rss_mib()  # before the operands
    # Then the matmul-only steps; the best round is the machine's matmul speed.
    gemm_step = GemmStep(step_gemms, device)
    matmul_after, _ = gemm_step.rounds(args.steps)
    for shape, best in best_before.items():
        gemm_step.best[shape] = min(gemm_step.best[shape], best)
    matmul_times = matmul_before + matmul_after
    # Then a matmul-only round and a training step in turn: each pair runs in the same state of
    # the machine, so the median of their ratios is the fraction least moved by its drift (on
    # this project's virtual machines the reference alone moved 30% between minutes).
    pairs = []
    for step in range(args.warmup + args.steps, args.warmup + args.steps + args.interleaved):
        floor = gemm_step.run()
        sync(device)
        t0 = time.perf_counter()
        train_step(model, optimizer, batch, step, config, amp=args.amp)
        sync(device)
        pairs.append(floor / (time.perf_counter() - t0))
    bf16_seconds = None
    if amp_enabled(device, args.amp):
        bf16_step = GemmStep(step_gemms, device, torch.bfloat16)
        bf16_step.run()
        bf16_seconds = min(bf16_step.run() for _ in range(max(2, args.steps // 2)))
        del bf16_step
    seconds, matmul_seconds = min(step_times), min(matmul_times)
    mean_seconds = sum(step_times) / len(step_times)
    median_seconds = sorted(step_times)[len(step_times) // 2]
    # "MxKxN (count per step)": fp32 GFLOP/s, heaviest shapes first.
    per_shape = {
        f"{m}x{k}x{n} (x{c})": round(2 * m * k * n / gemm_step.best[(m, k, n)] / 1e9, 1)
        for (m, k, n), c in sorted(step_gemms.items(), key=lambda kv: -2 * math.prod(kv[0]) * kv[1])
    }
    result = {
        "benchmark": "train",
        "config": config.name,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        # bf16 autocast on (fp32 master weights); the matmul reference below is fp32 either way.
        "amp": amp_enabled(device, args.amp),
        "amp_dtype": "bfloat16" if amp_enabled(device, args.amp) else None,
        "heap_kept": heap_kept,
        "environment_set": TUNED,
        "fused_lstm": fused_lstm.available(),
        "cores": cores,
        # Other processes competing for the cores make every timing slower.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "data": "real" if args.examples else "synthetic",
        "steps_timed": args.steps,
        # Sustained: every timed step, back to back. Best and median steps next to it.
        "examples_per_s": round(args.batch_size / mean_seconds, 1),
        "examples_per_s_median_step": round(args.batch_size / median_seconds, 1),
        "examples_per_s_best_step": round(args.batch_size / seconds, 1),
        "ms_per_step": round(mean_seconds * 1e3, 2),
        "ms_per_step_median": round(median_seconds * 1e3, 2),
        "ms_per_step_best": round(seconds * 1e3, 2),
        "loss_last": round(loss, 3),
        "peak_rss_mib": round(peak_rss, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops_formula": "2*M*K*N per GEMM; LSTM layer fwd = 8*T*B*H*(I+H); step = 3 x forward "
        "less the input gradient of the encoder's data input",
        "forward_gflop": round(fwd_flops / 1e9, 2),
        "forward_gflop_by_part": {k: round(gemm_flops(v) / 1e9, 2) for k, v in parts.items()},
        "step_gflop": round(step_flops / 1e9, 2),
        "achieved_gflops": round(step_flops / mean_seconds / 1e9, 1),
        "matmul_gflops_same_shapes": round(step_flops / matmul_seconds / 1e9, 1),
        "matmul_ms_per_step": round(matmul_seconds * 1e3, 2),
        "matmul_ms_best_before_after": [
            round(min(matmul_before) * 1e3, 2),
            round(min(matmul_after) * 1e3, 2),
        ],
        "fraction_of_matmul_speed": round(matmul_seconds / mean_seconds, 3),
        # The same from the best step and the best reference round, and the median of the
        # interleaved pairs (reference round / the step after it) with each pair's ratio.
        "fraction_best_of_each": round(matmul_seconds / seconds, 3),
        "fraction_interleaved_median": round(statistics.median(pairs), 3) if pairs else None,
        "fraction_interleaved": [round(r, 3) for r in pairs],
        # The same GEMMs in bf16 (with amp on): the bound a bf16 step could reach if nothing
        # but its matmuls took time.
        "bf16_matmul_gflops_same_shapes": None
        if bf16_seconds is None
        else round(step_flops / bf16_seconds / 1e9, 1),
        "bf16_matmul_ms_per_step": None if bf16_seconds is None else round(bf16_seconds * 1e3, 2),
        "fraction_of_bf16_matmul_speed": None
        if bf16_seconds is None
        else round(bf16_seconds / mean_seconds, 3),
        "gemm_shapes": per_shape,
    }
    if device.type == "cuda":
        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return result


# -- the real trainer ---------------------------------------------------------------------------


def trainer_runs(args: argparse.Namespace) -> dict:
    """Quiet bf16 and fp32 runs of ``musicvae train``, then one contended run per ``--contend``."""
    with tempfile.TemporaryDirectory(prefix="musicvae-bench-") as tmp:
        examples = args.examples or dataset(Path(tmp))
        runs = {}
        both = args.trainer_lstm == "both" and not args.no_fused_lstm
        if both:
            runs["quiet_nn_lstm"] = trainer_run(
                args, examples, Path(tmp) / "nn", competitors=0, fused=False
            )
        runs["quiet"] = trainer_run(args, examples, Path(tmp) / "quiet", competitors=0)
        for n in args.contend or []:
            runs[f"contended_{n}"] = trainer_run(
                args, examples, Path(tmp) / f"contend{n}", competitors=n
            )
        # Quiet again after the contended runs: this machine's speed drifts over minutes, so
        # each contended rate is set against the mean of a quiet run before and after.
        runs["quiet_after"] = trainer_run(args, examples, Path(tmp) / "after", competitors=0)
        quiet = (runs["quiet"]["examples_per_s"] + runs["quiet_after"]["examples_per_s"]) / 2
        for n in args.contend or []:
            runs[f"contended_{n}"]["fraction_of_quiet"] = round(
                runs[f"contended_{n}"]["examples_per_s"] / quiet, 3
            )
        runs["quiet_fp32"] = trainer_run(
            args, examples, Path(tmp) / "fp32", competitors=0, amp=False
        )
        if both:
            runs["quiet_nn_lstm_after"] = trainer_run(
                args, examples, Path(tmp) / "nn_after", competitors=0, fused=False
            )
            nn = (
                runs["quiet_nn_lstm"]["examples_per_s"]
                + runs["quiet_nn_lstm_after"]["examples_per_s"]
            ) / 2
            runs["fused_over_nn_lstm"] = round(quiet / nn, 2)
    return {
        "command": "musicvae train --config CONFIG --examples GMD --hparams batch_size=B",
        "examples": str(examples),
        "cores": usable_cores(),
        "cpu": cpu_name(),
        **runs,
    }


def dataset(tmp: Path) -> Path:
    """The GMD converted by ``musicvae convert`` (the benchmark's own copy)."""
    out = tmp / "gmd.parquet"
    cmd = [sys.executable, "-m", "musicvae", "convert", str(GMD), "-o", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def trainer_run(
    args: argparse.Namespace,
    examples: Path,
    run_dir: Path,
    competitors: int,
    amp: bool = True,
    fused: bool = True,
) -> dict:
    """One ``musicvae train`` child: its sustained rate, peak RSS and thread changes."""
    hparams = f"batch_size={args.batch_size}" + (f",{args.hparams}" if args.hparams else "")
    cmd = [sys.executable, "-m", "musicvae", "train", "--config", args.config]
    cmd += ["--run-dir", str(run_dir), "--examples", str(examples), "--hparams", hparams]
    cmd += ["--num-steps", str(args.trainer_steps), "--log-every", "1", "--eval-every", "0"]
    cmd += ["--checkpoint-every", str(10 * args.trainer_steps), "--no-progress"]
    cmd += ["--device", args.device] + ([] if amp else ["--no-amp"])
    cmd += [] if fused and not args.no_fused_lstm else ["--no-fused-lstm"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    returncode, text, peak = run_beside(cmd, competitors)
    if returncode:
        raise SystemExit(f"musicvae train failed ({returncode}):\n{text[-2000:]}")
    logged = scalars(run_dir / "train")
    seconds = [1.0 / v for v in logged["global_step/sec"]][args.trainer_warmup :]
    threads = Counter(int(v) for v in logged.get("cpu_threads", [])[args.trainer_warmup :])
    return {
        "amp": amp,
        "fused_lstm": fused and not args.no_fused_lstm,
        "competitors": competitors,
        "steps_timed": len(seconds),
        # Four significant digits: full-size 16-bar models on a CPU run at 0.02 examples/s.
        "examples_per_s": float(f"{args.batch_size * len(seconds) / sum(seconds):.4g}"),
        "peak_rss_mib": peak,
        # Timed steps per thread count the trainer chose (empty: it did not choose).
        "steps_on_threads": {str(k): v for k, v in sorted(threads.items())},
        "thread_changes": [line for line in text.splitlines() if line.startswith("CPU threads")],
    }


def run_beside(
    cmd: list[str], competitors: int, env: dict[str, str] | None = None
) -> tuple[int, str, float | None]:
    """Run ``cmd`` to the end beside ``competitors`` busy processes (stopped after it): its exit
    status, its whole output and its peak RSS in MiB."""
    busy = [spin() for _ in range(competitors)]
    try:
        with tempfile.TemporaryFile("w+") as log:
            child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            peak = peak_rss_mib(child)
            log.seek(0)
            return child.returncode, log.read(), peak
    finally:
        for p in busy:
            p.kill()
            p.wait()


def reset_peak_rss() -> None:
    """Start this process's peak RSS again from its current RSS (Linux; elsewhere the peak
    stays the process's whole-life peak)."""
    gc.collect()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def vm_hwm_mib(status: Path) -> float | None:
    """The peak RSS (``VmHWM``) in MiB that a ``/proc/PID/status`` file gives, None unread."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def own_peak_rss_mib() -> float:
    """This process's peak RSS in MiB since :func:`reset_peak_rss`."""
    peak = vm_hwm_mib(Path("/proc/self/status"))
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mib(child: subprocess.Popen) -> float | None:
    """The child's peak RSS (``VmHWM``), polled until it exits. Not ``wait4``'s ``ru_maxrss``:
    Linux carries that across ``exec`` from the forking parent, this benchmark."""
    status, peak = Path(f"/proc/{child.pid}/status"), None
    while child.poll() is None:
        peak = vm_hwm_mib(status) or peak
        time.sleep(0.25)
    return peak


def spin() -> subprocess.Popen:
    """A busy competitor: a pure-Python loop on one core, bounded to an hour."""
    code = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def scalars(train_dir: Path) -> dict[str, list[float]]:
    """Every scalar of the run's event files, in step order (logged every step here)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(train_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {
        tag: [e.value for e in sorted(acc.Scalars(tag), key=lambda e: e.step)]
        for tag in acc.Tags()["scalars"]
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
