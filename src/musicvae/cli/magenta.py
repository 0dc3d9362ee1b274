"""Magenta's command names and flags (``convert_dir_to_note_sequences``, ``music_vae_train``,
``music_vae_generate``), each a thin front for the matching ``musicvae`` sub-command module."""

from __future__ import annotations

import importlib
import sys


def _delegate(module: str) -> int:
    from musicvae.cli.main import quiet_numpy_warnings
    from musicvae.cpu import tune_environment

    tune_environment()  # before anything loads torch
    quiet_numpy_warnings()
    return importlib.import_module(f"musicvae.cli.{module}").magenta_main(sys.argv[1:])


def convert_dir_to_note_sequences() -> int:
    return _delegate("convert")


def music_vae_train() -> int:
    return _delegate("train")


def music_vae_generate() -> int:
    return _delegate("generate")
