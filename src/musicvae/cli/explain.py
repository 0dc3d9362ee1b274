"""``musicvae explain --config NAME``: a model's data flow with the real tensor shapes."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "explain",
        help="print a config's data flow, stage by stage, with tensor shapes",
        description="Build the config's model, run a batch through it stage by stage and print "
        "each stage's tensor shape: the encoder, the posterior, and the decoder (for a "
        "hierarchical config: the conductor, the bar embeddings and the per-bar core decoder).",
    )
    p.add_argument("--config", required=True, help="registered config name")
    p.add_argument("--hparams", default="", help="comma-separated key=value config overrides")
    p.add_argument("--batch", type=int, default=2, help="windows in the example batch (default 2)")
    p.add_argument("--diagram", metavar="OUT.png", help="also draw the data flow as a PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicvae.configs import get_config
    from musicvae.errors import MusicVAEError
    from musicvae.models.explain import format_walk, shape_walk

    if not 1 <= args.batch <= 64:
        raise MusicVAEError(f"--batch {args.batch}: expected 1 to 64")
    config = get_config(args.config, args.hparams or None)
    print(format_walk(config, shape_walk(config, args.batch)))
    if args.diagram:
        from musicvae.plotting.diagram import write_diagram

        print(f"wrote {write_diagram(config, args.diagram)}")
    return 0
