"""The fused kernel's whole-decode ops: a categorical or GrooVAE decode in one call draws the
samples the Python step loop draws, from the same generator, for every registered config."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from musicvae.configs import CONFIGS, get_config
from musicvae.data.converters import build_converter
from musicvae.models import build_model, fused_lstm
from musicvae.models.categorical import CategoricalLstmDecoder
from musicvae.models.decoder import GrooveDecoding, LstmDecoder
from musicvae.models.lstm import LstmStack
from musicvae.models.multi_out import MultiOutCategoricalLstmDecoder

COMPILER = os.environ.get("CXX", "c++")
pytestmark = pytest.mark.skipif(
    shutil.which(COMPILER) is None and shutil.which("g++") is None,
    reason=f"no C++ compiler ({COMPILER}): the fused LSTM kernel cannot build here",
)

TINY = "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8],conductor_rnn_size=[8]"
# The decoders whose samples are one-hot parts, and GrooVAE's: drawn by the whole-decode ops.
ONE_HOT = {"categorical_lstm", "multi_out_categorical", "split_multi_out"}
GROOVE = {"groove_lstm"}


@pytest.fixture(autouse=True)
def kernel(monkeypatch, one_thread):
    """The kernel on (whatever the environment says), and calls of the ops counted."""
    monkeypatch.delenv(fused_lstm.ENV, raising=False)
    assert fused_lstm.available(), "a compiler is here, so the kernel must build"
    calls: list[str] = []
    for name in ("categorical_sample", "groove_sample"):
        op = getattr(fused_lstm, name)

        def counted(*args, op=op, name=name, **kwargs):
            calls.append(name)
            return op(*args, **kwargs)

        monkeypatch.setattr(fused_lstm, name, counted)
    return calls


def _draw(monkeypatch, way: str, run):
    """``run()`` on the op (``kernel``), on the step loop with the fused cell (``loop``) or
    with the kernel off (``off``: the step loop on PyTorch's own math)."""
    with monkeypatch.context() as m:
        if way == "loop":
            m.setattr(LstmDecoder, "kernel_sample", lambda *args, **kwargs: None)
        if way == "off":
            m.setenv(fused_lstm.ENV, "0")
        try:
            return run()
        except (RuntimeError, ValueError) as e:
            return type(e)


def _controls(config, n: int, seed: int) -> torch.Tensor | None:
    """Random one-hot controls for a config that needs them (chords, hit or tap controls)."""
    depth = build_converter(config).control_depth
    if not depth:
        return None
    t = config.hparams.max_seq_len
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.one_hot(torch.randint(0, depth, (n, t), generator=g), depth).float()


@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_samples_as_the_step_loop(monkeypatch, kernel, name, temperature):
    """Seeded samples (and greedy decodes) of each registered config at tiny sizes: the
    whole-decode op's equal the step loop's, on the kernel's cell and on PyTorch's."""
    config = get_config(name, TINY)
    torch.manual_seed(3)
    model = build_model(config).eval()
    controls = _controls(config, 3, 4)

    def run():
        g = torch.Generator().manual_seed(5)
        return model.sample(3, temperature=temperature, controls=controls, generator=g)

    kernel.clear()
    fast = _draw(monkeypatch, "kernel", run)
    used = len(kernel)
    loop, off = _draw(monkeypatch, "loop", run), _draw(monkeypatch, "off", run)
    decoder = config.core_decoder if config.decoder == "hierarchical" else config.decoder
    if isinstance(fast, type):  # an error (a groove decoder at temperature 0): the same one
        assert fast is loop is off
        return
    if decoder in ONE_HOT:
        assert used > 0, "a one-hot decode runs on the op"
        assert torch.equal(fast, loop)
        assert torch.equal(fast, off)
    elif decoder in GROOVE:
        assert used > 0, "a groove decode runs on the op"
        _same_grooves(fast, loop)
        _same_grooves(fast, off)
    else:
        assert used == 0
        assert torch.equal(fast, loop)
        torch.testing.assert_close(fast, off, atol=1e-4, rtol=1e-4)


def _same_grooves(a: torch.Tensor, b: torch.Tensor) -> None:
    """The same hits; velocities and offsets equal up to rounding."""
    n = a.shape[-1] // 3
    assert torch.equal(a[..., :n], b[..., :n])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _categorical(depths: tuple[int, ...], z_size: int, sizes: tuple[int, ...], controls: int = 0):
    torch.manual_seed(7)
    if len(depths) == 1:
        dec = CategoricalLstmDecoder(depths[0], z_size, sizes, controls)
    else:
        dec = MultiOutCategoricalLstmDecoder(depths, z_size, sizes, controls)
    with torch.no_grad():  # livelier logits than the initialisation's
        dec.output_projection.weight.mul_(4.0)
    return dec.eval()


def _both(monkeypatch, kernel, decoder, z, steps, temperature, controls=None, seed=0, start=None):
    """The op's samples and the step loop's, each from a generator seeded with ``seed``."""

    def run():
        g = torch.Generator().manual_seed(seed)
        return decoder.sample(z, steps, temperature, controls, g, start)

    kernel.clear()
    fast = _draw(monkeypatch, "kernel", run)
    assert kernel == ["categorical_sample"]
    return fast, _draw(monkeypatch, "loop", run)


@pytest.mark.parametrize("temperature", [1.0, 0.0, 1e-10])
@pytest.mark.parametrize(
    ("depths", "sizes", "batch"),
    [((7,), (5,), 7), ((3, 4, 2), (6, 6, 6), 13), ((20,), (16, 16), 1), ((5,), (140, 140), 9)],
)
def test_odd_shapes_start_inputs_and_controls(
    monkeypatch, kernel, depths, sizes, batch, temperature
):
    """Widths off the kernel's blocks (16 columns, 6 rows), one to three layers, several parts,
    a given first input and per-step controls; more rows than a block and a layer input over
    256 wide (gone through in chunks)."""
    dec = _categorical(depths, 3, sizes, controls=2)
    d, steps = sum(depths), 9
    g = torch.Generator().manual_seed(1)
    z = torch.randn(batch, 3, generator=g)
    controls = torch.randn(batch, steps, 2, generator=g)
    start = torch.nn.functional.one_hot(torch.randint(0, d, (batch,), generator=g), d).float()
    fast, loop = _both(monkeypatch, kernel, dec, z, steps, temperature, controls, 2, start)
    assert fast.shape == (batch, steps, d)
    assert torch.equal(fast, loop)


def test_windows_of_draws_and_threads(monkeypatch, kernel):
    """A decode whose draws come in several windows (over 2^20 numbers), on one and on two
    threads: the same samples as the step loop."""
    dec = _categorical((600,), 4, (8,))
    z = torch.randn(40, 4, generator=torch.Generator().manual_seed(3))
    fast, loop = _both(monkeypatch, kernel, dec, z, 100, 1.0, None, 4)
    assert torch.equal(fast, loop)
    torch.set_num_threads(2)  # the one_thread fixture puts it back
    kernel.clear()
    two = dec.sample(z, 100, 1.0, None, torch.Generator().manual_seed(4))
    assert kernel == ["categorical_sample"]
    assert torch.equal(two, fast)


def test_the_default_generator(monkeypatch, kernel):
    """Without a generator both draw from torch's default one, in the same order."""
    dec = _categorical((11,), 4, (8, 8))
    z = torch.randn(5, 4)

    def run():
        torch.manual_seed(9)
        return dec.sample(z, 12, 1.0), torch.rand(3)

    (fast, after_fast), (loop, after_loop) = (
        _draw(monkeypatch, "kernel", run),
        _draw(monkeypatch, "loop", run),
    )
    assert torch.equal(fast, loop)
    assert torch.equal(after_fast, after_loop), "both leave the generator in the same state"


def test_changed_weights_are_seen(monkeypatch, kernel):
    """The op's transposed weights are remade when a parameter changes in place or is loaded."""
    dec = _categorical((9,), 4, (8, 8))
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(5))

    def run():
        return dec.sample(z, 10, 0.0)

    before = run()
    with torch.no_grad():
        dec.rnn.lstm.weight_hh_l1.mul_(-3.0)
        dec.output_projection.bias.add_(torch.linspace(-2.0, 2.0, 9))
    fast, loop = _draw(monkeypatch, "kernel", run), _draw(monkeypatch, "loop", run)
    assert torch.equal(fast, loop)
    assert not torch.equal(fast, before)
    other = _categorical((9,), 4, (8, 8))
    with torch.no_grad():
        for p in other.parameters():
            p.copy_(torch.randn_like(p))
    dec.load_state_dict(other.state_dict())
    fast, loop = _draw(monkeypatch, "kernel", run), _draw(monkeypatch, "loop", run)
    assert torch.equal(fast, loop)


