"""``musicvae render``: a MIDI file as a WAV file, on the built-in drum kit and melodic voices or a
SoundFont: drums on the kit, other notes on their General MIDI program's voice."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from musicvae.soundfont import ENV_VAR, HELP, INSTALL

if TYPE_CHECKING:
    from musicvae.soundfont import SoundFont

# Half an hour of 44.1 kHz audio is 600 MB as float64 while it is mixed (an hour took 2.5 GB on
# the built-in sounds and 5 GB on a SoundFont before the WAV was written a block at a time).
MAX_RENDER_S = 1800


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="MIDI file -> WAV: drums on a drum kit, other notes on their program's voice",
        description="Render a MIDI file (drums, melodies or both) to a WAV (16-bit, 44.1 kHz). "
        "By default it plays in mono: drum notes (MIDI channel 10) on the studio's synthesised "
        "kit (kick, snare, closed and open hi-hat, three toms, crash and ride, mapped from "
        "General MIDI drum pitches; other drum pitches are skipped), every other note on a "
        "built-in synthesised voice of its General MIDI program's family (piano, mallets, "
        "organ, guitar, bass, strings, brass, reed, pipe, synth), at its pitch. With "
        f"--soundfont FILE.sf2 (or ${ENV_VAR} set once) drum notes play on that SoundFont's "
        "drum kit on MIDI channel 10 and every other note on the font's preset for its program "
        f"(bank 0, a channel per program), in stereo ({INSTALL}).",
    )
    p.add_argument("input", type=Path, metavar="IN.mid", help="MIDI file to render")
    # A string, not a Path: Path drops the trailing slash of "-o out/".
    p.add_argument("--output", "-o", required=True, metavar="OUT.wav", help="WAV to write")
    p.add_argument("--soundfont", metavar="FILE.sf2", help=HELP)
    p.add_argument(
        "--loop",
        nargs="?",
        const="fold",
        choices=("fold", "cut"),
        help="a loop to drop into a DAW: exactly the whole bars that hold every note (a 4-bar "
        "groove at 120 BPM: 8.000 s), what rings past the end added to the start (fold, the "
        "default) or dropped (cut); without it the WAV runs on while the last notes ring",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicvae.audio import SAMPLE_RATE, as_loop, loop_seconds, render, write_wav_samples
    from musicvae.data.midi import read_midi
    from musicvae.errors import MusicVAEError
    from musicvae.io import check_output
    from musicvae.soundfont import load_soundfont, soundfont_path

    output = check_output(
        args.output, [args.input, soundfont_path(args.soundfont)], suffix=".wav", kind="a WAV file"
    )
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
    if args.loop:
        samples = as_loop(samples, loop_seconds(ns), args.loop)
    write_wav_samples(output, samples)
    melodic = int((~ns.is_drum).sum())
    on = _played_on(soundfont, drums=melodic < len(ns), melodic=melodic > 0)
    print(
        f"wrote {output}: {len(samples) / SAMPLE_RATE:.2f} s of audio from {len(ns)} notes "
        f"({melodic} melodic) on {on}"
    )
    return 0


def _played_on(soundfont: SoundFont | None, *, drums: bool, melodic: bool) -> str:
    """What the summary says the notes played on: the built-in kit, voices or both, or the
    SoundFont (with its drum kit's name when drums played on it)."""
    if soundfont is not None:
        kit = f" ({soundfont.preset_name})" if drums and soundfont.preset_name else ""
        return f"{soundfont.path}{kit}"
    return "the built-in " + (
        "kit and voices" if drums and melodic else "voices" if melodic else "kit"
    )
