"""Studio service internals: batching of concurrent samples, model roles and lazy loading."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from musicvae import families
from musicvae.web import tools as table
from musicvae.web.grooves import Groove
from musicvae.web.locks import Batcher, FairLock, Job
from musicvae.web.service import SLICE_ROWS, Studio, Unavailable


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
    batcher, lock, results = Batcher(), threading.Lock(), {}
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
    assert max(n for n, _ in model.calls) <= Batcher.MAX_GROOVES


def test_a_failed_call_raises_in_every_waiting_request():
    class Broken(FakeModel):
        def sample_tensors(self, n, temperature, seed=None):
            time.sleep(self.delay)
            raise RuntimeError("out of memory")

    batcher, lock = Batcher(), threading.Lock()
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
        "continue",
        "groove",
    ]


# ---------------------------------------------------------------- fair sharing of a model


def test_fair_lock_serves_in_arrival_order():
    lock, order = FairLock(), []
    lock.__enter__()  # held while the others queue, one after another

    def take(i: int) -> None:
        with lock:
            order.append(i)

    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=take, args=(i,)))
        threads[-1].start()
        while lock._next < i + 2:  # thread i has drawn its ticket
            time.sleep(0.001)
    lock.__exit__()
    for t in threads:
        t.join()
    assert order == list(range(6))


def _groove(steps: int, seed: int = 0) -> Groove:
    hits = (np.random.default_rng(seed).random((9, steps)) < 0.3).astype(int)
    return Groove(
        hits=hits.tolist(), velocities=(hits * 0.7).tolist(), offsets=np.zeros((9, steps)).tolist()
    )


def test_a_heavy_request_lets_a_light_one_in_after_one_slice(studio_models, monkeypatch):
    """Similar with 32 variations of a 512-step groove (256 windows) once held the model for
    its whole run: every request behind it waited about 7x its own time."""
    model = studio_models["generate"]
    studio, calls, real = Studio(model), [], model.decode_tensors

    class Logged(FairLock):
        def __enter__(self):
            calls.append((threading.current_thread().name, "waits"))
            return super().__enter__()

    lock = Logged()
    for slot in studio._slots.values():
        slot.lock = lock

    def decode(z, *args, **kwargs):
        calls.append((threading.current_thread().name, len(z)))
        time.sleep(0.01)
        return real(z, *args, **kwargs)

    monkeypatch.setattr(model, "decode_tensors", decode)
    heavy = threading.Thread(
        target=studio.similar, args=(_groove(512), 32, 0.5, 1.0, 1), name="heavy"
    )
    heavy.start()
    while sum(rows != "waits" for _, rows in calls) < 2:
        time.sleep(0.001)
    light = threading.Thread(
        target=studio.similar, args=(_groove(64), 2, 0.5, 1.0, 2), name="light"
    )
    light.start()
    light.join()
    heavy.join()
    decodes = [(name, rows) for name, rows in calls if rows != "waits"]
    assert [n for n, _ in decodes].count("heavy") == 256 // SLICE_ROWS
    assert max(rows for _, rows in decodes) == SLICE_ROWS
    # From the moment the light request queues: at most the one slice queued before it.
    since = calls[calls.index(("light", "waits")) :]
    ahead = [n for n, rows in since if rows != "waits"]
    assert ahead.index("light") <= 1 and ahead[-1] == "heavy"


def test_slices_draw_their_own_noise_and_repeat_with_a_seed(studio_models):
    studio = Studio(studio_models["generate"])
    # No spread: every variation decodes the same z, so only the sampling noise differs.
    a = [g.array() for g in studio.similar(_groove(64), 2 * SLICE_ROWS, 0.0, 1.0, 3)]
    b = [g.array() for g in studio.similar(_groove(64), 2 * SLICE_ROWS, 0.0, 1.0, 3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # The first of the second slice is not a copy of the first of the first.
    assert not np.array_equal(a[0], a[SLICE_ROWS])


# ---------------------------------------------------------------- the role table


def test_the_slots_are_the_tables_roles(studio_models):
    model = studio_models["generate"]
    studio = Studio(model)
    assert list(studio._slots) == [r.name for r in table.ROLES]
    # One model fills every role but the extra one: it is not a second length of itself.
    assert {name: slot.source is model for name, slot in studio._slots.items()} == {
        "generate": True,
        "long": False,
        "groove": True,
        "drumify": True,
        "melody": False,
        "long_melody": False,
    }
    assert studio.lengths("generate") == [4]


def test_a_role_and_tool_added_to_the_table_are_served_and_checked(studio_models, monkeypatch):
    fills = table.ModelRole(
        "fills", "--fills-checkpoint", "groovae_4bar", "fill model", needs="humanize", verb="fill"
    )
    monkeypatch.setattr(table, "ROLES", (*table.ROLES, fills))
    monkeypatch.setattr(table, "TOOLS", (*table.TOOLS, table.Tool("fill", "Fill", "fills", "x")))
    groove = families.FAMILIES["groove"]
    monkeypatch.setitem(
        families.FAMILIES,
        "groove",
        dataclasses.replace(groove, studio_tools=(*groove.studio_tools, "fill")),
    )
    plain, humanize = studio_models["generate"], studio_models["groove"]
    assert Studio({"generate": plain, "fills": humanize}).model("fill") is humanize
    with pytest.raises(Unavailable) as e:
        Studio({"generate": plain, "fills": plain}).model("fill")
    assert str(e.value) == (
        "model 'debug' cannot fill: it needs a model trained with humanize (e.g. groovae_4bar); "
        "start the studio with --fills-checkpoint"
    )
    with pytest.raises(Unavailable, match=r"start the studio with --fills-checkpoint \(e\.g\."):
        Studio({"generate": plain}).model("fill")


def test_a_busy_studio_waits_briefly_for_the_clients_it_just_answered(monkeypatch):
    """After a merged batch, whoever takes the model gathers requests while they keep arriving
    (each wait at most ARRIVAL_GAP_S); a quiet studio samples at once."""
    model, batcher, lock = FakeModel(delay=0), Batcher(), threading.Lock()
    late = Job(3, 1.0, model)
    waits: list[float] = []

    def arrival_then_quiet(timeout):
        waits.append(timeout)
        if len(waits) == 1:  # a request arrives during the first wait, then nobody for a gap
            batcher._pending.append(late)
            return True
        return False

    monkeypatch.setattr(batcher._guard, "wait", arrival_then_quiet)
    assert len(batcher.sample(model, lock, 2, 1.0)) == 2 and waits == []
    batcher._last_crowd = time.monotonic()  # several requests were just merged
    out = batcher.sample(model, lock, 2, 1.0)
    assert len(out) == 2 and late.result is not None and len(late.result) == 3
    assert model.calls == [(2, 1.0), (5, 1.0)]  # the late request rode along in one call
    assert len(waits) == 2 and all(0 < w <= Batcher.ARRIVAL_GAP_S for w in waits)
