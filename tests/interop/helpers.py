"""Shared checks of our models against Magenta's reference tensors (``reference.npz``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.interop.magenta import (
    export_magenta_variables,
    import_magenta_weights,
    is_ignored,
    variable_map,
)
from musicvae.models import DecoderOutput, MusicVAE
from musicvae.models.encoder import BidirectionalLstmEncoder, HierarchicalLstmEncoder


def assert_close(name: str, ours, ref: np.ndarray, tol: float = 1e-5) -> float:
    """``ours`` equals ``ref`` within ``tol``, absolute or relative to the reference; returns
    the largest absolute error."""
    ours = np.asarray(ours.detach() if isinstance(ours, torch.Tensor) else ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{name}: shape {ours.shape}, reference {ref.shape}"
    err = np.abs(ours - ref)
    ok = (err <= tol) | (err <= tol * np.abs(ref))
    assert ok.all(), f"{name}: max abs err {err.max():.3g}"
    return float(err.max()) if err.size else 0.0


def reference_controls(ref: dict[str, np.ndarray]) -> torch.Tensor | None:
    """The reference batch's control sequences (e.g. chords), if it has any."""
    return torch.from_numpy(ref["controls"]) if "controls" in ref else None


def teacher_forced_pass(
    tf_vars: dict[str, np.ndarray],
    config: Config,
    ref: dict[str, np.ndarray],
    model: MusicVAE | None = None,
) -> tuple[MusicVAE, torch.Tensor, torch.Tensor, DecoderOutput, dict[str, Any]]:
    """The imported model (``config``'s, or ``model`` given the checkpoint's weights) and what
    it computes on the reference batch (and its controls) as Magenta's graph did:
    ``(model, mu, sigma, decoder output at z = mu, the model's losses at the global step)``."""
    if model is None:
        model = import_magenta_weights(tf_vars, config)
    else:
        state: dict[str, torch.Tensor] = {}
        for name, var in variable_map(model).items():
            state |= var.to_torch(np.asarray(tf_vars[name], np.float32))
        model.load_state_dict(state)
        model.eval()
    x, y = torch.from_numpy(ref["inputs"]), torch.from_numpy(ref["outputs"])
    lengths = torch.from_numpy(ref["lengths"]).long()
    controls = reference_controls(ref)
    with torch.no_grad():
        mu, sigma = model.encode(x, lengths, controls)
        decoded = model.decoder(y, lengths, mu, controls if model.control_depth else None)
        losses = model(x, y, lengths, controls, step=int(ref["global_step"]))
    return model, mu, sigma, decoded, losses


def assert_exports_every_variable(model: MusicVAE, tf_vars: dict[str, np.ndarray]) -> None:
    """Exporting ``model`` gives back every model variable of the checkpoint it came from."""
    exported = export_magenta_variables(model)
    assert set(exported) == {k for k in tf_vars if not is_ignored(k)}
    for key, value in exported.items():
        np.testing.assert_allclose(value, tf_vars[key], atol=1e-7, err_msg=key)


def assert_encoder_matches(
    model: MusicVAE, mu: torch.Tensor, sigma: torch.Tensor, ref: dict[str, np.ndarray]
) -> None:
    """The encoder's summary (and a hierarchical encoder's per-level summaries, where the
    reference has them), ``mu`` and ``sigma`` equal the reference's. Controls (chords) are
    read beside the inputs, as Magenta's encoder reads them."""
    x, lengths = torch.from_numpy(ref["inputs"]), torch.from_numpy(ref["lengths"]).long()
    controls = reference_controls(ref)
    if controls is not None:
        x = torch.cat([x, controls], dim=-1)
    encoder = model.encoder
    assert isinstance(encoder, BidirectionalLstmEncoder | HierarchicalLstmEncoder)
    with torch.no_grad():
        assert_close("encoder_output", encoder.summary(x, lengths), ref["encoder_output"])
        if "encoder_level0_outputs" in ref:
            assert isinstance(encoder, HierarchicalLstmEncoder)
            levels = encoder.level_outputs(x, lengths)
            for k, level in enumerate(levels):
                assert_close(f"encoder_level{k}_outputs", level, ref[f"encoder_level{k}_outputs"])
    assert_close("mu", mu, ref["mu"])
    assert_close("sigma", sigma, ref["sigma"])


def assert_losses_match(out: dict[str, Any], ref: dict[str, np.ndarray]) -> None:
    """The model's per-sequence losses, KL, beta and batch loss (``MusicVAE.forward``'s
    ``out``) equal the reference's; with free bits 0 too, to exercise the KL term."""
    pe = out["per_example"]
    for key in ("r_loss", "kl_nats", "kl_bits", "kl_cost"):
        assert_close(key, pe[key], ref[key])
    assert_close("beta", out["kl_beta"], ref["beta"])
    assert_close("loss", out["loss"], ref["loss"])
    free_bits_0 = pe["r_loss"].mean() + out["kl_beta"] * pe["kl_nats"].mean()
    assert_close("loss_free_bits_0", free_bits_0, ref["loss_free_bits_0"])
