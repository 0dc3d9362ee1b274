"""Folk-tune melody datasets from the ABC collections of music21's corpus.

By default the four public-domain collections music21 ships (its ``corpus`` API lists them as
directories of the core corpus), in this order, which is also the order of preference when one
tune is in two of them:

- ``oneills1850``: Francis O'Neill, *O'Neill's Music of Ireland* (Chicago, 1903; public domain),
  1,850 melodies (2,009 ABC tunes in 39 files: some tunes were transcribed twice, by different
  people). Transcribers named in each tune's ``Z:`` (Norbert Paap, Henrik Norbeck, Bob Safranek,
  John Chambers, Trish O'Neil, Michael Hogan and others).
- ``ryansMammoth``: William Bradbury Ryan, *Ryan's Mammoth Collection* (Boston: Elias Howe, 1883;
  public domain), 1,059 tunes in a file each; about 200 say ``B: Cole's 1000 Fiddle Tunes``, its
  1940 reprint. Contributed by Ray Davies, John Chambers, John Walsh, Bob Puckette and others.
- ``airdsAirs``: James Aird, *A Selection of Scotch, English, Irish and Foreign Airs* (Glasgow,
  1778-1803, six volumes; public domain), 1,180 tunes transcribed by Jack Campin (2009).
- ``miscFolk``: two files by Jack Campin: *Colonial and Civil War American Fife Music* (2000; from
  period bandsmen's tunebooks, with the unedited versions of a defunct web page appended, so some
  tunes are there twice) and Bruce and Stokoe, *Northumbrian Minstrelsy* (1882; 2007).

None of these folders carries a licence of its own: music21's ``corpus/license.txt`` applies. It
says the encodings are distributed with their encoders' permission and that some may have
restrictions on commercial use. The melodies themselves are in the public domain.

``essenFolksong`` (the Essen Folksong Collection: EsAC encodings made under Helmut Schaffrath,
in Seymour Shlien's ABC) is added only on request (``collections=`` / ``--collections``): its
``license.txt`` says Ewa Dahlig-Turek permits *non-commercial* distribution and use in music21,
so a dataset holding it inherits that restriction. No shipped model uses it.

Each tune is parsed with music21, written to MIDI bytes with music21's own writer (which expands
repeats, as Magenta's pipeline sees a MIDI file) and read back with
:func:`musicvae.data.midi.read_midi_bytes`, so the notes are those of the MIDI file. Before
writing, guitar chord symbols (``harmony.ChordSymbol``, ABC ``"Am"``) are removed, since music21
would write them as sounding chords: a tune that has them keeps its melody. Grace notes are
dropped too: music21 writes them as short notes overlapping the main note, and a 16th-note grid
cannot hold them anyway. Beaming is skipped while parsing: music21 beams every bar, and beams never
reach a MIDI file (the bytes were the same for 214 tunes of the four collections), for a quarter
less time per tune.

What cannot be one melody in a meter that MusicVAE reads is skipped with its reason. Every melody
config reads bars of four quarter notes (Magenta's rule: 4/4 or 2/2, ``M:C`` or ``M:C|``), so a
tune whose ABC header gives another meter is skipped before parsing (``all_meters=True`` keeps
them: 2.6 times as many tunes to parse, for tunes no config reads). Then: several parts, chords (double
stops), a meter that changes inside the tune (usually a bar of the wrong length, which music21
gives its own time signature), a tune music21 cannot parse or write, and a written melody whose
notes overlap.

Splits are 80/10/10 by a stable hash of the tune, never of its file. In O'Neill's book a tune is its
number (ABC ``X:``), the same in both files that transcribe it twice, so both copies fall in one
split (and the splits are those of the earlier O'Neill-only dataset). In the other collections a
tune is its normalised title (:func:`normalise_title`), so the two copies of a fife tune, or two
settings under one name, share a split.

Across collections tunes are deduplicated by normalised title: a title kept from an earlier
collection (in the order above) drops the later copies, so each such tune is one row, counted
once in training and in test figures, and cannot leak from train into test. Only one copy is kept,
not both in one split, because they are the same tune: a second transcription would weigh it
double in training and in the test figures. Within a collection one title often names different
tunes (O'Neill has five "Mullingar Races"), so nothing is dropped there.

With music21 10.5 the default build reads 4,433 tunes, parses the 1,708 in 4/4 or 2/2 (about 280
CPU-seconds) and keeps 1,556: O'Neill's 753, Ryan's 294, Aird's 471 and miscFolk 38, after 29
later copies of a title were dropped (Ryan's 16, Aird's 9, miscFolk 4). They give 23,156 two-bar
and 15,396 sixteen-bar windows (one-bar hops, before the 5-per-tune cap; O'Neill's alone 11,161
and 5,608).

music21 is optional (``pip install 'musicvae[folk]'``) and imported only here, lazily.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import math
import os
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
from tqdm import tqdm

from musicvae.cpu import usable_cores
from musicvae.data.midi import read_midi_bytes
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError


@dataclass(frozen=True)
class Collection:
    """One ABC collection of music21's corpus: its folder, names, licence and credit."""

    folder: str  # music21's corpus folder (``corpus.corpora.CoreCorpus`` directory name)
    alias: str  # a short name for --collections
    title: str  # what the dataset's meta calls it ("source")
    licence: str  # one line, kept in each row's meta
    credit: str  # the sentence printed after a build
    default: bool = True  # built unless --collections says otherwise
    numbered: bool = False  # X: numbers name tunes across its files (the split follows them)
    encoder: str = ""  # the transcriber to credit when a tune has no Z: field


