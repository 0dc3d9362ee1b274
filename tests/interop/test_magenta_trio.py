"""Real Magenta trio, multi-track performance and chord-conditioned checkpoints imported into
our models reproduce Magenta's own TF tensors within 1e-5.

- ``flat_trio_tiny`` (``flat-trio_16bar``): one LSTM whose output is cut into melody, bass and
  drum softmaxes (``MultiOutCategoricalLstmDecoder``);
- ``hierdec_trio_tiny`` (``hierdec-trio_16bar``): a conductor over a split multi-output core,
  one categorical decoder per instrument, each reading only its own previous output;
- ``multiperf_tiny`` (``hier-multiperf_vel_1bar_med``): hierarchical encoder [64, 8] and
  decoder [8, 64] over performance events, with one length per instrument slot;
- ``mel_chords_tiny`` (``cat-mel_2bar_med_chords``): chord controls read by the encoder and at
  every decoder step;
- ``multiperf_chords_tiny``: both.

Each is a 5-step checkpoint with tiny hparams; ``reference.npz`` holds what Magenta's graph
computed for 4 windows at z = mu, and what ``TrainedModel`` decoded at temperature 1e-10 (see
each folder's README). The models are built here from their parts, so the equality does not
wait for the configs; ``test_registered_config_builds_the_same_model`` checks the registered
config against them once it is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from musicvae.configs import Config, get_config
from musicvae.errors import MusicVAEError
from musicvae.interop.magenta import fit_sizes, guess_config_name, import_magenta_weights
from musicvae.interop.tf_checkpoint import read_checkpoint
from musicvae.models import MusicVAE
from musicvae.models.categorical import CategoricalLstmDecoder
from musicvae.models.decoder import shift_right, step_mask
from musicvae.models.encoder import BidirectionalLstmEncoder, HierarchicalLstmEncoder
from musicvae.models.hierarchical import HierarchicalLstmDecoder
from musicvae.models.multi_out import MultiOutCategoricalLstmDecoder, SplitMultiOutLstmDecoder
from tests.interop.helpers import (
    assert_close,
    assert_encoder_matches,
    assert_exports_every_variable,
    assert_losses_match,
    reference_controls,
    teacher_forced_pass,
)

TRIO = (90, 90, 512)  # melody, bass, drums
PERFORMANCE = (490,)
CHORDS = 49


@dataclass(frozen=True)
class Case:
    """One tiny checkpoint: Magenta's config and the architecture it describes."""

    stock: str  # Magenta's config name
    base: str  # a registered config of ours with the same loss settings
    depths: tuple[int, ...]  # the output's parts
    decoder: str  # "multi_out", "categorical" or "split" (the leaf decoder)
    control_depth: int = 0
    encoder_levels: tuple[int, ...] | None = None
    decoder_levels: tuple[int, int] | None = None


CASES = {
    "flat_trio_tiny": Case("flat-trio_16bar", "flat-mel_16bar", TRIO, "multi_out"),
    "hierdec_trio_tiny": Case(
        "hierdec-trio_16bar", "hierdec-mel_16bar", TRIO, "split", decoder_levels=(16, 16)
    ),
    "multiperf_tiny": Case(
        "hier-multiperf_vel_1bar_med",
        "hier-mel_16bar",
        PERFORMANCE,
        "categorical",
        encoder_levels=(64, 8),
        decoder_levels=(8, 64),
    ),
    "mel_chords_tiny": Case(
        "cat-mel_2bar_med_chords", "cat-mel_2bar_small", (90,), "categorical", CHORDS
    ),
    "multiperf_chords_tiny": Case(
        "hier-multiperf_vel_1bar_med_chords",
        "hier-mel_16bar",
        PERFORMANCE,
        "categorical",
        CHORDS,
        encoder_levels=(64, 8),
        decoder_levels=(8, 64),
    ),
}
# The hparams of variables.json that shape the model and its loss.
HPARAMS = (
    "max_seq_len",
    "z_size",
    "enc_rnn_size",
    "dec_rnn_size",
    "free_bits",
    "max_beta",
    "beta_rate",
    "batch_size",
    "dropout_keep_prob",
    "sampling_schedule",
    "sampling_rate",
)
# A top-2 logit gap at or below this is a near-tie: float32 rounding may pick either class.
NEAR_TIE = 1e-4


def checkpoint_hparams(folder) -> dict:
    """The hparams the checkpoint was trained with (``variables.json``)."""
    info = json.loads((folder / "variables.json").read_text())
    return {k: info["hparams"][k] for k in HPARAMS}


