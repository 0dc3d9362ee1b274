"""What a training run tells its user: a start-up summary, readable log lines, an ETA, a
recipe hint when the run is too long for the machine, and how it ended.

A terminal gets tqdm's bar; anywhere else (a log file, nohup, Slurm) a bar is either silent or a
mess of carriage returns, so there one plain line is printed every ``print_every`` steps.
Stopping is cooperative: SIGINT (Ctrl-C) and SIGTERM (what docker, systemd and Slurm send) set a
flag the loop checks after each step, so the step in flight finishes and is saved; a second
Ctrl-C interrupts at once.
"""

from __future__ import annotations

import math
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO

from musicvae.errors import MusicVAEError

# The bundled groovae_4bar's recipe: what a CPU can train in a few hours.
CPU_RECIPE_BATCH, CPU_RECIPE_STEPS = 128, 10_000
TOO_LONG_S = 24 * 3600.0
ETA_AFTER_STEPS = 20  # steps timed before the first ETA (the first ones include warm-up)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``45m``, ``2h``, ``1h30m`` or ``1d``; a clear error otherwise."""
    s = str(text).strip().lower()
    parts = re.fullmatch(r"((\d+(\.\d+)?)([smhd]))+|\d+(\.\d+)?", s)
    if not s or parts is None:
        raise MusicVAEError(f"--max-time {text!r}: expected a duration such as 90m, 2h or 1h30m")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        seconds = float(s)
    else:
        seconds = sum(float(n) * _UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([smhd])", s))
    if not math.isfinite(seconds) or seconds <= 0:
        raise MusicVAEError(f"--max-time {text!r}: must be more than 0")
    return seconds


def format_duration(seconds: float) -> str:
    """``42 s``, ``17 min``, ``3 h 05 min`` or ``4.2 days``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        h, m = divmod(round(seconds / 60), 60)
        return f"{h} h {m:02d} min"
    return f"{seconds / 86400:.1f} days"


class StopFlag:
    """Set by SIGINT / SIGTERM while :meth:`installed`; ``signal_name`` says which came."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal_name = signal.Signals(signum).name

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals only reach the main thread
            return
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in before:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            for s, handler in before.items():
                signal.signal(s, handler)


class Reporter:
    """Prints the run's messages on the main rank (``enabled``); silent elsewhere."""

    def __init__(
        self,
        *,
        enabled: bool,
        start_step: int,
        num_steps: int | None,
        batch_size: int,
        lines: bool,
        print_every: int,
        max_time: float | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.enabled, self.lines, self.print_every = enabled, lines, max(1, int(print_every))
        self.start_step, self.num_steps, self.batch_size = start_step, num_steps, batch_size
        self.max_time = max_time
        self.out = out
        self.started = time.monotonic()
        self._timing: tuple[int, float] | None = None  # (step, time) once warm-up is over
        self._eta_said = False
        self._last: dict[str, float] = {}  # the latest logging window's means

    def say(self, text: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(text, file=self.out or sys.stderr)

    def rate(self, step: int) -> float | None:
        """Steps per second since the end of warm-up (None before)."""
        if self._timing is None:
            return None
        s0, t0 = self._timing
        dt = time.monotonic() - t0
        return (step - s0) / dt if step > s0 and dt > 0 else None

    def eta_seconds(self, step: int) -> float | None:
        rate = self.rate(step)
        if rate is None or self.num_steps is None:
            return None
        left = (self.num_steps - step) / rate
        if self.max_time is not None:
            left = min(left, self.max_time - (time.monotonic() - self.started))
        return max(left, 0.0)

    def step_done(self, step: int, values: dict[str, float] | None) -> None:
        """After each step; ``values`` are the window means when a logging window ended."""
        if self._timing is None and step - self.start_step >= ETA_AFTER_STEPS:
            self._timing = (step, time.monotonic())
        if not self._eta_said and self._timing is not None and step - self._timing[0] >= 10:
            self._eta_said = True
            self._say_eta(step)
        if values is not None:
            self._last = values
        if self.lines and self._last and step % self.print_every == 0:
            self.say(self.line(step, self._last))

    def line(self, step: int, values: dict[str, float]) -> str:
        total = f"/{self.num_steps}" if self.num_steps is not None else ""
        eta = self.eta_seconds(step)
        parts = [
            f"step {step}{total}",
            f"loss {values.get('loss', math.nan):.4g}",
            f"KL {values.get('kl_bits', math.nan):.1f} bits",
            accuracy_text(values),
            f"{values.get('examples_per_sec', math.nan):.0f} examples/s",
        ]
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return ", ".join(parts)

    def _say_eta(self, step: int) -> None:
        rate = self.rate(step)
        if rate is None or self.num_steps is None:
            return
        per_s = rate * self.batch_size
        whole = (self.num_steps - step) / rate
        budget = ""
        if self.max_time is not None:
            budget = f" (--max-time stops it after {format_duration(self.max_time)})"
        self.say(
            f"{per_s:.0f} examples/s: step {self.num_steps} in about {format_duration(whole)}"
            + budget
        )
        if whole > TOO_LONG_S and (self.max_time is None or self.max_time > TOO_LONG_S):
            recipe = CPU_RECIPE_STEPS * CPU_RECIPE_BATCH / per_s
            self.say(
                "that is more than a day on this machine. The bundled groovae_4bar was trained "
                f"with --hparams batch_size={CPU_RECIPE_BATCH} --num-steps {CPU_RECIPE_STEPS} "
                f"(about {format_duration(recipe)} at this rate); --max-time 2h stops a run at "
                "a time budget"
            )


def accuracy_text(values: dict[str, float]) -> str:
    """Drum decoders report ``hit_accuracy``; categorical (melody) ones their own ``accuracy``."""
    if "hit_accuracy" not in values and "accuracy" in values:
        return f"accuracy {values['accuracy']:.3f}"
    return f"hit accuracy {values.get('hit_accuracy', math.nan):.3f}"
