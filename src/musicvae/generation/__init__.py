"""Generation from trained models: ``load()``, ``TrainedModel``, bundles, windows and slerp."""

from musicvae.generation.api import BUNDLED_MODELS, TrainedModel, bundled_path, load
from musicvae.generation.bundle import load_bundle, save_bundle
from musicvae.generation.latent import slerp, slerp_path

__all__ = [
    "BUNDLED_MODELS",
    "TrainedModel",
    "bundled_path",
    "load",
    "load_bundle",
    "save_bundle",
    "slerp",
    "slerp_path",
]