def case_config(case: Case, hparams: dict) -> Config:
    """One of our registered configs carrying the checkpoint's hparams (and level lengths)."""
    top: dict = {}
    if case.encoder_levels:
        top["encoder_level_lengths"] = case.encoder_levels
    if case.decoder_levels:
        top["level_lengths"] = case.decoder_levels
    return get_config(case.base).override({**hparams, **top})


def build_case_model(case: Case, config: Config) -> MusicVAE:
    """The model Magenta's config describes, from its parts."""
    hp = config.hparams
    width = sum(case.depths)
    enc_in = width + case.control_depth
    encoder: BidirectionalLstmEncoder | HierarchicalLstmEncoder
    if case.encoder_levels:
        encoder = HierarchicalLstmEncoder(enc_in, hp.enc_rnn_size, hp.z_size, case.encoder_levels)
    else:
        encoder = BidirectionalLstmEncoder(enc_in, hp.enc_rnn_size, hp.z_size)
    z_size = hp.dec_rnn_size[-1] if case.decoder_levels else hp.z_size
    c = case.control_depth
    leaf: MultiOutCategoricalLstmDecoder | SplitMultiOutLstmDecoder | CategoricalLstmDecoder
    if case.decoder == "multi_out":
        leaf = MultiOutCategoricalLstmDecoder(case.depths, z_size, hp.dec_rnn_size, c)
    elif case.decoder == "split":
        leaf = SplitMultiOutLstmDecoder(case.depths, z_size, hp.dec_rnn_size, c)
    else:
        leaf = CategoricalLstmDecoder(width, z_size, hp.dec_rnn_size, c)
    decoder = leaf
    if case.decoder_levels:
        decoder = HierarchicalLstmDecoder(leaf, hp.z_size, case.decoder_levels, hp.dec_rnn_size)
    return MusicVAE(encoder, decoder, config, control_depth=c)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, magenta_dir):
    name = request.param
    folder = magenta_dir / name
    tf_vars = read_checkpoint(folder / "model.ckpt-5")
    ref = dict(np.load(folder / "reference.npz"))
    hparams = checkpoint_hparams(folder)
    return name, tf_vars, case_config(CASES[name], hparams), ref


@pytest.fixture(scope="module")
def computed(case):
    name, tf_vars, config, ref = case
    torch.manual_seed(0)
    model = build_case_model(CASES[name], config)
    return teacher_forced_pass(tf_vars, config, ref, model=model)


def valid_steps(model: MusicVAE, ref: dict[str, np.ndarray]) -> torch.Tensor:
    """``(B, T)`` mask of the steps Magenta's decoder ran: the first ``lengths`` of the
    sequence, or of each segment when the lengths are per segment."""
    lengths = torch.from_numpy(ref["lengths"]).long()
    b, t = ref["outputs"].shape[:2]
    if lengths.dim() == 1:
        return step_mask(lengths, b, t, torch.device("cpu"))
    dec = model.decoder
    assert isinstance(dec, HierarchicalLstmDecoder)
    size = dec.bar_length
    segments = step_mask(lengths.flatten(), b * lengths.shape[1], size, torch.device("cpu"))
    return segments.reshape(b, t)


def per_step(model: MusicVAE, rnn_output: torch.Tensor, y: torch.Tensor) -> dict:
    """The decoder's own loss parts of every single step, ``(B, T)`` each."""
    b, t, d = y.shape
    parts = model.decoder.reconstruction_loss(
        rnn_output.reshape(b * t, 1, d), y.reshape(b * t, 1, d), None
    )
    return {k: v.reshape(b, t) for k, v in parts.items() if v.dim() == 1}


def test_encoder(case, computed):
    name, _, _, ref = case
    model, mu, sigma, _, _ = computed
    assert ("encoder_level0_outputs" in ref) == (CASES[name].encoder_levels is not None)
    assert ("controls" in ref) == bool(CASES[name].control_depth)
    assert_encoder_matches(model, mu, sigma, ref)


