"""MusicVAE and GrooVAE in PyTorch.

``musicvae.load()`` opens a trained model (see ``musicvae.generation``); it is imported lazily so
that ``import musicvae`` stays light (no torch until a model is needed).
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from musicvae.data.sequence import NoteSequence
    from musicvae.generation.api import TrainedModel, load

__all__ = ["NoteSequence", "TrainedModel", "__version__", "load"]

try:
    __version__ = metadata.version("musicvae")
except metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    if name in ("load", "TrainedModel"):
        from musicvae.generation import api

        return getattr(api, name)
    if name == "NoteSequence":
        from musicvae.data.sequence import NoteSequence

        return NoteSequence
    raise AttributeError(f"module 'musicvae' has no attribute {name!r}")
