"""``musicvae train``: train (or evaluate) a model on a dataset file; plus Magenta's
``music_vae_train`` flags through ``magenta_main``.

Multi-GPU or multi-node: launch the same command under torchrun, e.g.
``torchrun --nproc_per_node 4 -m musicvae.cli.main train --device cuda ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from musicvae.cli import args as types
from musicvae.errors import MusicVAEError
from musicvae.training.options import INIT_PARTS, TrainOptions, default

if TYPE_CHECKING:
    from musicvae.configs import Config

DEFAULT_NUM_STEPS = default("num_steps")  # Magenta's --num_steps default
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}  # the shell's 128 + signal number


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model on a dataset file (resumes a run folder's latest checkpoint)",
        description="Train a registered config on the train split of a dataset file, evaluating "
        "on its validation split. Checkpoints and TensorBoard events go to RUN/train, evaluation "
        "events to RUN/eval. Rerunning the same command resumes from the latest checkpoint.",
    )
    p.add_argument("--config", required=True, help="registered config name, e.g. groovae_4bar")
    p.add_argument(
        "--run-dir", required=True, type=types.run_folder, help="run folder (created if missing)"
    )
    p.add_argument(
        "--examples",
        required=True,
        type=Path,
        help="dataset file (Parquet from `musicvae dataset`, or a NoteSequence TFRecord)",
    )
    p.add_argument(
        "--mode",
        choices=("train", "eval"),
        default="train",
        help="train, or evaluate the latest checkpoint on the validation split once",
    )
    p.add_argument(
        "--num-steps",
        type=int,
        default=DEFAULT_NUM_STEPS,
        help=f"train until this global step (default {DEFAULT_NUM_STEPS}, Magenta's; 0: until "
        "interrupted). On a CPU, --hparams batch_size=128 --num-steps 10000 is the bundled "
        "model's recipe",
    )
    p.add_argument("--hparams", default="", help="comma-separated key=value config overrides")
    p.add_argument(
        "--device",
        type=types.device,
        default="auto",
        help="auto (default: CUDA when available, else the CPU), cpu, cuda or cuda:N; training "
        "uses bf16 "
        "autocast on CUDA and on CPUs with native bf16 (see --no-amp)",
    )
    p.add_argument("--seed", type=types.seed, help="seed every generator, for a reproducible run")
    p.add_argument(
        "--eval-every",
        type=int,
        default=default("eval_every"),
        help="evaluate on the validation split every K steps (0: never; default "
        f"{default('eval_every')})",
    )
    p.add_argument(
        "--eval-num-batches",
        type=int,
        help="batches per evaluation (default: the whole validation split)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        help="save a checkpoint every K steps (default: every "
        f"{default('checkpoint_secs'):g} seconds, as Magenta)",
    )
    p.add_argument(
        "--checkpoints-to-keep",
        type=int,
        default=default("checkpoints_to_keep"),
        help=f"keep the newest N checkpoints (0: all; default {default('checkpoints_to_keep')})",
    )
    p.add_argument(
        "--log-every",
        type=int,
        default=default("log_every"),
        help=f"write window-mean training scalars every K steps (default {default('log_every')})",
    )
    p.add_argument(
        "--workers",
        type=types.workers,
        default=default("workers"),
        help=f"DataLoader worker processes (default {default('workers')}: batches are gathered "
        "in-process)",
    )
    p.add_argument(
        "--threads",
        type=types.threads,
        help="CPU threads per process (default: all cores, shared among local processes)",
    )
    p.add_argument(
        "--no-amp",
        action="store_true",
        help="train in fp32 (default: bf16 autocast on CUDA and on CPUs with native bf16; "
        "weights stay fp32)",
    )
    p.add_argument(
        "--no-fused-lstm",
        action="store_true",
        help="run the LSTMs on nn.LSTM instead of musicvae's fused CPU kernel (which is built "
        "on first use where a C++ compiler is found; also MUSICVAE_FUSED_LSTM=0)",
    )
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start a new run from another model's weights (a run folder, .pt checkpoint, "
        ".safetensors bundle or bundled model name) with a fresh optimizer at step 0; ignored "
        "when the run folder already has checkpoints (the run then resumes)",
    )
    p.add_argument(
        "--init-parts",
        choices=INIT_PARTS,
        default="all",
        help="what --init-from copies: the whole model (default), or only its encoder or "
        "decoder, the rest starting fresh (e.g. a hierarchical model on a flat one's encoder)",
    )
    p.add_argument(
        "--max-time",
        metavar="DURATION",
        help="stop cleanly after this long, with a checkpoint saved (e.g. 90m, 2h, 1h30m); "
        "rerunning the command goes on",
    )
    p.add_argument(
        "--print-every",
        type=int,
        default=default("print_every"),
        help="when no progress bar is drawn (output to a file or a pipe, or --no-progress): "
        "print a line of step, loss, KL, hit accuracy, examples/s and ETA every K steps "
        f"(default {default('print_every')})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines instead)")
    p.set_defaults(func=run_train)
    return p


def _config(name: str, hparams: str | None) -> Config:
    from musicvae.configs import get_config

    try:
        return get_config(name, hparams or None)
    except ValueError as e:
        raise MusicVAEError(f"--config {name} --hparams {hparams!r}: {e}") from None


def _check_inputs(examples: Path, *counts: tuple[str, int | None]) -> None:
    if not examples.is_file():
        raise MusicVAEError(f"{examples}: no such examples file")
    for flag, value in counts:
        if value is not None and value < 0:
            raise MusicVAEError(f"{flag} {value}: must be 0 or more")


def _check_run_dir(run_dir: Path, examples: Path | None = None) -> None:
    """A run folder, or a path one can be made at: no file on it or above it; and not one whose
    ``train`` or ``eval`` folder (which training writes and prunes) holds the ``examples``."""
    for sub in ("train", "eval"):
        owned = os.path.realpath(run_dir / sub)
        if examples is not None and os.path.realpath(examples).startswith(owned + os.sep):
            raise MusicVAEError(
                f"{examples}: is inside the run folder's {sub}/ folder, which training writes "
                "and prunes; keep the dataset outside it"
            )
    existing = run_dir
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == run_dir else f"{existing} is a file"
        raise MusicVAEError(f"{run_dir}: cannot be a run folder ({what}, not a folder)")


def run_train(args: argparse.Namespace) -> int:
    """``musicvae train``: its flags as :class:`TrainOptions`, then :func:`run_options`."""
    config, options = _options(args)
    if args.no_fused_lstm:
        from musicvae.models.fused_lstm import ENV

        os.environ[ENV] = "0"  # read at every LSTM call, and inherited by child processes
    return run_options(config, options, evaluate=args.mode == "eval")


def _options(args: argparse.Namespace) -> tuple[Config, TrainOptions]:
    """``musicvae train``'s flags as a config and options, checked before anything is read."""
    config = _config(args.config, args.hparams)
    _check_run_dir(args.run_dir, args.examples)
    _check_inputs(
        args.examples,
        ("--num-steps", args.num_steps),
        ("--eval-every", args.eval_every),
        ("--eval-num-batches", args.eval_num_batches),
        ("--checkpoint-every", args.checkpoint_every),
        ("--checkpoints-to-keep", args.checkpoints_to_keep),
        ("--workers", args.workers),
        ("--threads", args.threads),
    )
    for flag, value in (("--log-every", args.log_every), ("--print-every", args.print_every)):
        if value < 1:
            raise MusicVAEError(f"{flag} {value}: must be 1 or more")
    from musicvae.training.progress import parse_duration

    max_time = parse_duration(args.max_time) if args.max_time is not None else None
    options = TrainOptions(
        run_dir=args.run_dir,
        examples=args.examples,
        num_steps=args.num_steps or None,  # 0: until interrupted, as in Magenta
        device=args.device,
        seed=args.seed,
        eval_every=args.eval_every,
        eval_num_batches=args.eval_num_batches or None,
        checkpoint_every=args.checkpoint_every or None,
        checkpoints_to_keep=args.checkpoints_to_keep,
        log_every=args.log_every,
        workers=args.workers,
        threads=args.threads or None,
        amp=not args.no_amp,
        progress=False if args.no_progress else None,
        init_from=args.init_from,
        init_parts=args.init_parts,
        max_time=max_time,
        print_every=args.print_every,
    )
    return config, options


