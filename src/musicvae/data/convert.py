"""A folder of MIDI files (or a NoteSequence TFRecord) to a dataset file.

Every ``.mid``/``.midi`` under the folder is parsed with :func:`musicvae.data.midi.read_midi` on
all cores (chunks of files per process). A file that cannot be parsed is reported on one line (its
path and the reason) and skipped. When the folder holds the Groove MIDI Dataset's ``info.csv``, its
fields (drummer, session, style, bpm, beat_type, time_signature, split) are merged into each
sequence's ``meta`` by relative path. Sequence ids follow Magenta's ``convert_dir_to_note_sequences``:
``/id/midi/<folder name>/<sha1 of the relative path>``.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from musicvae.cpu import usable_cores
from musicvae.data.dataset import DEFAULT_SPLIT, META_COLUMNS, SPLITS, write_dataset
from musicvae.data.midi import MIDI_SUFFIXES, read_midi
from musicvae.data.sequence import NoteSequence
from musicvae.data.windows import check_bars
from musicvae.errors import MusicVAEError

INFO_CSV = "info.csv"
# Below this many files a process pool costs more than it saves.
MIN_FILES_FOR_POOL = 16


@dataclass
class ConvertReport:
    """What a conversion produced: the sequences, and the files it had to skip with reasons."""

    sequences: list[NoteSequence]
    found: int
    skipped: list[str] = field(default_factory=list)  # one line each: "<path>: <reason>"
    seconds: float = 0.0
    info_csv: Path | None = None

    @property
    def summary(self) -> str:
        rate = self.found / self.seconds if self.seconds > 0 else float("inf")
        return (
            f"converted {len(self.sequences)} of {self.found} MIDI files "
            f"({len(self.skipped)} skipped) in {self.seconds:.2f} s ({rate:.0f} files/s)"
        )


def find_midi_files(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """MIDI files under ``root`` (by suffix, any case), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise MusicVAEError(f"{root}: not a folder")
    found = root.rglob("*") if recursive else root.iterdir()
    files = [p for p in found if p.suffix.lower() in MIDI_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def sequence_id(relative_path: str, collection: str) -> str:
    """Magenta's NoteSequence id for a MIDI file: the SHA-1 of its path, under its collection."""
    digest = hashlib.sha1(relative_path.encode("utf-8")).hexdigest()
    return f"/id/midi/{collection}/{digest}"


def hash_split(relative_path: str) -> str:
    """A stable 80/10/10 train/validation/test split from a SHA-256 of the relative path."""
    bucket = int.from_bytes(hashlib.sha256(relative_path.encode("utf-8")).digest()[:8], "big") % 10
    return "train" if bucket < 8 else "validation" if bucket == 8 else "test"


def load_info_csv(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """GMD ``info.csv`` rows keyed by ``midi_filename``, with the metadata columns we keep."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "midi_filename" not in reader.fieldnames:
                raise MusicVAEError(f"{path}: no 'midi_filename' column")
            rows = {}
            for row in reader:
                name = (row.get("midi_filename") or "").strip()
                if name:
                    rows[name] = {
                        k: row[k].strip() for k in META_COLUMNS if (row.get(k) or "").strip()
                    }
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise MusicVAEError(f"{path}: cannot read ({e})") from None


def apply_metadata(
    sequences: Iterable[NoteSequence],
    info: dict[str, dict[str, str]] | None = None,
    *,
    split_by_hash: bool = False,
) -> None:
    """Merge info.csv fields into ``meta`` and give every sequence a split.

    The split comes from info.csv when it has one for the file, else from ``hash_split`` when
    ``split_by_hash``, else from the sequence's own meta, else "train".
    """
    for ns in sequences:
        row = (info or {}).get(ns.filename, {})
        ns.meta.update(row)
        if row.get("split") and row["split"] not in SPLITS:
            # A misspelt split would leave the file out of training and evaluation unseen.
            raise MusicVAEError(
                f"info.csv: {ns.filename}: split {row['split']!r} is not one of {', '.join(SPLITS)}"
            )
        if "split" not in row:
            if split_by_hash:
                ns.meta["split"] = hash_split(ns.filename)
            else:
                ns.meta.setdefault("split", DEFAULT_SPLIT)


def _parse_chunk(jobs: list[tuple[str, str]]) -> list[NoteSequence | str]:
    """Parse (path, relative path) pairs; a failure becomes its one-line message."""
    out: list[NoteSequence | str] = []
    for path, rel in jobs:
        try:
            ns = read_midi(path, filename=path)
        except MusicVAEError as e:
            out.append(str(e))
            continue
        except Exception as e:  # noqa: BLE001 - anything a malformed file can trigger deeper down
            out.append(f"{path}: {type(e).__name__} ({e})")
            continue
        if len(ns) == 0:
            out.append(f"{path}: has no notes")
            continue
        try:
            check_bars(ns, path)  # training and stats would make every window of it at once
        except MusicVAEError as e:
            out.append(str(e))
            continue
        ns.filename = rel
        out.append(ns)
    return out


def parse_files(
    jobs: list[tuple[str, str]],
    *,
    workers: int | None = None,
    progress: bool | None = None,
) -> list[NoteSequence | str]:
    """``_parse_chunk`` over all jobs, in input order, on ``workers`` processes with a tqdm bar."""
    workers = usable_cores() if workers is None else max(1, workers)
    bar = tqdm(total=len(jobs), unit="file", desc="converting", disable=_bar_off(progress))
    results: list[list[NoteSequence | str]]
    if workers == 1 or len(jobs) < MIN_FILES_FOR_POOL:
        results = []
        for job in jobs:
            results.append(_parse_chunk([job]))
            bar.update(1)
    else:
        # Several chunks per worker balance uneven file sizes; few enough to keep IPC cheap.
        size = max(1, math.ceil(len(jobs) / (workers * 4)))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        results = [[] for _ in chunks]
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            futures = {pool.submit(_parse_chunk, c): i for i, c in enumerate(chunks)}
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except cf.process.BrokenProcessPool:
                    # A parser process died (it should not); name the files it may have held.
                    results[i] = [f"{path}: parser process crashed" for path, _ in chunks[i]]
                bar.update(len(chunks[i]))
    bar.close()
    return [r for chunk in results for r in chunk]


def _bar_off(progress: bool | None) -> bool | None:
    # None lets tqdm decide: a bar on a terminal, nothing in logs and tests.
    return None if progress is None else not progress


def convert_folder(
    input_dir: str | os.PathLike,
    *,
    recursive: bool = True,
    split_by_hash: bool = False,
    workers: int | None = None,
    progress: bool | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> ConvertReport:
    """Parse every MIDI file under ``input_dir``; report (via ``on_skip``) and skip broken ones."""
    t0 = time.perf_counter()
    root = Path(input_dir)
    files = find_midi_files(root, recursive=recursive)
    collection = root.name or root.resolve().name
    jobs = [(str(p), p.relative_to(root).as_posix()) for p in files]
    report = ConvertReport(sequences=[], found=len(files))
    for item in parse_files(jobs, workers=workers, progress=progress):
        if isinstance(item, str):
            report.skipped.append(item)
            if on_skip is not None:
                on_skip(item)
        else:
            item.id = sequence_id(item.filename, collection)
            report.sequences.append(item)
    info_path = root / INFO_CSV
    info = None
    if info_path.is_file():
        info = load_info_csv(info_path)
        report.info_csv = info_path
    apply_metadata(report.sequences, info, split_by_hash=split_by_hash)
    report.seconds = time.perf_counter() - t0
    return report


def convert_tfrecord(
    path: str | os.PathLike,
    *,
    info_dir: str | os.PathLike | None = None,
    split_by_hash: bool = False,
) -> ConvertReport:
    """Read a NoteSequence TFRecord (Magenta's format), merging ``info_dir``/info.csv if any."""
    from musicvae.data import tfrecord  # lazy: protobuf is only needed here

    t0 = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise MusicVAEError(f"{path}: no such file")
    if not tfrecord.is_tfrecord(path):
        raise MusicVAEError(f"{path}: not a TFRecord file")
    try:
        sequences = list(tfrecord.read_note_sequences(path))
    except MusicVAEError:
        raise
    except Exception as e:  # noqa: BLE001 - damaged records surface as protobuf or struct errors
        raise MusicVAEError(f"{path}: corrupt TFRecord ({e})") from None
    report = ConvertReport(sequences=sequences, found=len(sequences))
    info = None
    if info_dir is not None and (Path(info_dir) / INFO_CSV).is_file():
        report.info_csv = Path(info_dir) / INFO_CSV
        info = load_info_csv(report.info_csv)
    apply_metadata(sequences, info, split_by_hash=split_by_hash)
    report.seconds = time.perf_counter() - t0
    return report


def write_report(
    report: ConvertReport, output: str | os.PathLike, source: str, fmt: str = "parquet"
) -> Path:
    """Write the sequences to ``output`` as ``fmt`` (``parquet`` or a NoteSequence
    ``tfrecord``); nothing read at all is an error naming ``source``."""
    if report.found == 0:
        raise MusicVAEError(f"{source}: no MIDI files (.mid, .midi) found")
    if not report.sequences:
        raise MusicVAEError(
            f"{source}: no MIDI file could be read ({report.found} found, "
            f"{len(report.skipped)} skipped)"
        )
    if fmt == "tfrecord":
        from musicvae.data.tfrecord import write_note_sequences

        write_note_sequences(report.sequences, output)
        return Path(output)
    return write_dataset(report.sequences, output)


def print_skip(line: str) -> None:
    print(f"skipped {line}", file=sys.stderr)
