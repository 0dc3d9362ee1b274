"""The NADE and Magenta's ``MultiLabelRnnNadeDecoder`` built on it (``models.nade``)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from musicvae.configs import get_config
from musicvae.models.base import Decoder
from musicvae.models.decoder import GrooveDecoding
from musicvae.models.encoder import BidirectionalLstmEncoder
from musicvae.models.nade import (
    MultiLabelRnnNadeDecoder,
    Nade,
    build_nade_decoder,
    multilabel_metrics,
)
from musicvae.models.vae import DECODERS, MusicVAE

TINY = "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16],batch_size=4,nade_num_hidden=8"


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def hand_nade() -> Nade:
    """Two dims, one hidden unit: dim 0 adds 2 to the hidden pre-activation, dim 1 nothing;
    the read-out weights are 1 (dim 0) and 3 (dim 1)."""
    nade = Nade(2, 1)
    with torch.no_grad():
        nade.w_enc.copy_(torch.tensor([[2.0], [0.0]]))
        nade.w_dec.copy_(torch.tensor([[1.0], [3.0]]))
    return nade


def test_log_prob_by_hand():
    # b_enc = 0, b_dec = (0, -1). Dim 0: logit 0 + sigmoid(0) * 1 = 0.5, p0 = 0.622459.
    # Dim 1 after x0 = 1: logit -1 + sigmoid(2) * 3 = 1.642391, p1 = 0.837860;
    # after x0 = 0: logit -1 + sigmoid(0) * 3 = 0.5, p1 = 0.622459.
    nade = hand_nade()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b_enc, b_dec = torch.zeros(2, 1), torch.tensor([[0.0, -1.0]]).expand(2, 2)
    log_p, probs = nade.log_prob(x, b_enc, b_dec)
    assert probs.tolist() == [
        pytest.approx([0.6224593, 0.8378601]),
        pytest.approx([0.6224593, 0.6224593]),
    ]
    # log(p0 + 1e-6) + log(1 - p1 + 1e-6); log(1 - p0 + 1e-6) + log(p1 + 1e-6).
    eps = 1e-6
    by_hand = [
        math.log(0.6224593312 + eps) + math.log(1 - 0.8378600505 + eps),
        math.log(1 - 0.6224593312 + eps) + math.log(0.6224593312 + eps),
    ]
    assert by_hand == pytest.approx([-2.2933646, -1.4481497])
    assert log_p.tolist() == pytest.approx(by_hand, abs=1e-6)
    # The epsilon floors a certain mistake at log(1e-6).
    sure, _ = nade.log_prob(
        torch.tensor([[0.0, 0.0]]), torch.zeros(1, 1), torch.tensor([[80.0, -80.0]])
    )
    assert sure.item() == pytest.approx(math.log(1e-6), abs=1e-3)


def test_probabilities_of_all_steps_sum_to_one():
    torch.manual_seed(0)
    nade = Nade(4, 3)
    b_enc, b_dec = torch.randn(1, 3), torch.randn(1, 4)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # (16, 4)
    log_p, _ = nade.log_prob(every, b_enc.expand(16, 3), b_dec.expand(16, 4))
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


def test_sample_at_temperature_zero_is_the_threshold_rule():
    torch.manual_seed(1)
    nade = Nade(9, 8)
    b_enc, b_dec = torch.randn(64, 8) * 2, torch.randn(64, 9) * 2
    samples, logits = nade.sample(b_enc, b_dec, 0.0)
    # Each dim is 1 exactly where its logit, given the dims sampled before it, is > 0 ...
    assert torch.equal(samples, (logits > 0).float())
    # ... and those logits are the teacher-forced ones of the sample itself.
    torch.testing.assert_close(logits, nade.conditional_logits(samples, b_enc, b_dec))
    # Dim by dim by hand, for the hand-made NADE: logit0 = 0.5 > 0 -> 1; then
    # logit1 = -2 + 3 sigmoid(2) = 0.64 > 0 -> 1. With b_dec[1] = -3 it is -0.36 -> 0.
    hand, hand_logits = hand_nade().sample(
        torch.zeros(2, 1), torch.tensor([[0.0, -2.0], [0.0, -3.0]]), 0.0
    )
    assert hand.tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert hand_logits[:, 1].tolist() == pytest.approx([-2 + 3 * 0.8807971, -3 + 3 * 0.8807971])


def test_samples_at_temperature_one_follow_the_distribution():
    nade = hand_nade()
    n = 40_000
    b_enc, b_dec = torch.zeros(n, 1), torch.tensor([[0.0, -1.0]]).expand(n, 2)
    samples, _ = nade.sample(b_enc, b_dec, 1.0, torch.Generator().manual_seed(0))
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))
    log_p, _ = nade.log_prob(every, b_enc[:4], b_dec[:4])
    counts = torch.stack([(samples == row).all(-1).float().mean() for row in every])
    torch.testing.assert_close(counts, log_p.exp(), atol=0.01, rtol=0)
    again, _ = nade.sample(b_enc, b_dec, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(again, samples)


def test_metrics_by_hand():
    truth = torch.tensor([[[1, 0, 1], [0, 0, 0], [1, 1, 0]]], dtype=torch.bool)
    predicted = torch.tensor([[[1, 0, 1], [0, 1, 0], [1, 0, 0]]], dtype=torch.bool)
    # Step 0 exact, step 1 one false positive, step 2 one miss; step 2 masked out below.
    out = multilabel_metrics(predicted, truth, torch.ones(1, 3))
    assert out["accuracy"].item() == pytest.approx(1 / 3)
    # tp 3, fp 1, fn 1.
    assert out["hit_precision"].item() == pytest.approx(3 / 4)
    assert out["hit_recall"].item() == pytest.approx(3 / 4)
    assert out["hit_f1"].item() == pytest.approx(6 / 8)
    short = multilabel_metrics(predicted, truth, torch.tensor([[1.0, 1.0, 0.0]]))
    assert short["accuracy"].item() == pytest.approx(1 / 2)
    assert short["hit_recall"].item() == pytest.approx(1.0)
    assert short["hit_f1"].item() == pytest.approx(4 / 5)


def tiny_decoder(seed: int = 0) -> MultiLabelRnnNadeDecoder:
    torch.manual_seed(seed)
    dec = MultiLabelRnnNadeDecoder(9, 8, (16, 16), num_hidden=8)
    with torch.no_grad():  # biases large enough that samples are not all silent
        dec.output_projection.bias.normal_(0.0, 1.0)
    return dec.eval()


def test_decoder_loss_is_minus_log_p_over_valid_steps():
    dec = tiny_decoder()
    assert isinstance(dec, Decoder)
    z = torch.randn(3, 8)
    targets = (torch.rand(3, 5, 9) < 0.3).float()  # (B, T, D)
    lengths = torch.tensor([5, 3, 1])
    out = dec(targets, lengths, z)
    assert out.rnn_output.shape == (3, 5, 8 + 9)
    b_enc, b_dec = out.rnn_output.split([8, 9], -1)
    log_p, probs = dec.nade.log_prob(targets, b_enc, b_dec)  # (B, T), (B, T, D)
    parts = dec.reconstruction_loss(out.rnn_output, targets, lengths)
    expected = torch.stack([-log_p[i, :n].sum() for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(parts["r_loss"], expected)
    mask = torch.arange(5)[None] < lengths[:, None]
    exact = ((probs >= 0.5) == (targets > 0.5)).all(-1)
    assert parts["accuracy"].item() == pytest.approx(exact[mask].float().mean().item())
    assert {"hit_precision", "hit_recall", "hit_f1"} <= set(parts)


def test_decoder_sampling_activation_and_teacher_forcing_agree():
    dec = tiny_decoder()
    z = torch.randn(4, 8)
    greedy = dec.sample(z, 16, 0.0)  # (B, T, D)
    assert greedy.shape == (4, 16, 9) and set(greedy.unique().tolist()) <= {0.0, 1.0}
    assert 0 < greedy.sum() < greedy.numel()
    # Teacher-forcing the greedy samples reproduces them: activate's probabilities are the
    # greedy path's conditionals.
    forced = dec(greedy, None, z).rnn_output
    probs = dec.activate(forced)
    assert probs.shape == (4, 16, 9)
    assert torch.equal((probs > 0.5).float(), greedy)
    # Scheduled sampling with probability 1 feeds back the greedy step (Magenta's rule).
    fed_back = dec(torch.zeros(4, 16, 9), None, z, sampling_probability=1.0).rnn_output
    torch.testing.assert_close(fed_back, forced)
    drawn = dec.sample(z, 16, 1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, dec.sample(z, 16, 1.0, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(drawn, greedy)
    with pytest.raises(ValueError, match="NADE decoder takes no GrooveDecoding"):
        dec.sample(z, 16, 1.0, options=GrooveDecoding(torch.zeros(4, 16, 9)))
    with pytest.raises(ValueError, match="non-negative"):
        dec.sample(z, 16, -1.0)


def test_config_builds_the_decoder():
    config = get_config("nade-drums_2bar_reduced", TINY)
    assert DECODERS["nade"] is build_nade_decoder
    dec = build_nade_decoder(config, 9, 0)
    assert (dec.nade.num_dims, dec.nade.num_hidden) == (9, 8)
    assert dec.output_projection.out_features == 17
    assert get_config("nade-drums_2bar_reduced").hparams.nade_num_hidden == 128


def test_training_with_scheduled_sampling_gets_gradients_everywhere():
    config = get_config("nade-drums_2bar_reduced", TINY)
    hp = config.hparams
    assert hp.sampling_schedule == "inverse_sigmoid"
    torch.manual_seed(0)
    encoder = BidirectionalLstmEncoder(10, hp.enc_rnn_size, hp.z_size, hp.dropout_keep_prob)
    model = MusicVAE(encoder, build_nade_decoder(config, 9, 0), config).train()
    outputs = (torch.rand(4, 32, 9) < 0.2).float()
    inputs = torch.cat([outputs, (outputs.sum(-1, keepdim=True) == 0).float()], -1)
    # At step 7000 about half of the examples feed back the model's own steps.
    out = model(inputs, outputs, torch.full((4,), 32), step=7000)
    assert 0.4 < out["sampling_probability"].item() < 0.6
    assert torch.isfinite(out["loss"]) and out["r_loss"].item() > 0
    out["loss"].backward()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue  # bias_hh: frozen at zero (TF has one bias per gate)
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
