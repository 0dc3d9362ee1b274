"""The fused CPU LSTM kernel: gradcheck, equality with nn.LSTM, the fallback and the switch."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from musicvae.configs import get_config
from musicvae.models import build_model, fused_lstm
from musicvae.models.encoder import BidirectionalLstmEncoder
from musicvae.models.lstm import LstmStack

COMPILER = os.environ.get("CXX", "c++")
pytestmark = pytest.mark.skipif(
    shutil.which(COMPILER) is None and shutil.which("g++") is None,
    reason=f"no C++ compiler ({COMPILER}): the fused LSTM kernel cannot build here",
)


@pytest.fixture(autouse=True)
def kernel(monkeypatch):
    """The kernel on (whatever the environment says), built once per session."""
    monkeypatch.delenv(fused_lstm.ENV, raising=False)
    assert fused_lstm.available(), "a compiler is here, so the kernel must build"


def _weights(lstm: torch.nn.LSTM, layer: int = 0):
    dirs = 2 if lstm.bidirectional else 1
    suffixes = ["", "_reverse"][:dirs]
    return [
        tuple(
            getattr(lstm, f"{k}_l{layer}{s}")
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        for s in suffixes
    ]


def _reference(lstm, x, h0, c0, lengths=None):
    """nn.LSTM's y, h_n, c_n (packed when lengths are given, padded back with zeros)."""
    if lengths is None:
        y, (hn, cn) = lstm(x, (h0, c0))
        return y, hn, cn
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    y, (hn, cn) = lstm(packed, (h0, c0))
    y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
    return y, hn, cn


CASES = [
    # batch, steps, inputs, units, bidirectional, lengths
    (3, 4, 2, 3, False, None),
    (5, 6, 3, 4, True, None),
    (4, 5, 2, 3, False, [5, 2, 1, 4]),
    (4, 5, 2, 3, True, [5, 2, 1, 4]),
]


@pytest.mark.parametrize(("b", "t", "i", "h", "bidir", "lengths"), CASES)
def test_gradcheck_float64(b, t, i, h, bidir, lengths):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(i, h, batch_first=True, bidirectional=bidir).double()
    dirs = 2 if bidir else 1
    x = torch.randn(b, t, i, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(dirs, b, h, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(dirs, b, h, dtype=torch.float64, requires_grad=True)
    lens = None if lengths is None else torch.tensor(lengths)
    params = [p for w in _weights(lstm) for p in w[:3]]  # bias_hh gets the same gradient

    def run(x, h0, c0, *flat):
        weights = [(*flat[3 * d : 3 * d + 3], w[3]) for d, w in enumerate(_weights(lstm))]
        return fused_lstm.layer(x, h0, c0, weights, lens)

    assert torch.autograd.gradcheck(run, (x, h0, c0, *params))


def test_cell_gradcheck_float64():
    torch.manual_seed(0)
    gates = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fused_lstm.cell, (gates, c))


@pytest.mark.parametrize(
    ("b", "t", "i", "h", "bidir", "lengths"),
    [
        (1, 1, 1, 1, False, None),
        (70, 9, 11, 33, False, None),  # 70 rows: a full chunk and a short one
        (70, 9, 11, 33, True, None),
        (40, 12, 5, 64, True, "random"),
        (9, 16, 27, 256, False, "random"),
        (130, 7, 30, 300, False, None),  # 1200 gates: the wide layers' smaller chunks
    ],
)
@pytest.mark.parametrize("panels", ["1", "0"])
def test_matches_nn_lstm_in_fp32(monkeypatch, b, t, i, h, bidir, lengths, panels):
    """Outputs, final states and every gradient within 1e-5 of nn.LSTM's, with the per-step
    products on the panel GEMM (where the product's width is a multiple of 16: the forward of
    h = 64, 256 and 300, the backward of h = 64 and 256) and on MKL."""
    monkeypatch.setenv("MUSICVAE_LSTM_PANELS", panels)
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(i, h, batch_first=True, bidirectional=bidir)
    dirs = 2 if bidir else 1
    x = torch.randn(b, t, i, requires_grad=True)
    h0 = (0.5 * torch.randn(dirs, b, h)).requires_grad_()
    c0 = (0.5 * torch.randn(dirs, b, h)).requires_grad_()
    lens = torch.randint(1, t + 1, (b,)) if lengths == "random" else None
    inputs = [x, h0, c0, *lstm.parameters()]
    outs = [fused_lstm.layer(x, h0, c0, _weights(lstm), lens), _reference(lstm, x, h0, c0, lens)]
    probes = [torch.randn_like(v) for v in outs[1]]
    grads = []
    for out in outs:
        loss = sum((v * p).sum() for v, p in zip(out, probes, strict=True))
        grads.append(torch.autograd.grad(loss, inputs))
    for mine, ref in zip(outs[0], outs[1], strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-5)
    for mine, ref in zip(*grads, strict=True):
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-5)


