"""The training loop: resumable runs, periodic evaluation, logging, multi-process training.

The step itself (Magenta's schedule, clipping and Adam) is :func:`musicvae.training.optim.train_step`;
what the loop carries from step to step, and how a checkpoint restores it, is
:mod:`musicvae.training.state`. Run folder layout follows ``music_vae_train``: ``RUN/train`` holds
checkpoints and training event files, ``RUN/eval`` the evaluation event files. Rerunning the same
command resumes from the latest checkpoint; with a seed the loss curve is the one an uninterrupted
run draws.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from musicvae.configs import Config
from musicvae.cpu import ThreadTuner
from musicvae.data.augment import Augmentation
from musicvae.data.examples import BatchStream, Examples, load_examples
from musicvae.data.transpose import Transposition
from musicvae.errors import MusicVAEError
from musicvae.training import checkpoint as ckpt
from musicvae.training import distributed as dist_utils
from musicvae.training.optim import amp_enabled, make_deterministic, make_optimizer, set_seed
from musicvae.training.options import TrainOptions
from musicvae.training.progress import Reporter, StopFlag, format_duration
from musicvae.training.state import Loader, TrainResult, TrainState, restore
from musicvae.training.summaries import Summaries, drop_events_from

__all__ = ["TrainOptions", "TrainResult", "train"]


def _should_stop(
    stop: StopFlag, report: Reporter, options: TrainOptions, info: dist_utils.DistInfo, step: int
) -> str | None:
    """Why the loop ends after ``step`` (None: it goes on). Under DDP every rank must stop at
    the same step, so there the decision is taken at logging steps and shared."""
    out_of_time = (
        options.max_time is not None and time.monotonic() - report.started >= options.max_time
    )
    if info.distributed:
        if step % options.log_every:
            return None
        code = 2 if stop else 1 if out_of_time else 0
        code = dist_utils.broadcast_int(code, info)
        return (stop.signal_name or "SIGTERM") if code == 2 else "max-time" if code else None
    if stop:
        return stop.signal_name
    return "max-time" if out_of_time else None


def _summary(
    report: Reporter,
    config: Config,
    options: TrainOptions,
    info: dist_utils.DistInfo,
    examples: Examples,
    eval_examples: Examples | None,
    start_step: int,
) -> None:
    hp = config.hparams
    device = info.device
    n = torch.get_num_threads()
    fewer = (
        ", fewer while other programs are busy" if _free_threads(options, info) and n > 1 else ""
    )
    threads = f" ({n} thread{'s' if n > 1 else ''}{fewer})" if device.type == "cpu" else ""
    bf16 = "on" if amp_enabled(device, options.amp) else "off"
    val = f", {len(eval_examples):,} validation" if eval_examples is not None else ""
    steps = "until interrupted" if options.num_steps is None else f"to step {options.num_steps:,}"
    every = (
        f"every {options.checkpoint_every} steps"
        if options.checkpoint_every
        else f"every {options.checkpoint_secs:g} s"
    )
    keep = (
        "all kept"
        if options.checkpoints_to_keep == 0
        else f"newest {options.checkpoints_to_keep} kept"
    )
    budget = f", at most {format_duration(options.max_time)}" if options.max_time else ""
    report.say(
        f"train {config.name} on {options.examples}: {len(examples):,} train{val} examples; "
        f"batch {hp.batch_size}, device {device}{threads}, bf16 autocast {bf16}; "
        f"step {start_step:,} {steps}{budget}"
    )
    report.say(
        f"checkpoints: {options.run_dir / 'train'} ({every}, {keep}); events: "
        f"{options.run_dir / 'train'} and {options.run_dir / 'eval'} (musicvae plot "
        f"{options.run_dir}, or TensorBoard)"
    )
    if options.num_steps is not None and start_step >= options.num_steps:
        report.say(
            f"already at step {start_step:,}: this run is finished; pass a larger --num-steps "
            "to train on"
        )


def _say_end(report: Reporter, result: TrainResult, options: TrainOptions, start: int) -> None:
    if result.stopped_by in ("SIGINT", "SIGTERM"):
        report.say(
            f"{result.stopped_by}: saved step {result.step}; rerun the same command to resume"
        )
    elif result.stopped_by == "max-time":
        report.say(
            f"--max-time {format_duration(options.max_time or 0)} reached: saved step "
            f"{result.step}; rerun the same command to go on"
        )
    elif result.step > start:
        report.say(
            f"finished at step {result.step:,}; to train on, rerun with a larger --num-steps "
            "(the run resumes from here)"
        )


def _drop_lost_events(run_dir: Path, start_step: int, resume_path: Path | None) -> None:
    """Events that attempts which died logged past the checkpoint resumed from (or all of
    them, when there is none): this run logs those steps again. Evaluation at the checkpoint's
    own step ran before it was saved, so it stays."""
    since = resume_path.stat().st_mtime if resume_path is not None else None
    changed = drop_events_from(run_dir / "train", start_step, since)
    changed += drop_events_from(run_dir / "eval", start_step + 1 if resume_path else 0, since)
    if changed:
        where = (
            f"past step {start_step:,}" if resume_path else "of attempts that saved no checkpoint"
        )
        tqdm.write(
            f"{run_dir}: removed the logged steps {where} from {changed} event "
            f"file{'s' if changed > 1 else ''} (they are trained again)",
            file=sys.stderr,
        )


def train(config: Config, options: TrainOptions) -> TrainResult:
    """Train ``config`` on ``options.examples`` until global step ``options.num_steps``."""
    info = dist_utils.setup(options.device)
    try:
        return _train(config, options, info)
    finally:
        dist_utils.teardown()


def _train(config: Config, options: TrainOptions, info: dist_utils.DistInfo) -> TrainResult:
    """The loop, as nanoGPT's: one step, its log line, evaluation and checkpoint when due, and
    the stop checks; everything it carries is in a :class:`~musicvae.training.state.TrainState`."""
    if config.hparams.batch_size % info.world_size:
        raise MusicVAEError(
            f"batch_size {config.hparams.batch_size} does not split evenly over "
            f"{info.world_size} processes"
        )
    cpu = info.device.type == "cpu"
    threads = dist_utils.set_cpu_threads(info, options.threads) if cpu else 0
    state = _start(config, options, info)
    state.tuner = _thread_tuner(options, info, threads)
    bar, report = _progress(state)
    stop = StopFlag()
    try:
        with stop.installed():
            while options.num_steps is None or state.step < options.num_steps:
                lr = state.train_one_step()
                if state.note:
                    report.say(state.note)
                bar.update(1)
                _log(state, bar, report, lr)
                if options.eval_every and state.step % options.eval_every == 0:
                    state.evaluate()
                if state.checkpoint_due():
                    state.save()
                ending = _should_stop(stop, report, options, info, state.step)
                if ending:
                    state.result.stopped_by = ending
                    break
    except KeyboardInterrupt:
        if state.step > state.saved_step:
            state.save()  # keep the work done so far; rerunning resumes here
        if state.result.checkpoint is not None:
            report.say(f"saved step {state.step}; rerun the same command to resume")
        raise
    finally:
        bar.close()
        state.summaries.close()
    return _finish(state, report)


def _start(config: Config, options: TrainOptions, info: dist_utils.DistInfo) -> TrainState:
    """Everything the loop needs, restored from the newest readable checkpoint when there is
    one. The order (seed, data, model, restore) is what makes a resumed run bit-exact."""
    from musicvae.models import build_model

    train_dir = options.run_dir / "train"
    found = ckpt.newest_readable(train_dir, set_aside=info.is_main)
    resume_path, saved = found if found is not None else (None, None)
    seed = _seed(options, saved, info)
    examples, eval_examples = _load_data(config, options, info)
    model = build_model(config).to(info.device)
    optimizer = make_optimizer(model, config)
    start_step = restore(model, optimizer, config, options, info, seed, resume_path, saved)
    if dist_utils.broadcast_int(start_step, info) != start_step:
        raise MusicVAEError(
            f"{train_dir}: rank {info.rank} sees a different latest checkpoint than rank 0; "
            "the run folder must be on a file system every node shares"
        )
    model.train()
    ddp_model = dist_utils.wrap(model, info)
    stream = BatchStream(
        len(examples),
        config.hparams.batch_size // info.world_size,
        seed=seed,
        rank=info.rank,
        world_size=info.world_size,
        start_step=start_step,
    )
    summaries, eval_summaries = _open_summaries(
        config, options, info, start_step, resume_path, eval_examples is not None
    )
    return TrainState(
        config=config,
        options=options,
        info=info,
        model=model,
        ddp_model=ddp_model,
        optimizer=optimizer,
        seed=seed,
        examples=examples,
        eval_examples=eval_examples,
        loader=Loader(examples, stream, options.workers),
        summaries=summaries,
        eval_summaries=eval_summaries,
        result=TrainResult(step=start_step, checkpoint=resume_path, rank=info.rank),
        start_step=start_step,
        best_loss=float(saved.get("best_eval_loss", math.inf)) if saved else math.inf,
        # A config asks for at most one: groove augmentation needs the groove converter,
        # transposition the melody one.
        augment=Augmentation.from_config(config, seed, info.rank)
        or Transposition.from_config(config, seed, info.rank),
    )


def _thread_tuner(
    options: TrainOptions, info: dist_utils.DistInfo, threads: int
) -> ThreadTuner | None:
    """A :class:`ThreadTuner` when the thread count is ours to choose."""
    if not _free_threads(options, info) or threads <= 1:
        return None
    return ThreadTuner(most=threads, set_threads=torch.set_num_threads)


def _free_threads(options: TrainOptions, info: dist_utils.DistInfo) -> bool:
    """On the CPU, one process, no ``--threads`` and no ``--seed``: a seeded run keeps its
    count so that its curve repeats (CPU kernels are deterministic for a fixed thread count)."""
    free = options.threads is None and options.seed is None and not info.distributed
    return info.device.type == "cpu" and free


def _seed(options: TrainOptions, saved: dict[str, Any] | None, info: dist_utils.DistInfo) -> int:
    """``--seed``, else the resumed run's, else a fresh one; the same on every rank."""
    seed = options.seed
    if seed is None:
        seed = saved["seed"] if saved and saved.get("seed") is not None else None
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    seed = dist_utils.broadcast_int(seed, info)
    set_seed(seed)
    if options.seed is not None:
        make_deterministic(info.device)
    return seed


