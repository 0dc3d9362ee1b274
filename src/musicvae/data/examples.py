"""Training examples as stacked tensors, and the order batches are drawn in.

The converter output of a whole split is computed once and held as four tensors, so a training
batch is a single index-gather (no per-example Python, no worker processes). The batch order is a
pure function of (seed, step, rank): Magenta's shuffle-repeat-batch stream, where each epoch is a
``DistributedSampler`` permutation (``seed + epoch``), every rank reads its own shard and a batch
may run across an epoch boundary. Resuming at step ``s`` therefore draws exactly the batches an
uninterrupted run would have drawn.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

import torch
from torch.utils.data import DistributedSampler

from musicvae.configs import Config
from musicvae.errors import MusicVAEError


class Items(Protocol):
    """A dataset of ``(inputs, outputs, controls, length)`` items: a length and indexing."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[Any, ...]: ...


@dataclass
class Examples:
    """Every example of a split: ``inputs``/``outputs`` (N, T, D), ``controls`` (N, T, C),
    ``lengths`` (N,).

    ``inputs`` is None when the converter is random (note dropout): each batch then asks
    ``source`` (the dataset) for freshly drawn encoder inputs, item by item.
    """

    inputs: torch.Tensor | None
    outputs: torch.Tensor
    controls: torch.Tensor
    lengths: torch.Tensor
    source: Items | None = None

    def __len__(self) -> int:
        return int(self.outputs.shape[0])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.inputs is None:
            if self.source is None:
                raise MusicVAEError("examples without inputs need the dataset they came from")
            source = self.source
            inputs = torch.stack([source[i][0] for i in index.tolist()])
        else:
            inputs = self.inputs[index]
        return inputs, self.outputs[index], self.controls[index], self.lengths[index]

    def to(self, device: torch.device | str) -> Examples:
        if self.inputs is None:  # drawn on the host per batch
            return self
        moved = [t.to(device) for t in (self.inputs, self.outputs, self.controls, self.lengths)]
        if self.inputs is self.outputs:
            moved[0] = moved[1]  # keep a single copy when inputs are the targets
        inputs, outputs, controls, lengths = moved
        return Examples(inputs, outputs, controls, lengths)

    @staticmethod
    def stack(items: Items) -> Examples:
        """Stack ``(inputs, outputs, controls, length)`` tuples (any indexable dataset)."""
        rows = [items[i] for i in range(len(items))]
        if not rows:
            raise ValueError("no examples to stack")
        ins, outs, ctls, lens = zip(*rows, strict=True)
        return Examples(
            torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in ins]),
            torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in outs]),
            torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in ctls]),
            torch.as_tensor([int(n) for n in lens], dtype=torch.int64),
        )


@overload
def load_examples(
    path: str | os.PathLike,
    config: Config,
    split: str | None,
    *,
    required: Literal[True] = True,
    progress: bool | None = None,
) -> Examples: ...


@overload
def load_examples(
    path: str | os.PathLike,
    config: Config,
    split: str | None,
    *,
    required: bool,
    progress: bool | None = None,
) -> Examples | None: ...


def load_examples(
    path: str | os.PathLike,
    config: Config,
    split: str | None,
    *,
    required: bool = True,
    progress: bool | None = None,
) -> Examples | None:
    """The converter tensors of ``split`` of a dataset file (None or an error when it is empty)."""
    from musicvae.data.torch_dataset import GrooveDataset

    dataset = GrooveDataset(path, config, split=split, progress=progress)
    if len(dataset) == 0:
        if not required:
            return None
        where = f"the {split!r} split" if split else "the file"
        raise MusicVAEError(f"{path}: {where} yields no {config.name} examples")
    return from_dataset(dataset)


def from_dataset(dataset: Items) -> Examples:
    """Stacked tensors of a dataset: its precomputed tensors when it exposes them, else stacked."""
    names = ("outputs", "controls", "lengths")
    if all(isinstance(getattr(dataset, n, None), torch.Tensor) for n in names):
        inputs = getattr(dataset, "inputs", None)
        outputs, controls, lengths = (getattr(dataset, n) for n in names)
        if isinstance(inputs, torch.Tensor):
            return Examples(inputs, outputs, controls, lengths)
        return Examples(None, outputs, controls, lengths, source=dataset)
    return Examples.stack(dataset)


class BatchStream:
    """Batch indices for one rank, from global step ``start_step`` on (endless).

    ``batch_size`` is the per-rank batch; each epoch every rank sees ``len // world_size`` examples.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
    ) -> None:
        if num_examples < world_size:
            raise ValueError(f"{num_examples} examples cannot be shared by {world_size} processes")
        self.sampler: DistributedSampler[int] = DistributedSampler(
            range(num_examples),  # type: ignore[arg-type]  # stubs want a Dataset; it takes len()
            num_replicas=world_size,
            rank=rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self.batch_size = batch_size
        self.per_epoch = len(self.sampler)
        position = start_step * batch_size
        self.epoch, self.offset = divmod(position, self.per_epoch)
        self._order = self._epoch_order(self.epoch)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        self.sampler.set_epoch(epoch)
        return torch.tensor(list(self.sampler), dtype=torch.int64)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def __next__(self) -> torch.Tensor:
        parts, need = [], self.batch_size
        while need:
            take = self._order[self.offset : self.offset + need]
            parts.append(take)
            need -= len(take)
            self.offset += len(take)
            if self.offset == self.per_epoch:
                self.epoch += 1
                self.offset = 0
                self._order = self._epoch_order(self.epoch)
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def eval_batches(num_examples: int, batch_size: int, num_batches: int | None) -> list[torch.Tensor]:
    """Consecutive batches over a split (a short last batch too), the first ``num_batches``."""
    order = torch.arange(num_examples)
    batches = list(torch.split(order, batch_size))
    return batches[:num_batches] if num_batches else batches