def test_inference_skips_the_saved_state_and_repeats_exactly():
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(4, 8, batch_first=True)
    x, h0 = torch.randn(6, 5, 4), torch.zeros(1, 6, 8)
    with torch.no_grad():
        a = fused_lstm.layer(x, h0, h0, _weights(lstm))
        b = fused_lstm.layer(x, h0, h0, _weights(lstm))
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    torch.testing.assert_close(a[0], lstm(x)[0], atol=1e-5, rtol=1e-5)


def test_cell_matches_the_pytorch_math():
    torch.manual_seed(3)
    gates, c = torch.randn(5, 12), torch.randn(5, 3)
    h, c_new = fused_lstm.cell(gates, c)
    i, f, g, o = gates.chunk(4, dim=1)
    c_ref = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(c_new, c_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(h, torch.sigmoid(o) * torch.tanh(c_ref), atol=1e-6, rtol=1e-6)
    assert fused_lstm.cell(gates.bfloat16(), c.bfloat16()) is None  # left to PyTorch


def test_environment_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv(fused_lstm.ENV, "0")
    assert not fused_lstm.enabled() and not fused_lstm.available()
    assert not fused_lstm.supports(torch.zeros(2, 3, 4))
    assert fused_lstm.cell(torch.zeros(2, 8), torch.zeros(2, 2)) is None
    monkeypatch.setenv(fused_lstm.ENV, "1")
    assert fused_lstm.available()
    fused_lstm.set_enabled(False)
    try:
        assert not fused_lstm.available()
    finally:
        fused_lstm.set_enabled(None)


def test_a_failed_build_falls_back_with_one_line(monkeypatch, tmp_path, capsys):
    """No compiler: the build fails, one line says so, and only once per process."""
    monkeypatch.setattr(fused_lstm, "_loaded", None)
    monkeypatch.setattr(fused_lstm, "_registered", lambda: False)
    monkeypatch.setenv("MUSICVAE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert not fused_lstm.available()
    assert not fused_lstm.available()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("musicvae: the fused LSTM kernel is unavailable (")
    assert lines[0].endswith("LSTMs run on nn.LSTM")
    assert not fused_lstm.supports(torch.zeros(2, 3, 4))


# -- every LSTM of the package ------------------------------------------------------------------


def _both(monkeypatch, run):
    """``run()`` on the kernel, then on nn.LSTM (the kernel turned off)."""
    fused = run()
    monkeypatch.setenv(fused_lstm.ENV, "0")
    try:
        return fused, run()
    finally:
        monkeypatch.delenv(fused_lstm.ENV)


def _never_called(*args, **kwargs):
    raise AssertionError("the kernel ran while turned off")


@pytest.mark.parametrize(("sizes", "bidir"), [((6,), False), ((6, 6, 6), False), ((5, 5), True)])
def test_stack_forward_and_gradients_match_nn_lstm(monkeypatch, sizes, bidir):
    torch.manual_seed(4)
    stack = LstmStack(3, sizes, bidirectional=bidir)
    x = torch.randn(4, 7, 3)
    flat = None if bidir else torch.randn(4, stack.state_size).tanh()

    def run():
        stack.zero_grad()
        out = stack(x, flat)
        out.pow(2).sum().backward()
        return out, [p.grad.clone() for p in stack.parameters() if p.grad is not None]

    (a, ga), (b, gb) = _both(monkeypatch, run)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v, atol=1e-5, rtol=1e-5)


def test_encoder_lengths_match_packing(monkeypatch):
    """Short and empty rows: the kernel's lengths give packing's summary."""
    torch.manual_seed(5)
    enc = BidirectionalLstmEncoder(3, (6, 6), z_size=2)
    x = torch.randn(4, 9, 3)
    lengths = torch.tensor([9, 4, 0, 1])
    (mu_a, s_a), (mu_b, s_b) = _both(monkeypatch, lambda: enc(x, lengths))
    torch.testing.assert_close(mu_a, mu_b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s_a, s_b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["groovae_4bar", "groovae_4bar_hierdec", "cat-mel_2bar_small"])
def test_model_loss_gradients_and_samples_match(monkeypatch, name):
    """A training step's loss and gradients, and seeded samples, on either implementation."""
    config = get_config(name, "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8],batch_size=3")
    torch.manual_seed(6)
    model = build_model(config)
    t = config.hparams.max_seq_len
    g = torch.Generator().manual_seed(0)
    depth = model.decoder.output_depth
    if name.startswith("cat"):
        x = torch.nn.functional.one_hot(torch.randint(0, depth, (3, t), generator=g), depth)
        x = x.float()
    else:
        hits = (torch.rand(3, t, 9, generator=g) > 0.7).float()
        x = torch.cat([hits, torch.rand(3, t, 9, generator=g) * hits, hits * 0.2], dim=-1)
    lengths = torch.tensor([t, t // 2, t])

    def run():
        model.train().zero_grad()
        torch.manual_seed(7)
        loss = model(x, x, lengths)["loss"]
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        sample = model.eval().sample(2, generator=torch.Generator().manual_seed(8))
        return loss.detach(), grads, sample

    (la, ga, sa), (lb, gb, sb) = _both(monkeypatch, run)
    torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-5)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sa, sb, atol=1e-4, rtol=1e-4)


def test_turned_off_the_stack_never_calls_the_kernel(monkeypatch):
    monkeypatch.setenv(fused_lstm.ENV, "0")
    monkeypatch.setattr(fused_lstm, "_ops", _never_called)
    stack = LstmStack(3, (4, 4))
    flat = torch.zeros(2, stack.state_size)
    stack(torch.randn(2, 5, 3), flat).sum().backward()
    stack.run_steps(torch.randn(2, 5, 3), flat, drop=False)


def test_train_flag_turns_it_off(monkeypatch):
    """``musicvae train --no-fused-lstm``: the variable is off before training starts."""
    from musicvae.cli import train as train_cli
    from musicvae.cli.main import build_parser

    monkeypatch.setenv(fused_lstm.ENV, "1")  # restored after the test
    seen = []
    monkeypatch.setattr(train_cli, "_options", lambda args: (None, None))
    monkeypatch.setattr(
        train_cli, "run_options", lambda *a, **k: seen.append(fused_lstm.enabled()) or 0
    )
    base = ["train", "--config", "debug", "--run-dir", "run", "--examples", "x.parquet"]
    parser = build_parser()
    args = parser.parse_args(base)
    assert args.func(args) == 0
    args = parser.parse_args([*base, "--no-fused-lstm"])
    assert args.func(args) == 0
    assert seen == [True, False]


@pytest.fixture
def threads():
    """Restores torch's thread count after a test changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.skipif(not fused_lstm._openmp(), reason="torch here does not run on OpenMP")
def test_tasks_run_on_every_torch_thread(threads):
    """Built without -fopenmp, at::parallel_for (inline) ran every task on one thread."""
    for n in (2, 1, 3):
        torch.set_num_threads(n)
        assert fused_lstm.task_threads() == n


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_and_two_threads_give_the_same_bits(threads, dtype):
    """Rows are split in chunks fixed by the shapes, so the thread count never changes a value;
    the tasks that call ATen ops (float64 GEMMs) keep the caller's no-autograd state."""
    torch.manual_seed(4)
    lstm = torch.nn.LSTM(7, 300, batch_first=True, bidirectional=True).to(dtype)
    x = torch.randn(70, 9, 7, dtype=dtype, requires_grad=True)
    h0 = torch.zeros(2, 70, 300, dtype=dtype)
    lens = torch.randint(1, 10, (70,))
    results = []
    for n in (1, 2):
        torch.set_num_threads(n)
        y, hn, cn = fused_lstm.layer(x, h0, h0, _weights(lstm), lens)
        loss = (y * torch.linspace(-1, 1, y.shape[-1], dtype=dtype)).sum() + hn.sum() + cn.sum()
        results.append([y, hn, cn, *torch.autograd.grad(loss, [x, *lstm.parameters()])])
    for one, two in zip(*results, strict=True):
        assert torch.equal(one, two)


@pytest.mark.parametrize(("bidir", "lengths"), [(True, None), (False, "random"), (True, "random")])
def test_large_layers_reuse_their_buffers_exactly(bidir, lengths):
    """Gates of 16 MiB and more come from the kernel's block cache, whose blocks hold the last
    call's values: a second call must give the same bits, and both nn.LSTM's values."""
    torch.manual_seed(5)
    b, t, i, h = 64, 64, 27, 256  # gates (B, T, D * 4H) fp32: 16 MiB a direction
    lstm = torch.nn.LSTM(i, h, batch_first=True, bidirectional=bidir)
    dirs = 2 if bidir else 1
    x = torch.randn(b, t, i, requires_grad=True)
    h0 = (0.5 * torch.randn(dirs, b, h)).requires_grad_()
    lens = torch.randint(1, t + 1, (b,)) if lengths == "random" else None
    inputs = [x, h0, *lstm.parameters()]
    probe = torch.randn(b, t, dirs * h)
    runs = []
    for _ in range(2):
        y, hn, cn = fused_lstm.layer(x, h0, h0, _weights(lstm), lens)
        runs.append([y, *torch.autograd.grad((y * probe).sum() + hn.sum(), inputs)])
    for one, two in zip(*runs, strict=True):
        assert torch.equal(one, two)
    y, hn, _ = _reference(lstm, x, h0, h0, lens)
    ref = [y, *torch.autograd.grad((y * probe).sum() + hn.sum(), inputs)]
    for mine, theirs in zip(runs[0], ref, strict=True):
        # Weight gradients sum 4,096 terms in another order: 1e-5 of their scale.
        scale = max(1.0, theirs.abs().max().item())
        torch.testing.assert_close(mine, theirs, atol=1e-5 * scale, rtol=1e-5)


def test_a_retained_graph_keeps_its_saved_gates():
    """Without retain_graph the backward writes the gate gradients over the saved gates; with it,
    a second backward must find them intact and give the same gradients again."""
    torch.manual_seed(6)
    lstm = torch.nn.LSTM(3, 5, batch_first=True, bidirectional=True)
    x = torch.randn(4, 6, 3, requires_grad=True)
    h0 = torch.zeros(2, 4, 5)
    y, _, _ = fused_lstm.layer(x, h0, h0, _weights(lstm))
    loss = (y * torch.randn_like(y)).sum()
    first = torch.autograd.grad(loss, [x, *lstm.parameters()], retain_graph=True)
    second = torch.autograd.grad(loss, [x, *lstm.parameters()], retain_graph=True)
    last = torch.autograd.grad(loss, [x, *lstm.parameters()])
    for a, b, c in zip(first, second, last, strict=True):
        assert torch.equal(a, b)
        assert torch.equal(a, c)
