"""HierarchicalLstmDecoder: bars batched == step loop, per-bar reset, conductor dropout flag,
a categorical core."""

from __future__ import annotations

import pytest
import torch

from musicvae.models.categorical import CategoricalLstmDecoder, categorical_loss
from musicvae.models.decoder import GrooveDecoding, GrooveLstmDecoder, groove_loss
from musicvae.models.hierarchical import HierarchicalLstmDecoder


def _decoder(keep: float = 1.0, compat: bool = False) -> HierarchicalLstmDecoder:
    torch.manual_seed(0)
    core = GrooveLstmDecoder(27, z_size=6, rnn_sizes=(8, 8), keep_prob=keep)
    dec = HierarchicalLstmDecoder(core, 4, (3, 4), (6, 6), keep, compat)
    torch.nn.init.normal_(dec.conductor_initial_state.weight)
    torch.nn.init.normal_(core.z_to_initial_state.weight)
    return dec.eval()


def _targets(b: int = 2, t: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    hits = (torch.rand(b, t, 9, generator=g) > 0.7).float()
    return torch.cat([hits, torch.rand(b, t, 9, generator=g) * hits, hits * 0.1], dim=-1)


def test_extras_shapes():
    out = _decoder()(_targets(), None, torch.randn(2, 4))
    assert out.rnn_output.shape == (2, 12, 27)
    assert out.extras["conductor_initial_state"].shape == (2, 24)
    assert out.extras["conductor_outputs"].shape == (2, 3, 6)
    assert out.extras["core_initial_states"].shape == (2, 3, 32)


def test_batched_bars_equal_step_loop():
    dec = _decoder()
    y, z = _targets(), torch.randn(2, 4)
    lengths = torch.tensor([12, 9])
    fused = dec(y, lengths, z)
    loop = dec(y, lengths, z, loop=True)
    torch.testing.assert_close(loop.rnn_output, fused.rnn_output, atol=1e-6, rtol=1e-5)
    a, b = groove_loss(fused.rnn_output, y, lengths), groove_loss(loop.rnn_output, y, lengths)
    torch.testing.assert_close(a["r_loss"], b["r_loss"], atol=1e-5, rtol=1e-5)


def test_each_bar_is_the_core_decoder_from_its_embedding():
    dec = _decoder()
    y, z = _targets(), torch.randn(2, 4)
    out = dec(y, None, z)
    emb = out.extras["conductor_outputs"]
    prev = torch.cat([torch.zeros(2, 1, 27), y[:, :-1]], dim=1)  # bar 2 starts from target 3
    for bar in range(3):
        window = slice(4 * bar, 4 * bar + 4)
        alone = dec.core.run(prev[:, window], emb[:, bar]).rnn_output
        torch.testing.assert_close(out.rnn_output[:, window], alone, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(
            out.extras["core_initial_states"][:, bar],
            torch.tanh(dec.core.z_to_initial_state(emb[:, bar])),
        )


def test_conductor_reads_zero_input_from_z():
    dec = _decoder()
    z = torch.randn(2, 4)
    init, emb = dec.conduct(z, 3)
    expected = dec.conductor.run_steps(torch.zeros(2, 3, 1), init, drop=False)
    torch.testing.assert_close(emb, expected, atol=1e-6, rtol=1e-5)


def test_short_batches_are_padded_to_whole_bars():
    dec = _decoder()
    y, z = _targets(), torch.randn(2, 4)
    short = dec(y[:, :10], None, z).rnn_output
    torch.testing.assert_close(short, dec(y, None, z).rnn_output[:, :10])


def test_conductor_dropout_at_inference_is_opt_in():
    y, z = _targets(), torch.randn(2, 4)
    dec = _decoder(keep=0.3)
    assert torch.equal(dec(y, None, z).rnn_output, dec(y, None, z).rnn_output)
    magenta_like = _decoder(keep=0.3, compat=True)
    a = magenta_like(y, None, z).extras["conductor_outputs"]
    b = magenta_like(y, None, z).extras["conductor_outputs"]
    assert not torch.equal(a, b)


def test_sample_chains_bars_and_is_deterministic():
    dec = _decoder()
    z = torch.randn(3, 4)
    s = dec.sample(z, 12, generator=torch.Generator().manual_seed(0))
    again = dec.sample(z, 12, generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 12, 27)
    assert torch.equal(s, again)
    assert set(s[..., :9].unique().tolist()) <= {0.0, 1.0}
    assert dec.sample(z, 7, generator=torch.Generator().manual_seed(0)).shape == (3, 7, 27)


def test_sample_with_fixed_hits_across_bars():
    dec = _decoder()
    z = torch.randn(3, 4)
    fixed = (torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(1)) > 0.6).float()
    fixed[..., 8] = float("nan")  # the ride is free
    # 7 steps: the last bar (4 steps each) is cut short, and so are its fixed hits.
    s = dec.sample(z, 7, generator=torch.Generator().manual_seed(0), options=GrooveDecoding(fixed))
    assert s.shape == (3, 7, 27)
    assert torch.equal(s[..., :8], fixed[..., :8])
    assert set(s[..., 8].unique().tolist()) <= {0.0, 1.0}


def test_conductor_dropout_compat_switch_comes_from_hparams():
    from musicvae.configs import get_config
    from musicvae.models import build_model

    default = build_model(
        get_config("groovae_4bar_hierdec", "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8]")
    )
    compat = build_model(
        get_config(
            "groovae_4bar_hierdec",
            "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8],conductor_dropout_at_inference=true",
        )
    )
    assert default.decoder.conductor_dropout_at_inference is False
    assert compat.decoder.conductor_dropout_at_inference is True
    # With Magenta's quirk, two decodes of the same z in eval mode differ; without it they agree.
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(1)) * 3
    default.eval()
    compat.eval()
    torch.manual_seed(0)
    a = compat.decoder.conduct(z, 4)[1]
    b = compat.decoder.conduct(z, 4)[1]
    assert not torch.equal(a, b)
    torch.testing.assert_close(default.decoder.conduct(z, 4)[1], default.decoder.conduct(z, 4)[1])


