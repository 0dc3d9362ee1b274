"""Decoders of several one-hot parts (Magenta's trio decoders) and hierarchical decoding with
per-segment lengths (multi-track performances)."""

from __future__ import annotations

import math

import pytest
import torch

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.models import Decoder, build_model
from musicvae.models.categorical import CategoricalLstmDecoder, categorical_loss
from musicvae.models.decoder import GrooveDecoding
from musicvae.models.hierarchical import HierarchicalLstmDecoder
from musicvae.models.multi_out import (
    MultiOutCategoricalLstmDecoder,
    SplitMultiOutLstmDecoder,
    check_depths,
    multi_part_loss,
)

DEPTHS = (3, 4, 5)
TINY = "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8],batch_size=2"


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def one_hot_steps(batch: int, steps: int, depths=DEPTHS, seed: int = 0) -> torch.Tensor:
    """``(batch, steps, sum(depths))`` random steps, one-hot in every part."""
    g = torch.Generator().manual_seed(seed)
    parts = [
        torch.nn.functional.one_hot(torch.randint(d, (batch, steps), generator=g), d).float()
        for d in depths
    ]
    return torch.cat(parts, dim=-1)


def assert_one_hot_parts(x: torch.Tensor, depths=DEPTHS) -> None:
    for part in x.split(list(depths), -1):
        assert ((part == 0) | (part == 1)).all()
        assert (part.sum(-1) == 1).all()


def test_depths_are_checked():
    assert check_depths([90, 90, 512], 692) == (90, 90, 512)
    with pytest.raises(MusicVAEError, match="add up to 691, not the output depth 692"):
        check_depths([90, 89, 512], 692)
    with pytest.raises(MusicVAEError, match="must be positive"):
        check_depths([], None)


def test_loss_is_the_sum_of_each_parts_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, sum(DEPTHS))
    targets = one_hot_steps(2, 5)
    lengths = torch.tensor([5, 3])
    out = multi_part_loss(logits, targets, lengths, DEPTHS)
    total = torch.zeros(2)
    for i, (lg, tg) in enumerate(
        zip(logits.split(list(DEPTHS), -1), targets.split(list(DEPTHS), -1), strict=True)
    ):
        part = categorical_loss(lg, tg, lengths)
        torch.testing.assert_close(out[f"output_{i}_loss"], part["r_loss"])
        torch.testing.assert_close(out[f"accuracy_{i}"], part["accuracy"])
        total = total + part["r_loss"]
    torch.testing.assert_close(out["r_loss"], total)
    # By hand for one step: uniform logits give log(depth) per part.
    flat = multi_part_loss(torch.zeros(1, 1, 12), one_hot_steps(1, 1), None, DEPTHS)
    assert flat["r_loss"].item() == pytest.approx(math.log(3 * 4 * 5))