def test_invalid_probabilities_fail_alike(monkeypatch, kernel):
    """NaN logits: a draw fails as torch.multinomial does; the argmax takes the first NaN."""
    dec = _categorical((6,), 4, (8,))
    z = torch.full((2, 4), float("nan"))
    for temperature, expect in ((1.0, RuntimeError), (0.0, None)):

        def run(t=temperature):
            return dec.sample(z, 3, t)

        fast, loop = _draw(monkeypatch, "kernel", run), _draw(monkeypatch, "loop", run)
        if expect is None:
            assert torch.equal(fast, loop)
        else:
            assert fast is loop is expect


def test_training_with_dropout_and_the_switch_keep_the_step_loop(monkeypatch, kernel):
    dec = CategoricalLstmDecoder(5, 3, (8, 8), keep_prob=0.5).train()
    z = torch.randn(2, 3)
    dec.sample(z, 4, 1.0)
    assert kernel == [], "dropout in training: the step loop"
    dec.eval()
    monkeypatch.setenv(fused_lstm.ENV, "0")
    dec.sample(z, 4, 1.0)
    assert kernel == [], "the kernel turned off: the step loop"
    monkeypatch.delenv(fused_lstm.ENV)
    dec.double()
    dec.sample(z.double(), 4, 1.0, start_inputs=torch.zeros(2, 5, dtype=torch.float64))
    assert kernel == [], "float64: the step loop"


