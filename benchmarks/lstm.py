"""One decoder LSTM layer, forward and backward on the CPU: oneDNN's kernel against our own.

The training step spends most of its time in ``nn.LSTM`` (oneDNN's kernels), well below the rate
of the bf16 matmuls inside it. This script asks whether a recurrence written by hand does better
at the decoder's shapes (batch 512, 64 steps, 283 inputs, 256 units; bf16 matmuls, fp32 state):

- ``nn_lstm``: ``nn.LSTM`` under bf16 autocast, what training uses;
- ``autograd_loop``: a Python loop of the cell's ops, differentiated by autograd;
- ``hand_backward``: a ``torch.autograd.Function`` with the backward written out (one matmul per
  step each way, the input and weight gradients as one matmul over all steps);
- ``hand_backward_compiled``: the same with each step's pointwise math fused by ``torch.compile``
  (needs a C++ compiler; skipped without one);
- ``matmul_bound``: the recurrent bf16 matmuls alone (3 per step: forward, input and weight
  gradient), the floor of any implementation.

    .venv/bin/python benchmarks/lstm.py [--threads 1] [--repeats 5] [--no-compile]

Prints JSON: the best of ``--repeats`` runs in ms, each variant's forward alone where it has one,
and the largest forward difference from fp32 ``nn.LSTM``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import torch
import torch.nn.functional as F
from train import cpu_name

B, T, IN, H = 512, 64, 283, 256


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
    return h, c, torch.cat([i, f, gg, o], 1), h.to(torch.bfloat16)


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
    return d, dc * f, d.to(torch.bfloat16)


def make_recurrence(forward_step, backward_step):
    class Recurrence(torch.autograd.Function):
        """h for every step (T, B, H) from the input gates ``gx`` (T, B, 4H) and ``w_hh``."""

        @staticmethod
        def forward(ctx, gx, w_hh):  # (T, B, 4H), (4H, H) -> (T, B, H)
            w = w_hh.to(torch.bfloat16)
            hs = torch.empty(T, B, H)
            cs = torch.empty(T, B, H)
            gates = torch.empty(T, B, 4 * H)
            hb = torch.zeros(B, H, dtype=torch.bfloat16)
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
            h_prev = torch.cat([torch.zeros(1, B, H), hs[:-1]]).to(torch.bfloat16).reshape(-1, H)
            dw = (dgx.to(torch.bfloat16).reshape(-1, 4 * H).t() @ h_prev).float()
            return dgx, dw

    return Recurrence


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per variant (default 5)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(B, T, IN)
    lstm = torch.nn.LSTM(IN, H, batch_first=True)
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()

    def input_gates():  # (T, B, 4H): one matmul over all steps
        with torch.autocast("cpu", torch.bfloat16):
            return F.linear(x.transpose(0, 1), lstm.weight_ih_l0, bias).float()

    def nn_lstm():
        with torch.autocast("cpu", torch.bfloat16):
            y, _ = lstm(x)
        y.float().sum().backward()

    def nn_forward():
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
            lstm(x)

    def autograd_loop():
        gx = input_gates()
        w = lstm.weight_hh_l0.to(torch.bfloat16)
        hb, c, ys = torch.zeros(B, H, dtype=torch.bfloat16), torch.zeros(B, H), []
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

    a = torch.randn(B, H).bfloat16()
    w = torch.randn(4 * H, H).bfloat16()
    d = torch.randn(B, 4 * H).bfloat16()
    d_all, a_all = d.t().repeat(1, T).contiguous(), a.repeat(T, 1)

    def matmuls():
        for _ in range(T):
            a @ w.t()
            d @ w
        d_all @ a_all

    result: dict = {
        "shapes": {"batch": B, "steps": T, "inputs": IN, "units": H},
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "ms": {},
        "forward_ms": {},
    }
    ms, fwd = result["ms"], result["forward_ms"]
    ms["nn_lstm"], fwd["nn_lstm"] = _best(nn_lstm, args.repeats), _best(nn_forward, args.repeats)
    ms["autograd_loop"] = _best(autograd_loop, args.repeats)
    variants = {"hand_backward": (_forward_step, _backward_step)}
    if not args.no_compile and (shutil.which("g++") or shutil.which("c++")):
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
    ms["matmul_bound"] = _best(matmuls, args.repeats)
    result["nn_lstm_over_bound"] = round(ms["nn_lstm"] / ms["matmul_bound"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
