"""A real Magenta ``nade-drums_2bar_reduced`` checkpoint imported into our model reproduces
Magenta's own TF tensors (``nade_drums_tiny``: 5 training steps, tiny hparams; see its README).

The reference's teacher-forced pass ran at z = mu with pure teacher forcing (the stock config's
scheduled sampling would feed random samples outside training); its free decodes ran through
``TrainedModel`` at temperature 1e-10, i.e. each NADE dim is 1 where its logit is > 0.
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
    import_magenta_weights,
    is_ignored,
    magenta_state_dict,
)
from musicvae.interop.tf_checkpoint import read_checkpoint
from musicvae.models.decoder import shift_right, step_mask
from musicvae.models.nade import MultiLabelRnnNadeDecoder

TINY = "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16],batch_size=4,nade_num_hidden=8"
# The reference graph's only change to the stock config (reference_info.json graph_changes).
TEACHER_FORCED = ",sampling_schedule=constant,sampling_rate=0"

pytestmark = pytest.mark.skipif(
    "drums" not in CONVERTERS, reason="the drums converter (model depths) is not there yet"
)


def _close(name: str, ours, ref: np.ndarray, tol: float = 1e-5) -> None:
    """Within ``tol``, absolute or relative to the reference."""
    ours = np.asarray(ours.detach() if isinstance(ours, torch.Tensor) else ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, name
    err = np.abs(ours - ref)
    assert ((err <= tol) | (err <= tol * np.abs(ref))).all(), f"{name}: max err {err.max():.3g}"


@pytest.fixture(scope="module")
def case(magenta_dir):
    folder = magenta_dir / "nade_drums_tiny"
    tf_vars = read_checkpoint(folder / "model.ckpt-5")
    ref = dict(np.load(folder / "reference.npz"))
    return tf_vars, get_config("nade-drums_2bar_reduced", TINY), ref


@pytest.fixture(scope="module")
def model(case):
    tf_vars, config, _ = case
    return import_magenta_weights(tf_vars, config)


@pytest.fixture(scope="module")
def batch(case):
    ref = case[2]
    x, y = torch.from_numpy(ref["inputs"]), torch.from_numpy(ref["outputs"])
    return x, y, torch.from_numpy(ref["lengths"]).long()


def test_model_is_the_nade_decoder(model):
    dec = model.decoder
    assert isinstance(dec, MultiLabelRnnNadeDecoder)
    assert (dec.output_depth, dec.nade.num_hidden, dec.rnn.input_size) == (9, 8, 9 + 8)


def test_encoder(case, model, batch):
    ref = case[2]
    x, _, lengths = batch
    with torch.no_grad():
        _close("encoder_output", model.encoder.summary(x, lengths), ref["encoder_output"])
        mu, sigma = model.encode(x, lengths)
    _close("mu", mu, ref["mu"])
    _close("sigma", sigma, ref["sigma"])


def test_teacher_forced_decoder_and_nade(case, model, batch):
    ref = case[2]
    _, y, lengths = batch
    dec = model.decoder
    mu = torch.from_numpy(ref["mu"])
    _close("decoder_inputs", shift_right(y), ref["decoder_inputs"])
    with torch.no_grad():
        out = dec(y, lengths, mu)
        log_p, cond_probs = dec.nade.log_prob(y, *dec.nade_biases(out.rnn_output))
        parts = dec.reconstruction_loss(out.rnn_output, y, lengths)
    _close("decoder_initial_state", out.extras["initial_state"], ref["decoder_initial_state"])
    _close("rnn_output", out.rnn_output, ref["rnn_output"])
    _close("nade_cond_probs", cond_probs, ref["nade_cond_probs"])
    _close("nade_log_prob", log_p, ref["nade_log_prob"])
    mask = step_mask(lengths, *log_p.shape, log_p.device)
    _close("step_r_loss", -log_p * mask, ref["step_r_loss"])
    _close("r_loss", parts["r_loss"], ref["r_loss"])


def test_losses(case, batch):
    tf_vars, _, ref = case
    # Pure teacher forcing, as the reference graph; at z = mu (eval mode).
    config = get_config("nade-drums_2bar_reduced", TINY + TEACHER_FORCED)
    x, y, lengths = batch
    with torch.no_grad():
        out = import_magenta_weights(tf_vars, config)(x, y, lengths, step=int(ref["global_step"]))
    pe = out["per_example"]
    for key in ("r_loss", "kl_nats", "kl_bits", "kl_cost"):
        _close(key, pe[key], ref[key])
    _close("beta", out["kl_beta"], ref["beta"])
    _close("loss", out["loss"], ref["loss"])
    _close(
        "loss_free_bits_0",
        pe["r_loss"].mean() + out["kl_beta"] * pe["kl_nats"].mean(),
        ref["loss_free_bits_0"],
    )
    assert 0.0 <= out["accuracy"].item() <= 1.0 and "hit_f1" in out


def test_stock_schedule_feeds_samples_outside_training(case, model, batch):
    # As in Magenta, a scheduled-sampling config evaluates with probability 1 (every input is
    # the model's own greedy step), so its loss differs from the teacher-forced reference.
    x, y, lengths = batch
    with torch.no_grad():
        out = model(x, y, lengths, step=5)
    assert out["sampling_probability"].item() == 1.0
    assert not np.allclose(out["per_example"]["r_loss"].numpy(), case[2]["r_loss"], atol=1e-3)


@pytest.mark.parametrize("which", ["fixed", "mu"])
def test_free_decodes(case, model, which):
    ref = case[2]
    z = torch.from_numpy(ref["z_fixed"] if which == "fixed" else ref["mu"])
    dec = model.decoder
    with torch.no_grad():
        # Teacher forcing with the inputs Magenta's decoder saw gives its step outputs ...
        forced = dec.run(torch.from_numpy(ref[f"decode_{which}_rnn_input"]), z).rnn_output
        # ... and greedy decoding reproduces its samples exactly.
        samples = model.decode(z, 32, temperature=0.0)
    _close(f"decode_{which}_rnn_output", forced, ref[f"decode_{which}_rnn_output"])
    np.testing.assert_array_equal(samples.numpy(), ref[f"decode_{which}_samples"])
    assert (ref[f"decode_{which}_final_sequence_lengths"] == 32).all()


def test_export_round_trips_every_model_variable(case, model):
    tf_vars = case[0]
    exported = export_magenta_variables(model)
    assert set(exported) == {k for k in tf_vars if not is_ignored(k)}
    for key, value in exported.items():
        assert value.shape == tf_vars[key].shape, key
        # LSTM biases pass through TF's +1 forget bias and back: float32 rounding.
        np.testing.assert_allclose(value, tf_vars[key], rtol=0, atol=1e-7, err_msg=key)
    for key in ("decoder/nade/w_enc", "decoder/nade/w_dec_t", "decoder/output_projection/kernel"):
        np.testing.assert_array_equal(exported[key], tf_vars[key], err_msg=key)


def test_wrong_nade_size_is_a_clear_error(case):
    tf_vars, _, _ = case
    wider = get_config("nade-drums_2bar_reduced", TINY.replace("hidden=8", "hidden=16"))
    with pytest.raises(MusicVAEError, match="shape \\[16, 17\\].*expects \\[16, 25\\]"):
        magenta_state_dict(tf_vars, wider)