PUBLIC_DOMAIN = "public domain (music21 corpus/license.txt: encoders' permission)"
ESSEN_LICENCE = "non-commercial use only (music21 corpus/essenFolksong/license.txt)"
COLLECTIONS: dict[str, Collection] = {
    c.folder: c
    for c in (
        Collection(
            "oneills1850",
            "oneills",
            "O'Neill's Music of Ireland (1903), music21 corpus",
            PUBLIC_DOMAIN,
            "Francis O'Neill, O'Neill's Music of Ireland (Chicago, 1903; public domain)",
            numbered=True,
        ),
        Collection(
            "ryansMammoth",
            "ryans",
            "Ryan's Mammoth Collection (1883), music21 corpus",
            PUBLIC_DOMAIN,
            "William Bradbury Ryan, Ryan's Mammoth Collection (Boston, 1883; public domain)",
        ),
        Collection(
            "airdsAirs",
            "airds",
            "Aird's Airs (1778-1803), music21 corpus",
            PUBLIC_DOMAIN,
            "James Aird, A Selection of Scotch, English, Irish and Foreign Airs (Glasgow, "
            "1778-1803; public domain), transcribed by Jack Campin",
        ),
        Collection(
            "miscFolk",
            "misc",
            "music21 corpus miscFolk: American fife music, Northumbrian Minstrelsy (1882)",
            PUBLIC_DOMAIN,
            "Colonial and Civil War American fife music and Bruce and Stokoe's Northumbrian "
            "Minstrelsy (1882; public domain), transcribed by Jack Campin",
        ),
        Collection(
            "essenFolksong",
            "essen",
            "Essen Folksong Collection (EsAC), music21 corpus",
            ESSEN_LICENCE,
            "the Essen Folksong Collection (EsAC, encoded under Helmut Schaffrath; distributed "
            "with Ewa Dahlig-Turek's permission for non-commercial use only), in Seymour "
            "Shlien's ABC",
            default=False,
            encoder="Seymour Shlien (ABC) from the EsAC encodings",
        ),
    )
}
DEFAULT_COLLECTIONS = tuple(c.folder for c in COLLECTIONS.values() if c.default)
ESSEN = "essenFolksong"
ESSEN_NOTE = (
    "note: the Essen Folksong Collection may be used for non-commercial purposes only (its "
    "music21 license.txt), and so may this dataset; no shipped model uses it"
)
CORPUS_FOLDER = "oneills1850"
COLLECTION = "oneills1850"  # the collection of tune_split's plain X: numbers
INSTALL_HINT = "pip install 'musicvae[folk]'"


