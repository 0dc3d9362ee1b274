"""Evaluation: model scalars averaged over a split, with the training RNG left untouched."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from musicvae.configs import Config
from musicvae.data.examples import Examples, eval_batches, load_examples
from musicvae.training import checkpoint as ckpt
from musicvae.training import distributed as dist_utils
from musicvae.training.optim import autocast, model_controls
from musicvae.training.summaries import MODEL_SCALARS, Summaries

EVAL_SEED = 1234


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    examples: Examples,
    config: Config,
    *,
    step: int,
    device: torch.device,
    num_batches: int | None = None,
    amp: bool = True,
    seed: int = EVAL_SEED,
) -> dict[str, float]:
    """Model scalars averaged over examples of ``examples`` (eval mode, fixed noise seed).

    The training RNG streams are left untouched, so evaluating never changes a training curve.
    """
    was_training = model.training
    model.eval()
    sums: torch.Tensor | None = None
    keys: list[str] = []
    total = 0
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for idx in eval_batches(len(examples), config.hparams.batch_size, num_batches):
            inputs, outputs, controls, lengths = (t.to(device) for t in examples.batch(idx))
            with autocast(device, amp):
                out = model(inputs, outputs, lengths, controls=model_controls(controls), step=step)
            keys = [k for k in MODEL_SCALARS if k in out]
            vals = torch.stack([out[k].detach().float() for k in keys]) * len(idx)
            sums = vals if sums is None else sums + vals
            total += len(idx)
    model.train(was_training)
    if sums is None:
        return {}
    return dict(zip(keys, (sums / total).tolist(), strict=True))


def validate_checkpoint(
    run_dir: str | os.PathLike,
    examples_path: str | os.PathLike,
    *,
    config: Config | None = None,
    device: str = "cpu",
    num_batches: int | None = None,
    eval_dir: str | os.PathLike | None = None,
) -> tuple[int, dict[str, float]]:
    """Evaluate a run's latest checkpoint on the validation split; log to ``RUN/eval``.

    A file without validation examples (a TFRecord, whose records are all "train") is evaluated
    whole, as Magenta's eval mode reads the whole ``--examples_path``.
    """
    dev = dist_utils.resolve_device(device)
    if dev.type == "cpu":
        dist_utils.set_cpu_threads(dist_utils.DistInfo())
    model, config, step, _ = ckpt.load_checkpoint(run_dir, device=dev, config=config)
    examples = load_examples(examples_path, config, "validation", required=False)
    if examples is None:
        examples = load_examples(examples_path, config, None)
    values = validate(model, examples, config, step=step, device=dev, num_batches=num_batches)
    if eval_dir is None:
        run = Path(run_dir)
        if run.is_file():  # a checkpoint file: RUN/train/model.ckpt-N.pt
            run = run.parent.parent if run.parent.name == "train" else run.parent
        eval_dir = run / "eval"
    out_dir = Path(eval_dir)
    summaries = Summaries(out_dir)
    summaries.scalars(values, step)
    summaries.close()
    return step, values
