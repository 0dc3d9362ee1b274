"""Devices and multi-process training: one process per GPU (or CPU worker) under ``torchrun``.

``torchrun --nproc_per_node N -m musicvae.cli.main train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; ``setup`` then joins the process group (NCCL on CUDA, gloo on CPU) and picks this
process's device. A plain run is a world of one and needs no process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from musicvae.cpu import usable_cores

_CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = _CPU

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs, event files and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """See :func:`musicvae.device.resolve_device`."""
    from musicvae.device import resolve_device as resolve

    return resolve(name, local_rank)


def setup(device: str = "cpu") -> DistInfo:
    """Join the process group when launched by torchrun, and choose this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=dev if dev.type == "cuda" else None)
    return DistInfo(rank, world_size, local_rank, local_world, dev)


def set_cpu_threads(info: DistInfo, threads: int | None = None) -> int:
    """Use ``threads``, or give each local process an equal share of the cores (all of them for
    a single process)."""
    if threads:
        torch.set_num_threads(threads)
        return threads
    threads = max(1, usable_cores() // max(1, info.local_world_size))
    torch.set_num_threads(threads)
    return threads


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` in a multi-process run, else the model itself."""
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def broadcast_int(value: int, info: DistInfo) -> int:
    """Rank 0's ``value`` on every rank (e.g. a random seed or a resume step)."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=info.device)
    dist.broadcast(t, src=0)
    return int(t.item())


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