def run_options(
    config: Config, options: TrainOptions, *, evaluate: bool = False, eval_dir: Path | None = None
) -> int:
    """What both command forms run: train ``config`` as ``options`` say, or with ``evaluate``
    validate the run's latest checkpoint once (events to ``eval_dir``, default RUN/eval)."""
    if evaluate:
        return _run_eval(
            options.run_dir,
            options.examples,
            config,
            options.device,
            options.eval_num_batches,
            eval_dir,
        )
    return train_and_report(config, options)


def train_and_report(config: Config, options: TrainOptions) -> int:
    """Run :func:`musicvae.training.trainer.train` and print how it ended; the exit code."""
    from musicvae.training.progress import accuracy_text
    from musicvae.training.trainer import train

    result = train(config, options)
    if result.rank:  # under torchrun only rank 0 reports
        return 0
    if result.stopped_by in SIGNAL_EXIT:
        return SIGNAL_EXIT[result.stopped_by]
    if result.train:
        print(
            f"step {result.step}: loss {result.train['loss']:.4f}, "
            f"KL {result.train.get('kl_bits', float('nan')):.2f} bits, "
            + accuracy_text(result.train)
        )
    if result.eval:
        print(f"eval at step {result.step}: " + _format(result.eval))
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _format(values: dict[str, float]) -> str:
    keys = ("loss", "r_loss", "kl_bits", "hit_accuracy", "accuracy")  # accuracy: melodies
    return ", ".join(f"{k} {values[k]:.4f}" for k in keys if k in values)


