"""Magenta checkpoints imported into our model reproduce Magenta's own TF outputs.

``groovae_tiny`` and ``hierdec_tiny`` are real 5-step Magenta checkpoints; ``reference.npz``
holds what Magenta's graph computed for 4 GMD windows at z = mu (see the data README).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.interop.magenta import is_ignored, magenta_state_dict
from musicvae.interop.tf_checkpoint import read_checkpoint
from musicvae.models.decoder import activate, shift_right
from tests.interop.helpers import assert_close as _close
from tests.interop.helpers import (
    assert_encoder_matches,
    assert_exports_every_variable,
    teacher_forced_pass,
)

TINY = "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16],batch_size=4"
MODELS = {"groovae_tiny": "groovae_4bar", "hierdec_tiny": "groovae_4bar_hierdec"}


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request, magenta_dir):
    folder = magenta_dir / request.param
    tf_vars = read_checkpoint(folder / "model.ckpt-5")
    config = get_config(MODELS[request.param], TINY)
    ref = dict(np.load(folder / "reference.npz"))
    return request.param, tf_vars, config, ref


@pytest.fixture(scope="module")
def computed(case):
    _, tf_vars, config, ref = case
    return teacher_forced_pass(tf_vars, config, ref)


def test_encoder(case, computed):
    _, _, _, ref = case
    model, mu, sigma, _, _ = computed
    assert_encoder_matches(model, mu, sigma, ref)


def test_decoder(case, computed):
    name, _, _, ref = case
    _, _, _, decoded, _ = computed
    _close("decoder_inputs", shift_right(torch.from_numpy(ref["outputs"])), ref["decoder_inputs"])
    _close("rnn_output", decoded.rnn_output, ref["rnn_output"])
    for part, value in zip(
        ("hits", "velocities", "offsets"), decoded.rnn_output.chunk(3, -1), strict=True
    ):
        _close(f"rnn_output_{part}", value, ref[f"rnn_output_{part}"])
    for key, value in zip(
        ("hit_probs", "velocities", "offsets"), activate(decoded.rnn_output), strict=True
    ):
        _close(key, value, ref[key])
    if name == "hierdec_tiny":
        for key in ("conductor_initial_state", "conductor_outputs", "core_initial_states"):
            _close(key, decoded.extras[key], ref[key])
    else:
        _close(
            "decoder_initial_state", decoded.extras["initial_state"], ref["decoder_initial_state"]
        )


def test_losses(case, computed):
    _, _, config, ref = case
    *_, out = computed
    pe = out["per_example"]
    for key in (
        "hits_loss",
        "velocities_loss",
        "offsets_loss",
        "r_loss",
        "kl_nats",
        "kl_bits",
        "kl_cost",
    ):
        _close(key, pe[key], ref[key])
    _close("beta", out["kl_beta"], ref["beta"])
    _close("loss", out["loss"], ref["loss"])
    free_bits_0 = pe["r_loss"].mean() + out["kl_beta"] * pe["kl_nats"].mean()
    _close("loss_free_bits_0", free_bits_0, ref["loss_free_bits_0"])
    assert config.hparams.free_bits == 48


def test_export_round_trips_every_model_variable(case, computed):
    assert_exports_every_variable(computed[0], case[1])


def test_bad_variables_give_clear_errors(case):
    _, tf_vars, config, _ = case
    weights = {k: v for k, v in tf_vars.items() if not is_ignored(k)}
    name = next(k for k in weights if k.endswith("output_projection/kernel"))
    with pytest.raises(MusicVAEError, match=f"{name}.*shape \\[16, 26\\].*expects \\[16, 27\\]"):
        magenta_state_dict({**weights, name: weights[name][:, :26]}, config, source="x.ckpt")
    with pytest.raises(MusicVAEError, match="x.ckpt: unknown variable 'decoder/extra'"):
        magenta_state_dict({**weights, "decoder/extra": np.zeros(1)}, config, source="x.ckpt")
    del weights["encoder/mu/bias"]
    with pytest.raises(MusicVAEError, match="missing variable 'encoder/mu/bias'"):
        magenta_state_dict(weights, config)
    wider = get_config(config.name, TINY.replace("z_size=8", "z_size=16"))
    with pytest.raises(MusicVAEError, match="z_size"):
        magenta_state_dict(tf_vars, wider)