def credit(collections: Sequence[str]) -> str:
    """The credit to print after a build of ``collections`` (corpus folders)."""
    return (
        "; ".join(COLLECTIONS[c].credit for c in collections)
        + ". ABC transcriptions from music21's corpus folders "
        + ", ".join(collections)
        + " (music21 is BSD-3-Clause; its corpus/license.txt: encodings distributed with the "
        "encoders' permission, possibly with restrictions on commercial use). Each tune's "
        "transcriber (ABC Z:) and collection are in the dataset's meta as 'transcriber' and "
        "'source'."
    )


FOLK_CREDIT = credit(DEFAULT_COLLECTIONS)
# Skip reasons, in the order they are checked (the report counts each).
SKIP_OTHER_METER = "meter not 4/4 or 2/2"
SKIP_PARSE = "music21 cannot parse it"
SKIP_PARTS = "more than one part"
SKIP_CHORDS = "has chords"
SKIP_METER = "meter changes inside the tune"
SKIP_NO_METER = "no time signature"
SKIP_WRITE = "music21 cannot write it as MIDI"
SKIP_EMPTY = "no notes"
SKIP_OVERLAP = "written notes overlap"
SKIP_DUPLICATE = "title kept from an earlier collection"
# Below this many tunes a process pool costs more than it saves.
MIN_TUNES_FOR_POOL = 16
# Chunks per worker: small enough for a progress line per tenth and for slow tunes to even out.
CHUNKS_PER_WORKER = 32

_X_LINE = re.compile(r"(?m)^(?=X:)")
_FIELD = re.compile(r"^([A-Za-z]):\s*(.*?)\s*$")
# Dance types closing a title ("The Flogging Reel", Ryan's "FLOGGING -- REEL"): ignored by dedup.
_DANCE = re.compile(
    r"(?:\s(?:reel|hornpipe|jig|slip jig|slide|strathspey|march|polka|waltz|clog|set dance|"
    r"quickstep|quick step|schottische|air|song))+$"
)


@dataclass(frozen=True)
class Tune:
    """One ABC tune: its file (``<collection folder>/<file>``), X: number, title, credits, text and
    the meter its header gives (``M:``, "" when none)."""

    path: str
    number: str
    title: str
    transcribers: tuple[str, ...]
    text: str
    meter: str = ""

    @property
    def key(self) -> str:
        """The dataset filename: ``<file>#<X: number>`` (X: numbers repeat across files)."""
        return f"{self.path}#{self.number}"

    @property
    def collection(self) -> str:
        """The collection folder: the first part of ``path``."""
        return self.path.split("/", 1)[0]


@dataclass
class FolkReport:
    """What a build produced: the sequences, the tunes read, and the skips by reason (in all and
    per collection, where ``read`` and ``kept`` count too)."""

    sequences: list[NoteSequence]
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    grace_notes_dropped: int = 0
    seconds: float = 0.0
    collections: dict[str, Counter[str]] = field(default_factory=dict)
    chord_symbols_removed: int = 0
    tunes_with_chord_symbols: int = 0

    @property
    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common())
        splits = Counter(ns.meta["split"] for ns in self.sequences)
        symbols = (
            f"; kept the melody of {self.tunes_with_chord_symbols} tunes with chord symbols"
            if self.tunes_with_chord_symbols
            else ""
        )
        return (
            f"read {self.read} tunes, kept {len(self.sequences)} "
            f"(train {splits['train']}, validation {splits['validation']}, "
            f"test {splits['test']}), skipped {sum(self.skipped.values())}"
            + (f" ({reasons})" if reasons else "")
            + f"; dropped {self.grace_notes_dropped} grace notes{symbols}; {self.seconds:.0f} s"
        )

    def collection_lines(self) -> list[str]:
        """One line per collection: tunes read and kept, and the skips by reason."""
        lines = []
        for name, counts in self.collections.items():
            skips = Counter({k: n for k, n in counts.items() if k not in ("read", "kept")})
            reasons = ", ".join(f"{n} {why}" for why, n in skips.most_common())
            lines.append(
                f"  {name}: read {counts['read']}, kept {counts['kept']}, "
                f"skipped {sum(skips.values())}" + (f" ({reasons})" if reasons else "")
            )
        return lines


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
        meter = (fields.get("M") or [""])[0].split("%", 1)[0].strip()
        tunes.append(Tune(path, number, title, tuple(fields.get("Z", [])), chunk, meter))
    return tunes