def test_conductor_input_z_feeds_z_at_every_bar():
    torch.manual_seed(0)
    core = GrooveLstmDecoder(27, z_size=6, rnn_sizes=(8, 8))
    dec = HierarchicalLstmDecoder(core, 4, (3, 4), (6, 6), conductor_reads_z=True).eval()
    assert dec.conductor.input_size == 4
    z = torch.randn(2, 4)
    init, emb = dec.conduct(z, 3)
    expected = dec.conductor.run_steps(z[:, None].expand(-1, 3, -1), init, drop=False)
    torch.testing.assert_close(emb, expected, atol=1e-6, rtol=1e-5)
    # Through the input weights, z moves every bar's embedding from the start, unlike the
    # initial state's 0.001-scaled dense layer alone.
    zeros_in = HierarchicalLstmDecoder(core, 4, (3, 4), (6, 6)).eval()

    def spread(d):
        return d.conduct(torch.randn(64, 4), 3)[1][:, -1].std(0).mean().item()

    assert spread(dec) > 20 * spread(zeros_in)


def test_conductor_input_comes_from_hparams():
    from musicvae.configs import get_config
    from musicvae.models import build_model

    small = "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8]"
    assert not build_model(get_config("groovae_4bar_hierdec", small)).decoder.conductor_reads_z
    model = build_model(get_config("groovae_4bar_hierdec", small + ",conductor_input=z"))
    assert model.decoder.conductor_reads_z and model.decoder.conductor.input_size == 4


def _categorical(depth: int = 7) -> HierarchicalLstmDecoder:
    torch.manual_seed(0)
    core = CategoricalLstmDecoder(depth, z_size=6, rnn_sizes=(8, 8))
    dec = HierarchicalLstmDecoder(core, 4, (3, 4), (6, 6))
    torch.nn.init.normal_(dec.conductor_initial_state.weight)
    torch.nn.init.normal_(core.z_to_initial_state.weight)
    return dec.eval()


def test_categorical_core_owns_loss_activations_and_samples():
    dec = _categorical()
    g = torch.Generator().manual_seed(2)
    y = torch.nn.functional.one_hot(torch.randint(0, 7, (2, 12), generator=g), 7).float()
    lengths, z = torch.tensor([12, 7]), torch.randn(2, 4)
    out = dec(y, lengths, z)
    assert out.rnn_output.shape == (2, 12, 7) and not dec.hit_conditioned
    loss = dec.reconstruction_loss(out.rnn_output, y, lengths)
    torch.testing.assert_close(
        loss["r_loss"], categorical_loss(out.rnn_output, y, lengths)["r_loss"]
    )
    torch.testing.assert_close(dec.activate(out.rnn_output).sum(-1), torch.ones(2, 12))
    loop = dec(y, lengths, z, loop=True)  # the step path the scheduled sampling takes
    torch.testing.assert_close(loop.rnn_output, out.rnn_output, atol=1e-6, rtol=1e-5)


def test_categorical_core_feeds_its_one_hot_samples_back_across_bars():
    dec = _categorical()
    z = torch.randn(3, 4) * 3
    greedy = dec.sample(z, 12, temperature=0.0)
    assert set(greedy.sum(-1).unique().tolist()) == {1.0}  # one class per step
    # Teacher-forced on its own greedy samples (each bar's first input is the previous bar's
    # last sample), the decoder's argmax is those samples again.
    again = dec(greedy, None, z).rnn_output.argmax(-1)
    assert torch.equal(again, greedy.argmax(-1))
    drawn = dec.sample(z, 10, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (3, 10, 7) and set(drawn.sum(-1).unique().tolist()) == {1.0}
    with pytest.raises(ValueError, match="categorical decoder takes no GrooveDecoding"):
        dec.sample(z, 12, options=GrooveDecoding(torch.zeros(3, 12, 7)))


def test_core_decoder_comes_from_the_config():
    from musicvae.configs import get_config
    from musicvae.models import build_model

    small = "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8]"
    melody = build_model(get_config("hierdec-mel_16bar", small)).decoder
    assert isinstance(melody.core, CategoricalLstmDecoder)
    assert melody.core.z_size == 8 and melody.output_depth == 90
    groove = build_model(get_config("groovae_4bar_hierdec", small)).decoder
    assert isinstance(groove.core, GrooveLstmDecoder) and groove.output_depth == 27