def test_teacher_forced_decoder(case, computed):
    name, _, _, ref = case
    model, _, _, decoded, _ = computed
    mask = valid_steps(model, ref)[..., None]
    y = torch.from_numpy(ref["outputs"])
    # Magenta's decoder outputs are zero past each (segment's) length.
    assert_close("decoder_inputs", shift_right(y) * mask, ref["decoder_inputs"])
    assert_close("rnn_output", decoded.rnn_output * mask, ref["rnn_output"])
    dec = model.decoder
    if not isinstance(dec, HierarchicalLstmDecoder):
        assert_close(
            "decoder_initial_state", decoded.extras["initial_state"], ref["decoder_initial_state"]
        )
        return
    for key in ("conductor_initial_state", "conductor_outputs"):
        assert_close(key, decoded.extras[key], ref[key])
    seen = valid_steps(model, ref).reshape(len(ref["lengths"]), -1, dec.bar_length).sum(-1)
    assert_close("segment_lengths", seen, ref["segment_lengths"])
    states = decoded.extras["core_initial_states"]
    if isinstance(dec.core, SplitMultiOutLstmDecoder):
        # Each instrument's decoder starts from its own tanh(dense(embedding)).
        widths = [part.rnn.state_size for part in dec.core.parts]
        for i, part in enumerate(states.split(widths, dim=-1)):
            assert_close(f"core{i}_initial_states", part, ref[f"core{i}_initial_states"])
    else:
        assert_close("core_initial_states", states, ref["core_initial_states"])


def test_losses(case, computed):
    name, _, _, ref = case
    model, _, _, decoded, out = computed
    y = torch.from_numpy(ref["outputs"])
    lengths = torch.from_numpy(ref["lengths"]).long()
    mask = valid_steps(model, ref)
    with torch.no_grad():
        steps = per_step(model, decoded.rnn_output, y)
        parts = len(CASES[name].depths)
        if parts > 1:  # the parts' losses (melody, bass, drums) add up to the step's
            by_part = torch.stack([steps[f"output_{i}_loss"] for i in range(parts)], -1)
            assert_close("step_part_r_loss", by_part * mask[..., None], ref["step_part_r_loss"])
            torch.testing.assert_close(by_part.sum(-1), steps["r_loss"])
        else:
            assert_close("step_r_loss", steps["r_loss"] * mask, ref["step_r_loss"])
        dec = model.decoder
        if isinstance(dec, HierarchicalLstmDecoder):
            segments = dec.segment_losses(decoded.rnn_output, y, lengths)
            assert_close("segment_r_loss", segments["r_loss"], ref["segment_r_loss"])
            if "segment_part_r_loss" in ref:
                by_part = torch.stack([segments[f"output_{i}_loss"] for i in range(parts)], -1)
                assert_close("segment_part_r_loss", by_part, ref["segment_part_r_loss"])
    assert_losses_match(out, ref)


def decode_runs(ref: dict[str, np.ndarray]) -> list[str]:
    return [w for w in ("mu", "fixed") if f"decode_{w}_samples" in ref]


def decode_inputs(ref: dict[str, np.ndarray], which: str):
    """``(z, controls)`` of a reference decode: one control sequence for the whole batch."""
    z = torch.from_numpy(ref["mu" if which == "mu" else "z_fixed"])
    controls = torch.from_numpy(ref["decode_c_input"]) if "decode_c_input" in ref else None
    return z, controls


def test_decode_logits_from_the_decoded_inputs(case, computed):
    """Fed Magenta's decoded samples as teacher forcing (each step's input is the previous
    sample, segment after segment and, in a split decoder, part by part), our decoder gives
    Magenta's decoding logits."""
    _, _, _, ref = case
    model = computed[0]
    for which in decode_runs(ref):
        samples = torch.from_numpy(ref[f"decode_{which}_samples"])
        z, controls = decode_inputs(ref, which)
        assert_close("decode_rnn_input", shift_right(samples), ref[f"decode_{which}_rnn_input"])
        if controls is not None:
            controls = controls[None].expand(z.shape[0], -1, -1)
        with torch.no_grad():
            logits = model.decoder(samples, None, z, controls).rnn_output
        assert_close(f"decode_{which}_rnn_output", logits, ref[f"decode_{which}_rnn_output"])


def independent_blocks(model: MusicVAE, length: int, parts: int) -> list[tuple[int, int, list]]:
    """``(start, stop, parts)`` runs of a decode that depend on nothing decoded before them
    but their first input: a conductor's segments (its embeddings ignore the samples) and,
    in a split decoder, each instrument on its own."""
    dec = model.decoder
    if not isinstance(dec, HierarchicalLstmDecoder):
        return [(0, length, list(range(parts)))]
    size = dec.bar_length
    groups = [[i] for i in range(parts)]
    if not isinstance(dec.core, SplitMultiOutLstmDecoder):
        groups = [list(range(parts))]
    return [(lo, lo + size, g) for lo in range(0, length, size) for g in groups]