def _load_data(
    config: Config, options: TrainOptions, info: dist_utils.DistInfo
) -> tuple[Examples, Examples | None]:
    """The train split (on the GPU when batches are gathered there) and, on the main rank with
    evaluation on, the validation split if there is one."""
    examples = load_examples(
        options.examples, config, "train", progress=options.progress if info.is_main else False
    )
    eval_examples = None
    if info.is_main and options.eval_every:
        eval_examples = load_examples(
            options.examples, config, "validation", required=False, progress=options.progress
        )
    if info.device.type == "cuda" and options.workers == 0:
        examples = examples.to(info.device)  # batches are then gathered on the GPU
    return examples, eval_examples


def _open_summaries(
    config: Config,
    options: TrainOptions,
    info: dist_utils.DistInfo,
    start_step: int,
    resume_path: Path | None,
    evaluating: bool,
) -> tuple[Summaries, Summaries | None]:
    """The train and eval event files, purged of the steps this run logs again."""
    resume = resume_path is not None
    if info.is_main:
        _drop_lost_events(options.run_dir, start_step, resume_path)
    summaries = Summaries(
        options.run_dir / "train", enabled=info.is_main, purge_step=start_step if resume else None
    )
    eval_summaries = None
    if info.is_main and evaluating:
        purge = start_step + 1 if resume else None
        eval_summaries = Summaries(options.run_dir / "eval", purge_step=purge)
    if not resume:
        summaries.trial(config, options.examples)
    return summaries, eval_summaries


