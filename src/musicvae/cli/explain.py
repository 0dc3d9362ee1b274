"""``musicvae explain``: a model's data flow with the real tensor shapes, and what a trained
hierarchical model's conductor makes of a groove."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from musicvae.cli import args as types

if TYPE_CHECKING:
    from musicvae.generation.trained_model import TrainedModel


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain",
        help="print a config's data flow, stage by stage, with tensor shapes",
        description="Build the config's model (or load a trained one with --checkpoint), run a "
        "batch through it stage by stage and print each stage's tensor shape: the encoder, the "
        "posterior, and the decoder (for a hierarchical config: the conductor, the bar "
        "embeddings and the per-bar core decoder). With --conductor, also draw a trained "
        "hierarchical model's bar embeddings for a groove beside the groove's own bar-to-bar "
        "similarity.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", help="registered config name")
    which.add_argument(
        "--checkpoint",
        metavar="MODEL",
        help="a trained model (run folder, .pt checkpoint, .safetensors bundle or bundled "
        "model name); its config is explained",
    )
    p.add_argument("--hparams", default="", help="comma-separated key=value config overrides")
    p.add_argument("--batch", type=int, default=2, help="windows in the example batch (default 2)")
    p.add_argument("--diagram", metavar="OUT.png", help="also draw the data flow as a PNG")
    p.add_argument(
        "--groove",
        type=Path,
        metavar="IN.mid",
        help="with --checkpoint and --conductor: the groove to encode (its first window)",
    )
    p.add_argument(
        "--conductor",  # a string: Path would drop the trailing slash of "out/"
        metavar="OUT.png",
        help="with --checkpoint and --groove: draw the conductor's per-bar embedding "
        "similarity beside the groove's own bar similarity (hierarchical models only)",
    )
    p.add_argument(
        "--device", type=types.device, default="cpu", help=types.DEVICE_HELP + " (default cpu)"
    )
    types.add_which(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicvae.configs import get_config
    from musicvae.errors import MusicVAEError
    from musicvae.models.explain import format_walk, shape_walk

    if not 1 <= args.batch <= 64:
        raise MusicVAEError(f"--batch {args.batch}: expected 1 to 64")
    if (args.conductor is None) != (args.groove is None) or (
        args.conductor is not None and args.checkpoint is None
    ):
        raise MusicVAEError("--conductor needs --groove and --checkpoint (a trained model)")
    from musicvae.device import resolve_device
    from musicvae.io import check_output

    for flag in ("diagram", "conductor"):  # PNGs to write, checked before any work
        if getattr(args, flag) is not None:
            out = check_output(getattr(args, flag), [args.groove], suffix=".png", kind="a PNG")
            setattr(args, flag, out)
    resolve_device(args.device)  # a device this machine lacks fails even with no model to load
    trained = None
    if args.checkpoint is not None:
        from musicvae.generation.api import load

        trained = load(args.checkpoint, device=args.device, which=args.which)
        config = trained.config.override(args.hparams or None)
    else:
        config = get_config(args.config, args.hparams or None)
    print(format_walk(config, shape_walk(config, args.batch)))
    if args.diagram:
        from musicvae.plotting.diagram import write_diagram

        print(f"wrote {write_diagram(config, args.diagram)}")
    if args.conductor is not None and trained is not None:  # --conductor needs --checkpoint
        _conductor(trained, args.groove, args.conductor)
    return 0


def _conductor(trained: TrainedModel, groove_path: Path, out: Path) -> None:
    from musicvae.data.midi import read_midi
    from musicvae.errors import MusicVAEError
    from musicvae.plotting.conductor import write_conductor

    if not trained.family.grid_picture:  # the picture draws the groove as a drum grid
        raise trained.family.refuse(
            "--conductor", trained.config.name, "a hierarchical GrooVAE model"
        )
    if trained.config.decoder != "hierarchical":
        raise MusicVAEError(
            f"{trained.source}: config {trained.config.name!r} has no conductor; --conductor "
            "needs a hierarchical model (e.g. groovae_16bar_hierdec)"
        )
    if not groove_path.is_file():
        raise MusicVAEError(f"{groove_path}: groove MIDI not found")
    prep = trained.prepare(read_midi(groove_path), name=str(groove_path))
    title = f"{groove_path.name}, bars 1-{trained.num_bars} · {trained.config.name}"
    print(f"wrote {write_conductor(trained, prep.outputs[0], out, title)}")
