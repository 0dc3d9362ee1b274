"""Evaluate a trained model on one split of a dataset file.

For every window of the split (windowed as the model's config says, converter in 'eval' mode):

- the ELBO terms at ``z = mu`` (Magenta's evaluation): reconstruction loss split into hits,
  velocities and offsets, per drum class and overall, plus KL in nats and bits;
- hit accuracy / precision / recall / F1, velocity MAE (0-127) and timing MAE (ms, at each
  window's tempo) on correctly predicted hits, teacher-forced (hits = probability > 0.5) and
  free-running from ``mu`` with near-greedy hits (temperature ``SAMPLED_TEMPERATURE``);
- the same teacher-forced metrics with another window's ``mu``: how much the latent code matters
  (a collapsed posterior scores as well with the wrong code as with the right one);
- for configs with an input transform (humanize, tap, add-instrument, note dropout): errors vs
  the real performance, a flat baseline and Wasserstein distances of velocity / offset
  distributions; for humanize / add-instrument also with the input's hits kept, as the
  product decodes them;
- interpolation smoothness: hits changed per step of a latent path between pairs of windows
  (:mod:`musicvae.evaluation.interpolation`), for models without controls;
- prior samples vs the split: notes per bar, per-class hit rates, velocity and offset spread,
  and a realism report (dynamics, timing spread, bar-to-bar structure: ``realism``), also for
  the performances of input-transform models, whose velocities are set beside a per-class,
  per-position lookup table learned from the train split;
- with ``protocol`` (e.g. "haki2022", :mod:`musicvae.evaluation.protocols`), a ``protocol`` block:
  a published protocol's metrics on its own rebuild of the published windows.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
import torch

from musicvae.errors import MusicVAEError
from musicvae.evaluation.interpolation import interpolation_smoothness
from musicvae.evaluation.metrics import (
    CLASS_NAMES,
    ReconstructionMetrics,
    groove_stats,
    loss_terms_per_class,
)
from musicvae.evaluation.realism import (
    lookup_velocity_mae,
    realism_report,
    velocity_correlation,
    velocity_lookup,
)

# Hits are Bernoulli(sigmoid(logits / T)); at T = 1e-3 that is the 0.5 threshold except for
# logits within about 0.02 of zero, i.e. near-greedy decoding (the model rejects T = 0).
SAMPLED_TEMPERATURE = 1e-3
PRIOR_TEMPERATURE = 1.0
MAX_PRIOR_SAMPLES = 512
LOSS_TERMS = ("hits_loss", "velocities_loss", "offsets_loss", "r_loss")


def has_input_transform(config) -> bool:
    return config.data.transforms_input


def load_split(path: str | os.PathLike, config, split: str | None, *, workers: int | None = None):
    """``(examples, qpm per window, number of sequences)`` of a dataset file's split."""
    from musicvae.data.dataset import read_dataset
    from musicvae.data.examples import from_dataset
    from musicvae.data.torch_dataset import GrooveDataset

    sequences = read_dataset(path, split)
    if not sequences:
        where = f"split {split!r}" if split else "file"
        raise MusicVAEError(f"{path}: the {where} holds no sequences")
    dataset = GrooveDataset(sequences, config, split=None, mode="eval", workers=workers)
    if len(dataset) == 0:
        where = f"the {split!r} split" if split else "the file"
        raise MusicVAEError(f"{path}: {where} yields no {config.name} windows (4/4, one tempo)")
    qpm_of = {ns.id: ns.qpm for ns in sequences}
    qpm = np.array([qpm_of.get(i, 120.0) for i in dataset.sequence_ids], np.float64)
    return from_dataset(dataset), qpm, len(sequences)


