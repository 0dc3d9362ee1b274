"""``musicvae generate``: music from a trained model as MIDI files, each with a PNG picture.

Modes: ``sample`` (from the prior), ``interpolate`` (from --input-midi-1 to --input-midi-2),
``reconstruct``, ``humanize`` and ``tap2drum`` (one input, every bar kept) and ``continue``; they
are :mod:`musicvae.generation.modes`, and this module reads the flags, loads the model and writes
the files. Files are named so that a listing sorts them by mode, model, index and seed:
``<mode>_<config>_<index>_seed<seed>.mid`` (:func:`sortable_names`; ``_noseed-<4 hex digits>``
without a seed, so that runs do not collide), and no existing file is ever replaced.
``magenta_main`` takes ``music_vae_generate``'s flags (``--config=... --run_dir=...``) and names
files as Magenta does, ``<config>_<mode>_<date>_<time>-000-of-005.mid``; both forms become
:class:`GenerateOptions`.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from musicvae.audio import LOOP_MODES
from musicvae.cli import args as types
from musicvae.errors import MusicVAEError
from musicvae.families import DEFAULT_TEMPERATURE  # Magenta's default, the studio's too
from musicvae.io import check_output_dir, staged_folder
from musicvae.soundfont import HELP as soundfont_help

if TYPE_CHECKING:
    import numpy as np

    from musicvae.data.sequence import NoteSequence
    from musicvae.generation.modes import Generated
    from musicvae.generation.trained_model import TrainedModel
    from musicvae.soundfont import SoundFont

# The modes of musicvae.generation.modes.MODES, named here so that --help loads no torch.
MODES = ("sample", "interpolate", "reconstruct", "humanize", "tap2drum", "continue")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "generate",
        help="sample, interpolate or reconstruct music (grooves also: humanize, tap2drum, "
        "continue) to MIDI + PNG",
        description="Generate music with a trained model and write it as MIDI files, each with "
        "a picture beside it: a drum grid for grooves, a piano roll for melodies, trios and "
        "other models. Without --checkpoint the bundled groovae_4bar model is used.",
    )
    p.add_argument("--mode", choices=MODES, default="sample", help="what to generate")
    p.add_argument(
        "--num-outputs",
        type=int,
        default=5,
        help="number of files; in interpolate mode the number of steps including both ends",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help=f"randomness of the sampled hits (default {DEFAULT_TEMPERATURE}, Magenta's); in "
        "humanize and tap2drum, also how far towards a drummer's range of loudness and timing "
        "the model's playing is widened (0: its means; 1 or more: the drummers' full spread)",
    )
    p.add_argument(
        "--playing",
        type=float,
        metavar="SHARE",
        help="sample mode: the share of a drummer's range of loudness and timing the sampled "
        "grooves play with, 0 (the model's means, stiff) to 1 (default: all of it, at any "
        "temperature). The temperature sets how adventurous the grooves are (lower ones repeat "
        "more from bar to bar); this sets how loosely they are played",
    )
    p.add_argument("--output-dir", type=Path, required=True, help="folder for the MIDI and PNGs")
    p.add_argument(
        "--checkpoint",
        "--run-dir",
        dest="checkpoint",
        help="run folder (--run-dir is the same flag), .pt checkpoint, .safetensors bundle, Magenta checkpoint or bundled "
        "model name (default: the bundled groovae_4bar; groovae_16bar_hierdec for 16 bars; for "
        "--mode humanize the bundled "
        "groovae_2bar_humanize and for --mode tap2drum groovae_2bar_tap_fixed_velocity, where "
        "installed)",
    )
    p.add_argument(
        "--config",
        help="config name: names the output files and describes Magenta checkpoints "
        "(default: the checkpoint's own config)",
    )
    p.add_argument(
        "--input-midi-1",
        type=Path,
        help="input MIDI (interpolation start, or the groove to reconstruct / humanize / tap2drum "
        "/ continue)",
    )
    p.add_argument("--input-midi-2", type=Path, help="interpolation end MIDI")
    p.add_argument(
        "--bars",
        type=types.bounded_int(1, 64),
        default=4,
        help="continue mode: new bars after --input-midi-1 (default 4); each file is the "
        "input's bars, then these (file 1 the model's best guess, the others variations)",
    )
    p.add_argument(
        "--tempo",
        type=float,
        help="output tempo in BPM (default: the input's tempo; 120 when sampling)",
    )
    p.add_argument(
        "--seed", type=types.seed, help="random seed (0 to 2^64-1), for reproducible output"
    )
    p.add_argument(
        "--keep-hits",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep every input hit and let the model only play them (velocity, timing); "
        "default on for humanize, off for reconstruct; --no-keep-hits lets a humanize model "
        "change the pattern, as Magenta's does; for tap2drum (default on) drums play on every "
        "tapped step and nowhere else, the model choosing which drums and how",
    )
    p.add_argument(
        "--chords",
        metavar='"C G Am F"',
        help="a chord-conditioned model's chords (e.g. cat-mel_2bar_med_chords), spread evenly "
        "over its window: needed to sample; interpolate follows the first input's otherwise",
    )
    p.add_argument(
        "--no-png",
        action="store_true",
        help="do not write the PNG pictures (drum grids, piano rolls)",
    )
    p.add_argument(
        "--audio",
        action="store_true",
        help="also write a WAV beside each MIDI file: drums on the built-in drum kit, "
        "melodies on a built-in voice for their General MIDI program, or everything on "
        "--soundfont",
    )
    p.add_argument(
        "--soundfont",
        metavar="FILE.sf2",
        help=f"{soundfont_help}; given explicitly, it implies --audio",
    )
    p.add_argument(
        "--loop",
        nargs="?",
        const="fold",
        choices=LOOP_MODES,
        help="WAVs exactly as long as the grooves (4 bars at 120 BPM: 8.000 s), to drop into a "
        "DAW: what rings past the end is added to the start (fold, the default) or dropped "
        "(cut); it implies --audio",
    )
    p.add_argument(
        "--device", type=types.device, default="cpu", help=f"{types.DEVICE_HELP} (default cpu)"
    )
    types.add_which(p)
    p.set_defaults(func=run_generate)
    return p


@dataclass(frozen=True)
class GenerateOptions:
    """What either command form asks ``generate`` for; the numbers are checked when made."""

    mode: str
    output_dir: Path
    num_outputs: int = 5
    temperature: float = DEFAULT_TEMPERATURE
    checkpoint: str | None = None  # None: the mode's bundled model
    config: str | None = None
    input_midi_1: Path | None = None
    input_midi_2: Path | None = None
    tempo: float | None = None
    seed: int | None = None
    png: bool = True
    keep_hits: bool | None = None  # None: each mode's default
    audio: bool = False
    soundfont: str | None = None  # given, it implies audio
    device: str = "cpu"
    which: str = "latest"
    bars: int = 4
    playing: float | None = None  # sample mode; None: not given (DEFAULT_PLAYING)
    chords: str | None = None  # a chord model's progression (sample, interpolate)
    loop: str | None = None  # loop-length WAVs: "fold" or "cut"; given, it implies audio
    magenta_names: bool = False  # music_vae_generate's file names

    def __post_init__(self) -> None:
        """The numbers on the command line, before anything is read."""
        if not 1 <= self.num_outputs <= types.MAX_OUTPUTS:
            raise MusicVAEError(
                f"--num-outputs must be at least 1 and at most {types.MAX_OUTPUTS:,} (generate "
                f"in several runs for more), got {self.num_outputs}"
            )
        if not (math.isfinite(self.temperature) and 0 < self.temperature <= types.MAX_TEMPERATURE):
            raise MusicVAEError(
                f"--temperature must be positive and at most {types.MAX_TEMPERATURE:g}, "
                f"got {self.temperature}"
            )
        if self.tempo is not None and not 20 <= self.tempo <= 400:
            raise MusicVAEError(f"--tempo {self.tempo}: expected a tempo between 20 and 400 BPM")
        if self.playing is not None and not (
            math.isfinite(self.playing) and 0.0 <= self.playing <= 1.0
        ):
            raise MusicVAEError(f"--playing must be 0 to 1, got {self.playing}")
        if self.playing is not None and self.mode != "sample":
            raise MusicVAEError(f"--playing is for --mode sample, not --mode {self.mode}")
        if self.mode == "interpolate" and self.num_outputs < 2:
            raise MusicVAEError("--num-outputs must be at least 2 in interpolate mode")


def run_generate(args: argparse.Namespace) -> int:
    """``musicvae generate``: its flags as :class:`GenerateOptions`, then :func:`run_options`."""
    return run_options(_options(args))


def _options(args: argparse.Namespace) -> GenerateOptions:
    return GenerateOptions(
        mode=args.mode,
        output_dir=args.output_dir,
        num_outputs=args.num_outputs,
        temperature=args.temperature,
        checkpoint=args.checkpoint,
        config=args.config,
        input_midi_1=args.input_midi_1,
        input_midi_2=args.input_midi_2,
        tempo=args.tempo,
        seed=args.seed,
        png=not args.no_png,
        keep_hits=args.keep_hits,
        audio=args.audio,
        soundfont=args.soundfont,
        device=args.device,
        which=args.which,
        bars=args.bars,
        playing=args.playing,
        chords=args.chords,
        loop=args.loop,
    )


def _read_input(path: Path | None, flag: str) -> NoteSequence:
    from musicvae.data.midi import read_midi

    if path is None:
        raise MusicVAEError(f"{flag} is required in this mode")
    # os.path.exists never raises (a name too long or with a NUL byte is "not found"); read_midi
    # refuses folders, FIFOs and devices.
    if not os.path.exists(path):
        raise MusicVAEError(f"{path}: input MIDI not found")
    return read_midi(path)


def _check_bundle_fits(model: TrainedModel, config: str) -> None:
    """With no --checkpoint the bundled model plays; --config may only rename its files when
    it names a model of the same family (a melody config cannot borrow a drum bundle)."""
    from musicvae.configs import get_config
    from musicvae.families import family_of

    wanted, bundled = family_of(get_config(config)), model.family
    if wanted.name != bundled.name:
        raise MusicVAEError(
            f"--config {config} is a {wanted.name} model ({wanted.label}) and no such model is "
            f"bundled (the default is {model.config.name}, {bundled.label}); give --checkpoint"
        )


def check_family(model: TrainedModel, options: GenerateOptions) -> None:
    """What the model's family cannot do, refused in one line before any work."""
    from musicvae.families import family_of

    family, name = family_of(model.config), model.config.name
    family.check_mode(options.mode, name)
    if options.keep_hits and not family.keeps_hits:
        raise family.refuse("--keep-hits", name, "a GrooVAE model (drum hits to keep)")
    if options.playing is not None and not family.spread:
        raise family.refuse("--playing", name, "a GrooVAE model (a drummer's spread)")
    chord_model = bool(model.config.data.chord_encoding)
    if options.chords is not None and not chord_model:
        raise MusicVAEError(f"--chords: config {name!r} is not chord-conditioned")
    if options.chords is not None and options.mode not in ("sample", "interpolate"):
        raise MusicVAEError(
            f"--chords is for --mode sample and interpolate; --mode {options.mode} follows "
            "the input's own chords"
        )
    if chord_model and options.mode == "sample" and options.chords is None:
        raise MusicVAEError(
            f'--mode sample: config {name!r} plays over chords: give them, e.g. --chords "C G Am F"'
        )
    prior_modes = ("sample", "interpolate")
    if model.converter.control_depth and not chord_model and options.mode in prior_modes:
        raise MusicVAEError(
            f"--mode {options.mode}: config {name!r} decodes under controls read from an input "
            "(its hits or taps), which the prior cannot give; use --mode reconstruct"
        )


