"""One decoder LSTM layer, forward and backward on the CPU: oneDNN's kernel against our own.

The training step spends most of its time in its LSTMs, well below the rate of the matmuls inside
them. This script times one layer at the decoder's shapes (batch 512, 64 steps, 283 inputs, 256
units; bf16 matmuls and fp32 state where the CPU has native bf16, fp32 otherwise, ``--dtype``):

- ``nn_lstm``: ``nn.LSTM`` (under bf16 autocast in bf16), what training used before the kernel;
- ``fused``: the fused C++ kernel (:mod:`musicvae.models.fused_lstm`), what training uses now;
- ``autograd_loop``: a Python loop of the cell's ops, differentiated by autograd;
- ``hand_backward``: a ``torch.autograd.Function`` with the backward written out (one matmul per
  step each way, the input and weight gradients as one matmul over all steps);
- ``hand_backward_compiled``: the same with each step's pointwise math fused by ``torch.compile``
  (needs a C++ compiler; skipped without one);
- ``gemm_bound``: the layer's own GEMMs alone: the input projection of all steps and its weight
  gradient, and per step the recurrent GEMM forward and its input gradient, with the recurrent
  weight gradient over all steps: the floor of any implementation;
- ``matmul_bound``: the recurrent GEMMs alone (the figure earlier versions called the bound).

    .venv/bin/python benchmarks/lstm.py [--threads 1] [--repeats 5] [--no-compile]
        [--dtype bf16|fp32] [--variants nn_lstm fused ...]

Prints JSON: the best of ``--repeats`` runs in ms, each variant's forward alone where it has one,
the largest forward difference from fp32 ``nn.LSTM``, and ``*_over_gemms``: each variant's time
over ``gemm_bound``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import torch
import torch.nn.functional as F
from train import cpu_name

from musicvae.cpu import fast_bf16
from musicvae.models import fused_lstm

B, T, IN, H = 512, 64, 283, 256
LOW = torch.bfloat16  # the matmuls' dtype (--dtype)
VARIANTS = ("nn_lstm", "fused", "autograd_loop", "hand_backward", "hand_backward_compiled")


def _best(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times) * 1000.0, 1)


def _forward_step(gx_t, hw, c):
    """One step's pointwise math: gates from input and recurrent parts, new c and h."""
    g = gx_t + hw.float()
    i, f, gg, o = g.split(H, 1)
    i, f, gg, o = i.sigmoid(), f.sigmoid(), gg.tanh(), o.sigmoid()
    c = f * c + i * gg
    h = o * torch.tanh(c)
    return h, c, torch.cat([i, f, gg, o], 1), h.to(LOW)


def _backward_step(g, c, c_prev, dh, dc):
    """One step's gate gradients from dh and dc, and the dc passed to the step before."""
    i, f, gg, o = g.split(H, 1)
    tc = torch.tanh(c)
    dc = dc + dh * o * (1 - tc * tc)
    d = torch.cat(
        [
            dc * gg * i * (1 - i),
            dc * c_prev * f * (1 - f),
            dc * i * (1 - gg * gg),
            dh * tc * o * (1 - o),
        ],
        1,
    )
    return d, dc * f, d.to(LOW)


def make_recurrence(forward_step, backward_step):
    class Recurrence(torch.autograd.Function):
        """h for every step (T, B, H) from the input gates ``gx`` (T, B, 4H) and ``w_hh``."""

        @staticmethod
        def forward(ctx, gx, w_hh):  # (T, B, 4H), (4H, H) -> (T, B, H)
            w = w_hh.to(LOW)
            hs = torch.empty(T, B, H)
            cs = torch.empty(T, B, H)
            gates = torch.empty(T, B, 4 * H)
            hb = torch.zeros(B, H, dtype=LOW)
            c = torch.zeros(B, H)
            for t in range(T):
                h, c, gates[t], hb = forward_step(gx[t], hb @ w.t(), c)
                hs[t], cs[t] = h, c
            if ctx is not None:
                ctx.save_for_backward(hs, cs, gates, w)
            return hs

        @staticmethod
        def backward(ctx, dhs):  # (T, B, H) -> (T, B, 4H), (4H, H)
            hs, cs, gates, w = ctx.saved_tensors
            dgx = torch.empty_like(gates)
            dh, dc, zero = torch.zeros(B, H), torch.zeros(B, H), torch.zeros(B, H)
            for t in reversed(range(T)):
                dgx[t], dc, db = backward_step(
                    gates[t], cs[t], cs[t - 1] if t else zero, dh + dhs[t], dc
                )
                dh = (db @ w).float()
            h_prev = torch.cat([torch.zeros(1, B, H), hs[:-1]]).to(LOW).reshape(-1, H)
            dw = (dgx.to(LOW).reshape(-1, 4 * H).t() @ h_prev).float()
            return dgx, dw

    return Recurrence


