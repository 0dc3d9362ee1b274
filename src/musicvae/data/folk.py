"""O'Neill's Music of Ireland (1903), from music21's corpus, as a melody dataset.

music21 ships ABC transcriptions of Francis O'Neill's book in ``corpus/oneills1850`` (39 files,
about 2,000 tunes). Each tune is parsed with music21, written to MIDI bytes with music21's own
writer (which expands repeats, as Magenta's pipeline sees a MIDI file) and read back with
:func:`musicvae.data.midi.read_midi_bytes`, so the notes are those of the MIDI file.

What cannot be one monophonic line is skipped with its reason: several parts, chords, a meter
that changes inside the tune (usually a bar of the wrong length, which music21 gives its own time
signature), a tune music21 cannot parse or write, and a written melody whose notes overlap.
Grace notes are dropped before writing: music21 writes them as short notes overlapping the main
note, and a 16th-note grid cannot hold them anyway.

Splits are 80/10/10 by a hash of the tune's O'Neill number (ABC ``X:``), not of its file: some
tunes are in two files (two transcribers), and both copies must fall in the same split.

music21 is optional (``pip install 'musicvae[folk]'``) and imported only here, lazily.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
from tqdm import tqdm

from musicvae.cpu import usable_cores
from musicvae.data.midi import read_midi_bytes
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError

CORPUS_FOLDER = "oneills1850"
COLLECTION = "oneills1850"
INSTALL_HINT = "pip install 'musicvae[folk]'"
FOLK_CREDIT = (
    "Francis O'Neill, O'Neill's Music of Ireland (Chicago, 1903; public domain), in the ABC "
    "transcriptions of music21's corpus folder oneills1850 (music21 is BSD-3-Clause; its "
    "corpus/license.txt: encodings distributed with the encoders' permission, possibly with "
    "restrictions on commercial use). The transcribers are named in each tune's ABC Z: field, "
    "kept in the dataset's meta as 'transcriber'."
)
# Skip reasons, in the order they are checked (the report counts each).
SKIP_PARSE = "music21 cannot parse it"
SKIP_PARTS = "more than one part"
SKIP_CHORDS = "has chords"
SKIP_METER = "meter changes inside the tune"
SKIP_NO_METER = "no time signature"
SKIP_WRITE = "music21 cannot write it as MIDI"
SKIP_EMPTY = "no notes"
SKIP_OVERLAP = "written notes overlap"
# Below this many tunes a process pool costs more than it saves.
MIN_TUNES_FOR_POOL = 16

_X_LINE = re.compile(r"(?m)^(?=X:)")
_FIELD = re.compile(r"^([A-Za-z]):\s*(.*?)\s*$")


@dataclass(frozen=True)
class Tune:
    """One ABC tune: its file (relative to the corpus root), X: number, title, credits, text."""

    path: str
    number: str
    title: str
    transcribers: tuple[str, ...]
    text: str

    @property
    def key(self) -> str:
        """The dataset filename: ``<file>#<X: number>`` (X: numbers repeat across files)."""
        return f"{self.path}#{self.number}"


@dataclass
class FolkReport:
    """What a build produced: the sequences, the tunes read, and the skips by reason."""

    sequences: list[NoteSequence]
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    grace_notes_dropped: int = 0
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common())
        splits = Counter(ns.meta["split"] for ns in self.sequences)
        return (
            f"read {self.read} tunes, kept {len(self.sequences)} "
            f"(train {splits['train']}, validation {splits['validation']}, "
            f"test {splits['test']}), skipped {sum(self.skipped.values())}"
            + (f" ({reasons})" if reasons else "")
            + f"; dropped {self.grace_notes_dropped} grace notes; {self.seconds:.0f} s"
        )


def split_tunes(text: str, path: str) -> list[Tune]:
    """The tunes of one ABC file, in file order (anything before the first ``X:`` is ignored)."""
    tunes = []
    for chunk in _X_LINE.split(text):
        if not chunk.startswith("X:"):
            continue
        fields: dict[str, list[str]] = {}
        for line in chunk.splitlines():
            m = _FIELD.match(line)
            if m and m.group(2).strip('"'):
                fields.setdefault(m.group(1), []).append(m.group(2).strip('"').strip())
            if line.startswith("K:"):  # the header ends at the key; the body has no fields
                break
        number = (fields.get("X") or [""])[0]
        title = (fields.get("T") or [""])[0]
        tunes.append(Tune(path, number, title, tuple(fields.get("Z", [])), chunk))
    return tunes