def test_greedy_decode_is_magentas_argmax(case, computed):
    """Temperature 0 decodes Magenta's samples. A run that starts from Magenta's input may part
    from Magenta's only at a near-tie (top two logits within 1e-4): it agrees at least up to
    its first one, and every run whose first input agrees is checked."""
    name, _, _, ref = case
    model = computed[0]
    depths = list(CASES[name].depths)
    for which in decode_runs(ref):
        samples = torch.from_numpy(ref[f"decode_{which}_samples"])
        gap = ref[f"decode_{which}_top2_logit_gap"]  # (B, T, parts)
        z, controls = decode_inputs(ref, which)
        length = samples.shape[1]
        ours = model.decode(z, length, temperature=0.0, controls=controls)
        theirs_parts = samples.split(depths, -1)
        ours_parts = ours.split(depths, -1)
        for p in ours_parts:  # one-hot parts
            assert set(p.sum(-1).unique().tolist()) == {1.0}
        expected = np.stack([p.argmax(-1).numpy() for p in theirs_parts], -1)  # (B, T, parts)
        got = np.stack([p.argmax(-1).numpy() for p in ours_parts], -1)
        checked = 0
        for lo, hi, group in independent_blocks(model, length, len(depths)):
            for row in range(expected.shape[0]):
                if lo and (got[row, lo - 1][group] != expected[row, lo - 1][group]).any():
                    continue  # started from another input than Magenta's
                checked += 1
                mismatch = got[row, lo:hi][:, group] != expected[row, lo:hi][:, group]
                differ = np.flatnonzero(mismatch.any(-1))
                if differ.size:
                    t = lo + int(differ[0])
                    parted = [p for p in group if got[row, t, p] != expected[row, t, p]]
                    assert (gap[row, t, parted] <= NEAR_TIE).all(), (
                        f"row {row} step {t} parts {parted}: ours {got[row, t, parted]}, "
                        f"Magenta {expected[row, t, parted]}, gaps {gap[row, t, parted]}"
                    )
        assert checked >= expected.shape[0]


def test_export_round_trips_every_model_variable(case, computed):
    assert_exports_every_variable(computed[0], case[1])


def test_guess_config_and_fit_sizes_from_the_variables(case):
    name, tf_vars, config, _ = case
    assert guess_config_name(tf_vars) == CASES[name].stock
    blank = config.override("z_size=4,enc_rnn_size=[4],dec_rnn_size=[4]")
    fitted = fit_sizes(tf_vars, blank)
    for key in ("z_size", "enc_rnn_size", "dec_rnn_size"):
        assert getattr(fitted.hparams, key) == getattr(config.hparams, key), key


def test_registered_config_builds_the_same_model(case, computed):
    """Once Magenta's config is registered (with its converter), importing the checkpoint
    through it gives the model built here from parts."""
    name, tf_vars, config, _ = case
    try:
        registered = get_config(CASES[name].stock).override(
            {k: getattr(config.hparams, k) for k in ("z_size", "enc_rnn_size", "dec_rnn_size")}
        )
        imported = import_magenta_weights(tf_vars, registered)
    except MusicVAEError as e:
        pytest.skip(f"{CASES[name].stock} is not usable yet: {e}")
    ours = computed[0].state_dict()
    theirs = imported.state_dict()
    assert set(theirs) == set(ours)
    for key, value in ours.items():
        torch.testing.assert_close(theirs[key], value, rtol=0, atol=0, msg=key)
    assert imported.control_depth == computed[0].control_depth


def test_controls_reach_the_encoder_and_every_decoder_step(case, computed):
    """A chord model's outputs change with its chords, at the encoder and at the decoder."""
    _, _, _, ref = case
    controls = reference_controls(ref)
    if controls is None:
        pytest.skip("no controls")
    model = computed[0]
    x, y = torch.from_numpy(ref["inputs"]), torch.from_numpy(ref["outputs"])
    lengths = torch.from_numpy(ref["lengths"]).long()
    other = controls.roll(1, dims=-1)
    with torch.no_grad():
        mu, _ = model.encode(x, lengths, controls)
        mu_other, _ = model.encode(x, lengths, other)
        a = model.decoder(y, lengths, mu, controls).rnn_output
        b = model.decoder(y, lengths, mu, other).rnn_output
    assert not torch.allclose(mu, mu_other)
    changed = (controls != other).any(-1)  # steps whose chord changed
    assert (a - b).abs().amax(-1)[changed].min() > 0