def evaluate(
    trained,
    examples_path: str | os.PathLike,
    split: str | None = "test",
    *,
    batch_size: int = 64,
    num_prior_samples: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool | None = None,
    protocol: str | None = None,
) -> dict:
    """All metrics of ``trained`` (a ``TrainedModel``) on ``split`` of a dataset file, as a dict."""
    from tqdm import tqdm

    from musicvae.models import kl_divergence
    from musicvae.models.decoder import activate

    if protocol is not None:
        from musicvae.evaluation.protocols import PROTOCOLS

        if protocol not in PROTOCOLS:  # before minutes of evaluation, not after
            raise MusicVAEError(
                f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})"
            )
    model, config, device = trained.model, trained.config, trained.device
    examples, qpm, num_sequences = load_split(examples_path, config, split, workers=workers)
    n = len(examples)
    spq = config.data.steps_per_quarter
    tf_metrics = ReconstructionMetrics(spq)
    sampled_metrics = ReconstructionMetrics(spq)
    per_class = {k: np.zeros(len(CLASS_NAMES)) for k in LOSS_TERMS}
    totals = {k: 0.0 for k in ("r_loss", "kl_nats")}
    gen = torch.Generator(device=device).manual_seed(seed)
    uses_controls = trained.converter.control_depth > 0
    other_metrics = ReconstructionMetrics(spq)
    # Humanize / add-instrument models are used with their input's hits kept (keep_hits), tap
    # models with their tapped steps kept (drums there and only there).
    keeps_hits = has_input_transform(config)
    kept_metrics = ReconstructionMetrics(spq) if keeps_hits else None
    performances: dict[str, list[np.ndarray]] = {"sampled": [], "kept_hits": [], "target": []}
    starts = range(0, n, batch_size)
    # The posterior means of every window first: the "other z" decoding borrows the mean of the
    # window half the split away (another performance, as windows are stored in file order).
    mus, sigmas = [], []
    with torch.no_grad():
        for s in starts:
            inputs, _, controls, lengths = (
                t.to(device) for t in examples.batch(torch.arange(s, min(s + batch_size, n)))
            )
            mu, sigma = model.encode(inputs, lengths, controls if uses_controls else None)
            mus.append(mu)
            sigmas.append(sigma)
    all_mu, all_sigma = torch.cat(mus), torch.cat(sigmas)
    other = (torch.arange(n, device=all_mu.device) + n // 2) % n
    bar_shown = sys.stderr.isatty() if progress is None else progress
    lines = progress is None and not bar_shown  # a log file: a line per tenth, not a silent bar
    t0 = time.monotonic()
    for i, s in enumerate(tqdm(starts, desc="evaluating", unit="batch", disable=not bar_shown)):
        if lines and i and i % max(1, len(starts) // 10) == 0:
            left = (time.monotonic() - t0) / i * (len(starts) - i)
            print(
                f"evaluating: {i}/{len(starts)} batches, about {left:.0f} s left",
                file=sys.stderr,
                flush=True,
            )
        idx = torch.arange(s, min(s + batch_size, n))
        inputs, outputs, controls, lengths = (t.to(device) for t in examples.batch(idx))
        ctl = controls if uses_controls else None
        mu, sigma = all_mu[s : s + len(idx)], all_sigma[s : s + len(idx)]
        with torch.no_grad():
            decoded = model.decoder(outputs, lengths, mu, ctl, sampling_probability=0.0)
            other_out = model.decoder(
                outputs, lengths, all_mu[other[s : s + len(idx)]], ctl, sampling_probability=0.0
            ).rnn_output
            parts = model.decoder.reconstruction_loss(decoded.rnn_output, outputs, lengths)
            kl = kl_divergence(mu, sigma)
            probs, vel, off = activate(decoded.rnn_output)
            sampled = model.decode(mu, outputs.shape[1], SAMPLED_TEMPERATURE, ctl, gen)
            if kept_metrics is not None and config.data.tapify:
                taps = torch.from_numpy(trained.input_taps(inputs.cpu().numpy()))
                kept = model.decode(mu, outputs.shape[1], SAMPLED_TEMPERATURE, ctl, gen, taps=taps)
            elif kept_metrics is not None:
                fixed = torch.from_numpy(trained.input_hits(inputs.cpu().numpy()))
                kept = model.decode(mu, outputs.shape[1], SAMPLED_TEMPERATURE, ctl, gen, fixed)
        target = outputs.cpu().numpy()
        terms = loss_terms_per_class(
            probs.cpu().numpy(),
            vel.cpu().numpy(),
            off.cpu().numpy(),
            target,
            model.decoder.hit_conditioned,
        )
        for k in LOSS_TERMS:
            per_class[k] += terms[k].sum(axis=0)
        totals["r_loss"] += float(parts["r_loss"].sum())
        totals["kl_nats"] += float(kl.sum())
        batch_qpm = qpm[s : s + len(target)]
        tf_pred = torch.cat([probs, vel, off], dim=-1).cpu().numpy()
        tf_metrics.update(tf_pred, target, batch_qpm)
        other_metrics.update(
            torch.cat(activate(other_out), dim=-1).cpu().numpy(), target, batch_qpm
        )
        sampled_metrics.update(sampled.cpu().numpy(), target, batch_qpm)
        if kept_metrics is not None:
            kept_metrics.update(kept.cpu().numpy(), target, batch_qpm)
            performances["kept_hits"].append(kept.cpu().numpy())
        if has_input_transform(config):
            performances["sampled"].append(sampled.cpu().numpy())
            performances["target"].append(target)

    elbo_class = {
        name: {k: float(per_class[k][c] / n) for k in LOSS_TERMS}
        for c, name in enumerate(CLASS_NAMES)
    }
    overall = {k: float(per_class[k].sum() / n) for k in LOSS_TERMS}
    # The model's own r_loss (masked by length) is the reference value; the split sums to it.
    overall["r_loss"] = totals["r_loss"] / n
    overall["kl_nats"] = totals["kl_nats"] / n
    overall["kl_bits"] = overall["kl_nats"] / math.log(2.0)
    overall["elbo"] = -(overall["r_loss"] + overall["kl_nats"])

    result: dict = {
        "checkpoint": trained.source,
        "config": config.name,
        "examples": os.fspath(examples_path),
        "split": split,
        "num_sequences": num_sequences,
        "num_windows": n,
        "window_steps": int(examples.outputs.shape[1]),
        "elbo": {"z": "mu", "per_class": elbo_class, "overall": overall},
        "teacher_forced": {
            "decoding": "teacher forcing from z = mu; a hit where p > 0.5",
            **tf_metrics.result(),
        },
        "other_z": {
            "decoding": (
                "teacher forcing from another window's mu (half the split away); the gap to "
                "teacher_forced is what the latent code carries"
            ),
            **other_metrics.result(),
        },
        "sampled": {
            "decoding": (
                f"free-running from z = mu, near-greedy hits "
                f"(Bernoulli at temperature {SAMPLED_TEMPERATURE:g}, seed {seed})"
            ),
            "temperature": SAMPLED_TEMPERATURE,
            **sampled_metrics.result(),
        },
    }
    if has_input_transform(config):
        result["performance"] = {
            "decoding": "free-running from z = mu (as in 'sampled')",
            "baseline": "every real hit on the grid at the split's mean velocity",
            **sampled_metrics.performance_result(),
        }
    if kept_metrics is not None:
        kept_hits = kept_metrics.result()["overall"]
        result["performance_kept_hits"] = {
            "decoding": (
                "free-running from z = mu with drums on the tapped steps only (keep taps)"
                if config.data.tapify
                else "free-running from z = mu with the input's hits kept (keep_hits)"
            ),
            "baseline": "every real hit on the grid at the split's mean velocity",
            # Cell-wise accuracy over every (step, class) cell, as Haki et al. (NIME 2022) score
            # Tap2Drum, beside the honest F1 on hits.
            "hit_accuracy": kept_hits["accuracy"],
            "hit_f1": kept_hits["f1"],
            **kept_metrics.performance_result(),
        }
    if has_input_transform(config):
        _performance_realism(result, performances, examples_path, config, split, workers)
    if not uses_controls:
        result["interpolation"] = interpolation_smoothness(
            model,
            all_mu,
            int(examples.outputs.shape[1]),
            trained.converter.steps_per_bar,
            temperature=SAMPLED_TEMPERATURE,
            seed=seed,
        )
    result["prior"] = prior_comparison(trained, examples, num_prior_samples, seed, uses_controls)
    if protocol:
        from musicvae.evaluation.protocols import run_protocol

        result["protocol"] = run_protocol(
            trained, protocol, examples_path, split, batch_size=batch_size, seed=seed
        )
    return result


def _performance_realism(result: dict, performances, examples_path, config, split, workers):
    """Realism of an input-transform model's performances, and its velocities against a
    per-class, per-position lookup table from the train split (the baseline to beat)."""
    spb = config.steps_per_bar
    target = np.concatenate(performances["target"])
    table = None
    if split != "train":
        try:
            train, _, _ = load_split(examples_path, config, "train", workers=workers)
        except MusicVAEError:
            train = None  # a file without a train split: no lookup baseline
        if train is not None:
            table = velocity_lookup(train.outputs.numpy(), spb)
    for key, block in (("sampled", "performance"), ("kept_hits", "performance_kept_hits")):
        if not performances[key] or block not in result:
            continue
        pred = np.concatenate(performances[key])
        result[block]["velocity_correlation"] = velocity_correlation(pred, target)
        result[block]["lookup_velocity_mae"] = (
            lookup_velocity_mae(table, target, spb) if table is not None else math.nan
        )
        result[block]["realism"] = realism_report(pred, target, spb)


def prior_comparison(trained, examples, num_samples: int | None, seed: int, uses_controls: bool):
    """Statistics of prior samples next to those of the split's real windows."""
    n = len(examples)
    k = min(n, MAX_PRIOR_SAMPLES) if num_samples is None else int(num_samples)
    controls = examples.controls[:k].numpy() if uses_controls else None
    if uses_controls and k > n:
        raise MusicVAEError(f"at most {n} prior samples with controls (one per test window)")
    samples = (
        trained.sample_tensors(k, PRIOR_TEMPERATURE, seed, controls)
        if k
        else np.zeros((0, examples.outputs.shape[1], examples.outputs.shape[2]))
    )
    spb = trained.converter.steps_per_bar
    return {
        "temperature": PRIOR_TEMPERATURE,
        "num_samples": k,
        "samples": groove_stats(samples, spb),
        "data": groove_stats(examples.outputs.numpy(), spb),
        "realism": realism_report(samples, examples.outputs.numpy(), spb),
    }
