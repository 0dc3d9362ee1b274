"""The ``generate`` modes: one function per mode and a registry of them by name.

A mode takes a :class:`~musicvae.generation.trained_model.TrainedModel` and a
:class:`ModeRequest` (inputs, counts, temperature, seed) and returns :class:`Generated`: the
grooves as the model's tensors and as NoteSequences, at the tempo they are to be written at. The
modes write nothing; ``musicvae generate`` and Magenta's ``music_vae_generate`` read the inputs,
call :func:`run_mode` and write MIDI, drum-grid PNGs and WAVs.

Modes call the model's tensor verbs (``sample_tensors``, ``interpolate_tensors``,
``transform_tensors``, ``continue_tensors``), which draw exactly what ``sample``, ``interpolate``,
``reconstruct`` and ``extend`` draw for the same seed, and also hand back the grids the pictures
are drawn from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from musicvae.data.windows import MAX_BARS
from musicvae.errors import MusicVAEError
from musicvae.generation.continuation import continue_tensors, prompt_grid
from musicvae.generation.trained_model import DEFAULT_PLAYING
from musicvae.validation import check_seed, derive_seed

if TYPE_CHECKING:
    from musicvae.data.sequence import NoteSequence
    from musicvae.generation.trained_model import TrainedModel

__all__ = [
    "INPUTS",
    "MAX_INPUT_BARS",
    "MODES",
    "Generated",
    "ModeRequest",
    "check_input",
    "check_kind",
    "run_mode",
]

# About an hour at 120 qpm: more than any groove, few enough windows for one batch (the one
# cap on a sequence's bars, as datasets and the API read them).
MAX_INPUT_BARS = MAX_BARS


@dataclass(frozen=True)
class ModeRequest:
    """What a mode is asked for. ``tempo`` (BPM) overrides the input's (120 when sampling);
    ``keep_hits`` (None: each mode's default) keeps the input's hits or taps; ``bars`` is the
    number of new bars in continue mode."""

    num_outputs: int
    temperature: float
    inputs: tuple[NoteSequence, ...] = ()
    seed: int | None = None
    tempo: float | None = None
    keep_hits: bool | None = None
    bars: int = 4
    playing: float | None = DEFAULT_PLAYING  # sample mode: share of the drummers' spread
    # (T, C) controls every output decodes under (a chord model's chords; interpolate
    # defaults to the first input's).
    controls: np.ndarray | None = None


@dataclass(frozen=True)
class Generated:
    """A mode's output: ``grooves`` (N, T, D), the model's tensors; ``sequences``, the same N
    grooves as NoteSequences at ``qpm``."""

    grooves: np.ndarray
    sequences: list[NoteSequence]
    qpm: float


def _generated(
    model: TrainedModel, grooves: np.ndarray, qpm: float, source: NoteSequence | None = None
) -> Generated:
    """The mode's output; a melody keeps the instrument of the ``source`` it came from."""
    return Generated(grooves, model.to_sequences(grooves, qpm, _program(source)), qpm)


def _program(ns: NoteSequence | None) -> int | None:
    """The General MIDI program most of ``ns``'s pitched notes play (None: no pitched notes)."""
    if ns is None:
        return None
    programs = ns.program[~ns.is_drum]
    return int(np.bincount(programs).argmax()) if len(programs) else None


def sample(model: TrainedModel, request: ModeRequest) -> Generated:
    """``num_outputs`` grooves from the prior, at ``tempo`` or 120 BPM."""
    grooves = model.sample_tensors(
        request.num_outputs,
        request.temperature,
        request.seed,
        request.controls,
        playing=request.playing,
    )
    return _generated(model, grooves, request.tempo or 120.0)


def interpolate(model: TrainedModel, request: ModeRequest) -> Generated:
    """``num_outputs`` steps from the first input to the second, both ends included."""
    a, b = request.inputs[:2]
    grooves, _ = model.interpolate_tensors(
        a, b, request.num_outputs, request.temperature, request.seed, request.controls
    )
    return _generated(model, grooves, request.tempo or a.qpm, a)


def _transform_each(model: TrainedModel, request: ModeRequest, keep_default: bool) -> Generated:
    """``num_outputs`` encode-decode passes over every window of the input (every bar kept)."""
    keep = keep_default if request.keep_hits is None else request.keep_hits
    transformed = []
    for i in range(request.num_outputs):
        # transform_tensors draws from seed and seed + 1, so each output skips two.
        s = derive_seed(check_seed(request.seed), 2 * i)
        groove, prep = model.transform_tensors(
            request.inputs[0], request.temperature, s, keep_hits=keep
        )
        transformed.append(groove)
    return _generated(model, np.stack(transformed), request.tempo or prep.qpm, request.inputs[0])


def reconstruct(model: TrainedModel, request: ModeRequest) -> Generated:
    """The input encoded and decoded; its hits are free unless ``keep_hits``."""
    return _transform_each(model, request, keep_default=False)


def humanize(model: TrainedModel, request: ModeRequest) -> Generated:
    """Velocities and timing for the input's hits (kept unless ``keep_hits`` is False)."""
    model.require_transform("humanize")
    return _transform_each(model, request, keep_default=True)


def tap2drum(model: TrainedModel, request: ModeRequest) -> Generated:
    """Drums for a tapped rhythm: on every tapped step and nowhere else, unless ``keep_hits``
    is False (Magenta's free decoding)."""
    model.require_transform("tap_to_drums")
    return _transform_each(model, request, keep_default=True)


def continue_groove(model: TrainedModel, request: ModeRequest) -> Generated:
    """The input, then ``bars`` new bars in its feel (the first output the model's best guess,
    the others variations)."""
    prompt = request.inputs[0]
    grooves = continue_tensors(
        model,
        prompt_grid(model, prompt),
        request.bars,
        request.num_outputs,
        request.temperature,
        request.seed,
    )
    return _generated(model, grooves, request.tempo or prompt.qpm)


Mode = Callable[["TrainedModel", ModeRequest], Generated]

# In the order the command line lists them.
MODES: dict[str, Mode] = {
    "sample": sample,
    "interpolate": interpolate,
    "reconstruct": reconstruct,
    "humanize": humanize,
    "tap2drum": tap2drum,
    "continue": continue_groove,
}
# The input sequences each mode reads (interpolate: from the first to the second).
INPUTS: dict[str, int] = {
    "sample": 0,
    "interpolate": 2,
    "reconstruct": 1,
    "humanize": 1,
    "tap2drum": 1,
    "continue": 1,
}


def run_mode(name: str, model: TrainedModel, request: ModeRequest) -> Generated:
    """Run the mode ``name`` (a key of :data:`MODES`) on ``model``."""
    from musicvae.families import family_of

    mode = MODES.get(name)
    if mode is None:
        raise MusicVAEError(f"unknown mode {name!r}; choose from {', '.join(MODES)}")
    family_of(model.config).check_mode(name, model.config.name)
    if len(request.inputs) < INPUTS[name]:
        raise MusicVAEError(
            f"mode {name} reads {INPUTS[name]} input sequence(s), got {len(request.inputs)}"
        )
    return mode(model, request)


def check_kind(model: TrainedModel, ns: NoteSequence) -> None:
    """Refuses, in one line, a melody given to a drum model or drums given to a melody model:
    each would be read as (nearly) silence rather than as the music it is."""
    from musicvae.families import family_of

    family = family_of(model.config)
    if not len(ns) or model.config.data.tapify or family.voice == "tracks":
        # No notes: the converter says so; taps may be played on any instrument; a multi-track
        # model's converter names the tracks it misses.
        return
    drums = int(ns.is_drum.sum())
    if (family.voice == "drums" and drums == 0) or (family.voice != "drums" and drums == len(ns)):
        held = "no drums" if drums == 0 else "only drums"
        raise MusicVAEError(
            f"{ns.filename or 'input'}: holds {held}; config {model.config.name!r} is a "
            f"{family.name} model ({family.label}) and reads {family.input_kind}"
        )


def check_input(model: TrainedModel, name: str, ns: NoteSequence) -> str | None:
    """An input of mode ``name`` against the model before any work is done (a clear error and
    no partial output); returns a note for the user when only part of it is used."""
    # Before quantising: every window goes through the model at once.
    bars = ns.total_time * ns.qpm / 240  # 4/4 bars, the only meter the models read
    if bars > MAX_INPUT_BARS:
        raise MusicVAEError(
            f"{ns.filename}: {bars:,.0f} bars; an input of at most {MAX_INPUT_BARS:,} bars is "
            "read (a corrupt delta time can put a note hours late)"
        )
    check_kind(model, ns)
    if name == "continue":
        return None  # a prompt may be shorter than a window; continuation checks it
    prep = model.prepare(ns)
    if name == "interpolate" and len(prep.starts) > 1:
        return (
            f"{ns.filename}: {prep.total_steps // model.converter.steps_per_bar} bars; "
            f"interpolating from its first {model.num_bars}"
        )
    return None
