"""BidirectionalLstmEncoder and HierarchicalLstmEncoder: shapes, positive sigma, variable
lengths read only the valid steps, segments encoded alone then summarised."""

from __future__ import annotations

import pytest
import torch

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.models import build_model
from musicvae.models.encoder import (
    BidirectionalLstmEncoder,
    HierarchicalLstmEncoder,
    bidirectional_summary,
    segment_lengths,
)


def _encoder(sizes=(6,), keep=1.0) -> BidirectionalLstmEncoder:
    torch.manual_seed(0)
    enc = BidirectionalLstmEncoder(5, sizes, z_size=3, keep_prob=keep)
    # Larger dense weights than Magenta's N(0, 0.001) so differences are visible.
    for layer in (enc.mu, enc.sigma):
        torch.nn.init.normal_(layer.weight)
    return enc.eval()


def test_shapes_and_positive_sigma():
    enc = _encoder((6, 6))
    mu, sigma = enc(torch.randn(4, 9, 5), torch.tensor([9, 9, 9, 9]))
    assert mu.shape == sigma.shape == (4, 3)
    assert (sigma > 0).all()
    assert enc.summary(torch.randn(4, 9, 5)).shape == (4, 12)


def test_padding_beyond_length_is_ignored():
    enc = _encoder((6, 6))
    x = torch.randn(3, 10, 5)
    lengths = torch.tensor([10, 4, 7])
    mu, sigma = enc(x, lengths)
    garbage = x.clone()
    garbage[1, 4:] = 99.0
    garbage[2, 7:] = -5.0
    mu2, sigma2 = enc(garbage, lengths)
    torch.testing.assert_close(mu2, mu)
    torch.testing.assert_close(sigma2, sigma)
    # Row 1 equals encoding the truncated sequence on its own.
    mu_short, _ = enc(x[1:2, :4], torch.tensor([4]))
    torch.testing.assert_close(mu[1:2], mu_short, atol=1e-6, rtol=1e-5)


def test_summary_is_fw_last_and_bw_first():
    enc = _encoder()
    x = torch.randn(2, 6, 5)
    out, _ = enc.rnn.lstm(x)  # (B, T, 2H): fw outputs then bw outputs per step
    summary = enc.summary(x)
    torch.testing.assert_close(summary[:, :6], out[:, -1, :6])
    torch.testing.assert_close(summary[:, 6:], out[:, 0, 6:])


@pytest.mark.parametrize("hierarchical", [False, True])
def test_dropout_only_in_training(hierarchical):
    enc = _hierarchical(keep=0.3) if hierarchical else _encoder(keep=0.3)
    x = torch.randn(2, 12, 5)
    assert torch.equal(enc(x)[0], enc(x)[0])
    enc.train()
    assert not torch.equal(enc(x)[0], enc(x)[0])


def test_empty_sequence_summarises_to_zeros():
    enc = _encoder((6, 6))
    summary = enc.summary(torch.randn(2, 5, 5), torch.tensor([5, 0]))
    assert summary[0].abs().sum() > 0
    assert torch.equal(summary[1], torch.zeros(12))


def _hierarchical(sizes=(6,), levels=(4, 3), keep=1.0) -> HierarchicalLstmEncoder:
    torch.manual_seed(0)
    enc = HierarchicalLstmEncoder(5, sizes, z_size=3, level_lengths=levels, keep_prob=keep)
    for layer in (enc.mu, enc.sigma):
        torch.nn.init.normal_(layer.weight)
    return enc.eval()


def test_segment_lengths_fill_segments_in_order():
    lengths = torch.tensor([12, 0, 9, 4])
    assert segment_lengths(lengths, 4, 3, 4).tolist() == [
        [4, 4, 4],
        [0, 0, 0],
        [4, 4, 1],
        [4, 0, 0],
    ]
    assert segment_lengths(None, 2, 3, 4).tolist() == [[4, 4, 4]] * 2
    given = torch.tensor([[4, 2, 3]])
    assert torch.equal(segment_lengths(given, 1, 3, 4), given)
    with pytest.raises(MusicVAEError, match="do not fit 3 segments of 4 steps"):
        segment_lengths(torch.tensor([[5, 4, 4]]), 1, 3, 4)


def test_hierarchical_levels_encode_segments_then_summaries():
    enc = _hierarchical(sizes=(6, 6))
    x = torch.randn(2, 12, 5)
    level0, level1 = enc.level_outputs(x, torch.tensor([12, 12]))
    assert level0.shape == (2, 3, 12) and level1.shape == (2, 1, 12)
    for seg in range(3):  # each 4-step segment on its own
        alone = bidirectional_summary(enc.level(0), x[:, 4 * seg : 4 * seg + 4])
        torch.testing.assert_close(level0[:, seg], alone, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(level1[:, 0], bidirectional_summary(enc.level(1), level0))
    mu, sigma = enc(x, torch.tensor([12, 12]))
    torch.testing.assert_close(mu, enc.mu(level1[:, 0]))
    assert mu.shape == sigma.shape == (2, 3) and (sigma > 0).all()


def test_hierarchical_reads_only_valid_steps_and_zeroes_empty_segments():
    enc = _hierarchical()
    x = torch.randn(2, 12, 5)
    lengths = torch.tensor([12, 6])
    garbage = x.clone()
    garbage[1, 6:] = 50.0
    level0, _ = enc.level_outputs(x, lengths)
    torch.testing.assert_close(enc(garbage, lengths)[0], enc(x, lengths)[0])
    # Row 1: segment 1 holds steps 4-5, segment 2 is empty (zeros, as in Magenta).
    partial = bidirectional_summary(enc.level(0), x[1:, 4:6])
    torch.testing.assert_close(level0[1:, 1], partial, atol=1e-6, rtol=1e-5)
    assert torch.equal(level0[1, 2], torch.zeros(12))
    # A shorter input is padded to the whole length; a longer one is refused.
    short = torch.tensor([6, 6])
    torch.testing.assert_close(enc(x[:, :6], short)[0], enc(x, short)[0])
    with pytest.raises(MusicVAEError, match="longer than the encoder's 12"):
        enc(torch.randn(1, 13, 5))


def test_hierarchical_encoder_from_config():
    config = get_config("hier-mel_16bar", "z_size=4,enc_rnn_size=[8,8],dec_rnn_size=[8,8]")
    enc = build_model(config).encoder
    assert isinstance(enc, HierarchicalLstmEncoder)
    assert enc.level_lengths == (16, 16) and len(enc.levels) == 2
    assert enc.level(0).num_layers == 2 and enc.level(1).input_size == 16
    with pytest.raises(MusicVAEError, match="product is max_seq_len 256"):
        build_model(config.override({"encoder_level_lengths": [16, 8]}))
