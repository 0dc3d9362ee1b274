"""BidirectionalLstmEncoder: shapes, positive sigma, variable lengths read only the valid steps."""

from __future__ import annotations

import torch

from musicvae.models.encoder import BidirectionalLstmEncoder


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


def test_dropout_only_in_training():
    enc = _encoder(keep=0.3)
    x = torch.randn(2, 6, 5)
    assert torch.equal(enc(x)[0], enc(x)[0])
    enc.train()
    assert not torch.equal(enc(x)[0], enc(x)[0])