def four_quarter_bars(meter: str) -> bool | None:
    """Whether an ABC ``M:`` value has bars of four quarter notes, as every MusicVAE melody config
    reads (``C``, ``C|``, 4/4, 2/2); None for no meter (music21 decides when parsing)."""
    meter = meter.replace(" ", "")
    if not meter:
        return None
    if meter in ("C", "C|"):
        return True
    m = re.fullmatch(r"(\d+)/(\d+)", meter)
    return m is not None and int(m.group(1)) == int(m.group(2)) > 0


def normalise_title(title: str) -> str:
    """A title for comparing tunes: no accents, case or punctuation, no "the", no closing dance
    type ("The Flogging Reel" and Ryan's "FLOGGING -- REEL" are both "flogging")."""
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    t = " ".join(w for w in re.sub(r"[^a-z0-9]+", " ", t).split() if w != "the")
    return _DANCE.sub("", " " + t).strip() or t


def tune_split(number: str, collection: str = COLLECTION) -> str:
    """80/10/10 train/validation/test from a SHA-256 of the collection and a tune number."""
    digest = hashlib.sha256(f"{collection}:X:{number.strip()}".encode()).digest()
    return _bucket(digest)


def split_of(tune: Tune) -> str:
    """The split of a tune: by number where the collection numbers tunes across its files
    (O'Neill's), else by normalised title; by file and X: for a tune with no title."""
    if COLLECTIONS.get(tune.collection, _UNKNOWN).numbered:
        return tune_split(tune.number, tune.collection)
    title = normalise_title(tune.title)
    key = f"title:{title}" if title else f"file:{tune.key}"
    return _bucket(hashlib.sha256(key.encode()).digest())


def _bucket(digest: bytes) -> str:
    bucket = int.from_bytes(digest[:8], "big") % 10
    return "train" if bucket < 8 else "validation" if bucket == 8 else "test"


_UNKNOWN = Collection("", "", "", "", "")


def tune_id(tune: Tune) -> str:
    """A Magenta-style id: the SHA-1 of ``<file>#<X:>`` under the collection."""
    digest = hashlib.sha1(tune.key.encode("utf-8")).hexdigest()
    return f"/id/abc/{tune.collection}/{digest}"


def parse_collections(text: str) -> tuple[str, ...]:
    """Comma-separated collection names (music21 folders or short aliases, any case; "default"
    for the public-domain four) as corpus folders in the canonical order."""
    by_name: dict[str, tuple[str, ...]] = {}
    for c in COLLECTIONS.values():
        by_name[c.folder.lower()] = by_name[c.alias] = (c.folder,)
    by_name["default"] = DEFAULT_COLLECTIONS
    chosen: set[str] = set()
    for name in (n.strip() for n in text.split(",")):
        if name.lower() not in by_name:
            choices = ", ".join(f"{c.folder} ({c.alias})" for c in COLLECTIONS.values())
            raise MusicVAEError(
                f"unknown collection {name!r}: choose from {choices}, or default (the first four)"
            )
        chosen.update(by_name[name.lower()])
    return tuple(c for c in COLLECTIONS if c in chosen)


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


def corpus_dir(folder: str = CORPUS_FOLDER) -> Path:
    """A folder of music21's corpus; a clear error when music21 or the folder is missing."""
    music21 = import_music21()
    root = Path(music21.common.getCorpusFilePath()) / folder
    if not root.is_dir():
        raise MusicVAEError(f"{root}: music21's corpus has no {folder} folder")
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
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")  # Essen's accented titles
        except UnicodeDecodeError:
            text = data.decode("latin-1")  # decodes any byte
        tunes.extend(split_tunes(text, f"{root.name}/{path.name}"))
    return tunes


@contextlib.contextmanager
def _no_beaming(music21: ModuleType) -> Iterator[None]:
    """music21's ABC reader beams every bar (a third of its time); MIDI has no beams."""
    stream = music21.stream.Stream
    original = stream.makeBeams
    stream.makeBeams = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        stream.makeBeams = original


@dataclass
class _Converted:
    """One tune's outcome: a sequence or the reason it was skipped, and what was removed."""

    sequence: NoteSequence | None
    problem: str | None = None
    graces: int = 0
    chord_symbols: int = 0


