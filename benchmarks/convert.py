"""Benchmark: GMD MIDI files/s for ``musicvae convert`` vs a pretty_midi parse of the same files.

pretty_midi is the parser behind Magenta's ``convert_dir_to_note_sequences`` (note_seq's
``midi_to_note_sequence``); the baseline parses each file with it and gathers the same note
columns, tempos and time signatures, in one process as Magenta does. Ours is timed on all cores
(what ``musicvae convert`` does) and on one process. Prints one JSON object.

    .venv/bin/python benchmarks/convert.py [--limit N] [--groove DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from musicvae.cpu import usable_cores
from musicvae.data.convert import convert_folder, find_midi_files, parse_files

DEFAULT_GROOVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "groove"


def pretty_midi_parse(path: Path) -> dict:
    """What note_seq extracts from a PrettyMIDI object, as numpy columns."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(path.read_bytes()))
    notes = [
        (n.pitch, n.velocity, n.start, n.end, inst.is_drum, inst.program)
        for inst in pm.instruments
        for n in inst.notes
    ]
    arr = np.array(notes, np.float64).reshape(-1, 6)
    tempo_times, qpms = pm.get_tempo_changes()
    return {
        "notes": arr,
        "tempos": list(zip(tempo_times, qpms, strict=True)),
        "time_signatures": [
            (ts.time, ts.numerator, ts.denominator) for ts in pm.time_signature_changes
        ],
        "ticks_per_quarter": pm.resolution,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N files")
    parser.add_argument("--groove", type=Path, default=DEFAULT_GROOVE, help="GMD folder")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all)")
    args = parser.parse_args()

    files = find_midi_files(args.groove)[: args.limit]
    jobs = [(str(p), p.relative_to(args.groove).as_posix()) for p in files]
    n = len(files)
    workers = args.workers or usable_cores()

    # Warm the page cache so every route reads the files from memory.
    for p in files:
        p.read_bytes()

    t0 = time.perf_counter()
    if args.limit is None:
        report = convert_folder(args.groove, workers=workers, progress=False)
        ok = len(report.sequences)
    else:
        ok = sum(not isinstance(r, str) for r in parse_files(jobs, workers=workers, progress=False))
    ours_all = time.perf_counter() - t0

    t0 = time.perf_counter()
    parse_files(jobs, workers=1, progress=False)
    ours_one = time.perf_counter() - t0

    t0 = time.perf_counter()
    for p in files:
        pretty_midi_parse(p)
    pm_one = time.perf_counter() - t0

    print(
        json.dumps(
            {
                "files": n,
                "parsed": ok,
                "workers": workers,
                "cpu": platform.processor() or platform.machine(),
                "cores_available": os.cpu_count(),
                "ours_all_cores": {
                    "seconds": round(ours_all, 3),
                    "files_per_s": round(n / ours_all, 1),
                },
                "ours_1_process": {
                    "seconds": round(ours_one, 3),
                    "files_per_s": round(n / ours_one, 1),
                },
                "pretty_midi_1_process": {
                    "seconds": round(pm_one, 3),
                    "files_per_s": round(n / pm_one, 1),
                },
                "speedup_all_cores_vs_pretty_midi": round(pm_one / ours_all, 1),
                "speedup_1_process_vs_pretty_midi": round(pm_one / ours_one, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
