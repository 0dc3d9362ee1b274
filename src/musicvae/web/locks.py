"""The studio's model locks and its sample batcher.

Torch modules are not safe to call from two threads, and the web app runs every model call in a
worker thread, so each model has a lock. :class:`FairLock` grants it in arrival order, so a long
job that takes it once per slice cannot shut the others out; :class:`Batcher` merges concurrent
unseeded sample requests of one model into one call while they wait for it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from musicvae.generation.api import TrainedModel


class FairLock:
    """A lock granted first come, first served. ``threading.Lock`` lets the thread that
    releases it take it straight back, so a long job in slices would still shut others out."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next = 0  # the ticket the next arrival draws
        self._serving = 0  # the ticket that holds the lock

    def __enter__(self) -> FairLock:
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


@dataclass(eq=False)
class Job:
    n: int
    temperature: float
    model: object = None  # jobs merge only with jobs for the same model
    result: np.ndarray | None = None
    error: BaseException | None = None


class Batcher:
    """Merges concurrent unseeded sample calls of one model and temperature into one call.

    Requests queue for the model lock anyway; whoever gets it samples for every waiting request
    of its temperature at once, so 4 concurrent requests for 4 grooves cost about one call for
    16 (a batch of LSTM steps costs little more than one row) instead of four calls in a row.
    """

    MAX_GROOVES = 64
    # When several clients asked within the last CROWD_S, whoever gets the model waits up to
    # GATHER_S, while requests keep arriving (ARRIVAL_GAP_S apart at most), for the clients that
    # were just answered to send their next one. Without it, 4 clients settle into alternate
    # batches of 1 and 3 requests, and each waits for two model calls instead of one.
    CROWD_S = 1.0
    GATHER_S = 0.008
    ARRIVAL_GAP_S = 0.002

    def __init__(self) -> None:
        self._pending: list[Job] = []
        self._guard = threading.Condition()
        self._last_crowd = -math.inf  # when a batch last merged several requests

    def sample(
        self, m: TrainedModel, lock: FairLock | threading.Lock, n: int, temperature: float
    ) -> np.ndarray:
        job = Job(n, temperature, m)
        with self._guard:
            self._pending.append(job)
            self._guard.notify_all()
        with lock:
            if job.result is None and job.error is None:
                with self._guard:
                    self._gather()
                    batch, total = [job], n
                    for j in self._pending:
                        if (
                            j is not job
                            and j.temperature == temperature
                            and j.model is m
                            and total + j.n <= self.MAX_GROOVES
                        ):
                            batch.append(j)
                            total += j.n
                    self._pending = [j for j in self._pending if all(j is not b for b in batch)]
                    if len(batch) > 1:
                        self._last_crowd = time.monotonic()
                try:
                    out = m.sample_tensors(total, temperature)
                except BaseException as e:  # noqa: BLE001 - handed to every job of the batch, each re-raises it
                    for j in batch:
                        j.error = e
                else:
                    for j, part in zip(
                        batch, np.split(out, np.cumsum([j.n for j in batch])[:-1]), strict=True
                    ):
                        j.result = part
        if job.error is not None:
            raise job.error
        assert job.result is not None  # set with the error cleared
        return job.result

    def _gather(self) -> None:
        """While the studio is busy, wait briefly for more requests (the guard is held)."""
        now = time.monotonic()
        if now - self._last_crowd > self.CROWD_S:
            return
        deadline = now + self.GATHER_S
        while (left := deadline - time.monotonic()) > 0:
            if not self._guard.wait(timeout=min(left, self.ARRIVAL_GAP_S)):
                return  # nobody arrived within the gap
