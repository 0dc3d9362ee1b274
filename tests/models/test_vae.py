"""MusicVAE: the objective, the public API over every registered config, sampling."""

from __future__ import annotations

import math

import pytest
import torch

from musicvae.configs import CONFIGS, get_config
from musicvae.cpu import fast_bf16
from musicvae.data.converters.groove import tap_controls
from musicvae.errors import MusicVAEError
from musicvae.models import GrooveLstmDecoder, HierarchicalLstmDecoder, MusicVAE, build_model
from musicvae.models.vae import kl_divergence

TINY = "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8],batch_size=2"
SCALARS = (
    "loss",
    "r_loss",
    "kl_loss",
    "kl_bits",
    "kl_beta",
    "hits_loss",
    "velocities_loss",
    "offsets_loss",
    "hit_accuracy",
    "sampling_probability",
)
PER_EXAMPLE = (
    "r_loss",
    "kl_nats",
    "kl_bits",
    "kl_cost",
    "hits_loss",
    "velocities_loss",
    "offsets_loss",
)


def _batch(config, b: int = 3):
    t = config.hparams.max_seq_len
    g = torch.Generator().manual_seed(0)
    hits = (torch.rand(b, t, 9, generator=g) > 0.7).float()
    x = torch.cat([hits, torch.rand(b, t, 9, generator=g) * hits, hits * 0.2], dim=-1)
    controls = hits.clone() if config.data.hits_as_controls else None
    if config.data.taps_as_controls:
        controls = torch.from_numpy(tap_controls(x.numpy()))
    return x, torch.full((b,), t), controls


@pytest.mark.parametrize("name", sorted(n for n, c in CONFIGS.items() if c.converter == "groove"))
def test_every_config_trains_and_samples(name):
    config = get_config(name, TINY)
    torch.manual_seed(0)
    model = build_model(config)
    assert isinstance(model, MusicVAE)
    expected = HierarchicalLstmDecoder if config.decoder == "hierarchical" else GrooveLstmDecoder
    assert isinstance(model.decoder, expected)
    x, lengths, controls = _batch(config)
    out = model(x, x, lengths, controls, step=3)
    for key in SCALARS:
        assert out[key].shape == (), key
        assert torch.isfinite(out[key]), key
    for key in PER_EXAMPLE:
        assert out["per_example"][key].shape == (3,), key
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    mu, sigma = model.encode(x, lengths, controls)
    assert mu.shape == sigma.shape == (3, 4)
    t = config.hparams.max_seq_len
    shared = controls[0] if controls is not None else None
    s = model.sample(
        2, temperature=0.5, controls=shared, generator=torch.Generator().manual_seed(1)
    )
    assert s.shape == (2, t, 27)
    assert set(s[..., :9].unique().tolist()) <= {0.0, 1.0}
    assert model.decode(mu, length=16, controls=controls).shape == (3, 16, 27)


def test_loss_is_magentas_formula():
    config = get_config("groovae_4bar", TINY + ",free_bits=1,max_beta=0.5")
    model = build_model(config).eval()
    x, lengths, _ = _batch(config)
    out = model(x, x, lengths, step=10)
    pe = out["per_example"]
    kl_cost = (pe["kl_nats"] - math.log(2.0)).clamp(min=0)
    torch.testing.assert_close(pe["kl_cost"], kl_cost)
    torch.testing.assert_close(out["loss"], pe["r_loss"].mean() + 0.5 * kl_cost.mean())
    torch.testing.assert_close(out["kl_loss"], 0.5 * kl_cost.mean())
    torch.testing.assert_close(pe["kl_bits"], pe["kl_nats"] / math.log(2.0))
    torch.testing.assert_close(
        pe["r_loss"], pe["hits_loss"] + pe["velocities_loss"] + pe["offsets_loss"]
    )
    at_zero = model(x, x, lengths, step=0)
    assert at_zero["kl_beta"].item() == 0.0
    torch.testing.assert_close(at_zero["loss"], at_zero["r_loss"])


def test_kl_hand_computed():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    sigma = torch.tensor([[1.0, 1.0], [1.0, math.exp(-1.0)]])
    expected = [0.0, 0.5 + 0.5 * (4 + math.exp(-2.0) - 1) + 1.0]
    torch.testing.assert_close(kl_divergence(mu, sigma), torch.tensor(expected))


def test_eval_uses_mu_and_training_samples_z():
    config = get_config("groovae_4bar", TINY + ",dropout_keep_prob=1.0")
    model = build_model(config).eval()
    x, lengths, _ = _batch(config)
    assert torch.equal(model(x, x, lengths)["loss"], model(x, x, lengths)["loss"])
    model.train()
    assert not torch.equal(model(x, x, lengths)["loss"], model(x, x, lengths)["loss"])


def test_inputs_longer_than_max_seq_len_are_truncated():
    config = get_config("groovae_4bar", TINY)
    model = build_model(config).eval()
    x, lengths, _ = _batch(config)
    longer = torch.cat([x, x], dim=1)
    a = model(x, x, lengths)
    b = model(longer, longer, torch.full((3,), 128))
    torch.testing.assert_close(a["loss"], b["loss"])


def test_scheduled_sampling_reports_probability():
    config = get_config("groovae_4bar", TINY + ",sampling_schedule=constant,sampling_rate=0.5")
    model = build_model(config)
    x, lengths, _ = _batch(config)
    assert model(x, x, lengths)["sampling_probability"].item() == 0.5
    assert model.eval()(x, x, lengths)["sampling_probability"].item() == 1.0


# oneDNN has no bf16 LSTM kernels on a CPU without AVX-512 (it raises "could not create a
# primitive descriptor"); training on such a CPU runs fp32 (optim.amp_enabled).
@pytest.mark.skipif(not fast_bf16(), reason="no bf16 LSTM kernels on this CPU")
def test_bf16_autocast_runs():
    config = get_config("groovae_4bar_hierdec", TINY)
    model = build_model(config)
    x, lengths, _ = _batch(config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, x, lengths, step=1)
    assert out["loss"].dtype == torch.float32
    assert torch.isfinite(out["loss"])
    out["loss"].backward()


def test_sample_determinism_with_generator():
    model = build_model(get_config("groovae_4bar", TINY)).eval()
    a = model.sample(2, generator=torch.Generator().manual_seed(5))
    b = model.sample(2, generator=torch.Generator().manual_seed(5))
    c = model.sample(2, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_bad_configs_and_missing_controls():
    with pytest.raises(MusicVAEError, match="residual"):
        build_model(get_config("groovae_4bar", TINY + ",residual_decoder=True"))
    with pytest.raises(MusicVAEError, match="level_lengths"):
        build_model(get_config("groovae_4bar_hierdec", TINY + ",level_lengths=[4,8]"))
    config = get_config("groovae_2bar_hits_control", TINY)
    model = build_model(config)
    x, lengths, _ = _batch(config)
    with pytest.raises(MusicVAEError, match="control"):
        model(x, x, lengths)