def chord_controls(model: TrainedModel, chords: str | None) -> np.ndarray | None:
    """(T, C) controls of ``--chords`` for a chord model's window (None without chords)."""
    if chords is None:
        return None
    from musicvae.data.chords import encode_chords

    encoding = model.config.data.chord_encoding
    assert encoding is not None  # check_family refused --chords for other models
    return encode_chords(chords, model.window_steps, encoding)


def run_options(options: GenerateOptions) -> int:
    """What both command forms run: read the inputs, load the model, run the mode, write."""
    from musicvae.generation.api import MODE_BUNDLES, bundled_available, load
    from musicvae.generation.modes import INPUTS, check_input

    check_output_dir(options.output_dir)  # before any work: a file there fails now
    # Read inputs before loading the model, so a bad file fails fast.
    flags = ((options.input_midi_1, "--input-midi-1"), (options.input_midi_2, "--input-midi-2"))
    inputs = [_read_input(path, flag) for path, flag in flags[: INPUTS.get(options.mode, 0)]]
    soundfont = None
    audio = options.audio or options.loop is not None
    if audio or options.soundfont:
        from musicvae.soundfont import load_soundfont

        soundfont = load_soundfont(options.soundfont)  # a bad font fails now
    checkpoint = options.checkpoint
    bundle = MODE_BUNDLES.get(options.mode)
    if checkpoint is None and bundle and bundled_available(bundle):
        checkpoint = bundle
    model = load(checkpoint, device=options.device, config=options.config, which=options.which)
    if options.checkpoint is None and options.config:
        _check_bundle_fits(model, options.config)
    check_family(model, options)
    if options.config and options.config != model.config.name and model.kind != "magenta":
        print(
            f"note: {model.source} holds config {model.config.name!r}; files are named "
            f"after --config {options.config!r}",
            file=sys.stderr,
        )
    for ns in inputs:  # against the model before any work (clear error, no partial output)
        note = check_input(model, options.mode, ns)
        if note:
            print(f"note: {note}", file=sys.stderr)
    paths = generate(
        model,
        options.mode,
        inputs,
        num_outputs=options.num_outputs,
        temperature=options.temperature,
        output_dir=options.output_dir,
        config_name=options.config or model.config.name,
        tempo=options.tempo,
        seed=options.seed,
        png=options.png,
        keep_hits=options.keep_hits,
        audio=audio or soundfont is not None,
        soundfont=soundfont,
        bars=options.bars,
        playing=options.playing,
        controls=chord_controls(model, options.chords),
        loop=options.loop,
        magenta_names=options.magenta_names,
    )
    print(f"wrote {len(paths)} MIDI file(s) to {options.output_dir}")
    for p in paths:
        print(p)
    return 0