def _run_eval(
    run_dir: Path,
    examples: Path,
    config: Config,
    device: str,
    num_batches: int | None,
    eval_dir: Path | None = None,
) -> int:
    from musicvae.training.validation import validate_checkpoint

    step, values = validate_checkpoint(
        run_dir,
        examples,
        config=config,
        device=device,
        num_batches=num_batches or None,
        eval_dir=eval_dir,
    )
    print(f"eval at step {step}: " + _format(values))
    return 0


def _absl_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "t", "yes", "y"):
        return True
    if value in ("0", "false", "f", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def magenta_parser() -> argparse.ArgumentParser:
    p = types.Parser(
        prog="music_vae_train",
        description="Magenta's music_vae_train flags: train or evaluate a MusicVAE/GrooVAE run.",
    )
    p.add_argument("--config", required=True, help="the name of the config to use")
    p.add_argument(
        "--run_dir",
        required=True,
        type=types.run_folder,
        help="folder for checkpoints and events; `train` and `eval` subfolders are created",
    )
    p.add_argument("--mode", choices=("train", "eval"), default="train", help="train or eval")
    p.add_argument(
        "--examples_path",
        required=True,
        type=Path,
        help="NoteSequence TFRecord or musicvae dataset file (train mode: its train split; eval "
        "mode: its validation split, or the whole file when it has none)",
    )
    p.add_argument("--tfds_name", help="not supported (TensorFlow Datasets); use --examples_path")
    p.add_argument(
        "--num_steps",
        type=int,
        default=DEFAULT_NUM_STEPS,
        help=f"number of training steps, 0 for no limit (default {DEFAULT_NUM_STEPS})",
    )
    p.add_argument(
        "--eval_num_batches",
        type=int,
        help="batches to use during evaluation (default: all batches of the data)",
    )
    p.add_argument(
        "--checkpoints_to_keep",
        type=int,
        default=default("checkpoints_to_keep"),
        help="checkpoints kept in train mode (0: all; default "
        f"{default('checkpoints_to_keep')}, as musicvae train: Magenta's 100 would fill about "
        "5 GB)",
    )
    p.add_argument(
        "--keep_checkpoint_every_n_hours",
        type=float,
        default=1,
        help="accepted for compatibility; ignored",
    )
    p.add_argument("--hparams", default="", help="comma-separated name=value hparam overrides")
    p.add_argument(
        "--cache_dataset",
        type=_absl_bool,
        nargs="?",
        const=True,
        default=True,
        help="accepted for compatibility: the converted dataset is always held in memory",
    )
    p.add_argument(
        "--nocache_dataset",
        dest="cache_dataset",
        action="store_false",
        help="accepted for compatibility; ignored",
    )
    p.add_argument("--eval_dir_suffix", default="", help="suffix added to the eval folder name")
    p.add_argument(
        "--device",
        type=types.device,
        default="auto",
        help=f"{types.DEVICE_HELP} (default auto)",
    )
    p.add_argument("--seed", type=types.seed, help="seed every generator, for a reproducible run")
    for flag in ("--master", "--log"):
        p.add_argument(flag, help="accepted for compatibility; ignored")
    for flag in ("--task", "--num_ps_tasks", "--num_sync_workers"):
        p.add_argument(
            flag, type=int, default=0, help="accepted for compatibility; use torchrun instead"
        )
    return p


def magenta_main(argv: list[str] | None = None) -> int:
    """``music_vae_train --config=... --run_dir=... --mode=train|eval --examples_path=...``."""
    from musicvae.cli.main import run

    args = magenta_parser().parse_args(argv)
    return run(_run_magenta, args)


def _run_magenta(args: argparse.Namespace) -> int:
    config, options = _magenta_options(args)
    eval_dir = options.run_dir / f"eval{args.eval_dir_suffix}"
    return run_options(config, options, evaluate=args.mode == "eval", eval_dir=eval_dir)


def _magenta_options(args: argparse.Namespace) -> tuple[Config, TrainOptions]:
    """``music_vae_train``'s flags as a config and options; the flags Magenta needs for its
    own cluster or cache are accepted and left out."""
    if args.tfds_name:
        raise MusicVAEError(f"--tfds_name {args.tfds_name}: not supported; use --examples_path")
    config = _config(args.config, args.hparams)
    _check_run_dir(args.run_dir, args.examples_path)
    _check_inputs(
        args.examples_path,
        ("--num_steps", args.num_steps),
        ("--eval_num_batches", args.eval_num_batches),
        ("--checkpoints_to_keep", args.checkpoints_to_keep),
    )
    options = TrainOptions(
        run_dir=args.run_dir,
        examples=args.examples_path,
        num_steps=args.num_steps or None,  # Magenta: 0 trains until interrupted
        device=args.device,
        seed=args.seed,
        eval_every=0,  # Magenta evaluates in a separate --mode=eval process
        eval_num_batches=args.eval_num_batches or None,
        checkpoints_to_keep=args.checkpoints_to_keep,
    )
    return config, options


if __name__ == "__main__":
    sys.exit(magenta_main())
