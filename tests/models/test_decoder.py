"""GrooveLstmDecoder and the GrooVAE loss: hand-computed loss, fused == loop, sampling."""

from __future__ import annotations

import math

import pytest
import torch

from musicvae.models.decoder import (
    GrooveDecoding,
    GrooveLstmDecoder,
    force_hits,
    groove_loss,
    sample_outputs,
    shift_right,
)


def _decoder(keep: float = 1.0, controls: int = 0) -> GrooveLstmDecoder:
    torch.manual_seed(0)
    dec = GrooveLstmDecoder(27, z_size=4, rnn_sizes=(8, 8), control_depth=controls, keep_prob=keep)
    torch.nn.init.normal_(dec.z_to_initial_state.weight)
    return dec.eval()


def _targets(b: int = 3, t: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    hits = (torch.rand(b, t, 9, generator=g) > 0.7).float()
    vel = torch.rand(b, t, 9, generator=g) * hits
    off = (torch.rand(b, t, 9, generator=g) * 2 - 1) * hits
    return torch.cat([hits, vel, off], dim=-1)


def test_groove_loss_hand_computed():
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    out = torch.tensor([[[0.1, 0.0, 0.0], [math.log(3.0), 0.0, math.atanh(0.5)]]])
    tgt = torch.tensor([[[1.0, 0.8, 0.5], [0.0, 0.0, 0.0]]])
    hits0 = -math.log(sig(0.1) + 1e-7)
    hits1 = -math.log(1 - 0.75 + 1e-7)
    full = groove_loss(out, tgt, torch.tensor([2]))
    assert full["hits_loss"].item() == pytest.approx(hits0 + hits1, rel=1e-6)
    assert full["velocities_loss"].item() == pytest.approx(0.3**2 + 0.5**2, rel=1e-6)
    assert full["offsets_loss"].item() == pytest.approx(0.25 + 0.25, rel=1e-6)
    assert full["r_loss"].item() == pytest.approx(hits0 + hits1 + 0.34 + 0.5, rel=1e-6)
    assert full["hit_accuracy"].item() == pytest.approx(0.5)  # step 0 right, step 1 wrong
    first = groove_loss(out, tgt, torch.tensor([1]))
    assert first["r_loss"].item() == pytest.approx(hits0 + 0.09 + 0.25, rel=1e-6)
    assert first["hit_accuracy"].item() == 1.0


def test_shift_right_starts_from_zeros():
    y = _targets(2, 4)
    x = shift_right(y)
    assert torch.equal(x[:, 0], torch.zeros(2, 27))
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_fused_teacher_forcing_equals_step_loop():
    dec = _decoder()
    y, z = _targets(), torch.randn(3, 4)
    lengths = torch.tensor([12, 12, 7])
    fused = dec(y, lengths, z)
    loop = dec(y, lengths, z, loop=True)
    torch.testing.assert_close(loop.rnn_output, fused.rnn_output, atol=1e-6, rtol=1e-5)
    a, b = groove_loss(fused.rnn_output, y, lengths), groove_loss(loop.rnn_output, y, lengths)
    torch.testing.assert_close(a["r_loss"], b["r_loss"], atol=1e-5, rtol=1e-5)
    assert fused.extras["initial_state"].shape == (3, 32)


def test_fused_equals_loop_with_controls():
    dec = _decoder(controls=9)
    y, z = _targets(), torch.randn(3, 4)
    c = y[..., :9]
    fused = dec(y, None, z, c).rnn_output
    loop = dec(y, None, z, c, loop=True).rnn_output
    torch.testing.assert_close(loop, fused, atol=1e-6, rtol=1e-5)


def test_outputs_are_causal():
    dec = _decoder()
    y, z = _targets(), torch.randn(3, 4)
    changed = y.clone()
    changed[:, 5] = 1.0
    a, b = dec(y, None, z).rnn_output, dec(changed, None, z).rnn_output
    assert torch.equal(a[:, :6], b[:, :6])  # step 6 is the first to see target 5
    assert not torch.allclose(a[:, 6], b[:, 6])


def test_scheduled_sampling_uses_samples_and_is_reproducible():
    dec = _decoder()
    y, z = _targets(), torch.randn(3, 4)
    teacher = dec(y, None, z).rnn_output
    full = dec(y, None, z, sampling_probability=1.0, generator=torch.Generator().manual_seed(3))
    again = dec(y, None, z, sampling_probability=1.0, generator=torch.Generator().manual_seed(3))
    half = dec(y, None, z, sampling_probability=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(full.rnn_output, again.rnn_output)
    torch.testing.assert_close(full.rnn_output[:, 0], teacher[:, 0])  # step 0 has no sample yet
    assert not torch.allclose(full.rnn_output[:, 1:], teacher[:, 1:])
    assert half.rnn_output.shape == teacher.shape


def test_sample_shapes_ranges_and_determinism():
    dec = _decoder()
    z = torch.randn(5, 4)
    s1 = dec.sample(z, 16, generator=torch.Generator().manual_seed(7))
    s2 = dec.sample(z, 16, generator=torch.Generator().manual_seed(7))
    s3 = dec.sample(z, 16, generator=torch.Generator().manual_seed(8))
    assert s1.shape == (5, 16, 27)
    assert torch.equal(s1, s2)
    assert not torch.equal(s1, s3)
    assert set(s1[..., :9].unique().tolist()) <= {0.0, 1.0}
    assert ((s1[..., 9:18] > 0) & (s1[..., 9:18] < 1)).all()
    assert (s1[..., 18:].abs() < 1).all()


def test_low_temperature_makes_hits_deterministic():
    out = torch.tensor([[-2.0, 0.5, 3.0, 0, 0, 0, 0, 0, 0]])
    cold = [sample_outputs(out, 1e-4, torch.Generator().manual_seed(s))[0, :3] for s in range(5)]
    assert all(c.tolist() == [0.0, 1.0, 1.0] for c in cold)
    hot = {
        tuple(sample_outputs(out, 50.0, torch.Generator().manual_seed(s))[0, :3].tolist())
        for s in range(20)
    }
    assert len(hot) > 1
    with pytest.raises(ValueError, match="temperature"):
        _decoder().sample(torch.zeros(1, 4), 4, temperature=0.0)


def test_dropout_only_in_training():
    dec = _decoder(keep=0.3)
    y, z = _targets(), torch.randn(3, 4)
    assert torch.equal(dec(y, None, z).rnn_output, dec(y, None, z).rnn_output)
    dec.train()
    assert not torch.equal(dec(y, None, z).rnn_output, dec(y, None, z).rnn_output)
    # The training loop path (scheduled sampling) also drops.
    assert not torch.equal(
        dec(y, None, z, loop=True).rnn_output, dec(y, None, z, loop=True).rnn_output
    )


def test_force_hits_hand_computed():
    nan = math.nan
    # Hit probabilities 0.8, 0.1, 0.5 (logit ln 4, ln(1/9), 0); raw velocities and offsets.
    logits = [math.log(4.0), math.log(1 / 9), 0.0]
    out = torch.tensor([logits + [0.0] * 6])
    sampled = torch.tensor([[0.0, 1.0, 1.0, 0.4, 0.05, 0.3, -0.2, 0.1, 0.6]])
    fixed = torch.tensor([[1.0, 1.0, nan]])
    got = force_hits(out, sampled, fixed)[0].tolist()
    # Forced hits: v / max(p, 0.2), clipped; the free class keeps its sample.
    assert got[:3] == [1.0, 1.0, 1.0]
    assert got[3:6] == pytest.approx([0.4 / 0.8, 0.05 / 0.2, 0.3])
    assert got[6:] == pytest.approx([-0.2 / 0.8, 0.1 / 0.2, 0.6])
    silent = force_hits(out, sampled, torch.tensor([[0.0, 0.0, 0.0]]))[0].tolist()
    assert silent == [0.0] * 9  # a forced silence has no velocity or offset
    loud = force_hits(out, torch.tensor([[0.0, 0.0, 0.0, 0.9, 0.9, 0, 0, -0.9, 0]]), fixed)
    assert loud[0, 3:5].tolist() == [1.0, 1.0] and loud[0, 7].item() == -1.0  # clipped


def test_sample_with_fixed_hits_keeps_them_and_feeds_them_back():
    dec = _decoder()
    z = torch.randn(3, 4)
    fixed = _targets()[..., :9].clone()
    fixed[:, :, 4:] = math.nan  # classes 4..8 stay free
    g = torch.Generator().manual_seed(3)
    s = dec.sample(z, 12, temperature=0.5, generator=g, options=GrooveDecoding(fixed))
    assert torch.equal(s[..., :4], fixed[..., :4])
    assert set(s[..., 4:9].unique().tolist()) <= {0.0, 1.0}
    # The loop feeds back its forced outputs: teacher forcing on them gives the same outputs,
    # and forcing those reproduces every forced cell's velocity and offset.
    teacher = dec(s, None, z).rnn_output  # (3, 12, 27)
    _, vel, off = teacher.chunk(3, dim=-1)
    raw = torch.cat([s[..., :9], torch.sigmoid(vel), torch.tanh(off)], dim=-1)
    again = torch.stack([force_hits(teacher[:, t], raw[:, t], fixed[:, t]) for t in range(12)], 1)
    for part in (slice(9, 13), slice(18, 22)):
        torch.testing.assert_close(again[..., part], s[..., part], atol=1e-5, rtol=0)


def test_hit_conditioned_loss_counts_velocity_and_offset_only_on_hits():
    out = torch.tensor([[[0.1, 0.0, 0.0], [math.log(3.0), 0.0, math.atanh(0.5)]]])
    tgt = torch.tensor([[[1.0, 0.8, 0.5], [0.0, 0.0, 0.0]]])
    magenta = groove_loss(out, tgt, torch.tensor([2]))
    ours = groove_loss(out, tgt, torch.tensor([2]), hit_conditioned=True)
    # Step 1 has no hit: its velocity error (0.5 - 0)^2 and offset error 0.5^2 no longer count.
    assert ours["velocities_loss"].item() == pytest.approx(0.3**2, rel=1e-6)
    assert ours["offsets_loss"].item() == pytest.approx(0.25, rel=1e-6)
    assert ours["hits_loss"].item() == pytest.approx(magenta["hits_loss"].item(), rel=1e-7)
    dec = GrooveLstmDecoder(3, 4, (8,), hit_conditioned=True)
    own = dec.reconstruction_loss(out, tgt, torch.tensor([2]))
    assert own["r_loss"].item() == pytest.approx(ours["r_loss"].item(), rel=1e-7)


def test_hit_conditioned_samples_are_silent_without_a_hit():
    out = torch.tensor([[20.0, -20.0, 1.0, 1.0, 0.5, 0.5]])  # 2 classes: sure hit, sure silence
    s = sample_outputs(out, 1.0, torch.Generator().manual_seed(0), hit_conditioned=True)[0]
    assert s[:2].tolist() == [1.0, 0.0]
    assert s[2].item() == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert s[3].item() == 0.0 and s[5].item() == 0.0
    assert s[4].item() == pytest.approx(math.tanh(0.5))


def test_force_hits_hit_conditioned_plays_the_head_as_it_is():
    nan = math.nan
    logits = [math.log(4.0), math.log(1 / 9), 0.0]
    vel_raw = [0.0, math.log(3.0), 0.0]  # sigmoid: 0.5, 0.75, 0.5
    off_raw = [math.atanh(0.2), 0.0, 0.0]
    out = torch.tensor([logits + vel_raw + off_raw])
    sampled = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]])
    got = force_hits(out, sampled, torch.tensor([[1.0, 1.0, nan]]), hit_conditioned=True)[0]
    # No division by P(hit): the forced hits get the heads' E[v | hit] and E[o | hit].
    assert got[:3].tolist() == [1.0, 1.0, 1.0]
    assert got[3:5].tolist() == pytest.approx([0.5, 0.75])
    assert got[6].item() == pytest.approx(0.2)


