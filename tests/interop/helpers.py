"""Shared checks of our models against Magenta's reference tensors (``reference.npz``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.interop.magenta import export_magenta_variables, import_magenta_weights, is_ignored
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


def teacher_forced_pass(
    tf_vars: dict[str, np.ndarray], config: Config, ref: dict[str, np.ndarray]
) -> tuple[MusicVAE, torch.Tensor, torch.Tensor, DecoderOutput, dict[str, Any]]:
    """The imported model and what it computes on the reference batch as Magenta's graph did:
    ``(model, mu, sigma, decoder output at z = mu, the model's losses at the global step)``."""
    model = import_magenta_weights(tf_vars, config)
    x, y = torch.from_numpy(ref["inputs"]), torch.from_numpy(ref["outputs"])
    lengths = torch.from_numpy(ref["lengths"]).long()
    with torch.no_grad():
        mu, sigma = model.encode(x, lengths)
        decoded = model.decoder(y, lengths, mu)
        losses = model(x, y, lengths, step=int(ref["global_step"]))
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
    reference has them), ``mu`` and ``sigma`` equal the reference's."""
    x, lengths = torch.from_numpy(ref["inputs"]), torch.from_numpy(ref["lengths"]).long()
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
