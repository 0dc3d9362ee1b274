"""GrooVAE's data converter: drum NoteSequences to (hit, velocity, offset) tensors and back.

Reproduces Magenta's ``GrooveConverter`` (magenta/models/music_vae/data.py) with note_seq's
quantisation. Each 16th-note step holds 27 values, ``[hits(9) | velocities(9) | offsets(9)]``
for 9 drum classes; velocity = MIDI velocity / 127 and offset = 2 * (grid time - onset) / step, so
a positive offset means the note was played ahead of its step. Where notes of one class share a
step the loudest wins.

Encoder inputs may be transformed versions of the decoder targets (Magenta's options):
note dropout, ``tapify`` (everything on the open hi-hat channel), ``humanize`` (no velocities or
offsets), ``fixed_velocities`` and ``add_instruments`` (classes removed from the inputs);
``hits_as_controls`` passes the target hits as control tensors; ours, ``taps_as_controls``, a tap
model's taps (:func:`tap_controls`).

``DataConfig.windowing`` picks how a file becomes examples: "file" runs the whole file through
``to_tensors`` (Magenta's tfrecord route), "bars" reproduces TFDS ``groove/Nbar-midionly``
(N-bar windows slid one bar at a time, each converted on its own), the data the published
GrooVAE checkpoints were trained on.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from musicvae.configs import DataConfig
from musicvae.data.converters.base import (
    CapRng,
    ConverterBase,
    ConverterTensors,
    register_converter,
)
from musicvae.data.sequence import NoteSequence, Tempo
from musicvae.data.windows import NoteGrid, bar_windows, file_grid, quantize, timing_grid

# Roland TD-11 pitches grouped into 9 classes: the map GrooVAE is trained with.
ROLAND_DRUM_PITCH_CLASSES: tuple[tuple[int, ...], ...] = (
    (36,),  # kick
    (38, 37, 40),  # snare
    (42, 22, 44),  # closed hi-hat
    (46, 26),  # open hi-hat
    (43, 58),  # low tom
    (47, 45),  # mid tom
    (50, 48),  # high tom
    (49, 52, 55, 57),  # crash
    (51, 53, 59),  # ride
)
# note_seq's general-MIDI drum classes: Magenta's GrooVAE configs use them in 'infer' mode, so a
# generated low tom is written as 45 and a mid tom as 48.
REDUCED_DRUM_PITCH_CLASSES: tuple[tuple[int, ...], ...] = (
    (36, 35),
    (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),
    (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),
    (46, 67, 72, 74, 79, 81, 26),
    (45, 29, 41, 43, 61, 64, 84),
    (48, 47, 60, 63, 77, 86, 87),
    (50, 30, 62, 76, 83),
    (49, 52, 55, 57, 58),
    (51, 53, 59, 82),
)
NUM_CLASSES = 9
# The drum classes in tensor order: the key reports use, the label plots and the studio show,
# and the plain name.
DRUM_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("kick", "Kick", "kick"),
    ("snare", "Snare", "snare"),
    ("closed_hh", "Closed HH", "closed hi-hat"),
    ("open_hh", "Open HH", "open hi-hat"),
    ("low_tom", "Low tom", "low tom"),
    ("mid_tom", "Mid tom", "mid tom"),
    ("high_tom", "High tom", "high tom"),
    ("crash", "Crash", "crash"),
    ("ride", "Ride", "ride"),
)
DRUM_CLASS_NAMES = tuple(key for key, _, _ in DRUM_CLASSES)
DRUM_CLASS_LABELS = tuple(label for _, label, _ in DRUM_CLASSES)
DRUM_CLASS_LONG_NAMES = tuple(name for _, _, name in DRUM_CLASSES)
CLOSED_HH, OPEN_HH = 2, 3
TAP_CONTROLS = 3


def tap_controls(inputs: np.ndarray) -> np.ndarray:
    """(..., T, 3) float32 controls of a tap model's (..., T, 27) encoder inputs: per step
    whether it is tapped, the tap's offset, and whether the next step is tapped (0 at the end).

    The next step's tap lets the decoder lean a drum into it (a pickup, a flam) as a drummer
    who hears what comes does. Velocities are left out: they are 0 in fixed-velocity taps.
    """
    x = np.asarray(inputs, np.float32)
    tap = (x[..., OPEN_HH] > 0.5).astype(np.float32)
    offset = x[..., 2 * NUM_CLASSES + OPEN_HH] * tap
    following = np.zeros_like(tap)
    following[..., :-1] = tap[..., 1:]
    return np.stack([tap, offset, following], axis=-1)


WINDOWINGS = ("file", "bars")


def _class_lookup(classes: tuple[tuple[int, ...], ...]) -> np.ndarray:
    lookup = np.full(128, -1, np.int64)
    for index, pitches in enumerate(classes):
        lookup[list(pitches)] = index  # a later class wins, like Magenta's dict
    return lookup


_TRAIN_LOOKUP = _class_lookup(ROLAND_DRUM_PITCH_CLASSES)
_INFER_LOOKUP = _class_lookup(REDUCED_DRUM_PITCH_CLASSES)


def drum_pitch_class(pitch: int) -> int | None:
    """The training-map class (0-8) of a MIDI drum pitch, None for pitches outside the map."""
    if not 0 <= pitch <= 127:
        return None
    c = int(_TRAIN_LOOKUP[pitch])
    return None if c < 0 else c


@register_converter("groove")
class GrooveConverter(ConverterBase):
    """Magenta's GrooveConverter configured from a ``DataConfig``.

    ``mode`` is Magenta's converter mode: "train" and "eval" use the Roland pitch map, "infer"
    (what Magenta's TrainedModel sets) uses note_seq's general-MIDI map in both directions.
    """

    def __init__(self, data: DataConfig, *, mode: str = "train") -> None:
        if data.split_bars is None and data.hop_size is not None:
            raise ValueError("hop_size needs split_bars")
        if data.windowing not in WINDOWINGS:
            raise ValueError(f"unknown windowing {data.windowing!r}; choose from {WINDOWINGS}")
        bad = [i for i in data.add_instruments if not 0 <= i < NUM_CLASSES]
        if bad:
            raise ValueError(f"add_instruments must be drum classes 0-8, got {bad}")
        self.data = data
        self.mode = mode
        self.steps_per_bar = data.steps_per_quarter * data.quarters_per_bar
        self.input_depth = self.output_depth = 3 * NUM_CLASSES
        self.control_depth = (
            NUM_CLASSES if data.hits_as_controls else TAP_CONTROLS if data.taps_as_controls else 0
        )
        self.class_names = DRUM_CLASS_NAMES
        self.num_classes = NUM_CLASSES
        # None when split_bars is None: the whole sequence is one example.
        self.window_steps: int | None = (
            data.split_bars * self.steps_per_bar if data.split_bars else None
        )

    @property
    def pitch_classes(self) -> tuple[tuple[int, ...], ...]:
        return REDUCED_DRUM_PITCH_CLASSES if self._mode == "infer" else ROLAND_DRUM_PITCH_CLASSES

    @property
    def _lookup(self) -> np.ndarray:
        return _INFER_LOOKUP if self._mode == "infer" else _TRAIN_LOOKUP

    @property
    def is_random(self) -> bool:
        """True when converting draws random numbers, so results differ call to call."""
        return self.data.max_note_dropout_probability is not None or self._drops_velocities

    @property
    def _drops_velocities(self) -> bool:
        # A training augmentation: evaluation and inference read the taps as they were played.
        return bool(self.data.velocity_dropout_probability) and self.mode == "train"

    # ---------------------------------------------------------------- to tensors

    def to_tensors(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Magenta's ``to_tensors``: the whole sequence on one grid, cut into windows.

        The sequence is padded to whole bars from its last onset and cut with hop ``hop_size``
        (default: the window length); a trailing partial window is dropped. Like Magenta's
        GrooveConverter this returns every window (``max_tensors_per_notesequence`` is not applied).
        Sequences Magenta cannot quantise (tempo or time-signature changes, bars that are not
        ``steps_per_bar`` steps, negative times) give no tensors. A ``RandomState(s)`` as ``rng``
        draws the note dropout exactly as Magenta's ``np.random.seed(s)`` then ``to_tensors``.
        """
        grid = file_grid(ns, self._lookup, self.data.steps_per_quarter, self.steps_per_bar)
        if grid is None:
            return ConverterTensors()
        inputs, outputs, controls = self._tensors(grid, rng)
        length = grid.n_steps
        if self.window_steps is None:
            return ConverterTensors([inputs[0]], [outputs[0]], [controls[0]], [length])
        size = self.window_steps
        hop = self.data.hop_size or size
        starts = range(0, length - size + 1, hop)
        return ConverterTensors(
            inputs=[inputs[0, s : s + size].copy() for s in starts],
            outputs=[outputs[0, s : s + size].copy() for s in starts],
            controls=[controls[0, s : s + size].copy() for s in starts],
            lengths=[size] * len(starts),
        )

    def examples(self, ns: NoteSequence, rng: CapRng | None = None) -> ConverterTensors:
        """Training examples from one dataset file, windowed as ``data.windowing`` says.

        "file": ``to_tensors`` on the whole file. "bars": TFDS's ``split_bars``-bar windows slid
        one bar at a time (bar length from ``ns.meta["bpm"]`` and ``ns.meta["time_signature"]``
        when present, number of bars from ``meta["end_time"]`` that ``read_midi`` sets), each
        converted as Magenta converts a TFDS example; at most one tensor per window.
        """
        split_bars = self.data.split_bars  # set whenever window_steps is
        if self.data.windowing == "file" or self.window_steps is None or split_bars is None:
            return self.to_tensors(ns, rng)
        grid = bar_windows(
            ns,
            self._lookup,
            split_bars,
            self.data.steps_per_quarter,
            self.steps_per_bar,
        )
        if grid is None or grid.n_rows == 0:
            return ConverterTensors()
        inputs, outputs, controls = self._tensors(grid, rng)
        n = grid.n_rows
        return ConverterTensors(list(inputs), list(outputs), list(controls), [grid.n_steps] * n)

    def _tensors(
        self, grid: NoteGrid, rng: CapRng | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, T, 27) inputs and outputs and (B, T, control_depth) controls, float32."""
        hits, vel, off = grid.dense(NUM_CLASSES)
        outputs = np.concatenate([hits, vel, off], axis=-1)
        in_hits, in_vel, in_off = self.transform_inputs(hits, vel, off, rng)
        inputs = np.concatenate([in_hits, in_vel, in_off], axis=-1)
        controls = self.controls_for(inputs, outputs)
        return inputs.astype(np.float32), outputs.astype(np.float32), controls.astype(np.float32)

    def controls_for(self, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """(B, T, control_depth) controls of (B, T, 27) windows' inputs and targets: the target
        hits (``hits_as_controls``) or the taps (``taps_as_controls``), window by window."""
        if self.data.hits_as_controls:
            return np.asarray(outputs, np.float32)[..., :NUM_CLASSES]
        if self.data.taps_as_controls:
            return tap_controls(inputs)
        return super().controls_for(inputs, outputs)

    def transform_inputs(
        self,
        hits: np.ndarray,
        vel: np.ndarray,
        off: np.ndarray,
        rng: CapRng | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoder inputs from target (B, T, 9) hit/velocity/offset grids, in Magenta's order.

        Note dropout draws one rate per row of B (Magenta: per converted sequence), then every
        note's drop: with a one-row grid and a ``RandomState`` these are Magenta's legacy
        ``np.random`` draws in Magenta's order (``uniform``, then ``binomial``).
        """
        d = self.data
        in_hits, in_vel, in_off = hits.copy(), vel.copy(), off.copy()
        if d.max_note_dropout_probability is not None:
            rng = rng if rng is not None else np.random.default_rng()
            # One dropout rate per sequence; quieter notes are dropped more often.
            rate = rng.uniform(0.0, d.max_note_dropout_probability, size=(len(hits), 1, 1))
            weights = np.maximum(0.2, 1.0 - in_vel)
            keep = 1 - rng.binomial(1, weights * rate)
            in_hits *= keep
            in_vel *= keep
            in_off *= keep
        if d.tapify:
            # The loudest remaining class at each step (class 0 where none) is copied from the
            # untouched grids onto the open hi-hat channel; everything else is cleared. Magenta's
            # quirk, kept: a step whose notes all dropped out still picks class 0 and copies the
            # ORIGINAL kick hit and offset, so a step with a kick never loses its tap.
            loudest = np.argmax(in_vel, axis=-1)[..., None]
            in_hits = np.zeros_like(hits)
            in_vel = np.zeros_like(vel)
            in_off = np.zeros_like(off)
            in_hits[..., OPEN_HH] = np.take_along_axis(hits, loudest, -1)[..., 0]
            in_vel[..., OPEN_HH] = np.take_along_axis(vel, loudest, -1)[..., 0]
            in_off[..., OPEN_HH] = np.take_along_axis(off, loudest, -1)[..., 0]
        if d.humanize:
            in_vel[:] = 0.0
            in_off[:] = 0.0
        if d.fixed_velocities:
            in_vel[:] = 0.0
        if self._drops_velocities and d.velocity_dropout_probability is not None:
            rng = rng if rng is not None else np.random.default_rng()
            in_vel[rng.random(len(hits)) < d.velocity_dropout_probability] = 0.0
        if d.add_instruments:
            drop = list(d.add_instruments)
            in_hits[..., drop] = 0.0
            in_vel[..., drop] = 0.0
            in_off[..., drop] = 0.0
        return in_hits, in_vel, in_off

    _transform_inputs = transform_inputs  # older name, still used by callers

    def sequence_grid(
        self, ns: NoteSequence, rng: CapRng | None = None, *, transform: bool = True
    ) -> ConverterTensors:
        """The whole sequence on one grid padded to whole bars (one example, or none when
        the sequence has no 4/4 single-tempo grid): what inference, the studio and the plots
        work on. No windowing and no note dropout (at inference the user's notes are the
        input); the other input transforms apply unless ``transform`` is False."""
        whole = replace(
            self.data,
            split_bars=None,
            hop_size=None,
            windowing="file",
            max_note_dropout_probability=None,
            velocity_dropout_probability=None,
        )
        if not transform:
            whole = replace(
                whole,
                humanize=False,
                tapify=False,
                fixed_velocities=False,
                add_instruments=(),
                hits_as_controls=False,
                taps_as_controls=False,
            )
        tensors = GrooveConverter(whole, mode=self.mode).to_tensors(ns, rng)
        if transform and self.data.velocity_dropout_probability:
            tensors.inputs = [self.fixed_if_flat(x) for x in tensors.inputs]
        return tensors

    @staticmethod
    def fixed_if_flat(inputs: np.ndarray) -> np.ndarray:
        """(T, 27) encoder inputs with the velocities cleared when every hit has the same one:
        taps from a mouse or a computer keyboard carry no dynamics, and a model trained with
        ``velocity_dropout_probability`` knows fixed-velocity taps as velocities of 0."""
        n = NUM_CLASSES
        played = inputs[..., n : 2 * n][inputs[..., :n] > 0.5]
        if len(played) and np.ptp(played) == 0:
            inputs = inputs.copy()
            inputs[..., n : 2 * n] = 0.0
        return inputs

    # ---------------------------------------------------------------- from tensors

    def from_tensors(
        self, outputs: np.ndarray, controls: np.ndarray | None = None, *, qpm: float = 120.0
    ) -> list[NoteSequence]:
        """Decode (B, T, 27) or (T, 27) outputs into drum NoteSequences at ``qpm``.

        A note for every hit > 0.5, pitch = first pitch of its class (mode-dependent), velocity =
        clip(round(v * 127), 0, 127), start = (step - clip(offset / 2, -0.5, 0.5)) * step seconds,
        one step long; notes in Magenta's order (by step, then class). ``controls`` is unused, as
        in Magenta.
        """
        del controls
        arr = self.batch_outputs(outputs)
        step_length = 60.0 / qpm / self.data.steps_per_quarter
        first_pitch = np.array([c[0] for c in self.pitch_classes], np.int16)
        sequences = []
        for sample in arr:
            hits, vel, off = np.split(sample, 3, axis=-1)
            steps, classes = np.nonzero(hits > 0.5)  # row-major: step, then class
            # Kept in the tensor's dtype, as Magenta computes them on the sample's values.
            velocity = np.clip(np.round(vel[steps, classes] * 127), 0, 127).astype(np.int16)
            shift = np.clip(off[steps, classes] / 2, -0.5, 0.5).astype(np.float64)
            start = (steps - shift) * step_length
            sequences.append(
                NoteSequence(
                    pitch=first_pitch[classes],
                    velocity=velocity,
                    start=start,
                    end=start + step_length,
                    is_drum=np.ones(len(steps), bool),
                    program=np.zeros(len(steps), np.int16),
                    tempos=[Tempo(0.0, float(qpm))],
                )
            )
        return sequences

    def replay(self, ns: NoteSequence, outputs: np.ndarray, *, qpm: float = 120.0) -> NoteSequence:
        """Every note of ``ns`` played as (T, 27) ``outputs`` that keep its hits (a humanize or
        add-instrument model's, with ``keep_hits``) play its grid cells.

        :meth:`from_tensors` writes one note per cell, so notes of one class that share a 16th
        note (a flam, a drag, a buzz) became one. Here each of them is kept: the cell's loudest
        note (the one the grid holds) gets the cell's new timing and velocity, and the others
        keep their distance in time from it (in steps, so a new ``qpm`` scales it) and their
        velocity relative to it. A cell with a single note gives exactly ``from_tensors``'s
        note, and the classes the model adds (``add_instruments``) are its notes alone. Notes the
        grid cannot hold (a pitch outside the drum map) are kept as they were played. Notes come in
        ``from_tensors``'s order: by step, then class (then, within a cell, by onset).
        """
        arr = np.asarray(outputs)
        (played,) = self.from_tensors(arr, qpm=qpm)
        timing = timing_grid(ns, self.data.steps_per_quarter, self.steps_per_bar)
        grid = file_grid(ns, self._lookup, self.data.steps_per_quarter, self.steps_per_bar)
        if timing is None or grid is None:
            return played
        hits, vel, off = np.split(arr, 3, axis=-1)
        step_out = 60.0 / qpm / self.data.steps_per_quarter
        scale = step_out * timing.steps_per_second  # input seconds -> output seconds
        idx, steps, classes = grid.order, grid.steps, grid.classes
        # An added instrument is the model's alone: the input's notes of its class are not read.
        replaced = np.isin(classes, self.data.add_instruments)
        inside = (steps < len(arr)) & ~replaced
        inside[inside] = hits[steps[inside], classes[inside]] > 0.5
        idx, steps, classes = idx[inside], steps[inside], classes[inside]
        velocity = ns.velocity[idx].astype(np.int64)
        # Each cell's anchor: its loudest note, the first in the sequence among equals (the
        # note scatter_loudest put on the grid).
        rank = np.lexsort((idx, -velocity, classes, steps))
        first = np.ones(len(rank), bool)
        first[1:] = (steps[rank][1:] != steps[rank][:-1]) | (
            classes[rank][1:] != classes[rank][:-1]
        )
        anchor = np.empty(len(rank), np.int64)
        anchor[rank] = rank[np.maximum.accumulate(np.where(first, np.arange(len(rank)), 0))]
        # As from_tensors computes them (in the tensor's dtype).
        cell_velocity = np.clip(np.round(vel[steps, classes] * 127), 0, 127).astype(np.int16)
        shift = np.clip(off[steps, classes] / 2, -0.5, 0.5).astype(np.float64)
        loudest = velocity[anchor]
        ratio = np.where(loudest > 0, velocity / np.maximum(loudest, 1), 1.0)
        start = (steps - shift) * step_out + (ns.start[idx] - ns.start[idx[anchor]]) * scale
        # Cells with none of the input's notes: the model's own (an added instrument).
        theirs = np.zeros(hits.shape, bool)
        theirs[steps, classes] = True
        out_steps, out_classes = np.nonzero(hits > 0.5)
        added = ~theirs[out_steps, out_classes]
        # Notes no cell holds: as played.
        rest = np.setdiff1d(np.arange(len(ns)), np.concatenate([idx, grid.order[replaced]]))
        rest_steps = quantize(ns.start[rest], timing.steps_per_second)
        first_pitch = np.array([c[0] for c in self.pitch_classes], np.int16)
        parts = {
            "pitch": (first_pitch[classes], played.pitch[added], ns.pitch[rest]),
            "velocity": (
                np.clip(np.round(cell_velocity * ratio), 0, 127),
                played.velocity[added],
                ns.velocity[rest],
            ),
            "start": (start, played.start[added], ns.start[rest] * scale),
            "is_drum": (np.ones(len(idx), bool), played.is_drum[added], ns.is_drum[rest]),
            "program": (np.zeros(len(idx), np.int16), played.program[added], ns.program[rest]),
        }
        notes = {k: np.concatenate(v) for k, v in parts.items()}
        end = np.concatenate([start + step_out, played.end[added], ns.end[rest] * scale])
        key_steps = np.concatenate([steps, out_steps[added], rest_steps])
        key_classes = np.concatenate([classes, out_classes[added], np.full(len(rest), NUM_CLASSES)])
        order = np.lexsort((notes["start"], key_classes, key_steps))
        return NoteSequence(
            pitch=notes["pitch"][order],
            velocity=notes["velocity"][order],
            start=notes["start"][order],
            end=end[order],
            is_drum=notes["is_drum"][order],
            program=notes["program"][order],
            tempos=list(played.tempos),
        )


def tensors_to_midi(
    outputs: np.ndarray,
    path: str | os.PathLike,
    *,
    qpm: float = 120.0,
    mode: str = "train",
    data: DataConfig | None = None,
) -> Path:
    """Write GrooVAE outputs as a drum MIDI file (atomically); returns the path.

    (T, 27) is one sequence; (B, T, 27) writes the B windows one after another. ``mode`` picks
    the pitch written per class ("infer" writes 45/48 for the low/mid toms, as Magenta's
    TrainedModel does).
    """
    from musicvae.data.midi import write_midi

    arr = np.asarray(outputs)
    if arr.ndim == 3:
        arr = arr.reshape(-1, arr.shape[-1])
    converter = GrooveConverter(data or DataConfig(), mode=mode)
    (ns,) = converter.from_tensors(arr, qpm=qpm)
    return write_midi(ns, path)
