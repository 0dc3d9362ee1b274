"""The converter contract every model's data goes through, and the registry that builds them.

A converter turns a ``NoteSequence`` into fixed-size tensors and back, as Magenta's
``BaseNoteSequenceConverter`` does: ``to_tensors(ns)`` gives encoder ``inputs``, decoder
``outputs`` (targets), ``controls`` and ``lengths`` per window; ``from_tensors(outputs)`` gives
NoteSequences again. Its depths size the model, ``class_names`` name the output's classes for
people (plots, the studio), and ``sequence_grid(ns)`` puts a whole sequence on one grid, the
single path every inference-time caller uses. ``Config.converter`` names the converter;
:func:`build_converter` is the only place one is constructed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from musicvae.configs import Config, DataConfig
    from musicvae.data.sequence import NoteSequence

MODES = ("train", "eval", "infer")
_T = TypeVar("_T")

# What a window cap draws its picks with: numpy's legacy RandomState reproduces Magenta's
# picks exactly (np.random.seed(s) then to_tensors is RandomState(s)); a Generator is ours.
CapRng = np.random.Generator | np.random.RandomState


def sample_items(
    items: Sequence[_T], cap: int | None, mode: str, rng: CapRng | None = None
) -> list[_T]:
    """Magenta's ``maybe_sample_items``: at most ``cap`` of ``items``.

    Outside 'train' mode the first ``cap``. In 'train' mode a random ``cap`` of them: with a
    ``RandomState`` exactly Magenta's draw, ``choice(n, cap, replace=False)`` put through a
    Python ``set``, so the picks come back in CPython's set order, not drawn order (the quirk
    shapes which windows a seed gives and in what order); with a ``Generator``, or none (then
    seeded by the items themselves, so a dataset built twice is the same), in index order.
    """
    if not cap or len(items) <= cap:
        return list(items)
    if mode != "train":
        return list(items[:cap])
    if isinstance(rng, np.random.RandomState):
        picks = list({int(i) for i in rng.choice(len(items), cap, replace=False)})
    else:
        if rng is None:
            rng = np.random.default_rng(zlib.crc32(repr(list(items)).encode()))
        picks = sorted(rng.choice(len(items), size=cap, replace=False).tolist())
    return [items[i] for i in picks]


@dataclass
class ConverterTensors:
    """Per-window tensors, as lists of (T, depth) float32 arrays."""

    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    controls: list[np.ndarray] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inputs)


class ConverterBase:
    """What converters share: Magenta's ``mode`` ('train', 'eval' or 'infer', checked when it
    is set) and the shape check of the outputs ``from_tensors`` decodes."""

    _mode: str
    output_depth: int

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown converter mode {mode!r}; choose from {MODES}")
        self._mode = mode

    def set_mode(self, mode: str) -> None:
        self.mode = mode

    def controls_for(self, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """(B, T, control_depth) controls of (B, T, D) windows' encoder inputs and targets,
        each window on its own as in training; none (zero width) unless a converter has some."""
        return np.zeros((*np.shape(inputs)[:2], 0), np.float32)

    def batch_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """``outputs`` as (B, T, output_depth): a (T, output_depth) array becomes one row."""
        arr = np.asarray(outputs)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[-1] != self.output_depth:
            raise ValueError(f"outputs must be (B, T, {self.output_depth}), got {arr.shape}")
        return arr


@runtime_checkable
class Converter(Protocol):
    """What the dataset, the model builder, generation and the studio need of a converter."""

    data: DataConfig
    input_depth: int
    output_depth: int
    control_depth: int
    steps_per_bar: int
    window_steps: int | None
    class_names: tuple[str, ...]
    mode: str

    @property
    def is_random(self) -> bool: ...

    def to_tensors(
        self, ns: NoteSequence, rng: np.random.Generator | None = None
    ) -> ConverterTensors: ...

    def examples(
        self, ns: NoteSequence, rng: np.random.Generator | None = None
    ) -> ConverterTensors: ...

    def from_tensors(
        self, outputs: np.ndarray, controls: np.ndarray | None = None, *, qpm: float = 120.0
    ) -> list[NoteSequence]: ...

    def sequence_grid(
        self, ns: NoteSequence, rng: np.random.Generator | None = None, *, transform: bool = True
    ) -> ConverterTensors: ...

    def controls_for(self, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray: ...


class ConverterFactory(Protocol):
    """What ``register_converter`` takes: a converter class, or a function like its ``__init__``."""

    def __call__(self, data: DataConfig, *, mode: str = "train") -> Converter: ...


CONVERTERS: dict[str, ConverterFactory] = {}


def register_converter(name: str) -> Callable[[ConverterFactory], ConverterFactory]:
    """Class decorator: ``@register_converter("groove")`` makes it buildable by name."""

    def add(factory: ConverterFactory) -> ConverterFactory:
        CONVERTERS[name] = factory
        return factory

    return add


def build_converter(
    config: Config, mode: str = "train", *, data: DataConfig | None = None
) -> Converter:
    """The converter ``config.converter`` names, on ``data`` (default ``config.data``)."""
    from musicvae.errors import MusicVAEError

    try:
        factory = CONVERTERS[config.converter]
    except KeyError:
        raise MusicVAEError(
            f"config {config.name!r}: unknown converter {config.converter!r}; "
            f"known: {', '.join(sorted(CONVERTERS))}"
        ) from None
    try:
        return factory(data if data is not None else config.data, mode=mode)
    except ValueError as e:  # settings the converter cannot take: one line, not a traceback
        raise MusicVAEError(f"config {config.name!r}: {e}") from None
