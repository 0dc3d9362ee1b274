"""MusicVAE and GrooVAE in PyTorch.

``musicvae.load()`` opens a trained model (see ``musicvae.generation``); it is imported lazily so
that ``import musicvae`` stays light (no torch until a model is needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from musicvae.generation.api import TrainedModel, load

__all__ = ["TrainedModel", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "TrainedModel"):
        from musicvae.generation import api

        return getattr(api, name)
    raise AttributeError(f"module 'musicvae' has no attribute {name!r}")