def _progress(state: TrainState) -> tuple[tqdm, Reporter]:
    """The progress bar (on a terminal) or the log lines (elsewhere), and the run's summary."""
    options, info = state.options, state.info
    bar_shown = options.progress if options.progress is not None else sys.stderr.isatty()
    bar = tqdm(
        total=options.num_steps,
        initial=state.start_step,
        unit="step",
        desc="train",
        dynamic_ncols=True,
        disable=(not info.is_main) or not bar_shown,
    )
    report = Reporter(
        enabled=info.is_main,
        start_step=state.start_step,
        num_steps=options.num_steps,
        batch_size=state.config.hparams.batch_size,
        lines=not bar_shown,
        print_every=options.print_every,
        max_time=options.max_time,
    )
    if info.is_main:
        _summary(
            report,
            state.config,
            options,
            info,
            state.examples,
            state.eval_examples,
            state.start_step,
        )
    return bar, report


def _log(state: TrainState, bar: tqdm, report: Reporter, lr: float) -> None:
    """At the end of a logging window: its means to the event file, the bar and the report."""
    step, options = state.step, state.options
    if step % options.log_every and step != options.num_steps:
        report.step_done(step, None)
        return
    values = state.window.means(state.info, lr, state.config.hparams.batch_size)
    if state.threads_used is not None:
        values["cpu_threads"] = float(state.threads_used)  # the window's last step's
    state.result.train = values
    state.summaries.scalars(values, step - 1)
    bar.set_postfix(
        loss=f"{values['loss']:.4g}",
        kl_bits=f"{values.get('kl_bits', 0.0):.3g}",
        ex_s=f"{values['examples_per_sec']:.0f}",
        refresh=False,
    )
    state.window.reset()
    report.step_done(step, values)


def _finish(state: TrainState, report: Reporter) -> TrainResult:
    """The last checkpoint and evaluation (unless a signal cut the run short), and the report."""
    result, step, options = state.result, state.step, state.options
    result.step = step
    if step > state.saved_step or result.checkpoint is None:
        state.save()
    signalled = result.stopped_by in ("SIGINT", "SIGTERM")
    if (
        options.eval_every
        and step % options.eval_every
        and step > state.start_step
        and not signalled
    ):
        state.evaluate()  # the final weights get an evaluation too
    _say_end(report, result, options, state.start_step)
    if state.eval_summaries is not None:
        state.eval_summaries.close()
    dist_utils.barrier(state.info)
    return result
