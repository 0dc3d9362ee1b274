"""Real Magenta melody and one-hot drum checkpoints imported into our models reproduce
Magenta's own TF tensors.

``cat_mel_tiny`` (cat-mel_2bar_small), ``hierdec_mel_tiny`` (hierdec-mel_16bar),
``hier_mel_tiny`` (hier-mel_16bar) and ``cat_drums_tiny`` (cat-drums_2bar_small) are 5-step
Magenta checkpoints with tiny hparams; ``reference.npz`` holds what Magenta's graph computed for
4 windows at z = mu, and what ``TrainedModel`` decoded at temperature 1e-10 from z = mu and a
fixed z (see each folder's README). The 2-bar configs' reference graphs ran with pure teacher
forcing instead of the stock scheduled sampling, which outside training would feed the decoder
random samples.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.converters import CONVERTERS
from musicvae.errors import MusicVAEError
from musicvae.interop.magenta import (
    export_magenta_variables,
    fit_sizes,
    guess_config,
    import_magenta_weights,
    is_ignored,
    magenta_state_dict,
    read_magenta_model,
)
from musicvae.interop.tf_checkpoint import read_checkpoint
from musicvae.models import build_model
from musicvae.models.decoder import shift_right
from musicvae.models.hierarchical import HierarchicalLstmDecoder
from tests.interop.helpers import (
    assert_close,
    assert_encoder_matches,
    assert_exports_every_variable,
    assert_losses_match,
    teacher_forced_pass,
)

TINY = "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16],batch_size=4"
# The reference graphs' only change to the 2-bar configs (reference_info.json graph_changes).
TEACHER_FORCED = ",sampling_schedule=constant,sampling_rate=0"
CASES = {
    "cat_mel_tiny": ("cat-mel_2bar_small", TINY + TEACHER_FORCED),
    "hierdec_mel_tiny": (
        "hierdec-mel_16bar",
        TINY.replace("enc_rnn_size=[16]", "enc_rnn_size=[16,16]"),
    ),
    "hier_mel_tiny": ("hier-mel_16bar", TINY),
    "cat_drums_tiny": ("cat-drums_2bar_small", TINY + TEACHER_FORCED),
}
# A top-2 logit gap at or below this is a near-tie: float32 rounding may pick either class.
NEAR_TIE = 1e-4


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, magenta_dir):
    name = request.param
    config = get_config(*CASES[name])
    if config.converter not in CONVERTERS:
        pytest.skip(f"the {config.converter!r} converter (model depths) is not there yet")
    folder = magenta_dir / name
    tf_vars = read_checkpoint(folder / "model.ckpt-5")
    ref = dict(np.load(folder / "reference.npz"))
    return name, tf_vars, config, ref


@pytest.fixture(scope="module")
def computed(case):
    _, tf_vars, config, ref = case
    return teacher_forced_pass(tf_vars, config, ref)


def test_encoder(case, computed):
    name, _, _, ref = case
    model, mu, sigma, _, _ = computed
    assert ("encoder_level0_outputs" in ref) == (name == "hier_mel_tiny")
    assert_encoder_matches(model, mu, sigma, ref)


def test_teacher_forced_decoder(case, computed):
    _, _, _, ref = case
    model, _, _, decoded, _ = computed
    y = torch.from_numpy(ref["outputs"])
    assert_close("decoder_inputs", shift_right(y), ref["decoder_inputs"])
    assert_close("rnn_output", decoded.rnn_output, ref["rnn_output"])
    if isinstance(model.decoder, HierarchicalLstmDecoder):
        for key in ("conductor_initial_state", "conductor_outputs", "core_initial_states"):
            assert_close(key, decoded.extras[key], ref[key])
    else:
        assert_close(
            "decoder_initial_state", decoded.extras["initial_state"], ref["decoder_initial_state"]
        )


def _losses_by_piece(model, rnn_output, targets, pieces: int) -> torch.Tensor:
    """The decoder's own loss of each of ``pieces`` equal runs of steps, ``(B, pieces)``."""
    b, t, d = targets.shape
    parts = model.decoder.reconstruction_loss(
        rnn_output.reshape(b * pieces, t // pieces, d),
        targets.reshape(b * pieces, t // pieces, d),
        None,
    )
    return parts["r_loss"].reshape(b, pieces)


def test_losses(case, computed):
    _, _, _, ref = case
    model, _, _, decoded, out = computed
    y = torch.from_numpy(ref["outputs"])
    with torch.no_grad():
        steps = _losses_by_piece(model, decoded.rnn_output, y, y.shape[1])
        assert_close("step_r_loss", steps, ref["step_r_loss"])
        if "segment_r_loss" in ref:
            segments = ref["segment_r_loss"].shape[1]
            by_segment = _losses_by_piece(model, decoded.rnn_output, y, segments)
            assert_close("segment_r_loss", by_segment, ref["segment_r_loss"])
    assert_losses_match(out, ref)


@pytest.mark.parametrize("which", ["mu", "fixed"])
def test_decode_logits_from_the_decoded_inputs(case, computed, which):
    """Fed Magenta's decoded samples as teacher forcing (each step's input is the previous
    sample, bar after bar), our decoder gives Magenta's decoding logits."""
    _, _, _, ref = case
    model = computed[0]
    samples = torch.from_numpy(ref[f"decode_{which}_samples"])
    z = torch.from_numpy(ref["mu" if which == "mu" else "z_fixed"])
    assert_close("decode_rnn_input", shift_right(samples), ref[f"decode_{which}_rnn_input"])
    with torch.no_grad():
        logits = model.decoder(samples, None, z).rnn_output
    assert_close(f"decode_{which}_rnn_output", logits, ref[f"decode_{which}_rnn_output"])


@pytest.mark.parametrize("which", ["mu", "fixed"])
def test_greedy_decode_is_magentas_argmax(case, computed, which):
    """Temperature 0 decodes Magenta's samples; a row may part from them only at a near-tie
    (Magenta's top two logits within 1e-4), so each row agrees at least up to its first one."""
    _, _, _, ref = case
    model = computed[0]
    expected = ref[f"decode_{which}_samples"].argmax(-1)  # (B, T)
    gap = ref[f"decode_{which}_top2_logit_gap"][..., 0]  # (B, T)
    z = torch.from_numpy(ref["mu" if which == "mu" else "z_fixed"])
    ours = model.decode(z, expected.shape[1], temperature=0.0)
    assert set(ours.sum(-1).unique().tolist()) == {1.0}  # one-hot steps
    ours_idx = ours.argmax(-1).numpy()
    for row in range(expected.shape[0]):
        differ = np.flatnonzero(ours_idx[row] != expected[row])
        if differ.size:
            first = int(differ[0])
            assert gap[row, first] <= NEAR_TIE, (
                f"row {row} step {first}: ours {ours_idx[row, first]}, Magenta "
                f"{expected[row, first]} with a logit gap of {gap[row, first]:.3g}"
            )


def test_export_round_trips_every_model_variable(case, computed):
    assert_exports_every_variable(computed[0], case[1])


def test_bad_variables_give_clear_errors(case):
    _, tf_vars, config, _ = case
    weights = {k: v for k, v in tf_vars.items() if not is_ignored(k)}
    name = next(k for k in weights if k.endswith("output_projection/kernel"))
    width = weights[name].shape[1]
    with pytest.raises(
        MusicVAEError, match=f"{name}.*shape \\[16, {width - 1}\\].*expects \\[16, {width}\\]"
    ):
        magenta_state_dict({**weights, name: weights[name][:, :-1]}, config, source="x.ckpt")
    with pytest.raises(MusicVAEError, match="x.ckpt: unknown variable 'encoder/extra'"):
        magenta_state_dict({**weights, "encoder/extra": np.zeros(1)}, config, source="x.ckpt")


def test_read_magenta_model_finds_the_config(case, magenta_dir):
    name, _, config, ref = case
    model, found, step = read_magenta_model(magenta_dir / name)
    assert found.name == config.name and step == 5
    for key in ("z_size", "enc_rnn_size", "dec_rnn_size"):
        assert getattr(found.hparams, key) == getattr(config.hparams, key), key
    x, lengths = torch.from_numpy(ref["inputs"]), torch.from_numpy(ref["lengths"]).long()
    with torch.no_grad():
        assert_close("mu", model.encode(x, lengths)[0], ref["mu"])


# Families without a tiny checkpoint: random tiny models, exported, are guessed back.
GUESSED = {
    "flat-mel_16bar": "z_size=4,enc_rnn_size=[8,8],dec_rnn_size=[8,8,8]",
    "cat-mel_2bar_big": "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8,8]",
    "cat-mel_2bar_small": "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8]",
    "hier-mel_16bar": "z_size=4,enc_rnn_size=[8,8],dec_rnn_size=[8,8,8]",
    "cat-drums_2bar_big": "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8,8]",
    "groovae_4bar": "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8]",
    "groovae_4bar_hierdec": "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8]",
}


@pytest.mark.parametrize("name", sorted(GUESSED))
def test_guess_config_and_fit_sizes_from_the_variables(name):
    config = get_config(name, GUESSED[name])
    if config.converter not in CONVERTERS:
        pytest.skip(f"the {config.converter!r} converter is not there yet")
    torch.manual_seed(0)
    exported = export_magenta_variables(build_model(config))
    guessed = guess_config(exported)
    assert guessed.name == name
    fitted = fit_sizes(exported, guessed)
    for key in ("z_size", "enc_rnn_size", "dec_rnn_size"):
        assert getattr(fitted.hparams, key) == getattr(config.hparams, key), key
    reloaded = export_magenta_variables(import_magenta_weights(exported, fitted))
    for key, value in exported.items():
        np.testing.assert_array_equal(reloaded[key], value, err_msg=key)


def test_guess_config_of_nade_drums_reads_the_drum_map():
    for dims, name in ((9, "nade-drums_2bar_reduced"), (61, "nade-drums_2bar_full")):
        tf_vars = {
            "decoder/nade/w_enc": np.zeros((dims, 1, 8), np.float32),
            "decoder/output_projection/kernel": np.zeros((16, dims + 8), np.float32),
        }
        assert guess_config(tf_vars).name == name


def test_guess_config_refuses_an_unknown_family():
    # A trio decoder with no encoder to say what it reads.
    trio = {"decoder/output_projection/kernel": np.zeros((16, 692), np.float32)}
    with pytest.raises(MusicVAEError, match=r"^x.ckpt: no registered config fits .*width 692"):
        guess_config(trio, source="x.ckpt")
    # A melody model whose encoder also reads 12 controls (a key, say) is none of Magenta's.
    keyed = {
        "decoder/output_projection/kernel": np.zeros((16, 90), np.float32),
        "encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel": np.zeros(
            (90 + 12 + 16, 64), np.float32
        ),
    }
    with pytest.raises(MusicVAEError, match="output width 90, encoder input width 102"):
        guess_config(keyed, source="x.ckpt")
