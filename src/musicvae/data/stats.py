"""How many training examples a config's converter makes of a dataset, per split, on all cores.

Each worker process builds one converter (``build_converter(config, mode)``) and runs
``examples(ns)`` over chunks of sequences; :func:`map_examples` is also how the PyTorch dataset
precomputes its tensors.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from musicvae.configs import Config
from musicvae.cpu import usable_cores
from musicvae.data.dataset import SPLITS, read_dataset
from musicvae.data.sequence import NoteSequence

# Below this many sequences a process pool costs more than it saves.
MIN_SEQUENCES_FOR_POOL = 32

_converter: Any = None  # the worker's converter, built once per process


def _init_converter(config: Config, mode: str) -> None:
    from musicvae.data.converters import build_converter

    global _converter
    _converter = build_converter(config, mode)


def _count(ns: NoteSequence) -> int:
    return len(_converter.examples(ns).inputs)


def _run_chunk(func: Callable[[NoteSequence], Any], chunk: list[NoteSequence]) -> list[Any]:
    return [func(ns) for ns in chunk]


def map_examples(
    func: Callable[[NoteSequence], Any],
    sequences: Sequence[NoteSequence],
    config: Config,
    *,
    mode: str = "train",
    workers: int | None = None,
    progress: bool | None = None,
    desc: str = "converting",
) -> list[Any]:
    """``func(ns)`` for every sequence, in order, with a per-process converter in ``_converter``.

    ``func`` must be a module-level function (it is pickled to the workers).
    """
    from musicvae.data.windows import check_bars

    for ns in sequences:  # before any window is made: one note hours late would fill the memory
        check_bars(ns)
    workers = usable_cores() if workers is None else max(1, workers)
    bar = tqdm(
        total=len(sequences),
        unit="seq",
        desc=desc,
        disable=None if progress is None else not progress,
    )
    if workers == 1 or len(sequences) < MIN_SEQUENCES_FOR_POOL:
        _init_converter(config, mode)
        out = []
        for ns in sequences:
            out.append(func(ns))
            bar.update(1)
        bar.close()
        return out
    size = max(1, math.ceil(len(sequences) / (workers * 4)))
    chunks = [list(sequences[i : i + size]) for i in range(0, len(sequences), size)]
    results: list[list[Any]] = [[] for _ in chunks]
    with cf.ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)), initializer=_init_converter, initargs=(config, mode)
    ) as pool:
        futures = {pool.submit(_run_chunk, func, c): i for i, c in enumerate(chunks)}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            bar.update(len(chunks[i]))
    bar.close()
    return [r for chunk in results for r in chunk]


def dataset_stats(
    source: str | os.PathLike | Sequence[NoteSequence],
    config: Config,
    *,
    workers: int | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """``{"sequences": N, "examples": M, "splits": {split: {"sequences", "examples", "empty"}}}``.

    ``empty`` counts sequences that give no example (too short, tempo or time-signature changes,
    a bar that is not ``steps_per_bar`` steps long). Splits with no sequences are left out.
    """
    sequences = read_dataset(source) if isinstance(source, str | os.PathLike) else list(source)
    counts = map_examples(
        _count, sequences, config, workers=workers, progress=progress, desc="counting"
    )
    names = [s for s in SPLITS if any(ns.meta.get("split", "train") == s for ns in sequences)]
    names += sorted({ns.meta.get("split", "train") for ns in sequences} - set(SPLITS))
    splits: dict[str, dict[str, int]] = {
        s: {"sequences": 0, "examples": 0, "empty": 0} for s in names
    }
    for ns, n in zip(sequences, counts, strict=True):
        entry = splits[ns.meta.get("split", "train")]
        entry["sequences"] += 1
        entry["examples"] += n
        entry["empty"] += int(n == 0)
    return {"sequences": len(sequences), "examples": sum(counts), "splits": splits}


def format_stats(stats: dict[str, Any], title: str = "") -> str:
    """A small fixed-width table of ``dataset_stats`` output, for people."""
    rows = [("split", "sequences", "examples", "no examples")]
    for name, s in stats["splits"].items():
        rows.append((name, str(s["sequences"]), str(s["examples"]), str(s["empty"])))
    empty = sum(s["empty"] for s in stats["splits"].values())
    rows.append(("total", str(stats["sequences"]), str(stats["examples"]), str(empty)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [title] if title else []
    for j, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if j == 0 or j == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