def main() -> None:
    global LOW
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per variant (default 5)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument(
        "--dtype",
        choices=("bf16", "fp32"),
        default="bf16" if fast_bf16() else "fp32",
        help="the matmuls' dtype (default: bf16 where the CPU has native bf16, else fp32)",
    )
    p.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="what to time"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time nn_lstm, fused and the GEMMs this many times in turn (on a noisy machine)",
    )
    args = p.parse_args()
    LOW = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    amp = args.dtype == "bf16"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(B, T, IN)
    lstm = torch.nn.LSTM(IN, H, batch_first=True)
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()
    weights = [(lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)]
    zeros = torch.zeros(1, B, H)

    def autocast():
        return torch.autocast("cpu", torch.bfloat16, enabled=amp)

    def input_gates():  # (T, B, 4H): one matmul over all steps
        with autocast():
            return F.linear(x.transpose(0, 1), lstm.weight_ih_l0, bias).float()

    def nn_lstm():
        with autocast():
            y, _ = lstm(x)
        y.float().sum().backward()

    def nn_forward():
        with torch.no_grad(), autocast():
            lstm(x)

    def fused():
        with autocast():
            y, _, _ = fused_lstm.layer(x, zeros, zeros, weights)
        y.float().sum().backward()

    def fused_forward():
        with torch.no_grad(), autocast():
            fused_lstm.layer(x, zeros, zeros, weights)

    def autograd_loop():
        gx = input_gates()
        w = lstm.weight_hh_l0.to(LOW)
        hb, c, ys = torch.zeros(B, H, dtype=LOW), torch.zeros(B, H), []
        for t in range(T):
            h, c, _, hb = _forward_step(gx[t], hb @ w.t(), c)
            ys.append(h)
        torch.stack(ys).sum().backward()

    def hand(rec):
        def run():
            rec.apply(input_gates(), lstm.weight_hh_l0).sum().backward()

        def forward():
            with torch.no_grad():
                rec.forward(None, input_gates(), lstm.weight_hh_l0)

        return run, forward

    a = torch.randn(B, H).to(LOW)
    w = torch.randn(4 * H, H).to(LOW)
    d = torch.randn(B, 4 * H).to(LOW)
    d_all, a_all = d.t().repeat(1, T).contiguous(), a.repeat(T, 1)
    x_all, w_ih = x.reshape(B * T, IN).to(LOW), lstm.weight_ih_l0.detach().to(LOW)

    def matmuls():
        for _ in range(T):
            a @ w.t()
            d @ w
        d_all @ a_all

    def gemms():  # matmuls() plus the input projection and its weight gradient
        x_all @ w_ih.t()
        matmuls()
        d_all @ x_all

    result: dict = {
        "shapes": {"batch": B, "steps": T, "inputs": IN, "units": H},
        "threads": args.threads,
        "dtype": args.dtype,
        "fused_kernel": fused_lstm.available(),
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "ms": {},
        "forward_ms": {},
    }
    ms, fwd = result["ms"], result["forward_ms"]
    timed = {"nn_lstm": (nn_lstm, nn_forward), "fused": (fused, fused_forward)}
    timed = {k: v for k, v in timed.items() if k in args.variants}
    if "fused" in timed and not fused_lstm.available():
        del timed["fused"]
    rounds: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, (run, forward) in timed.items():
            rounds.setdefault(name, []).append(_best(run, args.repeats))
            rounds.setdefault(name + "_forward", []).append(_best(forward, args.repeats))
        rounds.setdefault("gemm_bound", []).append(_best(gemms, args.repeats))
        rounds.setdefault("matmul_bound", []).append(_best(matmuls, args.repeats))
    for name in timed:
        ms[name], fwd[name] = min(rounds[name]), min(rounds[name + "_forward"])
    ms["gemm_bound"], ms["matmul_bound"] = min(rounds["gemm_bound"]), min(rounds["matmul_bound"])
    if args.rounds > 1:
        result["rounds_ms"] = rounds
    if "autograd_loop" in args.variants:
        ms["autograd_loop"] = _best(autograd_loop, args.repeats)
    variants = {}
    if "hand_backward" in args.variants:
        variants["hand_backward"] = (_forward_step, _backward_step)
    compile_ok = not args.no_compile and (shutil.which("g++") or shutil.which("c++"))
    if "hand_backward_compiled" in args.variants and compile_ok:
        variants["hand_backward_compiled"] = (
            torch.compile(_forward_step, dynamic=False),
            torch.compile(_backward_step, dynamic=False),
        )
    for name, steps in variants.items():
        rec = make_recurrence(*steps)
        run, forward = hand(rec)
        ms[name], fwd[name] = _best(run, args.repeats), _best(forward, args.repeats)
        with torch.no_grad():
            ref, _ = lstm(x[:8])
            mine = rec.forward(None, input_gates(), lstm.weight_hh_l0).transpose(0, 1)[:8]
            result.setdefault("max_forward_error", {})[name] = float((ref - mine).abs().max())
    if "fused" in timed:
        with torch.no_grad():
            ref, _ = lstm(x[:8])
            with autocast():
                mine = fused_lstm.layer(x[:8], zeros[:, :8], zeros[:, :8], weights)[0]
            result.setdefault("max_forward_error", {})["fused"] = float((ref - mine).abs().max())
    for name in ms:
        if name not in ("gemm_bound", "matmul_bound"):
            result[f"{name}_over_gemms"] = round(ms[name] / ms["gemm_bound"], 2)
    if "nn_lstm" in ms:
        result["nn_lstm_over_bound"] = round(ms["nn_lstm"] / ms["matmul_bound"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
