"""``musicvae export``: any trained model (run folder, checkpoint, Magenta checkpoint) as one
``.safetensors`` bundle that ``musicvae generate --checkpoint`` and the studio open directly.

Bundles hold only the weights and the config, so they are small, cannot run code when loaded, and
are what ships inside the package as the built-in model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musicvae.cli import args as types


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a trained model as a single .safetensors bundle",
        description="Read a run folder (its latest checkpoint), a .pt checkpoint or a Magenta "
        "checkpoint and write its weights and config as one .safetensors file, with optional "
        "key=value metadata (a model card).",
    )
    p.add_argument(
        "source", nargs="?", help="run folder, .pt checkpoint, or Magenta checkpoint/.tar"
    )
    p.add_argument(
        "--run-dir", dest="run_dir", help="the run folder, as a flag (instead of SOURCE)"
    )
    p.add_argument("--output", "-o", required=True, help="bundle to write (.safetensors)")
    p.add_argument(
        "--config", help="config name, only for Magenta checkpoints (default: groovae_4bar)"
    )
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra metadata stored in the bundle (repeatable), e.g. --meta data=GMD-train",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default="float32",
        help="storage type of the weights (default float32, exact); float16 halves the file "
        "and changes hit probabilities by about 1e-3; loading always computes in float32",
    )
    p.add_argument(
        "--spread-from",
        metavar="DATA",
        help="dataset file whose validation split measures, per drum class, the velocity and "
        "offset spread the model's heads leave out; stored in the bundle, prior samples are "
        "then drawn with it (a drummer's accents and timing rather than expectations)",
    )
    types.add_which(p)
    p.set_defaults(func=run)


# Metadata keys the bundle format sets (see musicvae.generation.bundle).
RESERVED_META = frozenset({"format", "config", "weights_dtype", "output_spread"})


def run(args: argparse.Namespace) -> int:
    from musicvae.errors import MusicVAEError
    from musicvae.generation.api import BUNDLED_MODELS, bundled_available, bundled_path, load
    from musicvae.generation.bundle import STORAGE_DTYPES
    from musicvae.io import check_output

    output = Path(args.output)
    if output.suffix != ".safetensors":
        raise MusicVAEError(f"{output}: a bundle's name must end in .safetensors")
    source = args.source or args.run_dir
    inputs = [source, args.spread_from]
    if source in BUNDLED_MODELS and bundled_available(source):  # its file in the package
        inputs.append(bundled_path(source))
    output = check_output(args.output, inputs, suffix=".safetensors")
    extra: dict[str, str] = {}
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MusicVAEError(f"bad --meta {item!r}: expected KEY=VALUE")
        if key in RESERVED_META:  # the bundle writes these itself; a value would be dropped
            raise MusicVAEError(
                f"bad --meta {item!r}: {key!r} is written by export itself (reserved: "
                f"{', '.join(sorted(RESERVED_META))})"
            )
        extra[key] = value
    args.source = args.source or args.run_dir
    if not args.source:
        raise MusicVAEError("export: give the model to export (SOURCE or --run-dir RUN)")
    model = load(args.source, config=args.config, which=args.which)
    # A bundle exported again (in another dtype, say) keeps its card and its output spread.
    for key, value in model.metadata.items():
        if key not in RESERVED_META or key == "output_spread":
            extra.setdefault(key, value)
    if model.step is not None:
        extra.setdefault("step", str(model.step))
    extra.setdefault("source", Path(args.source).name)
    if args.spread_from:
        from musicvae.evaluation.calibrate import output_spread
        from musicvae.families import family_of

        family = family_of(model.config)
        if not family.spread:
            raise family.refuse("--spread-from", model.config.name, "a GrooVAE model")
        extra["output_spread"] = json.dumps(output_spread(model, args.spread_from))
    path = model.save(output, extra, dtype=STORAGE_DTYPES[args.dtype])
    n_params = sum(p.numel() for p in model.model.parameters())
    size_mb = path.stat().st_size / 1e6
    print(
        f"wrote {path} ({size_mb:.1f} MB, {n_params:,} parameters, config "
        f"{model.config.name}, step {model.step}); metadata: {json.dumps(extra, sort_keys=True)}"
    )
    return 0
