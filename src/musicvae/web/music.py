"""What each kind of model reads and makes in the studio, and the conversions between them.

The page's music comes in four kinds: a :class:`~musicvae.web.grooves.Groove` (a drum grid), a
:class:`~musicvae.web.melodies.Melody`, a :class:`~musicvae.web.trios.Trio` (three lanes) and a
:class:`~musicvae.web.performances.Performance` (any number of tracks). A model reads and makes
one of them, by what ``tools.kind_of`` says it makes: a family of several tracks other than the
trios makes performances. Here a model's outputs become the page's music (:func:`results`), and
the page's music a model's encoder inputs (:func:`first_window`, :func:`groove_windows`); music of
the wrong kind is a one-line error (:func:`check_kind`).
"""

from __future__ import annotations

import numpy as np

from musicvae.data.chords import NO_CHORD, encode_chords
from musicvae.data.converters.base import ConverterTensors
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from musicvae.generation.api import TrainedModel
from musicvae.generation.chunks import cut
from musicvae.web import tools as table
from musicvae.web.grooves import Groove, pattern_groove, studio_converter
from musicvae.web.melodies import Melody
from musicvae.web.performances import Performance, performances
from musicvae.web.trios import Trio

Music = Groove | Melody | Trio | Performance
Made = list[Groove] | list[Melody] | list[Trio] | list[Performance]


def results(m: TrainedModel, out: np.ndarray, qpm: float, *, program: int = 0) -> Made:
    """A model's (N, T, D) outputs as the page shows them: a GrooVAE's grooves as they are,
    another drum model's patterns on the studio's drum grid, a melody model's melodies, a trio
    model's trios (the melody on ``program``), another multi-track model's performances."""
    kind = reads(m)
    if kind is Trio:
        return [Trio.from_array(a, qpm=qpm, program=program) for a in out]
    if kind is Melody:
        low = getattr(m.converter, "min_pitch", 21)
        return [Melody.from_array(a, qpm=qpm, program=program, min_pitch=low) for a in out]
    if kind is Performance:
        return performances(m, out, qpm)
    if m.family.name == "groove":
        return [Groove.from_array(a, qpm=qpm) for a in out]
    return [pattern_groove(ns, out.shape[1]) for ns in m.to_sequences(out, qpm)]


# What a model reads, by what it makes in the studio (``tools.kind_of``): a kind not named
# here is a multi-track family other than the trios, whose music is a performance's tracks.
KINDS: dict[str, type[Music]] = {"drums": Groove, "melody": Melody, "trio": Trio}
# What a model of each kind reads, and what an input of each kind is, in an error's words.
WANTS = {
    Melody: "melodies",
    Groove: "drum grooves",
    Trio: "trios",
    Performance: "multi-track performances",
}
IS = {
    Melody: "a melody",
    Groove: "a drum groove",
    Trio: "a trio",
    Performance: "a multi-track performance",
}


def reads(m: TrainedModel) -> type[Music]:
    """The kind of music ``m`` reads and makes in the studio."""
    return KINDS.get(table.kind_of(m.config), Performance)


def program_of(x: Music) -> int:
    """The program results made from ``x`` play (their melody's): its own, else 0."""
    return x.program if isinstance(x, Melody | Trio) else 0


def check_kind(m: TrainedModel, x: Music, tool: str) -> None:
    """A one-line error when ``x`` is not what ``m`` reads: a melody for a drum model, a
    groove for a trio model, and so on."""
    kind = reads(m)
    if not isinstance(x, kind):
        raise MusicVAEError(
            f"{table.tool(tool).label}: this tool's model ({m.family.studio_name(m.num_bars)}) "
            f"reads {WANTS[kind]}; {x.name or 'the input'} is {IS[type(x)]}"
        )


def melody_array(m: TrainedModel, x: Melody, steps: int) -> np.ndarray:
    """A melody as the model's one-hot (steps, D), padded with "no event" or cut."""
    if not x.notes:
        raise MusicVAEError(f"{x.name or 'melody'}: the melody is empty (no notes to work from)")
    low = getattr(m.converter, "min_pitch", 21)
    return x.array(m.converter.output_depth, low, steps)


def trio_array(x: Trio, steps: int) -> np.ndarray:
    """A trio as the trio models' one-hots (steps, 692), padded with silence or cut."""
    if x.is_empty():
        raise MusicVAEError(
            f"{x.name or 'trio'}: the trio is empty (no notes or hits to work from)"
        )
    return x.array(steps)