def generate(
    model: TrainedModel,
    mode: str,
    inputs: list,
    *,
    num_outputs: int,
    temperature: float,
    output_dir: Path,
    config_name: str,
    tempo: float | None = None,
    seed: int | None = None,
    png: bool = True,
    keep_hits: bool | None = None,
    audio: bool = False,
    soundfont: SoundFont | None = None,
    bars: int = 4,
    playing: float | None = None,
    controls: np.ndarray | None = None,
    loop: str | None = None,
    magenta_names: bool = False,
) -> list[Path]:
    """Run ``mode`` (see :mod:`musicvae.generation.modes`) and write ``num_outputs`` MIDI
    files (and PNGs, and WAVs with ``audio``, on the built-in kit or on ``soundfont``, a loaded
    :class:`musicvae.soundfont.SoundFont`; ``loop`` "fold" or "cut" makes each WAV exactly its
    groove's length, see :func:`musicvae.audio.as_loop`); returns the MIDI paths.
    ``keep_hits`` (input modes; default: on for humanize and tap2drum) keeps the input's hits.
    Files are named by :func:`sortable_names`, or as Magenta names them with
    ``magenta_names``. The set is written to a scratch folder beside ``output_dir`` and moved in
    when complete, so an interrupted run leaves no partial set."""
    from musicvae.generation.modes import ModeRequest, run_mode
    from musicvae.generation.trained_model import DEFAULT_PLAYING

    request = ModeRequest(
        num_outputs=num_outputs,
        temperature=temperature,
        inputs=tuple(inputs),
        seed=seed,
        tempo=tempo,
        keep_hits=keep_hits,
        bars=bars,
        playing=DEFAULT_PLAYING if playing is None else playing,
        controls=controls,
    )
    result = run_mode(mode, model, request)
    if magenta_names:
        stamp = time.strftime("%Y-%m-%d_%H%M%S")
        names = [
            f"{config_name}_{mode}_{stamp}-{i:03d}-of-{num_outputs:03d}.mid"
            for i in range(num_outputs)
        ]
    else:
        names = sortable_names(output_dir, mode, config_name, num_outputs, seed)
    _write(model, result, output_dir, names, png=png, audio=audio, soundfont=soundfont, loop=loop)
    return [output_dir / name for name in names]


