"""``musicvae import-magenta``: a Magenta checkpoint to a self-describing musicvae ``.pt``.

PATH is a published ``.tar`` (``model.ckpt-N.*`` files at its top level), a checkpoint prefix
(``.../model.ckpt-N`` or its ``.index``) or a ``music_vae_train`` run folder (checkpoints in
``RUN/train``). Magenta checkpoints store no hparams: ``--config`` names the architecture, or,
left out, ``guess_config`` picks it from the variables (each family's published config); a
config of another family than the checkpoint's is a one-line error. The z / LSTM sizes are read
off the variable shapes the same way ``load()`` does, and the tensors are read one at a time
(an uncompressed ``.tar`` in place). The result is a training checkpoint (``musicvae generate
--checkpoint OUT.pt``, ``load(OUT.pt)``) whose step is the checkpoint's ``global_step``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from musicvae.errors import MusicVAEError

_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "import-magenta",
        help="convert a Magenta MusicVAE/GrooVAE checkpoint into a musicvae .pt checkpoint",
        description="Convert a Magenta checkpoint (published .tar, checkpoint prefix or "
        "music_vae_train run folder) into a musicvae training checkpoint. Every model variable "
        "is mapped; an unknown or missing variable or a wrong shape is an error naming it.",
    )
    p.add_argument(
        "path",
        metavar="PATH",
        help="Magenta checkpoint: a .tar archive, a prefix such as RUN/train/model.ckpt-N, or a "
        "run folder",
    )
    p.add_argument(
        "--config",
        help="config the checkpoint was trained with, e.g. cat-mel_2bar_big or groovae_4bar "
        "(default: guessed from the variables; the sizes always follow the checkpoint)",
    )
    p.add_argument(
        "--output",
        "-o",  # a string: Path would drop the trailing slash of "-o new/"
        help="checkpoint file to write (default: <name>.pt next to PATH, or in the current "
        "folder when PATH's folder is not writable)",
    )
    p.add_argument(
        "--hparams",
        default="",
        help="comma-separated key=value config overrides; z_size and the rnn sizes always "
        "follow the checkpoint's shapes",
    )
    p.set_defaults(func=run_import)
    return p


def _base_name(path: Path) -> str:
    """``groovae_4bar`` for ``groovae_4bar.tar``, ``RUN`` for ``RUN`` or ``RUN/train``."""
    name = path.name
    for suffix in _TAR_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    if name.endswith(".index"):
        return name[: -len(".index")]
    if ".data-" in name:
        return name.split(".data-")[0]
    if path.is_dir() and name == "train" and path.parent.name:
        return path.parent.name
    return name


def default_output(path: Path) -> Path:
    """``<name>.pt`` beside the checkpoint (beside a run folder, not inside it), else in the cwd."""
    path = path.absolute()
    name = _base_name(path)
    folder = path.parent
    if path.is_dir() and path.name == "train" and path.parent.name:
        folder = path.parent.parent
    if not os.access(folder, os.W_OK):
        folder = Path.cwd()
    return folder / f"{name}.pt"


def _check_path(path: Path) -> None:
    if path.suffix == ".pt":
        raise MusicVAEError(f"{path}: already a musicvae checkpoint; nothing to import")
    if not path.exists() and not Path(f"{path}.index").is_file():
        raise MusicVAEError(
            f"{path}: no such Magenta checkpoint (expected a .tar, a prefix such as "
            "model.ckpt-N, or a run folder)"
        )


def _output(path: Path, output: str | os.PathLike | None) -> Path:
    """The checkpoint file to write: ``output`` (a folder: ``<name>.pt`` inside it) or
    :func:`default_output`, refused when it would replace one of the checkpoint's own files, is
    a new folder (a trailing slash) or names another format (any other name is fine: the
    content says what it is)."""
    import glob

    from musicvae.io import check_output

    if output is None:
        text = os.fspath(default_output(path))
    else:
        text = os.path.expanduser(os.fspath(output))
        if Path(text).is_dir():
            text = os.fspath(Path(text) / f"{_base_name(path.absolute())}.pt")
    if path.is_dir():
        inputs = [*path.glob("model.ckpt-*"), *path.glob("train/model.ckpt-*")]
    else:
        inputs = [path, *path.parent.glob(glob.escape(path.name) + ".*")]
    return check_output(
        text, inputs, suffix=".pt", kind="a musicvae checkpoint", strict=False, what="checkpoint"
    )


def import_checkpoint(
    path: str | os.PathLike,
    config_name: str | None = None,
    output: str | os.PathLike | None = None,
    hparams: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Convert the Magenta checkpoint at ``path``; returns the written file and its figures.

    The figures are ``config`` (its name: ``config_name``, or the guessed one), ``variables``
    (model variables mapped), ``parameters`` and ``step``.
    """
    from musicvae.configs import get_config
    from musicvae.interop.magenta import read_magenta_model, variable_map
    from musicvae.training.checkpoint import checkpoint_payload, write_checkpoint

    path = Path(path).expanduser()
    _check_path(path)
    config = None
    if config_name is not None:
        try:
            config = get_config(config_name, hparams or None)
        except ValueError as e:
            raise MusicVAEError(
                f"--config {config_name} --hparams {hparams or ''!r}: {e}"
            ) from None
    # The sizes load() fits too; a guessed config takes --hparams after the guess.
    overrides = (hparams or None) if config is None else None
    out = _output(path, output)  # before the (long) read: a bad name fails now
    model, config, found_step = read_magenta_model(path, config, overrides)
    step = found_step or 0
    payload = checkpoint_payload(
        model=model,
        config=config,
        step=step,
        extra={"imported_from": {"format": "magenta", "path": str(path.absolute())}},
    )
    write_checkpoint(out, payload)
    figures = {
        "config": config.name,
        "variables": len(variable_map(model)),  # every one the checkpoint has, none missing
        "parameters": sum(p.numel() for p in model.parameters()),
        "step": step,
    }
    return out, figures


def run_import(args: argparse.Namespace) -> int:
    out, f = import_checkpoint(args.path, args.config, args.output, args.hparams)
    guessed = "" if args.config else " (guessed from its variables)"
    print(
        f"imported {f['variables']} variables ({f['parameters']:,} parameters, "
        f"step {f['step']}) from {args.path} as {f['config']}{guessed} -> {out}"
    )
    return 0
