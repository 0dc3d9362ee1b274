"""Studio service internals: batching of concurrent samples, model roles and lazy loading."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from musicvae.web.service import Studio, Unavailable, _Batcher


class FakeModel:
    """Stands in for TrainedModel.sample_tensors: row i of a call is i + 1000 * call index."""

    def __init__(self, delay: float = 0.05) -> None:
        self.calls: list[tuple[int, float]] = []
        self.delay = delay

    def sample_tensors(self, n, temperature, seed=None):
        time.sleep(self.delay)  # long enough for the other threads to queue up
        k = len(self.calls)
        self.calls.append((n, temperature))
        return np.arange(n, dtype=np.float32)[:, None, None] + 1000 * k


def _run_concurrently(jobs):
    batcher, lock, results = _Batcher(), threading.Lock(), {}
    barrier = threading.Barrier(len(jobs))

    def go(i, model, n, temperature):
        barrier.wait()
        results[i] = batcher.sample(model, lock, n, temperature)

    threads = [threading.Thread(target=go, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_samples_of_one_temperature_share_model_calls():
    model = FakeModel()
    results = _run_concurrently([(model, n, 1.0) for n in (1, 2, 3, 4, 5)])
    assert sorted(len(r) for r in results.values()) == [1, 2, 3, 4, 5]
    # The first caller runs alone; everyone who queued meanwhile is served by one more call.
    assert len(model.calls) == 2 and sum(n for n, _ in model.calls) == 15
    rows = np.concatenate([r[:, 0, 0] for r in results.values()])
    assert len(set(rows.tolist())) == 15  # no row handed out twice


def test_different_temperatures_are_never_mixed():
    model = FakeModel()
    results = _run_concurrently([(model, 2, t) for t in (0.5, 1.0, 0.5, 1.0)])
    assert all(len(r) == 2 for r in results.values())
    for n, _ in model.calls:
        assert n in (2, 4)
    assert sorted(t for _, t in model.calls).count(0.5) >= 1


def test_batches_stop_at_the_cap():
    model = FakeModel()
    _run_concurrently([(model, 40, 1.0) for _ in range(3)])
    assert max(n for n, _ in model.calls) <= _Batcher.MAX_GROOVES


def test_a_failed_call_raises_in_every_waiting_request():
    class Broken(FakeModel):
        def sample_tensors(self, n, temperature, seed=None):
            time.sleep(self.delay)
            raise RuntimeError("out of memory")

    batcher, lock = _Batcher(), threading.Lock()
    errors = []

    def go():
        try:
            batcher.sample(Broken(), lock, 2, 1.0)
        except RuntimeError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["out of memory"] * 3


def test_unknown_roles_are_rejected():
    with pytest.raises(ValueError, match="unknown model roles"):
        Studio({"generator": None})


def test_tools_of_a_missing_role_are_unavailable(studio_models):
    studio = Studio({"generate": studio_models["generate"], "groove": studio_models["groove"]})
    assert studio.model("similar") is studio_models["generate"]
    assert studio.model("groove") is studio_models["groove"]
    with pytest.raises(Unavailable, match="--drumify-checkpoint"):
        studio.model("drumify")
    info = studio.info()
    assert [t for t, v in info.items() if v["available"]] == [
        "generate",
        "interpolate",
        "similar",
        "groove",
    ]
