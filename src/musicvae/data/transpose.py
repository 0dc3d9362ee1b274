"""Magenta's training-time transposition of melodies, on one-hot melody windows.

Magenta's melody configs train on melodies transposed by a random whole number of semitones in
``transpose_range`` (its ``NoteSequenceAugmenter``, ``(-5, 5)`` for the 2-bar models), drawn by
``random.randint`` and applied to the whole NoteSequence before conversion; evaluation reads
them as they are. Our dataset stores converter windows, so the shift is applied to the training
batches instead: in a 90-class window a transposition by ``k`` moves every pitch class
(2..89, MIDI 21..108) ``k`` classes up and leaves NO_EVENT and NOTE_OFF where they are.

A shift that would push a note out of 21..108: Magenta draws ``k`` over the whole range and
deletes such notes (note_seq's ``augment_note_sequence`` with ``delete_out_of_range_notes``).
In a window a deleted note has no exact equivalent, as Magenta drops it before extracting the
melody, which then cuts its windows differently. So each window's range is narrowed as note_seq
does with ``delete_out_of_range_notes=False`` (``_clamp_transpose``: each end moved just far
enough in that every note stays on the piano) and ``k`` is drawn uniformly in what is left:
nothing is lost, and only windows within 5 semitones of A0 or C8 see a narrower range.

Each window gets its own shift, drawn afresh at every step as a pure function of (seed, rank,
step), so a resumed run draws what an uninterrupted one would have. (Magenta draws one shift per
sequence per pass over the data; with its default ``--cache_dataset`` the first pass is cached,
so each sequence keeps its first shift for the whole run.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.data.converters.melody import NUM_SPECIAL_EVENTS


def transpose_windows(windows: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """(B, T, D) one-hot melody windows with row ``b``'s pitch classes moved ``shifts[b]`` up.

    NO_EVENT and NOTE_OFF stay; all-zero steps (padding) stay zero. Every shifted class must
    stay within 0..D-1 (one_hot refuses it otherwise), and within 2..D-1 to stay a pitch:
    :func:`shift_bounds` gives such shifts.
    """
    classes = windows.argmax(-1)
    is_pitch = classes >= NUM_SPECIAL_EVENTS
    moved = torch.where(is_pitch, classes + shifts.to(classes)[:, None], classes)
    onehot = torch.nn.functional.one_hot(moved, windows.shape[-1]).to(windows.dtype)
    return onehot * windows.sum(-1, keepdim=True)  # padding rows stay zero


def shift_bounds(windows: torch.Tensor, low: int, high: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window, ``(low, high)`` narrowed so that every note stays on the pitch classes:
    note_seq's ``_clamp_transpose`` of each end, on the window's lowest and highest note.
    A window with no note keeps ``(low, high)``."""
    depth = windows.shape[-1]
    classes = windows.argmax(-1)
    is_pitch = classes >= NUM_SPECIAL_EVENTS  # padding's argmax is 0: not a pitch
    # A window without notes gets the room of an empty keyboard, more than any range asks.
    lowest = torch.where(is_pitch, classes, depth).amin(-1)
    highest = torch.where(is_pitch, classes, NUM_SPECIAL_EVENTS - 1).amax(-1)
    room_down = lowest - NUM_SPECIAL_EVENTS
    room_up = depth - 1 - highest

    def clamp(amount: int) -> torch.Tensor:
        if amount < 0:
            return torch.maximum(torch.full_like(room_down, amount), -room_down)
        return torch.minimum(torch.full_like(room_up, amount), room_up)

    return clamp(low), clamp(high)


@dataclass(frozen=True)
class Transposition:
    """The transposition a melody config's training asks for, applied to whole batches."""

    low: int
    high: int
    seed: int
    rank: int = 0
    # A chord model's controls move with its melody, as Magenta transposes the whole sequence
    # (chords included) before converting it.
    chord_encoding: str | None = None

    @staticmethod
    def from_config(config: Config, seed: int, rank: int = 0) -> Transposition | None:
        """None when ``config.data.transpose_range`` is unset or (0, 0)."""
        span = config.data.transpose_range
        if not span or not any(span):
            return None
        low, high = span
        return Transposition(low, high, seed, rank, config.data.chord_encoding)

    def shifts(self, windows: torch.Tensor, step: int) -> torch.Tensor:
        """(B,) int64 shifts of training step ``step``'s windows, each uniform over its
        narrowed range (:func:`shift_bounds`), on the windows' device."""
        # One uniform per window, drawn on the host from (seed, rank, step) alone, so the draw
        # does not depend on the device or on which windows the batch holds.
        u = np.random.default_rng([self.seed, self.rank, step]).random(len(windows))
        low, high = shift_bounds(windows, self.low, self.high)
        width = (high - low + 1).double()
        pick = torch.floor(torch.from_numpy(u).to(width.device) * width).long()
        return low + torch.minimum(pick, (width - 1).long())

    def __call__(self, batch: tuple[torch.Tensor, ...], step: int) -> tuple[torch.Tensor, ...]:
        """``(inputs, outputs, controls, lengths)`` of training step ``step``, transposed.
        Inputs and outputs of a window move by the same shift (for melodies they are equal)."""
        inputs, outputs, controls, lengths = batch
        shifts = self.shifts(outputs, step)
        new_outputs = transpose_windows(outputs, shifts)
        new_inputs = new_outputs if inputs is outputs else transpose_windows(inputs, shifts)
        if self.chord_encoding and controls.shape[-1]:
            from musicvae.data.chords import transpose_chord_controls

            moved = transpose_chord_controls(
                controls.cpu().numpy(), shifts.cpu().numpy(), self.chord_encoding
            )
            controls = torch.from_numpy(np.ascontiguousarray(moved)).to(controls)
        return new_inputs, new_outputs, controls, lengths
