"""The training loop: resumable runs, periodic evaluation, logging, multi-process training.

The step itself (Magenta's schedule, clipping and Adam) is :func:`musicvae.training.optim.train_step`.
Run folder layout follows ``music_vae_train``: ``RUN/train`` holds checkpoints and training event
files, ``RUN/eval`` the evaluation event files. Rerunning the same command resumes from the latest
checkpoint; with a seed the loss curve is the one an uninterrupted run draws.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from musicvae.configs import Config
from musicvae.data.examples import BatchStream, Examples, load_examples
from musicvae.errors import MusicVAEError
from musicvae.training import checkpoint as ckpt
from musicvae.training import distributed as dist_utils
from musicvae.training.optim import (
    amp_enabled,
    keep_cpu_heap,
    make_deterministic,
    make_optimizer,
    set_seed,
    train_step,
)
from musicvae.training.progress import Reporter, StopFlag, format_duration
from musicvae.training.summaries import MODEL_SCALARS, Summaries, drop_events_from
from musicvae.training.validation import validate

# Schedules: logged at the last step of a logging window instead of averaged over it.
INSTANT = ("kl_beta", "sampling_probability")


@dataclass
class TrainOptions:
    """How to run training; the model and objective come from the ``Config``."""

    run_dir: Path
    examples: Path
    num_steps: int | None = 200_000  # None: until interrupted
    device: str = "cpu"
    seed: int | None = None
    eval_every: int = 1000  # steps; 0 turns periodic evaluation off
    eval_num_batches: int | None = None  # None: the whole validation split
    checkpoint_every: int | None = None  # steps; None: every checkpoint_secs, as Magenta
    checkpoint_secs: float = 60.0
    checkpoints_to_keep: int = 5  # 0 keeps all
    log_every: int = 10
    workers: int = 0  # DataLoader processes; 0 gathers batches from the stacked tensors
    progress: bool | None = None  # None: tqdm decides (a bar on a terminal only)
    amp: bool = True  # bf16 autocast on CUDA and on CPUs with native bf16 (optim.amp_enabled)
    threads: int | None = None  # CPU threads per process; None: the cores shared out evenly
    # Warm start of a new run: another model's weights (fine-tuning); the optimizer starts fresh.
    init_from: str | None = None
    max_time: float | None = None  # seconds; stop cleanly (with a checkpoint) after this long
    print_every: int = 100  # steps between log lines when no progress bar is drawn

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.examples = Path(self.examples)


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None
    rank: int = 0
    stopped_by: str | None = None  # "SIGINT", "SIGTERM" or "max-time" when it ended early
    train: dict[str, float] = field(default_factory=dict)
    eval: dict[str, float] = field(default_factory=dict)


class _Batches(torch.utils.data.Dataset):
    """Maps a tensor of indices to a whole batch, so each worker call builds one batch."""

    def __init__(self, examples: Examples) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.examples.batch(index)


class _Loader:
    """Batches for the loop: an index-gather in-process, or ``workers`` DataLoader processes
    (worth it only when encoder inputs are re-drawn per item, e.g. note dropout)."""

    def __init__(self, examples: Examples, stream: BatchStream, workers: int) -> None:
        self.examples, self.stream, self.iter = examples, stream, None
        if workers > 0:
            from torch.utils.data import DataLoader

            loader = DataLoader(
                _Batches(examples), sampler=stream, batch_size=None, num_workers=workers
            )
            self.iter = iter(loader)

    def next(self) -> tuple[torch.Tensor, ...]:
        if self.iter is not None:
            return tuple(next(self.iter))
        return self.examples.batch(next(self.stream))


def _warm_start(model: torch.nn.Module, config: Config, source: str) -> None:
    """Copy the weights of ``source`` (anything ``musicvae.load`` opens) into ``model``."""
    from musicvae.generation.api import load

    ckpt.load_weights(
        model, load(source).model.state_dict(), f"--init-from {source}: its weights", config
    )


def _should_stop(
    stop: StopFlag, report: Reporter, options: TrainOptions, info, step: int
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
    info,
    examples,
    eval_examples,
    start_step: int,
) -> None:
    hp = config.hparams
    device = info.device
    n = torch.get_num_threads()
    threads = f" ({n} thread{'s' if n > 1 else ''})" if device.type == "cpu" else ""
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
    from musicvae.models import build_model

    hp = config.hparams
    if options.num_steps is not None and options.num_steps < 0:
        raise MusicVAEError(f"--num-steps {options.num_steps}: must be 0 or more")
    if hp.batch_size % info.world_size:
        raise MusicVAEError(
            f"batch_size {hp.batch_size} does not split evenly over {info.world_size} processes"
        )
    device = info.device
    if device.type == "cpu":
        dist_utils.set_cpu_threads(info, options.threads)
        keep_cpu_heap()  # no page faults on each step's fresh large tensors
    train_dir = options.run_dir / "train"
    found = ckpt.newest_readable(train_dir, set_aside=info.is_main)
    resume_path, state = found if found is not None else (None, None)
    resume = bool(found)

    seed = options.seed
    if seed is None:
        seed = state["seed"] if state and state.get("seed") is not None else None
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    seed = dist_utils.broadcast_int(seed, info)
    set_seed(seed)
    if options.seed is not None:
        make_deterministic(device)

    examples = load_examples(
        options.examples, config, "train", progress=options.progress if info.is_main else False
    )
    eval_examples = None
    if info.is_main and options.eval_every:
        eval_examples = load_examples(
            options.examples, config, "validation", required=False, progress=options.progress
        )
    if device.type == "cuda" and options.workers == 0:
        examples = examples.to(device)  # batches are then gathered on the GPU

    model = build_model(config).to(device)
    optimizer = make_optimizer(model, config)
    start_step = 0
    if state is not None:
        path = resume_path
        try:
            model.load_state_dict(state["model"])
            if state.get("optimizer"):
                optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            # load_state_dict's first line only says "Error(s) in loading"; the next names one.
            lines = str(e).strip().splitlines() or [type(e).__name__]
            reason = lines[1].strip() if len(lines) > 1 else lines[0]
            raise MusicVAEError(
                f"{path}: cannot resume, the checkpoint does not fit config {config.name!r} "
                f"({reason}); use a new --run-dir"
            ) from None
        start_step = int(state["step"])
        if info.is_main:
            ignored = "; --init-from is ignored" if options.init_from else ""
            tqdm.write(f"resuming from step {start_step} ({path}){ignored}", file=sys.stderr)
            # Resuming with new settings is how a run changes course (e.g. more free bits);
            # say so, since the checkpoints from here on record the new config.
            changes = ckpt.config_changes(state.get("config") or {}, config)
            if changes:
                tqdm.write(
                    f"{path}: resuming at step {start_step} with " + "; ".join(changes),
                    file=sys.stderr,
                )
            ckpt.set_rng_state(state["rng"])
        else:
            torch.manual_seed(seed + info.rank + 1_000_003 * start_step)
    else:
        if options.init_from:
            _warm_start(model, config, options.init_from)
        if info.rank:
            torch.manual_seed(seed + info.rank)  # dropout noise differs across ranks
    if dist_utils.broadcast_int(start_step, info) != start_step:
        raise MusicVAEError(
            f"{train_dir}: rank {info.rank} sees a different latest checkpoint than rank 0; "
            "the run folder must be on a file system every node shares"
        )
    model.train()
    ddp_model = dist_utils.wrap(model, info)
    params = [p for p in model.parameters() if p.requires_grad]

    per_rank = hp.batch_size // info.world_size
    stream = BatchStream(
        len(examples),
        per_rank,
        seed=seed,
        rank=info.rank,
        world_size=info.world_size,
        start_step=start_step,
    )
    loader = _Loader(examples, stream, options.workers)
    if info.is_main:
        _drop_lost_events(options.run_dir, start_step, resume_path)
    summaries = Summaries(
        train_dir, enabled=info.is_main, purge_step=start_step if resume else None
    )
    eval_summaries = None
    if info.is_main and eval_examples is not None:
        purge = start_step + 1 if resume else None
        eval_summaries = Summaries(options.run_dir / "eval", purge_step=purge)
    if not resume:
        summaries.trial(config, options.examples)

    result = TrainResult(step=start_step, checkpoint=resume_path, rank=info.rank)
    best = {"loss": float(state.get("best_eval_loss", math.inf)) if state else math.inf}
    saved_at = [start_step]  # the step of result.checkpoint

    def save(step: int) -> None:
        if not info.is_main:
            return
        try:
            result.checkpoint = ckpt.save_checkpoint(
                train_dir,
                model=model,
                config=config,
                step=step,
                optimizer=optimizer,
                seed=seed,
                keep=options.checkpoints_to_keep,
                extra={"best_eval_loss": best["loss"]} if math.isfinite(best["loss"]) else None,
            )
        except MusicVAEError as e:  # a full disk: say what is safe, in the same one line
            kept = result.checkpoint
            left = f"{kept.name} (step {saved_at[0]:,}) is kept" if kept else "none saved yet"
            raise MusicVAEError(f"{e}; last good checkpoint: {left}") from None
        saved_at[0] = step

    def run_eval(step: int) -> None:
        if eval_examples is None or eval_summaries is None:
            return
        result.eval = validate(
            model,
            eval_examples,
            config,
            step=step,
            device=device,
            num_batches=options.eval_num_batches,
            amp=options.amp,
        )
        eval_summaries.scalars(result.eval, step)
        eval_summaries.flush()
        loss = float(result.eval.get("loss", math.inf))
        if loss < best["loss"]:  # keep the best weights by validation loss beside the newest
            best["loss"] = loss
            ckpt.write_checkpoint(
                train_dir / ckpt.BEST_NAME,
                ckpt.checkpoint_payload(
                    model=model,
                    config=config,
                    step=step,
                    seed=seed,
                    extra={"eval_loss": loss, "best_eval_loss": loss},
                ),
            )

    bar_shown = options.progress if options.progress is not None else sys.stderr.isatty()
    bar = tqdm(
        total=options.num_steps,
        initial=start_step,
        unit="step",
        desc="train",
        dynamic_ncols=True,
        disable=(not info.is_main) or not bar_shown,
    )
    report = Reporter(
        enabled=info.is_main,
        start_step=start_step,
        num_steps=options.num_steps,
        batch_size=hp.batch_size,
        lines=not bar_shown,
        print_every=options.print_every,
        max_time=options.max_time,
    )
    if info.is_main:
        _summary(report, config, options, info, examples, eval_examples, start_step)
    stop = StopFlag()
    window: torch.Tensor | None = None
    window_steps, window_start = 0, time.perf_counter()
    last_save, saved_step = time.monotonic(), start_step
    keys = list(MODEL_SCALARS)
    step = start_step
    try:
        with stop.installed():
            while options.num_steps is None or step < options.num_steps:
                inputs, outputs, controls, lengths = (
                    t.to(device, non_blocking=True) for t in loader.next()
                )
                out, norm, lr = train_step(
                    ddp_model,
                    optimizer,
                    (inputs, outputs, controls, lengths),
                    step,
                    config,
                    params=params,
                    amp=options.amp,
                )
                if window is None:
                    keys = [k for k in MODEL_SCALARS if k in out]
                row = torch.stack([out[k].detach().float() for k in keys] + [norm.float()])
                window = row if window is None else window + row
                last = row
                window_steps += 1
                step += 1
                bar.update(1)

                if step % options.log_every == 0 or step == options.num_steps:
                    # One host sync per logging window; the scalars are window means.
                    if info.distributed:  # every rank logs at the same steps: average them
                        torch.distributed.all_reduce(window)
                        window /= info.world_size
                    means = (window / window_steps).tolist()
                    for i, k in enumerate(keys):
                        if k in INSTANT:
                            means[i] = float(last[i])
                    dt = max(time.perf_counter() - window_start, 1e-9)
                    values = dict(zip(keys, means[:-1], strict=True))
                    values.update(
                        grad_norm=means[-1],
                        global_norm=means[-1],
                        learning_rate=lr,
                        steps_per_sec=window_steps / dt,
                        examples_per_sec=window_steps * hp.batch_size / dt,
                    )
                    result.train = values
                    summaries.scalars(values, step - 1)
                    bar.set_postfix(
                        loss=f"{values['loss']:.4g}",
                        kl_bits=f"{values.get('kl_bits', 0.0):.3g}",
                        ex_s=f"{values['examples_per_sec']:.0f}",
                        refresh=False,
                    )
                    window, window_steps, window_start = None, 0, time.perf_counter()
                    report.step_done(step, values)
                else:
                    report.step_done(step, None)
                if options.eval_every and step % options.eval_every == 0:
                    run_eval(step)
                due = (
                    step % options.checkpoint_every == 0
                    if options.checkpoint_every
                    else time.monotonic() - last_save >= options.checkpoint_secs
                )
                if due and step != options.num_steps:
                    save(step)
                    last_save, saved_step = time.monotonic(), step
                ending = _should_stop(stop, report, options, info, step)
                if ending:
                    result.stopped_by = ending
                    break
    except KeyboardInterrupt:
        if step > saved_step:
            save(step)  # keep the work done so far; rerunning resumes here
        if result.checkpoint is not None:
            report.say(f"saved step {step}; rerun the same command to resume")
        raise
    finally:
        bar.close()
        summaries.close()
    result.step = step
    if step > saved_step or result.checkpoint is None:
        save(step)
    signalled = result.stopped_by in ("SIGINT", "SIGTERM")
    if options.eval_every and step % options.eval_every and step > start_step and not signalled:
        run_eval(step)  # the final weights get an evaluation too
    _say_end(report, result, options, start_step)
    if eval_summaries is not None:
        eval_summaries.close()
    dist_utils.barrier(info)
    return result
