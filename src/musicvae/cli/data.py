"""``musicvae data``: fetch the Groove MIDI Dataset (``download groove``) into the local cache, or
build a folk-tune melody dataset from the ABC collections of music21's corpus (``folk``, offline)."""

from __future__ import annotations

import argparse

from musicvae.cli import args as types


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="download or build public datasets",
        description="Download public MIDI datasets into the musicvae cache, or build one offline.",
    )
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    d = sub.add_parser(
        "download",
        help="download a dataset (verified by size and SHA-256)",
        description="Download a dataset into the cache folder (default ~/.cache/musicvae, or "
        "$MUSICVAE_CACHE), verify its size and SHA-256 and unpack it. Does nothing but print "
        "the path when it is already there.",
    )
    d.add_argument(
        "dataset",
        choices=["groove"],
        help="groove: the Groove MIDI Dataset, MIDI only (1,150 files, CC BY 4.0)",
    )
    d.add_argument(
        "--dir",
        metavar="DIR",
        default=None,
        help="cache folder to download into (default: $MUSICVAE_CACHE or ~/.cache/musicvae)",
    )
    d.set_defaults(func=run)
    _add_folk(sub)


def _collections(text: str) -> tuple[str, ...]:
    from musicvae.data.folk import parse_collections
    from musicvae.errors import MusicVAEError

    try:
        return parse_collections(text)
    except MusicVAEError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_folk(sub: argparse._SubParsersAction) -> None:
    from musicvae.cli.convert import FORMATS

    f = sub.add_parser(
        "folk",
        help="build a melody dataset from the public-domain folk collections in music21's corpus",
        description="Build a melody dataset (for cat-mel_2bar_small and other melody configs) "
        "offline from the ABC tunes of music21's corpus: by default O'Neill's Music of Ireland "
        "(oneills1850), Ryan's Mammoth Collection (ryansMammoth), Aird's Airs (airdsAirs) and "
        "miscFolk, all public domain. Each tune is written to MIDI by music21 and read back, so "
        "the notes are what Magenta's pipeline would see; chord symbols and grace notes are "
        "removed first. Tunes whose meter is not 4/4 or 2/2 (which no MusicVAE config reads), "
        "with several parts, chords or meter changes, or whose notes overlap, are skipped and "
        "counted. Splits are 80/10/10 by tune (O'Neill's number, else the title); a title "
        "already kept from an earlier collection is dropped. Each row's meta credits its "
        "transcriber (ABC Z:) and collection. Needs music21: pip install 'musicvae[folk]'.",
    )
    f.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="dataset file to write (.tfrecord: a NoteSequence TFRecord, without splits or "
        "credits; otherwise Parquet)",
    )
    f.add_argument(
        "--collections",
        type=_collections,
        default=None,
        metavar="LIST",
        help="comma-separated music21 corpus folders (or short names): oneills1850 (oneills), "
        "ryansMammoth (ryans), airdsAirs (airds), miscFolk (misc), essenFolksong (essen); "
        "'default' is the first four. Essen may be used for non-commercial purposes only, so "
        "it is never in the default (e.g. --collections default,essen)",
    )
    f.add_argument(
        "--all-meters",
        action="store_true",
        help="also parse and keep tunes in other meters (6/8, 3/4, 2/4...): no MusicVAE config "
        "reads them, and the build parses 2.6 times as many tunes",
    )
    f.add_argument(
        "--format", choices=FORMATS, help="output format (default: from the output's name)"
    )
    f.add_argument(
        "--limit",
        type=types.bounded_int(1, 100_000),
        default=None,
        metavar="N",
        help="only the first N tunes to parse, in collection, file and X: order (a quick try)",
    )
    f.add_argument(
        "--workers", type=types.processes, default=None, help="parser processes (default: all)"
    )
    f.set_defaults(func=run_folk)


def run_folk(args: argparse.Namespace) -> int:
    from pathlib import Path

    from musicvae.cli.convert import output_format
    from musicvae.data.convert import ConvertReport, write_report
    from musicvae.data.folk import DEFAULT_COLLECTIONS, ESSEN, ESSEN_NOTE, build_folk, credit
    from musicvae.errors import MusicVAEError

    collections = args.collections or DEFAULT_COLLECTIONS
    fmt = output_format(args.output, args.format)
    parent = Path(args.output).parent
    if not parent.is_dir():  # before minutes of parsing, not after
        raise MusicVAEError(f"{args.output}: no such folder {str(parent)!r}")
    if ESSEN in collections:
        print(ESSEN_NOTE, flush=True)
    report = build_folk(
        collections=collections,
        all_meters=args.all_meters,
        limit=args.limit,
        workers=args.workers,
    )
    if not report.sequences:
        raise MusicVAEError(f"no usable tune in {report.read} read ({report.summary})")
    found = ConvertReport(sequences=report.sequences, found=report.read)
    path = write_report(found, args.output, "music21's corpus", fmt)
    print(report.summary)
    print("\n".join(report.collection_lines()))
    if fmt == "tfrecord":
        print(
            f"wrote {len(report.sequences)} melodies to {path} (a NoteSequence TFRecord: it has "
            "no split or credit fields, so training uses every record; write Parquet to keep them)"
        )
    else:
        print(f"wrote {len(report.sequences)} melodies to {path}")
    print(f"Credit: {credit(collections)}")
    print(f"next: musicvae dataset stats {path} --config cat-mel_2bar_small")
    return 0


def run(args: argparse.Namespace) -> int:
    from musicvae.data.download import download_groove

    path = download_groove(args.dir)
    print(f"next: musicvae convert {path} --output groove.parquet")
    return 0
