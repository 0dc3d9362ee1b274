"""CPU tuning in one place: how OpenMP threads wait, how many of them run, the heap policy,
native bf16, cheap dropout masks and the per-layer oneDNN LSTM call.

Each trick says what it buys (measured on a 2-core Xeon, batch 512 ``groovae_4bar``) and falls
back to plain PyTorch when the library under it changes: a missing private API means "off", never
an error. torch is imported inside the functions, so :func:`tune_environment` can run before it loads.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import Tensor

# Iterations an idle OpenMP thread spins at a barrier before it sleeps. libgomp's default,
# 300,000, is about a millisecond: while another program holds a core, our waiting thread burns
# its slice spinning for a partner that is not running, and training fell to 36% of its quiet
# speed with one busy process beside it. At 3,000 it kept 66%, with quiet speed unchanged
# (0 costs 16% quiet: every barrier then pays a futex wake-up).
SPIN_COUNT = 3000


def tune_environment(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Settings torch reads once, when it loads, so this must run before ``import torch``:

    - libgomp's spin count, :data:`SPIN_COUNT`, unless the user chose a wait policy;
    - ``THP_MEM_ALLOC_ENABLE``: tensors of 2 MB and more on transparent huge pages, so a
      training step's fresh large tensors fault in 2 MB pages instead of 4 kB ones (437,000
      faults a step at batch 512 become 9,000; see :func:`keep_heap` for why they are fresh).

    Returns the names it set (none once torch is loaded or where the user set them)."""
    env = os.environ if environ is None else environ
    if "torch" in sys.modules:
        return []
    wanted = {"GOMP_SPINCOUNT": str(SPIN_COUNT), "THP_MEM_ALLOC_ENABLE": "1"}
    if "OMP_WAIT_POLICY" in env:
        del wanted["GOMP_SPINCOUNT"]
    applied = [k for k in wanted if k not in env]
    for k in applied:
        env[k] = wanted[k]
    return applied


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX), so bf16 autocast pays off."""
    import torch

    try:
        probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return callable(probe) and bool(probe())
    except RuntimeError:  # the private probe changed: assume no
        return False


def keep_heap() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the OS.

    By default every tensor over 32 MiB is a fresh ``mmap``, and touching its pages costs a
    page fault each (about 440,000 a step at batch 512, 0.9 s of kernel time on one thread).
    With ``mmap`` and trimming off, the heap holds the step's peak and reuses it, but it
    fragments: peak RSS went from 1.9 to 3.6 GB (bf16) and from 2.6 to 4.6 GB (fp32), for a
    speed gain lost in this machine's noise (A/B in one process: -7% to +20%). So training no
    longer asks for it; ``benchmarks/train.py --keep-heap`` still compares. glibc only;
    returns whether it applied."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or os.name != "posix":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_max = -1, -4  # mallopt parameter numbers (malloc.h)
        ok = libc.mallopt(m_mmap_max, 0) == 1
        return ok and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False


# -- dropout masks -------------------------------------------------------------------------------


def dropout_mask(shape: tuple[int, ...], keep_prob: float, device: torch.device) -> Tensor:
    """A boolean keep-mask, ``True`` with probability ``keep_prob`` rounded to a multiple of
    2^-16 (0.3 -> 0.3000031): four 16-bit uniforms from every 64-bit draw of the global
    generator, about 3x cheaper than ``bernoulli_`` on the CPU (which needs ~100 ms for the
    GrooVAE decoder input at batch 512)."""
    import torch

    kept = round(keep_prob * 65536)  # of the 65536 16-bit values
    if kept <= 0 or kept >= 65536:
        return torch.full(shape, kept > 0, dtype=torch.bool, device=device)
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), 2**63 - 1)
    uniform16 = words.view(torch.int16)[:n].view(shape)  # uniform over [-32768, 32767]
    return uniform16 < kept - 32768


def dropout(x: Tensor, p: float) -> Tensor:
    """Inverted dropout (drop probability ``p``); the cheap 16-bit mask on the CPU.

    Survivors are scaled by 1 / (the mask's exact keep probability), so E[out] = x. The
    scaling runs in fp32 for bf16 inputs too (one rounding)."""
    import torch
    import torch.nn.functional as F

    if p <= 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    keep = round((1.0 - p) * 65536)
    if keep <= 0:
        return torch.zeros_like(x)
    # where + in-place scale: two passes, no float mask tensor (a bf16 mask would round 1/keep)
    out = torch.where(dropout_mask(x.shape, keep / 65536, x.device), x, 0.0)
    return out.mul_(65536 / keep)


# -- the per-layer LSTM kernel -------------------------------------------------------------------


def has_layer_kernel() -> bool:
    """Whether ``torch.lstm`` (the op behind ``nn.LSTM``) can be called one layer at a time.
    It is not public API; without it the caller runs the fused stack with torch's dropout."""
    import torch

    return callable(getattr(torch, "lstm", None))


def lstm_layer(x: Tensor, hx: tuple[Tensor, Tensor], weights: list[Tensor]) -> Tensor:
    """One unidirectional batch-first training LSTM layer through ``nn.LSTM``'s own kernel.

    Running the layers one call each lets :func:`dropout` replace ``bernoulli_`` between them
    (a third of its cost)."""
    import torch

    # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    return torch.lstm(x, hx, weights, True, 1, 0.0, True, False, True)[0]


# -- thread count under contention ---------------------------------------------------------------


class OthersLoad:
    """Cores of this process's set kept busy by other programs since the previous call, from
    ``/proc/stat`` and ``/proc/self/stat`` (Linux); ``None`` where they cannot be read. The
    hypervisor's steal time counts as busy (a neighbour VM takes cores just the same); niced
    time does not (a ``nice`` job yields its core to us)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        self.last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        """(busy, total) ticks over this process's CPUs, and its own ticks."""
        try:
            busy = total = 0.0
            for line in (self.proc / "stat").read_text().splitlines():
                name, *ticks = line.split()
                if not name.startswith("cpu") or name == "cpu":
                    continue
                if self.cpus is not None and int(name[3:]) not in self.cpus:
                    continue
                t = [float(v) for v in ticks[:8]]  # user nice system idle iowait irq softirq steal
                busy += t[0] + t[2] + t[5] + t[6] + t[7]
                total += sum(t)
            fields = (self.proc / "self" / "stat").read_text().rsplit(")", 1)[1].split()
            own = float(fields[11]) + float(fields[12])  # utime, stime (we run un-niced)
        except (OSError, ValueError, IndexError):
            return None
        return (busy, total, own) if total > 0 else None

    def __call__(self) -> float | None:
        now = self._read()
        before, self.last = self.last, now
        if now is None or before is None or now[1] <= before[1]:
            return None
        cores = len(self.cpus) if self.cpus is not None else (os.cpu_count() or 1)
        others = (now[0] - before[0]) - (now[2] - before[2])
        return max(0.0, others / (now[1] - before[1]) * cores)


@dataclass
class ThreadTuner:
    """Chooses how many threads training runs on while other programs come and go.

    OpenMP threads meet at a barrier after every parallel op, so when a core is taken every
    barrier waits for the thread that is not running: on 2 cores with one busy process beside it,
    2 threads ran at 36-66% of their quiet speed, 1 thread at 53-66%. Every ``samples`` steps the
    tuner takes the median step time. When other programs' load (:class:`OthersLoad`) changes by
    half a core or more, or the step gets ``slowdown`` times slower than usual, it tries the count
    that load suggests (or the other extreme) for ``samples`` steps and keeps whichever is faster.
    Without load figures it re-tries the other count every ``recheck_s`` (doubling while that
    loses); with them, a quiet machine never leaves ``most``."""

    most: int
    set_threads: Callable[[int], None]
    others: Callable[[], float | None] = field(default_factory=OthersLoad)
    clock: Callable[[], float] = time.monotonic
    samples: int = 3
    slowdown: float = 1.5  # this machine's quiet steps vary by up to a third
    margin: float = 0.05  # a tried count must be this much faster to be kept
    recheck_s: float = 120.0
    current: int = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.most
        self._times: list[float] = []
        self._usual: dict[int, float] = {}  # median step seconds per count, when last measured
        self._trial: tuple[int, float, float | None] | None = None  # (base count, its time, load)
        self._decided_at: float | None = None  # others' load when the count was last chosen
        self._skip = 1  # the first step after a change builds the new thread team
        self._interval = self.recheck_s
        self._next_check = self.clock() + self._interval

    def record(self, seconds: float) -> str | None:
        """The wall time of the step just run; a message when the thread count changes."""
        if self.most <= 1:
            return None
        if self._skip:
            self._skip -= 1
            return None
        self._times.append(seconds)
        if len(self._times) < self.samples:
            return None
        measured = statistics.median(self._times)
        self._times = []
        if self._trial is not None:
            return self._decide(measured, *self._trial)
        load = self.others()
        candidate = self._candidate(measured, load)
        self._usual[self.current] = measured
        if candidate is not None:
            self._trial = (self.current, measured, load)
            self._switch(candidate)
        return None

    def _candidate(self, measured: float, load: float | None) -> int | None:
        """The count worth trying now, or None to stay."""
        usual = self._usual.get(self.current)
        slower = usual is not None and measured > usual * self.slowdown
        other = 1 if self.current == self.most else self.most
        if load is not None:
            target = min(self.most, max(1, self.most - round(load)))
            moved = self._decided_at is None or abs(load - self._decided_at) >= 0.5
            if target != self.current and moved:
                return target
            return other if slower else None
        if slower or self.clock() >= self._next_check:
            return other
        return None

    def _decide(
        self, measured: float, base: int, base_time: float, load: float | None
    ) -> str | None:
        """End the trial of ``current`` against ``base``: keep the faster count."""
        self._trial = None
        self._decided_at = load
        self._usual[self.current] = measured
        kept = measured * (1 + self.margin) < base_time
        # A change starts the re-check clock afresh; a losing trial waits twice as long.
        self._interval = self.recheck_s if kept else 2 * self._interval
        self._next_check = self.clock() + self._interval
        if kept:
            return (
                f"CPU threads: {self.current} instead of {base} "
                f"({measured:.2f} s a step against {base_time:.2f} s; other programs are busy)"
                if self.current < base
                else f"CPU threads: back to {self.current} ({measured:.2f} s a step against "
                f"{base_time:.2f} s on {base})"
            )
        self._switch(base)
        return None

    def _switch(self, threads: int) -> None:
        self.set_threads(threads)
        self.current = threads
        self._skip = 1
