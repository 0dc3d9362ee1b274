"""musicvae.cpu: the environment set before torch loads, the heap policy, the dropout masks, the
load reader on a fake /proc, and the thread tuner on scripted step times."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from musicvae import cpu
from musicvae.cpu import OthersLoad, ThreadTuner, dropout, dropout_mask


def test_environment_is_set_before_torch_loads_and_the_users_choice_wins():
    code = (
        "import os, sys; from musicvae import cpu; print(cpu.tune_environment()); "
        "import torch; print(os.environ['GOMP_SPINCOUNT'], os.environ['THP_MEM_ALLOC_ENABLE'], "
        "cpu.tune_environment())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.pop("THP_MEM_ALLOC_ENABLE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split("\n")[:2] == [
        "['GOMP_SPINCOUNT', 'THP_MEM_ALLOC_ENABLE']",
        "3000 1 []",  # once torch is loaded nothing is set
    ]
    chosen = {"OMP_WAIT_POLICY": "PASSIVE", "THP_MEM_ALLOC_ENABLE": "0"}
    assert "torch" in sys.modules  # this process: too late, nothing changes
    assert cpu.tune_environment(dict(chosen)) == []


def test_a_users_wait_policy_or_spin_count_is_kept(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")  # as if torch were not loaded yet
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    assert cpu.tune_environment(env) == ["THP_MEM_ALLOC_ENABLE"]
    assert "GOMP_SPINCOUNT" not in env
    env = {"GOMP_SPINCOUNT": "10", "THP_MEM_ALLOC_ENABLE": "0"}
    assert cpu.tune_environment(env) == []
    assert env == {"GOMP_SPINCOUNT": "10", "THP_MEM_ALLOC_ENABLE": "0"}


@pytest.mark.parametrize("keep", [False, True])
def test_keep_heap_holds_freed_memory_that_glibc_otherwise_returns(keep):
    """A freed 256 MiB tensor goes back to the OS by default (a fresh mmap each time, page
    faults on the next); with the heap kept, its pages stay in the process for reuse."""
    if platform.libc_ver()[0] != "glibc" or not Path("/proc/self/status").exists():
        pytest.skip("mallopt is glibc's; RSS is read from /proc")
    code = (
        "import sys, torch\n"
        "from musicvae import cpu\n"
        "def rss():\n"
        "    line = next(l for l in open('/proc/self/status') if l.startswith('VmRSS'))\n"
        "    return int(line.split()[1]) // 1024\n"
        "if sys.argv[1] == '1':\n"
        "    assert cpu.keep_heap()\n"
        "before = rss()\n"
        "x = torch.ones(64 << 20)\n"  # 256 MiB, every page touched
        "assert x.sum().item() == 64 << 20\n"
        "del x\n"
        "print(rss() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(int(keep))], capture_output=True, text=True, check=True
    )
    held_mib = int(out.stdout)
    assert held_mib >= 240 if keep else held_mib < 32


def test_fast_bf16_is_false_when_the_private_probe_is_gone(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None, raising=False)
    assert cpu.fast_bf16() is False


def test_dropout_mask_keeps_the_rounded_probability():
    torch.manual_seed(0)
    mask = dropout_mask((400, 500), 0.3, torch.device("cpu"))
    assert mask.dtype == torch.bool and mask.shape == (400, 500)
    # 200,000 draws: the standard error of the kept fraction is about 0.001.
    assert abs(mask.float().mean().item() - 0.3) < 0.005
    assert dropout_mask((7,), 1.0, torch.device("cpu")).all()
    assert not dropout_mask((7,), 0.0, torch.device("cpu")).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_zeroes_or_scales_by_the_exact_keep_probability(dtype):
    torch.manual_seed(1)
    x = torch.full((64, 33), 0.75, dtype=dtype, requires_grad=True)
    y = dropout(x, 0.7)
    keep = round(0.3 * 65536)  # 19661 of 65536 16-bit values survive
    kept = y != 0
    assert 0.2 < kept.float().mean().item() < 0.4
    # One rounding of 0.75 * 65536 / 19661 = 2.50000 in the output dtype.
    expected = torch.tensor(0.75 * 65536 / keep, dtype=dtype)
    assert torch.equal(y[kept], expected.expand(int(kept.sum())))
    y.float().sum().backward()
    grad_expected = torch.tensor(65536 / keep, dtype=dtype)
    assert torch.equal(x.grad[kept], grad_expected.expand(int(kept.sum())))
    assert (x.grad[~kept] == 0).all()
    assert dropout(x, 0.0) is x


def test_layer_kernel_is_nn_lstms_own():
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3)
    h0 = torch.zeros(1, 2, 4)
    weights = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
    assert cpu.has_layer_kernel()
    torch.testing.assert_close(cpu.lstm_layer(x, (h0, h0), weights), lstm(x)[0])


# -- the load of other programs, from a fake /proc --------------------------------------------


def _write_proc(root: Path, cpus: list[tuple[int, ...]], own: tuple[int, int]) -> None:
    lines = ["cpu " + " ".join(str(sum(c[i] for c in cpus)) for i in range(8))]
    lines += [f"cpu{i} " + " ".join(map(str, c)) + " 0 0" for i, c in enumerate(cpus)]
    (root / "stat").write_text("\n".join(lines) + "\nintr 1 2 3\n")
    (root / "self").mkdir(exist_ok=True)
    # pid (comm with) spaces) state ... utime is field 14, stime 15
    fields = ["S"] + ["0"] * 10 + [str(own[0]), str(own[1])] + ["0"] * 5
    (root / "self" / "stat").write_text("4242 (a b) c) " + " ".join(fields) + "\n")


def test_others_load_is_busy_time_minus_our_own_over_our_cpus(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    # user nice system idle iowait irq softirq steal, per CPU
    idle = (0, 0, 0, 10, 0, 0, 0, 0)
    _write_proc(tmp_path, [idle, idle, idle], own=(0, 0))
    load = OthersLoad(tmp_path)
    # 100 ticks pass per CPU. CPU0: 60 user + 10 steal + 30 idle; CPU1: 70 user + 10 system
    # + 20 niced; CPU2 (not ours) is busy. We used 120 of the 150 busy ticks on our two CPUs
    # (niced ones yield, so they do not count), so others held 30 of 200: 0.3 of a core.
    _write_proc(
        tmp_path,
        [(60, 0, 0, 40, 0, 0, 0, 10), (70, 20, 10, 10, 0, 0, 0, 0), (100, 0, 0, 10, 0, 0, 0, 0)],
        own=(110, 10),
    )
    assert load() == pytest.approx(0.3)
    assert load() is None  # no ticks passed
    (tmp_path / "stat").unlink()
    assert load() is None


# -- the tuner, on scripted step times -----------------------------------------------------------


class Machine:
    """Step times for a 2-core machine: quiet 1.0 s on 2 threads and 1.8 s on 1; with one
    busy program beside it 2.8 s on 2 threads and 1.9 s on 1."""

    def __init__(self) -> None:
        self.busy = 0
        self.now = 0.0
        self.history: list[int] = []

    def step(self, threads: int) -> float:
        table = {(0, 2): 1.0, (0, 1): 1.8, (1, 2): 2.8, (1, 1): 1.9}
        self.now += table[(self.busy, threads)]
        self.history.append(threads)
        return table[(self.busy, threads)]


def _run(tuner: ThreadTuner, machine: Machine, steps: int, said: list[str]) -> None:
    for _ in range(steps):
        message = tuner.record(machine.step(tuner.current))
        if message:
            said.append(message)


def _tuner(machine: Machine, threads: list[int], load: bool = True) -> ThreadTuner:
    return ThreadTuner(
        most=2,
        set_threads=threads.append,
        others=(lambda: float(machine.busy)) if load else (lambda: None),
        clock=lambda: machine.now,
    )


def test_quiet_machine_stays_on_all_cores():
    machine, threads, said = Machine(), [], []
    tuner = _tuner(machine, threads)
    _run(tuner, machine, 60, said)
    assert threads == [] and said == [] and set(machine.history) == {2}


def test_a_busy_program_moves_training_to_one_thread_and_back_when_it_ends():
    machine, threads, said = Machine(), [], []
    tuner = _tuner(machine, threads)
    _run(tuner, machine, 8, said)
    machine.busy = 1
    _run(tuner, machine, 12, said)
    # Next full window sees the load, tries 1 thread (1 warm-up + 3 timed steps), keeps it.
    assert tuner.current == 1 and threads == [1]
    assert said == [
        "CPU threads: 1 instead of 2 (1.90 s a step against 2.80 s; other programs are busy)"
    ]
    _run(tuner, machine, 30, said)
    assert threads == [1]  # load unchanged: no more trials
    machine.busy = 0
    _run(tuner, machine, 10, said)
    assert tuner.current == 2 and threads == [1, 2]
    assert said[-1] == "CPU threads: back to 2 (1.00 s a step against 1.80 s on 1)"


def test_a_trial_that_loses_goes_back_and_is_not_repeated_at_the_same_load():
    machine, threads, said = Machine(), [], []
    tuner = _tuner(machine, threads)
    tuner.others = lambda: 1.0  # load says busy, but 2 threads stay faster
    _run(tuner, machine, 40, said)
    assert threads == [1, 2] and said == [] and tuner.current == 2


def test_without_load_figures_a_slowdown_starts_the_trial():
    machine, threads, said = Machine(), [], []
    tuner = _tuner(machine, threads, load=False)
    _run(tuner, machine, 7, said)
    machine.busy = 1
    _run(tuner, machine, 10, said)
    assert tuner.current == 1 and said and said[0].startswith("CPU threads: 1 instead of 2")
    # Back on a quiet machine nothing slows down at 1 thread: the periodic re-check finds 2.
    machine.busy = 0
    _run(tuner, machine, 120, said)
    assert tuner.current == 2 and said[-1].startswith("CPU threads: back to 2")


def test_one_core_is_never_tuned():
    tuner = ThreadTuner(most=1, set_threads=lambda n: pytest.fail("no change"), others=lambda: 5.0)
    assert all(tuner.record(9.0) is None for _ in range(20))