def _melody_midi(tune: Tune) -> tuple[bytes | None, str | None, int, int]:
    """(MIDI bytes, None, grace notes dropped, chord symbols removed), or (None, reason, 0, 0)."""
    music21 = import_music21()
    from music21 import chord, harmony

    try:
        with _no_beaming(music21):
            score = music21.converter.parseData(tune.text, format="abc")
    except Exception:  # noqa: BLE001 - music21's ABC parser raises many kinds of error
        return None, SKIP_PARSE, 0, 0
    symbols = list(score.recurse().getElementsByClass(harmony.ChordSymbol))
    chords = sum(
        1
        for c in score.recurse().getElementsByClass(chord.Chord)
        if not isinstance(c, harmony.ChordSymbol)  # "Am" guitar symbols are removed below
    )
    # One TimeSignature object may sit in several measures; count distinct ones.
    meters = {id(ts) for ts in score.recurse().getElementsByClass("TimeSignature")}
    problem = score_problem(len(score.parts), chords, len(meters))
    if problem:
        return None, problem, 0, 0
    # music21 writes chord symbols as sounding chords over the melody; grace notes as short
    # notes overlapping the main one. Neither is part of the melody.
    graces = [n for n in score.recurse().notes if n.duration.isGrace]
    for element in [*symbols, *graces]:
        if element.activeSite is not None:
            element.activeSite.remove(element)
    try:
        data = music21.midi.translate.music21ObjectToMidiFile(score).writestr()
    except Exception:  # noqa: BLE001 - music21's writer fails on some irregular scores
        return None, SKIP_WRITE, 0, 0
    return data, None, len(graces), len(symbols)


def _convert(tune: Tune) -> _Converted:
    data, problem, graces, symbols = _melody_midi(tune)
    if data is None:
        return _Converted(None, problem)
    try:
        ns = read_midi_bytes(data, filename=tune.key)
    except MusicVAEError:
        return _Converted(None, SKIP_WRITE)
    problem = sequence_problem(ns)
    if problem:
        return _Converted(None, problem)
    collection = COLLECTIONS.get(tune.collection, _UNKNOWN)
    ns.id = tune_id(tune)
    ns.filename = tune.key
    ns.meta.update(
        split=split_of(tune),
        abc_number=tune.number,
        title=tune.title,
        transcriber="; ".join(tune.transcribers) or collection.encoder,
        source=collection.title or tune.collection,
        collection_name=tune.collection,  # also a NoteSequence field, kept in a TFRecord
        licence=collection.licence,
    )
    return _Converted(ns, None, graces, symbols)


def tune_to_sequence(tune: Tune) -> tuple[NoteSequence | None, str | None, int]:
    """(sequence, None, grace notes dropped) for a usable tune, else (None, reason, 0)."""
    out = _convert(tune)
    return out.sequence, out.problem, out.graces


def _convert_chunk(tunes: list[Tune]) -> list[_Converted]:
    return [_convert(t) for t in tunes]


def convert_tunes(
    tunes: list[Tune], *, workers: int | None = None, progress: bool | None = None
) -> FolkReport:
    """Convert ``tunes`` on ``workers`` processes (all usable cores by default).

    Progress: a tqdm bar on a terminal; elsewhere (a log file), unless ``progress`` says, a line
    on stderr per tenth of the tunes."""
    t0 = time.perf_counter()
    workers = usable_cores() if workers is None else max(1, workers)
    bar_shown = sys.stderr.isatty() if progress is None else progress
    lines = progress is None and not bar_shown
    bar = tqdm(total=len(tunes), unit="tune", desc="parsing ABC", disable=not bar_shown)
    # Several chunks per worker even out slow tunes; one per tune when serial.
    size = 1 if workers == 1 else max(1, math.ceil(len(tunes) / (workers * CHUNKS_PER_WORKER)))
    chunks = [tunes[i : i + size] for i in range(0, len(tunes), size)]
    results: list[list[_Converted]] = [[] for _ in chunks]
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        bar.update(n)
        if lines:
            _say_progress(done, done + n, len(tunes), t0)
        done += n

    if workers == 1 or len(tunes) < MIN_TUNES_FOR_POOL:
        for i, chunk in enumerate(chunks):
            results[i] = _convert_chunk(chunk)
            advance(len(chunk))
    else:
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            futures = {pool.submit(_convert_chunk, c): i for i, c in enumerate(chunks)}
            for fut in cf.as_completed(futures):
                results[futures[fut]] = fut.result()
                advance(len(chunks[futures[fut]]))
    bar.close()
    report = FolkReport(sequences=[], read=len(tunes))
    for tune, out in zip(tunes, (r for chunk in results for r in chunk), strict=True):
        counts = report.collections.setdefault(tune.collection, Counter())
        counts["read"] += 1
        if out.sequence is None:
            report.skipped[out.problem or SKIP_PARSE] += 1
            counts[out.problem or SKIP_PARSE] += 1
        else:
            report.sequences.append(out.sequence)
            report.grace_notes_dropped += out.graces
            report.chord_symbols_removed += out.chord_symbols
            report.tunes_with_chord_symbols += out.chord_symbols > 0
            counts["kept"] += 1
    report.seconds = time.perf_counter() - t0
    return report