def first_window(m: TrainedModel, x: Music, tool: str) -> tuple[np.ndarray, np.ndarray]:
    """The encoder inputs (W, D) and controls (W, C) of the first window of ``x``."""
    check_kind(m, x, tool)
    window = m.window_steps
    if isinstance(x, Performance):
        if x.is_empty():
            raise MusicVAEError(f"{x.name or 'performance'}: it is empty (no notes to work from)")
        return converter_window(m, x.to_sequence(), x.name or "performance")
    if isinstance(x, Melody) and m.converter.control_depth:
        # A chord model reads the melody beside its chords, as its converter infers them.
        melody_array(m, x, window)  # an empty melody is refused as for any melody model
        return converter_window(m, x.to_sequence(), x.name or "melody")
    if isinstance(x, Melody):
        return melody_array(m, x, window), np.zeros((window, 0), np.float32)
    if isinstance(x, Trio):
        return trio_array(x, window), np.zeros((window, 0), np.float32)
    if m.family.name == "groove":
        inputs, controls = groove_windows(m, x)[:2]
        return inputs[0], controls[0]
    # Another drum model reads the groove's notes through its own converter.
    if not x.array()[:, :9].any():
        raise MusicVAEError(f"{x.name or 'groove'}: the groove is empty (no hits to work from)")
    t = m.converter.sequence_grid(x.to_sequence(studio_converter()))
    if not len(t):
        raise MusicVAEError(f"{x.name or 'groove'}: the model's converter found no notes in it")
    return _padded(t, window, m.converter.input_depth, m.converter.control_depth)


def groove_windows(m: TrainedModel, g: Groove) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """Encoder inputs (N, W, 27) and controls (N, W, C) of a groove, window starts, total steps.

    The model's converter makes the inputs (so humanize, tapify, ... apply as in training) from the
    groove's notes; its grid is then zero-padded back to the groove's own length, rounded up to
    whole bars and at least one window.
    """
    window = m.window_steps
    bar = m.converter.steps_per_bar
    arr = g.array()
    total = max(window, -(-len(arr) // bar) * bar)
    arr = np.concatenate([arr, np.zeros((total - len(arr), arr.shape[1]), arr.dtype)])
    if not arr[:, : len(m.converter.class_names)].any():
        raise MusicVAEError(f"{g.name or 'groove'}: the groove is empty (no hits to work from)")
    (ns,) = m.to_sequences(arr, g.qpm)
    t = m.converter.sequence_grid(ns)
    if not len(t):
        raise MusicVAEError(f"{g.name or 'groove'}: the model's converter found no notes in it")
    inputs, controls = _padded(t, total, arr.shape[1], m.converter.control_depth)
    windows, starts = cut(inputs, window)
    ctrl, _ = cut(controls, window)
    return windows, ctrl, starts, total


def converter_window(m: TrainedModel, ns: NoteSequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The encoder inputs (W, D) and controls (W, C) of the first window the model's own
    converter reads in ``ns``, as in training: a performance's first bar it can read (one with
    too few or too many notes is skipped), a melody beside the chords inferred from it."""
    t = m.converter.sequence_grid(ns)
    if not len(t):
        raise MusicVAEError(
            f"{name}: the model's converter found nothing it can read in it (config "
            f"{m.config.name!r} reads {m.family.input_kind})"
        )
    return _padded(t, m.window_steps, m.converter.input_depth, m.converter.control_depth)


def _padded(
    t: ConverterTensors, rows: int, depth: int, control_depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """A converter's first grid as (rows, depth) inputs and (rows, control_depth) controls:
    zero rows after its own, or cut."""
    inputs = np.zeros((rows, depth), np.float32)
    got = np.asarray(t.inputs[0], np.float32)[:rows]
    inputs[: len(got)] = got
    controls = np.zeros((rows, control_depth), np.float32)
    if control_depth:
        c = np.asarray(t.controls[0], np.float32).reshape(-1, control_depth)[:rows]
        controls[: len(c)] = c
    return inputs, controls


def chord_controls(m: TrainedModel, chords: str | None) -> np.ndarray | None:
    """The (W, C) controls a chord model samples under: ``chords`` ("C G Am F") spread evenly
    over its window, or no chord throughout; None for a model without chords, which refuses
    them in one line."""
    encoding = m.config.data.chord_encoding
    if encoding is None:
        if chords is not None:
            raise MusicVAEError(f"chords: config {m.config.name!r} does not play over chords")
        return None
    return encode_chords(chords or NO_CHORD, m.window_steps, encoding)