# Files written beside each MIDI file: none of them may replace an existing file.
_SIBLINGS = (".mid", ".png", ".wav")


def sortable_names(
    output_dir: Path, mode: str, config_name: str, num_outputs: int, seed: int | None
) -> list[str]:
    """``<mode>_<config>_<index>_seed<seed>.mid`` for ``num_outputs`` files (the index
    zero-padded to at least 3 digits), so that a folder listing sorts them by mode, model,
    index and seed. Without a seed ``_noseed-<4 hex digits>``, drawn for each run, so that
    runs do not collide. A set whose MIDI, PNG or WAV name is already in ``output_dir`` (the
    same seed again) takes the next ``_run2``, ``_run3``, ... (sorting after the first run's):
    no existing file is replaced."""
    width = max(3, len(str(num_outputs - 1)))
    tag = "noseed" if seed is None else f"seed{seed}"
    stems = [f"{mode}_{config_name}_{i:0{width}d}_{tag}" for i in range(num_outputs)]

    def taken(suffix: str) -> bool:
        return any((output_dir / f"{s}{suffix}{ext}").exists() for s in stems for ext in _SIBLINGS)

    if seed is None:
        suffix = f"-{secrets.token_hex(2)}"
        while taken(suffix):
            suffix = f"-{secrets.token_hex(3)}"
    else:
        suffix, n = "", 1
        while taken(suffix):
            n += 1
            suffix = f"_run{n}"
    return [f"{s}{suffix}.mid" for s in stems]