def tune_split(number: str) -> str:
    """80/10/10 train/validation/test from a SHA-256 of the collection and the X: number."""
    digest = hashlib.sha256(f"{COLLECTION}:X:{number.strip()}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10
    return "train" if bucket < 8 else "validation" if bucket == 8 else "test"


def tune_id(tune: Tune) -> str:
    """A Magenta-style id: the SHA-1 of ``<file>#<X:>`` under the collection."""
    return f"/id/abc/{COLLECTION}/{hashlib.sha1(tune.key.encode('utf-8')).hexdigest()}"


def score_problem(parts: int, chords: int, time_signatures: int) -> str | None:
    """Why a parsed tune cannot be one melody, from its counts; None when it can."""
    if parts != 1:
        return SKIP_PARTS
    if chords:
        return SKIP_CHORDS
    if time_signatures > 1:
        return SKIP_METER
    if time_signatures == 0:
        return SKIP_NO_METER
    return None


def sequence_problem(ns: NoteSequence) -> str | None:
    """Why a written melody is not monophonic (a note starts before the last one ended)."""
    if len(ns) == 0:
        return SKIP_EMPTY
    order = np.lexsort((ns.pitch, ns.start))
    start, end = ns.start[order], ns.end[order]
    # Against the latest end so far, so a long note cannot hide behind a short one; the
    # 1e-9 s slack is float rounding of tick times, not an overlap.
    if np.any(start[1:] < np.maximum.accumulate(end)[:-1] - 1e-9):
        return SKIP_OVERLAP
    return None


def corpus_dir() -> Path:
    """music21's ``corpus/oneills1850``; a clear error when music21 or its corpus is missing."""
    music21 = import_music21()
    root = Path(music21.common.getCorpusFilePath()) / CORPUS_FOLDER
    if not root.is_dir():
        raise MusicVAEError(f"{root}: music21's corpus has no {CORPUS_FOLDER} folder")
    return root


def import_music21() -> ModuleType:
    try:
        import music21
    except ImportError:
        raise MusicVAEError(f"music21 is not installed; run: {INSTALL_HINT}") from None
    return music21


def read_tunes(root: str | os.PathLike) -> list[Tune]:
    """Every tune of every ``.abc`` file under ``root``, files in sorted name order."""
    root = Path(root)
    tunes = []
    for path in sorted(root.glob("*.abc")):
        # The corpus files are Latin-1 (accented titles); Latin-1 decodes any byte.
        text = path.read_text(encoding="latin-1")
        tunes.extend(split_tunes(text, f"{root.name}/{path.name}"))
    return tunes


def _melody_midi(tune: Tune) -> tuple[bytes | None, str | None, int]:
    """(MIDI bytes, None, grace notes dropped), or (None, skip reason, 0)."""
    music21 = import_music21()
    from music21 import chord, harmony

    try:
        score = music21.converter.parseData(tune.text, format="abc")
    except Exception:  # noqa: BLE001 - music21's ABC parser raises many kinds of error
        return None, SKIP_PARSE, 0
    chords = sum(
        1
        for c in score.recurse().getElementsByClass(chord.Chord)
        if not isinstance(c, harmony.ChordSymbol)  # "Am" guitar symbols are not written
    )
    # One TimeSignature object may sit in several measures; count distinct ones.
    meters = {id(ts) for ts in score.recurse().getElementsByClass("TimeSignature")}
    problem = score_problem(len(score.parts), chords, len(meters))
    if problem:
        return None, problem, 0
    graces = [n for n in score.recurse().notes if n.duration.isGrace]
    for n in graces:
        n.activeSite.remove(n)
    try:
        data = music21.midi.translate.music21ObjectToMidiFile(score).writestr()
    except Exception:  # noqa: BLE001 - music21's writer fails on some irregular scores
        return None, SKIP_WRITE, 0
    return data, None, len(graces)


def tune_to_sequence(tune: Tune) -> tuple[NoteSequence | None, str | None, int]:
    """(sequence, None, grace notes dropped) for a usable tune, else (None, reason, 0)."""
    data, problem, graces = _melody_midi(tune)
    if data is None:
        return None, problem, 0
    try:
        ns = read_midi_bytes(data, filename=tune.key)
    except MusicVAEError:
        return None, SKIP_WRITE, 0
    problem = sequence_problem(ns)
    if problem:
        return None, problem, 0
    ns.id = tune_id(tune)
    ns.filename = tune.key
    ns.meta.update(
        split=tune_split(tune.number),
        abc_number=tune.number,
        title=tune.title,
        transcriber="; ".join(tune.transcribers),
        source="O'Neill's Music of Ireland (1903), music21 corpus",
    )
    return ns, None, graces


def _convert_chunk(tunes: list[Tune]) -> list[tuple[NoteSequence | None, str | None, int]]:
    return [tune_to_sequence(t) for t in tunes]


def convert_tunes(
    tunes: list[Tune], *, workers: int | None = None, progress: bool | None = None
) -> FolkReport:
    """Convert ``tunes`` on ``workers`` processes (all cores by default) with a tqdm bar."""
    t0 = time.perf_counter()
    workers = usable_cores() if workers is None else max(1, workers)
    bar = tqdm(
        total=len(tunes),
        unit="tune",
        desc="parsing ABC",
        disable=None if progress is None else not progress,
    )
    # Several chunks per worker even out slow tunes; one per tune when serial.
    size = 1 if workers == 1 else max(1, math.ceil(len(tunes) / (workers * 8)))
    chunks = [tunes[i : i + size] for i in range(0, len(tunes), size)]
    results: list[list[tuple[NoteSequence | None, str | None, int]]] = [[] for _ in chunks]
    if workers == 1 or len(tunes) < MIN_TUNES_FOR_POOL:
        for i, chunk in enumerate(chunks):
            results[i] = _convert_chunk(chunk)
            bar.update(len(chunk))
    else:
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            futures = {pool.submit(_convert_chunk, c): i for i, c in enumerate(chunks)}
            for fut in cf.as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(len(chunks[futures[fut]]))
    bar.close()
    report = FolkReport(sequences=[], read=len(tunes))
    for ns, problem, graces in (r for chunk in results for r in chunk):
        if ns is None:
            report.skipped[problem or SKIP_PARSE] += 1
        else:
            report.sequences.append(ns)
            report.grace_notes_dropped += graces
    report.seconds = time.perf_counter() - t0
    return report


def build_folk(
    *,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> FolkReport:
    """Read the corpus (``root`` or music21's), the first ``limit`` tunes when given."""
    folder = Path(root) if root is not None else corpus_dir()
    import_music21()  # fail in this process, with the install hint, not in every worker
    tunes = read_tunes(folder)
    if not tunes:
        raise MusicVAEError(f"{folder}: no ABC tunes (*.abc with X: fields)")
    return convert_tunes(tunes[:limit] if limit else tunes, workers=workers, progress=progress)
