"""``musicvae generate``: grooves from a trained model as MIDI files, each with a drum-grid PNG.

Modes: ``sample`` (from the prior), ``interpolate`` (from --input-midi-1 to --input-midi-2),
``reconstruct``, ``humanize`` and ``tap2drum`` (one input, every bar kept). Files are named as
Magenta's ``music_vae_generate`` names them: ``<config>_<mode>_<date>_<time>-000-of-005.mid``.
``magenta_main`` takes ``music_vae_generate``'s flags (``--config=... --run_dir=...``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from musicvae.cli import args as types
from musicvae.errors import MusicVAEError
from musicvae.io import staged_folder
from musicvae.soundfont import HELP as soundfont_help

if TYPE_CHECKING:
    from musicvae.data.sequence import NoteSequence
    from musicvae.generation.trained_model import TrainedModel
    from musicvae.soundfont import SoundFont

MODES = ("sample", "interpolate", "reconstruct", "humanize", "tap2drum", "continue")
INPUT_MODES = ("reconstruct", "humanize", "tap2drum")
DEFAULT_TEMPERATURE = 0.5  # music_vae_generate's default


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "generate",
        help="sample, interpolate, reconstruct, humanize, tap2drum or continue grooves to MIDI + PNG",
        description="Generate grooves with a trained model and write them as MIDI files named "
        "as Magenta names them, each with a drum-grid PNG beside it. Without --checkpoint the "
        "bundled groovae_4bar model is used.",
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
        help=f"randomness of the sampled hits (default {DEFAULT_TEMPERATURE}, Magenta's)",
    )
    p.add_argument("--output-dir", type=Path, required=True, help="folder for the MIDI and PNGs")
    p.add_argument(
        "--checkpoint",
        "--run-dir",
        dest="checkpoint",
        help="run folder (--run-dir is the same flag), .pt checkpoint, .safetensors bundle, Magenta checkpoint or bundled "
        "model name (default: the bundled groovae_4bar; for --mode humanize the bundled "
        "groovae_2bar_humanize, for --mode tap2drum groovae_2bar_tap_fixed_velocity and for --mode "
        "continue groovae_16bar_hierdec, where installed)",
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
    p.add_argument("--no-png", action="store_true", help="do not write drum-grid PNGs")
    p.add_argument(
        "--audio",
        action="store_true",
        help="also write a WAV beside each MIDI file, played on the built-in drum kit "
        "or on --soundfont",
    )
    p.add_argument(
        "--soundfont",
        metavar="FILE.sf2",
        help=f"{soundfont_help}; given explicitly, it implies --audio",
    )
    p.add_argument(
        "--device", type=types.device, default="cpu", help=f"{types.DEVICE_HELP} (default cpu)"
    )
    types.add_which(p)
    p.set_defaults(func=run_generate)
    return p


# About an hour at 120 qpm: more than any groove, few enough windows for one batch.
MAX_INPUT_BARS = 2000


def _read_input(path: Path | None, flag: str) -> NoteSequence:
    from musicvae.data.midi import read_midi

    if path is None:
        raise MusicVAEError(f"{flag} is required in this mode")
    # os.path.exists never raises (a name too long or with a NUL byte is "not found"); read_midi
    # refuses folders, FIFOs and devices.
    if not os.path.exists(path):
        raise MusicVAEError(f"{path}: input MIDI not found")
    return read_midi(path)


def _check_args(args: argparse.Namespace) -> None:
    """The numbers on the command line, before anything is read."""
    if not 1 <= args.num_outputs <= types.MAX_OUTPUTS:
        raise MusicVAEError(
            f"--num-outputs must be at least 1 and at most {types.MAX_OUTPUTS:,} (generate "
            f"in several runs for more), got {args.num_outputs}"
        )
    if not (math.isfinite(args.temperature) and 0 < args.temperature <= types.MAX_TEMPERATURE):
        raise MusicVAEError(
            f"--temperature must be positive and at most {types.MAX_TEMPERATURE:g}, "
            f"got {args.temperature}"
        )
    if args.tempo is not None and not 20 <= args.tempo <= 400:
        raise MusicVAEError(f"--tempo {args.tempo}: expected a tempo between 20 and 400 BPM")
    if args.mode == "interpolate" and args.num_outputs < 2:
        raise MusicVAEError("--num-outputs must be at least 2 in interpolate mode")


def _check_inputs_fit(model: TrainedModel, inputs: list[NoteSequence], mode: str) -> None:
    """Inputs against the model before doing any work (clear error, no partial output)."""
    for ns in inputs:
        # Before quantising: every window goes through the model at once.
        bars = ns.total_time * ns.qpm / 240  # 4/4 bars, the only meter the models read
        if bars > MAX_INPUT_BARS:
            raise MusicVAEError(
                f"{ns.filename}: {bars:,.0f} bars; an input of at most {MAX_INPUT_BARS:,} bars is "
                "read (a corrupt delta time can put a note hours late)"
            )
        if mode == "continue":
            continue  # a prompt may be shorter than a window; continuation checks it
        prep = model.prepare(ns)
        if mode == "interpolate" and len(prep.starts) > 1:
            print(
                f"note: {ns.filename}: {prep.total_steps // model.converter.steps_per_bar} "
                f"bars; interpolating from its first {model.num_bars}",
                file=sys.stderr,
            )


def run_generate(args: argparse.Namespace) -> int:
    from musicvae.generation.api import MODE_BUNDLES, bundled_available, load

    _check_args(args)
    # Read inputs before loading the model, so a bad file fails fast.
    inputs = []
    if args.mode == "interpolate":
        inputs = [
            _read_input(args.input_midi_1, "--input-midi-1"),
            _read_input(args.input_midi_2, "--input-midi-2"),
        ]
    elif args.mode in (*INPUT_MODES, "continue"):
        inputs = [_read_input(args.input_midi_1, "--input-midi-1")]
    soundfont = None
    if getattr(args, "audio", False) or getattr(args, "soundfont", None):
        from musicvae.soundfont import load_soundfont

        soundfont = load_soundfont(getattr(args, "soundfont", None))  # a bad font fails now
    checkpoint = args.checkpoint
    bundle = MODE_BUNDLES.get(args.mode)
    if checkpoint is None and bundle and bundled_available(bundle):
        checkpoint = bundle
    model = load(
        checkpoint, device=args.device, config=args.config, which=getattr(args, "which", "latest")
    )
    if args.config and args.config != model.config.name and model.kind != "magenta":
        print(
            f"note: {model.source} holds config {model.config.name!r}; files are named "
            f"after --config {args.config!r}",
            file=sys.stderr,
        )
    _check_inputs_fit(model, inputs, args.mode)
    paths = generate(
        model,
        args.mode,
        inputs,
        num_outputs=args.num_outputs,
        temperature=args.temperature,
        output_dir=args.output_dir,
        config_name=args.config or model.config.name,
        tempo=args.tempo,
        seed=args.seed,
        png=not args.no_png,
        keep_hits=args.keep_hits,
        audio=getattr(args, "audio", False) or soundfont is not None,
        soundfont=soundfont,
        bars=getattr(args, "bars", 4),
    )
    print(f"wrote {len(paths)} MIDI file(s) to {args.output_dir}")
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
) -> list[Path]:
    """Run ``mode`` and write ``num_outputs`` MIDI files (and PNGs, and WAVs with ``audio``, on
    the built-in kit or on ``soundfont``, a loaded :class:`musicvae.soundfont.SoundFont`);
    returns the MIDI paths. ``keep_hits`` (input modes; default: on for humanize only) keeps the
    input's hits. The set is written to a scratch folder beside ``output_dir`` and moved in
    when complete, so an interrupted run leaves no partial set."""
    import numpy as np

    from musicvae.data.converters.groove import GrooveConverter
    from musicvae.data.midi import write_midi
    from musicvae.plotting.drum_grid import write_drum_grid

    if mode == "sample":
        grooves = model.sample_tensors(num_outputs, temperature, seed)
        qpm = tempo or 120.0
    elif mode == "interpolate":
        grooves, _ = model.interpolate_tensors(inputs[0], inputs[1], num_outputs, temperature, seed)
        qpm = tempo or inputs[0].qpm
    elif mode in INPUT_MODES:
        if mode != "reconstruct":
            model.require_transform("humanize" if mode == "humanize" else "tap_to_drums")
        # humanize keeps the input's hits, tap2drum its tapped steps (drums there and only there)
        keep = mode in ("humanize", "tap2drum") if keep_hits is None else keep_hits
        transformed = []
        for i in range(num_outputs):
            s = None if seed is None else seed + 2 * i  # transform_tensors uses seed and seed + 1
            g, prep = model.transform_tensors(inputs[0], temperature, s, keep_hits=keep)
            transformed.append(g)
        grooves = np.stack(transformed)
        qpm = tempo or prep.qpm
    elif mode == "continue":
        from musicvae.generation.continuation import continue_tensors, prompt_grid

        prompt = prompt_grid(model, inputs[0])
        grooves = continue_tensors(model, prompt, bars, num_outputs, temperature, seed)
        qpm = tempo or inputs[0].qpm
    else:
        raise MusicVAEError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    base = f"{config_name}_{mode}_{stamp}"
    spb = model.converter.steps_per_bar
    sequences = model.to_sequences(grooves, qpm)
    # Drum-grid pictures exist for drum grooves only (a melody model writes MIDI alone).
    png = png and isinstance(model.converter, GrooveConverter)
    names = [f"{base}-{i:03d}-of-{num_outputs:03d}.mid" for i in range(num_outputs)]
    if audio:
        from musicvae.audio import write_wav
    with staged_folder(output_dir) as scratch:
        for name, groove, ns in zip(names, grooves, sequences, strict=True):
            path = scratch / name
            write_midi(ns, path)
            if png:
                write_drum_grid(
                    groove,
                    path.with_suffix(".png"),
                    title=f"{path.stem}  ({qpm:g} BPM)",
                    steps_per_bar=spb,
                    steps_per_beat=model.config.data.steps_per_quarter,
                )
            if audio:
                write_wav(ns, path.with_suffix(".wav"), soundfont=soundfont)
    return [output_dir / name for name in names]


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
    p.add_argument("--no_png", action="store_true", help="do not write drum-grid PNGs (ours)")
    return p


def magenta_main(argv: list[str] | None = None) -> int:
    """``music_vae_generate --config=... --run_dir=RUN|--checkpoint_file=F --mode=...``."""
    from musicvae.cli.main import run

    args = magenta_parser().parse_args(argv)
    return run(_run_magenta, args)


def _run_magenta(args: argparse.Namespace) -> int:
    from musicvae.configs import CONFIGS

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
    ns = argparse.Namespace(
        mode=args.mode,
        num_outputs=args.num_outputs,
        temperature=args.temperature,
        output_dir=Path(args.output_dir).expanduser(),
        checkpoint=str(checkpoint),
        config=args.config,
        input_midi_1=Path(args.input_midi_1).expanduser() if args.input_midi_1 else None,
        input_midi_2=Path(args.input_midi_2).expanduser() if args.input_midi_2 else None,
        tempo=None,
        seed=args.seed,
        no_png=args.no_png,
        device="cpu",
        keep_hits=None,  # each mode's default
    )
    return run_generate(ns)