def test_add_spread_keeps_the_mean_and_scales_with_temperature():
    from musicvae.models.decoder import add_spread

    vel = torch.full((20000, 2), 0.4)
    off = torch.zeros(20000, 2)
    spread = torch.tensor([[0.5, 0.0], [0.1, 0.0]])
    g = torch.Generator().manual_seed(0)
    v, o = add_spread(vel, off, spread, 1.0, g)
    # Log-normal with mean 1: the mean velocity stays, the spread is exp-normal's.
    assert v[:, 0].mean().item() == pytest.approx(0.4, rel=0.02)
    assert v[:, 0].log().std().item() == pytest.approx(0.5, rel=0.03)
    assert o[:, 0].std().item() == pytest.approx(0.1, rel=0.03)
    assert torch.equal(v[:, 1], vel[:, 1]) and torch.equal(o[:, 1], off[:, 1])  # zero spread
    v_half, _ = add_spread(vel, off, spread, 0.5, torch.Generator().manual_seed(0))
    assert v_half[:, 0].log().std().item() == pytest.approx(0.25, rel=0.03)
    assert v.max().item() <= 1.0 and o.abs().max().item() <= 1.0


def test_drop_words_zeroes_whole_steps_at_the_rate():
    from musicvae.models.decoder import drop_words

    x = torch.rand(8, 500, 5) + 0.5  # no zero entries before dropping
    out = drop_words(x, 0.25, torch.Generator().manual_seed(3))
    zeroed = (out == 0).all(-1)
    kept = (out == x).all(-1)
    assert torch.equal(zeroed | kept, torch.ones_like(zeroed))  # a step is dropped whole or kept
    assert abs(zeroed.float().mean().item() - 0.25) < 0.02
    # The same draw as a hand-made mask: zeroed exactly where the uniform draw is below the rate.
    draw = torch.rand(8, 500, 1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(zeroed, (draw < 0.25)[..., 0])
    assert torch.equal(drop_words(x, 0.0), x)


@pytest.mark.parametrize(
    "name", ["mel_16bar_hierdec", "mel_16bar_flat", "groovae_2bar_tap_fixed_velocity"]
)
def test_word_dropout_reaches_every_decoder_and_only_trains(name):
    from musicvae.configs import get_config
    from musicvae.models import build_model
    from musicvae.models.decoder import LstmDecoder

    small = "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8],batch_size=2"
    plain = build_model(get_config(name, small))
    dropped = build_model(get_config(name, small + ",word_dropout=0.5"))
    dropped.load_state_dict(plain.state_dict())
    decoders = [m for m in dropped.decoder.modules() if isinstance(m, LstmDecoder)]
    assert decoders and all(d.word_dropout == 0.5 for d in decoders)
    assert all(m.word_dropout == 0.0 for m in plain.modules() if isinstance(m, LstmDecoder))
    t = plain.hparams.max_seq_len
    depth = plain.decoder.output_depth
    y = torch.nn.functional.one_hot(torch.randint(0, depth, (2, t)), depth).float()
    z = torch.randn(2, 4)
    lengths = torch.full((2,), t)
    controls = None
    if plain.control_depth:
        controls = torch.rand(2, t, plain.control_depth)
    for m in (plain, dropped):
        m.eval()
    a = plain.decoder(y, lengths, z, controls).rnn_output
    torch.testing.assert_close(dropped.decoder(y, lengths, z, controls).rnn_output, a)  # eval: off
    dropped.train()
    plain.train()
    torch.manual_seed(0)
    b = dropped.decoder(y, lengths, z, controls).rnn_output
    torch.manual_seed(0)
    assert not torch.allclose(b, plain.decoder(y, lengths, z, controls).rnn_output)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2.0])
def test_word_dropout_out_of_range_is_refused(rate):
    from musicvae.configs import get_config
    from musicvae.errors import MusicVAEError

    with pytest.raises((MusicVAEError, ValueError), match="word_dropout"):
        get_config("cat-mel_2bar_small", f"word_dropout={rate}")
