"""Generation from trained models: ``load()``, ``TrainedModel``, bundles, windows, slerp and the
``generate`` modes (``run_mode``)."""

from musicvae.generation.api import BUNDLED_MODELS, TrainedModel, bundled_path, load
from musicvae.generation.bundle import load_bundle, save_bundle
from musicvae.generation.latent import slerp, slerp_path
from musicvae.generation.modes import MODES, Generated, ModeRequest, run_mode

__all__ = [
    "BUNDLED_MODELS",
    "MODES",
    "Generated",
    "ModeRequest",
    "TrainedModel",
    "bundled_path",
    "load",
    "load_bundle",
    "run_mode",
    "save_bundle",
    "slerp",
    "slerp_path",
]
