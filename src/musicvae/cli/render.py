"""``musicvae render``: a MIDI groove as a WAV file, played on the built-in drum kit."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render",
        help="MIDI groove -> WAV on the built-in drum kit",
        description="Render a drum MIDI file to a 16-bit mono WAV (44.1 kHz) with the studio's "
        "synthesised kit: kick, snare, closed and open hi-hat, three toms, crash and ride, "
        "mapped from General MIDI drum pitches; other notes are skipped.",
    )
    p.add_argument("input", type=Path, metavar="IN.mid", help="MIDI file to render")
    p.add_argument(
        "--output", "-o", type=Path, required=True, metavar="OUT.wav", help="WAV to write"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicvae.audio import SAMPLE_RATE, render, wav_bytes
    from musicvae.data.midi import read_midi
    from musicvae.io import atomic_write_bytes

    ns = read_midi(args.input)
    samples = render(ns)
    atomic_write_bytes(args.output, wav_bytes(samples))
    print(f"wrote {args.output}: {len(samples) / SAMPLE_RATE:.2f} s of audio from {len(ns)} notes")
    return 0