def _write(
    model: TrainedModel,
    result: Generated,
    output_dir: Path,
    names: list[str],
    *,
    png: bool,
    audio: bool,
    soundfont: SoundFont | None,
    loop: str | None = None,
) -> None:
    """A mode's outputs as the MIDI files ``names`` in ``output_dir``, each with its picture
    (a drum grid for grooves, a piano roll otherwise) and WAV beside it when asked (with
    ``loop``, exactly as long as its output); all of them or none."""
    from musicvae.data.midi import write_midi
    from musicvae.families import family_of
    from musicvae.plotting.drum_grid import write_drum_grid
    from musicvae.plotting.piano_roll import write_piano_roll

    spb = model.converter.steps_per_bar
    spq = model.config.data.steps_per_quarter
    # Grooves are drawn as the studio's drum grid, everything else as a piano roll.
    grid = family_of(model.config).grid_picture
    if audio:
        from musicvae.audio import write_wav
    with staged_folder(output_dir) as scratch:
        for name, groove, ns in zip(names, result.grooves, result.sequences, strict=True):
            path = scratch / name
            write_midi(ns, path)
            title = f"{path.stem}  ({result.qpm:g} BPM)"
            if png and grid:
                write_drum_grid(
                    groove,
                    path.with_suffix(".png"),
                    title=title,
                    steps_per_bar=spb,
                    steps_per_beat=spq,
                )
            elif png:
                write_piano_roll(
                    ns,
                    path.with_suffix(".png"),
                    title=title,
                    beats_per_bar=spb // spq,
                    bars=max(1, -(-len(groove) // spb)),
                )
            if audio:
                # A groove's length: its steps at the written tempo (empty last bars included).
                seconds = len(groove) * 60.0 / result.qpm / spq
                write_wav(
                    ns, path.with_suffix(".wav"), soundfont=soundfont, loop=loop, seconds=seconds
                )


# -------------------------------------------------------------------- Magenta flags


def magenta_parser() -> argparse.ArgumentParser:
    p = types.Parser(
        prog="music_vae_generate",
        description="Magenta's music_vae_generate flags, on top of `musicvae generate`.",
    )
    p.add_argument("--config", required=True, help="the name of the config to use")
    p.add_argument("--run_dir", help="run folder; its latest checkpoint (in RUN/train) is used")
    p.add_argument("--checkpoint_file", help="checkpoint file (.pt, Magenta prefix or .tar)")
    p.add_argument("--output_dir", default="/tmp/music_vae/generated", help="MIDI output folder")
    p.add_argument("--mode", default="sample", help="`sample` or `interpolate`")
    p.add_argument("--input_midi_1", help="start MIDI for interpolation")
    p.add_argument("--input_midi_2", help="end MIDI for interpolation")
    p.add_argument(
        "--num_outputs",
        type=int,
        default=5,
        help="samples to produce; in interpolate mode the steps including the endpoints",
    )
    p.add_argument("--max_batch_size", type=int, default=8, help="accepted for compatibility")
    p.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help="decoding randomness (above 0)",
    )
    p.add_argument("--log", default="INFO", help="accepted for compatibility")
    p.add_argument("--seed", type=types.seed, help="random seed (ours; Magenta's is unseeded)")
    p.add_argument("--no_png", action="store_true", help="do not write the PNG pictures (ours)")
    return p


def magenta_main(argv: list[str] | None = None) -> int:
    """``music_vae_generate --config=... --run_dir=RUN|--checkpoint_file=F --mode=...``."""
    from musicvae.cli.main import run

    args = magenta_parser().parse_args(argv)
    return run(_run_magenta, args)


def _run_magenta(args: argparse.Namespace) -> int:
    return run_options(_magenta_options(args))


def _magenta_options(args: argparse.Namespace) -> GenerateOptions:
    """``music_vae_generate``'s flags as :class:`GenerateOptions`: the run folder's latest
    checkpoint or the checkpoint file, on the CPU, each mode's own defaults for the rest."""
    from musicvae.configs import CONFIGS

    for flag, value in (("--run_dir", args.run_dir), ("--checkpoint_file", args.checkpoint_file)):
        if value is not None and not value.strip():  # a variable that was not set
            raise MusicVAEError(f"{flag} is empty; name a run folder or a checkpoint file")
    if (args.run_dir is None) == (args.checkpoint_file is None):
        raise MusicVAEError("exactly one of --run_dir or --checkpoint_file must be given")
    if args.mode not in ("sample", "interpolate"):
        raise MusicVAEError(f"invalid value for --mode: {args.mode} (sample or interpolate)")
    if args.config not in CONFIGS:
        raise MusicVAEError(f"invalid config name: {args.config}")
    if args.run_dir:
        run_dir = Path(args.run_dir).expanduser()
        checkpoint = run_dir / "train" if (run_dir / "train").is_dir() else run_dir
        if not run_dir.exists():
            raise MusicVAEError(f"{run_dir}: no such run folder")
    else:
        checkpoint = Path(args.checkpoint_file).expanduser()
    return GenerateOptions(
        mode=args.mode,
        output_dir=Path(args.output_dir).expanduser(),
        num_outputs=args.num_outputs,
        temperature=args.temperature,
        checkpoint=str(checkpoint),
        config=args.config,
        input_midi_1=Path(args.input_midi_1).expanduser() if args.input_midi_1 else None,
        input_midi_2=Path(args.input_midi_2).expanduser() if args.input_midi_2 else None,
        seed=args.seed,
        png=not args.no_png,
        magenta_names=True,
    )