def test_multi_out_decoder_samples_and_activates_each_part():
    torch.manual_seed(0)
    dec = MultiOutCategoricalLstmDecoder(DEPTHS, 4, (8, 8)).eval()
    assert dec.output_depth == 12 and isinstance(dec, Decoder)
    z = torch.randn(3, 4)
    targets = one_hot_steps(3, 6)
    out = dec(targets, None, z)
    assert out.rnn_output.shape == (3, 6, 12)
    probs = dec.activate(out.rnn_output)
    for part in probs.split(list(DEPTHS), -1):
        torch.testing.assert_close(part.sum(-1), torch.ones(3, 6))
    greedy = dec.sample(z, 6, temperature=0.0)
    assert_one_hot_parts(greedy)
    # Greedy samples are the argmax of each part of the logits they come from.
    logits = dec(greedy, None, z).rnn_output
    for part, lg in zip(
        greedy.split(list(DEPTHS), -1), logits.split(list(DEPTHS), -1), strict=True
    ):
        assert torch.equal(part.argmax(-1), lg.argmax(-1))
    drawn = dec.sample(z, 6, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert_one_hot_parts(drawn)
    again = dec.sample(z, 6, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(drawn, again)
    with pytest.raises(ValueError, match="takes no GrooveDecoding"):
        dec.sample(z, 6, options=GrooveDecoding())


def test_multi_out_loop_equals_the_fused_pass_and_reads_every_part():
    torch.manual_seed(0)
    dec = MultiOutCategoricalLstmDecoder(DEPTHS, 4, (8,)).eval()
    z, targets = torch.randn(2, 4), one_hot_steps(2, 5)
    fused = dec(targets, None, z).rnn_output
    looped = dec(targets, None, z, loop=True).rnn_output
    torch.testing.assert_close(looped, fused, rtol=1e-5, atol=1e-6)
    # One LSTM for all parts: changing the bass changes every part's next logits.
    other = targets.clone()
    other[:, 0, 3:7] = torch.nn.functional.one_hot(
        (targets[:, 0, 3:7].argmax(-1) + 1) % 4, 4
    ).float()
    changed = dec(other, None, z).rnn_output
    for lo, hi in ((0, 3), (3, 7), (7, 12)):
        assert not torch.allclose(changed[:, 1, lo:hi], fused[:, 1, lo:hi])


def test_split_decoder_parts_see_only_their_own_previous_output():
    torch.manual_seed(0)
    dec = SplitMultiOutLstmDecoder(DEPTHS, 4, (8, 8), control_depth=2).eval()
    assert dec.output_depth == 12 and dec.z_size == 4 and isinstance(dec, Decoder)
    assert [p.output_depth for p in dec.parts] == list(DEPTHS)
    z, targets = torch.randn(2, 4), one_hot_steps(2, 5)
    controls = torch.randn(2, 5, 2)
    out = dec(targets, None, z, controls)
    # Each part's logits are its own decoder's on its own part of the targets.
    for part, lo, hi in zip(dec.parts, (0, 3, 7), (3, 7, 12), strict=True):
        alone = part(targets[..., lo:hi], None, z, controls).rnn_output
        torch.testing.assert_close(out.rnn_output[..., lo:hi], alone)
    torch.testing.assert_close(
        out.extras["initial_state"], torch.cat([p.initial_state(z) for p in dec.parts], -1)
    )
    torch.testing.assert_close(out.extras["initial_state"], dec.initial_state(z))
    other = targets.clone()
    other[..., 3:7] = one_hot_steps(2, 5, (4,), seed=5)
    changed = dec(other, None, z, controls).rnn_output
    torch.testing.assert_close(changed[..., :3], out.rnn_output[..., :3])
    torch.testing.assert_close(changed[..., 7:], out.rnn_output[..., 7:])
    assert not torch.allclose(changed[..., 3:7], out.rnn_output[..., 3:7])
    parts = dec.reconstruction_loss(out.rnn_output, targets, None)
    torch.testing.assert_close(
        parts["r_loss"], multi_part_loss(out.rnn_output, targets, None, DEPTHS)["r_loss"]
    )


def test_split_decoder_samples_each_part_from_its_own_start():
    torch.manual_seed(0)
    dec = SplitMultiOutLstmDecoder(DEPTHS, 4, (8,)).eval()
    z = torch.randn(2, 4)
    start = one_hot_steps(2, 1)[:, 0]
    ours = dec.sample(z, 4, temperature=0.0, start_inputs=start)
    assert ours.shape == (2, 4, 12)
    assert_one_hot_parts(ours)
    for part, lo, hi in zip(dec.parts, (0, 3, 7), (3, 7, 12), strict=True):
        alone = part.sample(z, 4, temperature=0.0, start_inputs=start[:, lo:hi])
        assert torch.equal(ours[..., lo:hi], alone)
    with pytest.raises(ValueError, match="takes no GrooveDecoding"):
        dec.sample(z, 4, options=GrooveDecoding())


def test_conductor_over_a_split_core_starts_each_bar_from_each_parts_last_sample():
    torch.manual_seed(0)
    core = SplitMultiOutLstmDecoder(DEPTHS, 8, (8, 8))
    dec = HierarchicalLstmDecoder(core, 4, (3, 4), (8, 8)).eval()
    z, targets = torch.randn(2, 4), one_hot_steps(2, 12)
    out = dec(targets, None, z)
    assert out.rnn_output.shape == (2, 12, 12)
    assert out.extras["core_initial_states"].shape == (2, 3, 3 * 32)
    samples = dec.sample(z, 12, temperature=0.0)
    assert_one_hot_parts(samples)
    _, embeddings = dec.conduct(z, 3)
    start = None
    for bar in range(3):
        expected = core.sample(embeddings[:, bar], 4, 0.0, start_inputs=start)
        assert torch.equal(samples[:, 4 * bar : 4 * bar + 4], expected)
        start = expected[:, -1]


def test_per_segment_lengths_count_each_segments_own_steps():
    """Magenta's per-segment padded layout (multi-track performances): lengths ``(B, S)``."""
    torch.manual_seed(0)
    core = CategoricalLstmDecoder(6, 8, (8,))
    dec = HierarchicalLstmDecoder(core, 4, (3, 4), (8,)).eval()
    z, targets = torch.randn(2, 4), one_hot_steps(2, 12, (6,))
    lengths = torch.tensor([[4, 1, 2], [3, 4, 0]])
    rnn_output = dec(targets, lengths, z).rnn_output
    segments = dec.segment_losses(rnn_output, targets, lengths)
    assert segments["r_loss"].shape == (2, 3)
    for b in range(2):
        for s in range(3):
            lo, n = 4 * s, int(lengths[b, s])
            by_hand = categorical_loss(
                rnn_output[b : b + 1, lo : lo + n], targets[b : b + 1, lo : lo + n], None
            )["r_loss"]
            torch.testing.assert_close(segments["r_loss"][b, s], by_hand[0])
    total = dec.reconstruction_loss(rnn_output, targets, lengths)
    torch.testing.assert_close(total["r_loss"], segments["r_loss"].sum(-1))
    # Contiguous lengths (B,) keep counting the sequence's first steps.
    contiguous = torch.tensor([12, 6])
    flat = dec.reconstruction_loss(rnn_output, targets, contiguous)
    by_hand = categorical_loss(rnn_output, targets, contiguous)["r_loss"]
    torch.testing.assert_close(flat["r_loss"], by_hand)
    with pytest.raises(MusicVAEError, match="do not fit 3 segments of 4 steps"):
        dec.reconstruction_loss(rnn_output, targets, torch.tensor([[4, 5, 1], [1, 1, 1]]))


def _registered(name: str, overrides: str):
    try:
        return build_model(get_config(name, overrides))
    except MusicVAEError as e:
        pytest.skip(f"{name} is not usable yet: {e}")


def test_trio_configs_build_these_decoders_with_the_converters_depths():
    flat = _registered("flat-trio_16bar", TINY)
    assert isinstance(flat.decoder, MultiOutCategoricalLstmDecoder)
    assert flat.decoder.output_depths == (90, 90, 512)
    hierdec = _registered("hierdec-trio_16bar", TINY)
    assert isinstance(hierdec.decoder, HierarchicalLstmDecoder)
    core = hierdec.decoder.core
    assert isinstance(core, SplitMultiOutLstmDecoder)
    assert core.output_depths == (90, 90, 512) and core.z_size == 8
    # Each instrument's LSTM reads its own part, the bar embedding and nothing else.
    assert [p.rnn.input_size for p in core.parts] == [90 + 8, 90 + 8, 512 + 8]
