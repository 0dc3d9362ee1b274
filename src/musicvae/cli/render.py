"""``musicvae render``: a MIDI groove as a WAV file, on the built-in drum kit or a SoundFont."""

from __future__ import annotations

import argparse
from pathlib import Path

from musicvae.soundfont import ENV_VAR, HELP, INSTALL

# An hour of 44.1 kHz audio is 600 MB as float64 while it is mixed.
MAX_RENDER_S = 3600


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="MIDI groove -> WAV on the built-in drum kit or a General MIDI SoundFont",
        description="Render a drum MIDI file to a WAV (16-bit, 44.1 kHz). By default it plays "
        "the studio's synthesised kit (mono): kick, snare, closed and open hi-hat, three toms, "
        "crash and ride, mapped from General MIDI drum pitches; other notes are skipped. With "
        f"--soundfont FILE.sf2 (or ${ENV_VAR} set once) every note plays on that SoundFont's "
        f"drum kit on MIDI channel 10, in stereo ({INSTALL}).",
    )
    p.add_argument("input", type=Path, metavar="IN.mid", help="MIDI file to render")
    p.add_argument(
        "--output", "-o", type=Path, required=True, metavar="OUT.wav", help="WAV to write"
    )
    p.add_argument("--soundfont", metavar="FILE.sf2", help=HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicvae.audio import SAMPLE_RATE, render, wav_bytes
    from musicvae.data.midi import read_midi
    from musicvae.errors import MusicVAEError
    from musicvae.io import atomic_write_bytes
    from musicvae.soundfont import load_soundfont

    soundfont = load_soundfont(args.soundfont)  # before reading the MIDI: both fail fast
    ns = read_midi(args.input)
    # A file with no notes would be a silent WAV reported as written; one note hours late (a
    # corrupt delta time) would be gigabytes of silence.
    if len(ns) == 0:
        raise MusicVAEError(f"{args.input}: no notes to render")
    if ns.total_time > MAX_RENDER_S:
        raise MusicVAEError(
            f"{args.input}: {ns.total_time / 60:,.0f} minutes long; render plays at most "
            f"{MAX_RENDER_S // 60} minutes"
        )
    samples = soundfont.render(ns) if soundfont is not None else render(ns)
    atomic_write_bytes(args.output, wav_bytes(samples))
    kit = f"{soundfont.path} ({soundfont.preset_name})" if soundfont else "the built-in kit"
    print(
        f"wrote {args.output}: {len(samples) / SAMPLE_RATE:.2f} s of audio from {len(ns)} notes "
        f"on {kit}"
    )
    return 0
