"""``musicvae convert``: a folder of MIDI files (or a NoteSequence TFRecord) to a dataset file.

Also Magenta's ``convert_dir_to_note_sequences --input_dir DIR --output_file OUT [--recursive]``
through :func:`magenta_main`. The output's format follows its name: ``.tfrecord`` (or
``.tfrecords``) writes a NoteSequence TFRecord that Magenta's tools and ``tf.data`` read, anything
else our Parquet dataset (which also keeps the split and metadata); ``--format`` overrides.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from musicvae.cli import args as types

MAGENTA_LOG_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL")
FORMATS = ("parquet", "tfrecord")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords")


def output_format(path: str, requested: str | None = None) -> str:
    """``requested``, else ``tfrecord`` for a ``.tfrecord(s)`` name, else ``parquet``."""
    if requested:
        return requested
    return "tfrecord" if str(path).lower().endswith(TFRECORD_SUFFIXES) else "parquet"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="MIDI folder -> dataset file (Parquet or NoteSequence TFRecord)",
        description="Parse every .mid/.midi file under INPUT_DIR (recursively, on all cores) into "
        "a dataset file: Parquet, or a NoteSequence TFRecord when the output ends in .tfrecord. "
        "Unreadable files are reported and skipped. The Groove MIDI Dataset's info.csv, when "
        "present in INPUT_DIR, adds drummer/style/bpm/split metadata (kept in Parquet only).",
    )
    p.add_argument(
        "input_dir",
        nargs="?",
        metavar="INPUT_DIR",
        help="folder to convert; with --from-tfrecord, optional: where to look for info.csv",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="DATA.parquet",
        help="dataset file to write (.tfrecord: a NoteSequence TFRecord; otherwise Parquet)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from the output's name)",
    )
    p.add_argument(
        "--split-by-hash",
        action="store_true",
        help="assign train/validation/test (80/10/10) by a stable hash of each file's relative "
        "path, for files that info.csv gives no split (default: all 'train')",
    )
    p.add_argument(
        "--from-tfrecord",
        metavar="FILE",
        help="read a NoteSequence TFRecord (Magenta's convert_dir_to_note_sequences output) "
        "instead of a MIDI folder",
    )
    p.add_argument(
        "--workers",
        type=types.processes,
        default=None,
        metavar="N",
        help="parser processes (default: all cores)",
    )
    p.add_argument(
        "--no-recursive",
        dest="recursive",
        action="store_false",
        help="only convert files directly in INPUT_DIR, not in its subfolders",
    )
    p.set_defaults(func=run)


def _check_not_an_input(output: Path, tfrecord: str | None) -> None:
    """The dataset must not replace what it is made from: a MIDI file, or the TFRecord read."""
    from musicvae.data.midi import MIDI_SUFFIXES
    from musicvae.errors import MusicVAEError

    if not output.is_file():
        return
    if output.suffix.lower() in MIDI_SUFFIXES:
        raise MusicVAEError(f"{output}: is a MIDI file; refusing to write a dataset over it")
    if tfrecord and os.path.isfile(tfrecord) and os.path.samefile(output, tfrecord):
        raise MusicVAEError(f"{output}: is the --from-tfrecord input; give another output name")


def run(args: argparse.Namespace, *, verbose: bool = True, show_skips: bool = True) -> int:
    from musicvae.data import convert
    from musicvae.errors import MusicVAEError
    from musicvae.io import check_output

    _check_not_an_input(Path(args.output), args.from_tfrecord)
    fmt = output_format(args.output, getattr(args, "format", None))
    check_output(  # before the work: a slash, a parent that is a file, another format's name
        args.output,
        [args.from_tfrecord, args.input_dir],
        suffix=TFRECORD_SUFFIXES if fmt == "tfrecord" else ".parquet",
        kind="a NoteSequence TFRecord" if fmt == "tfrecord" else "a Parquet dataset",
        strict=False,
    )
    if args.from_tfrecord:
        report = convert.convert_tfrecord(
            args.from_tfrecord, info_dir=args.input_dir, split_by_hash=args.split_by_hash
        )
        source = args.from_tfrecord
    else:
        if not args.input_dir:
            raise MusicVAEError("convert: give INPUT_DIR or --from-tfrecord FILE")
        report = convert.convert_folder(
            args.input_dir,
            recursive=args.recursive,
            split_by_hash=args.split_by_hash,
            workers=args.workers,
            on_skip=convert.print_skip if show_skips else None,
        )
        source = args.input_dir
    path = convert.write_report(report, args.output, source, fmt)
    if verbose:
        splits = Counter(ns.meta.get("split", "train") for ns in report.sequences)
        parts = ", ".join(f"{s} {splits[s]}" for s in ("train", "validation", "test") if splits[s])
        print(report.summary if not args.from_tfrecord else f"read {report.found} sequences")
        meta = f"; metadata from {report.info_csv}" if report.info_csv else ""
        if fmt == "tfrecord":
            print(
                f"wrote {path}: {len(report.sequences)} NoteSequences (TFRecord; it has no split "
                "field, so training uses every record)"
            )
        else:
            print(f"wrote {path}: {len(report.sequences)} sequences ({parts}){meta}")
    return 0


def magenta_parser() -> argparse.ArgumentParser:
    """Magenta's ``convert_dir_to_note_sequences`` flags."""
    parser = types.Parser(
        prog="convert_dir_to_note_sequences",
        description="Magenta-compatible front for 'musicvae convert'. OUTPUT_FILE ending in "
        ".tfrecord is a NoteSequence TFRecord, as Magenta writes; any other name gets a musicvae "
        "Parquet dataset, which also keeps info.csv's splits. Every musicvae command reads both.",
    )
    parser.add_argument("--input_dir", required=True, help="folder containing files to convert")
    parser.add_argument(
        "--output_file",
        required=True,
        help="file to write: NoteSequence TFRecord for .tfrecord names, else Parquet",
    )
    parser.add_argument(
        "--recursive",
        nargs="?",
        const="true",
        default="false",
        help="also convert files in subfolders (Magenta's default: no)",
    )
    parser.add_argument("--norecursive", action="store_true", help="do not recurse (default)")
    parser.add_argument(
        "--log",
        default="INFO",
        type=str.upper,
        choices=MAGENTA_LOG_LEVELS,
        help="message threshold: DEBUG, INFO, WARN, ERROR or FATAL",
    )
    parser.add_argument(
        "--workers", type=types.processes, default=None, help="parser processes (default: all)"
    )
    return parser


def magenta_main(argv: list[str] | None = None) -> int:
    """Magenta's ``convert_dir_to_note_sequences``: a NoteSequence TFRecord or a Parquet dataset."""
    from musicvae.cli.main import run as run_command

    parser = magenta_parser()
    # absl also accepts one leading dash for long flags.
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = [
        f"-{a}" if a.startswith("-") and not a.startswith("--") and len(a) > 2 else a for a in argv
    ]
    ns = parser.parse_args(argv)
    recursive = ns.recursive.lower() in ("true", "1", "yes") and not ns.norecursive
    args = argparse.Namespace(
        input_dir=ns.input_dir,
        output=ns.output_file,
        split_by_hash=False,
        from_tfrecord=None,
        workers=ns.workers,
        recursive=recursive,
        format=None,
    )
    verbose = ns.log in ("DEBUG", "INFO")
    if verbose and output_format(ns.output_file) == "parquet":
        print(
            f"note: {ns.output_file} is written as a musicvae Parquet dataset (name it "
            "*.tfrecord for a NoteSequence TFRecord); musicvae's commands read both"
        )
    show_skips = ns.log not in ("ERROR", "FATAL")
    return run_command(lambda a: run(a, verbose=verbose, show_skips=show_skips), args)
