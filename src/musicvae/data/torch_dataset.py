"""A PyTorch ``Dataset`` of converter examples, computed once when it is built.

``GrooveDataset(source, config, split)`` reads a dataset file (or takes NoteSequences), runs the
config's converter over every sequence on all cores, and keeps the examples as stacked float32
tensors; items are ``(inputs (T, Din), outputs (T, Dout), controls (T, C), length)``. No MIDI is
parsed and nothing is reconverted per epoch. When the converter is random (note dropout), the
targets are kept and the encoder-input transform is re-drawn for each item fetched, one dropout
rate per window.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from musicvae.configs import Config
from musicvae.data import stats
from musicvae.data.dataset import DEFAULT_SPLIT, SPLITS, read_dataset
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError

Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _window_arrays(ns: NoteSequence) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sequence's examples as stacked (n, T, D) float32 arrays and (n,) lengths."""
    conv = stats._converter
    t = conv.examples(ns)
    if not t.inputs:
        width = conv.window_steps or 0
        return (
            np.zeros((0, width, conv.input_depth), np.float32),
            np.zeros((0, width, conv.output_depth), np.float32),
            np.zeros((0, width, conv.control_depth), np.float32),
            np.zeros(0, np.int64),
        )
    return (
        _pad_stack(t.inputs),
        _pad_stack(t.outputs),
        _pad_stack(t.controls),
        np.asarray(t.lengths, np.int64),
    )


def _pad_stack(arrays: list[np.ndarray], steps: int | None = None) -> np.ndarray:
    """Stack (T_i, D) arrays into (n, T, D), zero-padding to ``steps`` (default: the longest)."""
    steps = max(len(a) for a in arrays) if steps is None else steps
    out = np.zeros((len(arrays), steps, arrays[0].shape[-1]), np.float32)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


class GrooveDataset(Dataset):
    """Every converter example of one split, as stacked tensors.

    Attributes: ``inputs`` (N, T, Din) or None when re-drawn per item, ``outputs`` (N, T, Dout),
    ``controls`` (N, T, C), ``lengths`` (N,) or (N, segments) int64, ``sequence_ids`` (N,) the source sequence
    of each example, ``converter``.
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[NoteSequence],
        config: Config,
        split: str | None = "train",
        *,
        mode: str = "train",
        workers: int | None = None,
        progress: bool | None = None,
    ) -> None:
        from musicvae.data.converters import build_converter

        if split is not None and split not in SPLITS:
            raise MusicVAEError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
        if isinstance(source, str | os.PathLike):
            sequences = read_dataset(source, split)
        else:
            sequences = [
                ns for ns in source if split is None or ns.meta.get("split", DEFAULT_SPLIT) == split
            ]
        self.config = config
        self.split = split
        self.converter = build_converter(config, mode)
        per_seq = stats.map_examples(
            _window_arrays,
            sequences,
            config,
            mode=mode,
            workers=workers,
            progress=progress,
            desc=f"examples ({split or 'all'})",
        )
        self.sequence_ids = [ns.id for ns, r in zip(sequences, per_seq, strict=True) for _ in r[3]]
        steps = max((r[0].shape[1] for r in per_seq if len(r[3])), default=0)
        depths = (
            self.converter.input_depth,
            self.converter.output_depth,
            self.converter.control_depth,
        )

        def cat(k: int) -> torch.Tensor:
            parts = [_pad_steps(r[k], steps) for r in per_seq if len(r[3])]
            if not parts:
                return torch.zeros((0, steps, depths[k]))
            return torch.from_numpy(np.concatenate(parts))

        self.outputs = cat(1)
        self.controls = cat(2)
        # (N,) lengths, or (N, segments) for a converter that counts each segment's own steps
        # (multi-track performances); sequences without windows add nothing.
        self.lengths = torch.from_numpy(
            np.concatenate([r[3] for r in per_seq if len(r[3])] or [np.zeros(0, np.int64)])
        )
        if self.converter.is_random:
            self.inputs: torch.Tensor | None = None
        else:
            inputs = cat(0)
            # Without an input transform (groovae_4bar) inputs equal outputs: keep one copy.
            same = inputs.shape == self.outputs.shape and torch.equal(inputs, self.outputs)
            self.inputs = self.outputs if same else inputs

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> Item:
        outputs = self.outputs[index]
        inputs = self.inputs[index] if self.inputs is not None else self._redraw_inputs(outputs)
        return inputs, outputs, self.controls[index], self.lengths[index]

    def _redraw_inputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Apply the converter's random input transform afresh to one (T, Dout) target."""
        # Seeded from torch so torch.manual_seed and DataLoader worker seeding make it repeatable.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        hits, vel, off = np.split(outputs.numpy()[None].astype(np.float64), 3, axis=-1)
        # Only the groove converter's note dropout is random; the protocol leaves it out.
        parts = self.converter._transform_inputs(hits, vel, off, rng)  # type: ignore[attr-defined]
        return torch.from_numpy(np.concatenate(parts, axis=-1)[0].astype(np.float32))


def _pad_steps(a: np.ndarray, steps: int) -> np.ndarray:
    if a.shape[1] == steps:
        return a
    out = np.zeros((a.shape[0], steps, a.shape[2]), np.float32)
    out[:, : a.shape[1]] = a
    return out


def collate(batch: list[Item]) -> Item:
    """Stack items into (B, T, Din), (B, T, Dout), (B, T, C) float32 and (B,) int64 lengths."""
    inputs, outputs, controls, lengths = zip(*batch, strict=True)
    return torch.stack(inputs), torch.stack(outputs), torch.stack(controls), torch.stack(lengths)