def _say_progress(before: int, after: int, total: int, t0: float) -> None:
    """A line per tenth of the tunes (for a log file, where a bar would be silent)."""
    if 0 < after < total and after * 10 // total > before * 10 // total:
        left = (time.perf_counter() - t0) / after * (total - after)
        print(
            f"parsing ABC: {after}/{total} tunes, about {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )


def drop_duplicates(report: FolkReport) -> None:
    """Keep one copy of a tune that is in several collections: the first collection's (in the
    order of ``COLLECTIONS``), matched by :func:`normalise_title`. In place."""
    order = {name: i for i, name in enumerate(COLLECTIONS)}
    owner: dict[str, str] = {}
    for ns in sorted(report.sequences, key=lambda s: order.get(s.meta["collection_name"], 99)):
        title = normalise_title(ns.meta["title"])
        if title:
            owner.setdefault(title, ns.meta["collection_name"])
    kept = []
    for ns in report.sequences:
        name = ns.meta["collection_name"]
        title = normalise_title(ns.meta["title"])
        if title and owner[title] != name:
            report.skipped[SKIP_DUPLICATE] += 1
            counts = report.collections[name]
            counts[SKIP_DUPLICATE] += 1
            counts["kept"] -= 1
        else:
            kept.append(ns)
    report.sequences = kept


def build_tunes(
    tunes: Sequence[Tune],
    *,
    all_meters: bool = False,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> FolkReport:
    """Convert ``tunes`` (the first ``limit`` parsed), then drop cross-collection duplicates.

    Unless ``all_meters``, tunes whose header meter has no four-quarter bars are skipped unparsed.
    """
    t0 = time.perf_counter()
    wanted: list[Tune] = []
    early: list[Tune] = []
    for tune in tunes:
        if limit is not None and len(wanted) >= limit:
            break
        if all_meters or four_quarter_bars(tune.meter) is not False:
            wanted.append(tune)
        else:
            early.append(tune)
    report = convert_tunes(wanted, workers=workers, progress=progress)
    for tune in early:
        counts = report.collections.setdefault(tune.collection, Counter())
        counts["read"] += 1
        counts[SKIP_OTHER_METER] += 1
        report.skipped[SKIP_OTHER_METER] += 1
    report.read += len(early)
    order = {name: i for i, name in enumerate(COLLECTIONS)}
    report.collections = dict(
        sorted(report.collections.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))
    )
    drop_duplicates(report)
    report.seconds = time.perf_counter() - t0
    return report


def build_folk(
    *,
    collections: Sequence[str] = DEFAULT_COLLECTIONS,
    root: str | os.PathLike | None = None,
    all_meters: bool = False,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> FolkReport:
    """Read ``collections`` from music21's corpus (or from folders of that name under ``root``)
    and build them; the first ``limit`` tunes to parse when given."""
    import_music21()  # fail in this process, with the install hint, not in every worker
    tunes: list[Tune] = []
    for name in collections:
        folder = Path(root) / name if root is not None else corpus_dir(name)
        found = read_tunes(folder)
        if not found:
            raise MusicVAEError(f"{folder}: no ABC tunes (*.abc with X: fields)")
        tunes.extend(found)
    return build_tunes(
        tunes, all_meters=all_meters, limit=limit, workers=workers, progress=progress
    )
