"""Data converters (NoteSequence <-> tensors), one module each, built by name from a config."""

from musicvae.data.converters import (
    drums,  # noqa: F401  (registers "drums")
    groove,  # noqa: F401  (registers "groove")
    melody,  # noqa: F401  (registers "melody")
    multiperf,  # noqa: F401  (registers "multiperf")
    trio,  # noqa: F401  (registers "trio")
)
from musicvae.data.converters.base import (
    CONVERTERS,
    Converter,
    ConverterTensors,
    build_converter,
    register_converter,
)

__all__ = ["CONVERTERS", "Converter", "ConverterTensors", "build_converter", "register_converter"]