def test_the_draws_the_op_relies_on():
    """The op draws like the loop because (1) ``torch.multinomial(p, 1)`` is the argmax of
    ``p / q`` for ``q`` drawn by ``exponential_`` from the same generator, and (2) one draw of
    ``(W, n)`` numbers is W draws of ``n`` in a row."""
    p = torch.softmax(torch.randn(4, 33, generator=torch.Generator().manual_seed(0)), -1)
    for seed in range(20):
        a = torch.multinomial(p, 1, generator=torch.Generator().manual_seed(seed))[:, 0]
        q = torch.empty_like(p).exponential_(generator=torch.Generator().manual_seed(seed))
        assert torch.equal(a, (p / q).argmax(-1))
    g, h = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    whole = torch.empty(37, 4 * 33).exponential_(generator=g)
    rows = torch.stack([torch.empty(4 * 33).exponential_(generator=h) for _ in range(37)])
    assert torch.equal(whole, rows)


@pytest.mark.parametrize("hit_conditioned", [False, True])
@pytest.mark.parametrize("name", ["groovae_2bar_humanize", "groovae_4bar_hierdec"])
def test_grooves_with_a_spread(monkeypatch, kernel, name, hit_conditioned):
    """The spread's draws come first (per bar under a conductor), then the hits': the op's
    grooves are the step loop's."""
    config = get_config(name, TINY + f",hit_conditioned={hit_conditioned}")
    torch.manual_seed(8)
    model = build_model(config).eval()
    spread = torch.tensor([[0.3] * 9, [0.05] * 9])

    def run():
        g = torch.Generator().manual_seed(6)
        return model.sample(4, temperature=0.7, generator=g, options=GrooveDecoding(spread=spread))

    kernel.clear()
    fast = _draw(monkeypatch, "kernel", run)
    assert kernel == ["groove_sample"]
    _same_grooves(fast, _draw(monkeypatch, "loop", run))
    _same_grooves(fast, _draw(monkeypatch, "off", run))
    if hit_conditioned:
        silent = fast[..., :9] == 0
        assert (fast[..., 9:18][silent] == 0).all() and (fast[..., 18:][silent] == 0).all()


def test_imposed_hits_and_taps_keep_the_step_loop(kernel):
    config = get_config("groovae_2bar_humanize", TINY)
    model = build_model(config).eval()
    t = config.hparams.max_seq_len
    fixed = torch.full((2, t, 9), float("nan"))
    fixed[:, ::4, 0] = 1.0
    model.sample(2, options=GrooveDecoding(fixed_hits=fixed))
    model.sample(2, options=GrooveDecoding(taps=torch.rand(2, t) > 0.5))
    assert kernel == []


def test_the_hit_draws_the_op_relies_on():
    """``torch.bernoulli(p)`` is ``torch.rand() < p`` from the same generator, leaving it in
    the same state."""
    p = torch.rand(5, 9, generator=torch.Generator().manual_seed(0))
    g, h = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    hits = torch.stack([torch.bernoulli(p, generator=g) for _ in range(20)])
    assert torch.equal(hits, (torch.rand(20, 5, 9, generator=h) < p).float())
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=h))


@pytest.mark.parametrize(("sizes", "batch"), [((8,), 1), ((5, 5, 5), 7), ((16, 16), 5)])
def test_the_stack_op_runs_a_conductor(sizes, batch):
    """LstmStack.kernel_run (a conductor's bars at sampling time) gives forward's outputs."""
    torch.manual_seed(10)
    stack = LstmStack(3, sizes).eval()
    x = torch.randn(batch, 6, 3)
    flat = torch.randn(batch, stack.state_size).tanh()
    with torch.no_grad():
        fast = stack.kernel_run(x, flat)
        assert fast is not None
        torch.testing.assert_close(fast, stack(x, flat), atol=1e-5, rtol=1e-5)
    assert stack.kernel_run(x, flat) is None, "gradients on: forward"
    with torch.no_grad():
        assert stack.train().kernel_run(x, flat) is None, "training: forward"
        bidirectional = LstmStack(3, sizes, bidirectional=True).eval()
        assert bidirectional.kernel_run(x, flat) is None
