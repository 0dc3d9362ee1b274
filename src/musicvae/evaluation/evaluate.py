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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from musicvae.errors import MusicVAEError
from musicvae.evaluation.interpolation import interpolation_smoothness
from musicvae.evaluation.metrics import (
    CLASS_NAMES,
    ReconstructionMetrics,
    groove_stats,
    latent_usage,
    loss_terms_per_class,
)
from musicvae.evaluation.realism import (
    lookup_velocity_mae,
    realism_report,
    velocity_correlation,
    velocity_lookup,
)
from musicvae.generation.expression import expressive

if TYPE_CHECKING:
    from musicvae.configs import Config
    from musicvae.data.examples import Examples
    from musicvae.generation.trained_model import TrainedModel
    from musicvae.models.vae import MusicVAE

# Hits are Bernoulli(sigmoid(logits / T)); at T = 1e-3 that is the 0.5 threshold except for
# logits within about 0.02 of zero, i.e. near-greedy decoding (the model rejects T = 0).
SAMPLED_TEMPERATURE = 1e-3
PRIOR_TEMPERATURE = 1.0
# Expressive playing is scored at generate's default temperature and at 1 (the drummers' spread).
EXPRESSIVE_AMOUNTS = (0.5, 1.0)
MAX_PRIOR_SAMPLES = 512
LOSS_TERMS = ("hits_loss", "velocities_loss", "offsets_loss", "r_loss")


def load_split(
    path: str | os.PathLike, config: Config, split: str | None, *, workers: int | None = None
) -> tuple[Examples, np.ndarray, int]:
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
    trained: TrainedModel,
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

    from musicvae.families import family_of

    check_protocol(protocol, trained.config)  # before minutes of evaluation, not after
    if family_of(trained.config).metrics != "groove":
        from musicvae.evaluation.classes import evaluate_classes

        return evaluate_classes(
            trained,
            examples_path,
            split,
            batch_size=batch_size,
            seed=seed,
            workers=workers,
            num_prior_samples=num_prior_samples,
        )
    model, config, device = trained.model, trained.config, trained.device
    examples, qpm, num_sequences = load_split(examples_path, config, split, workers=workers)
    n = len(examples)
    totals = _Totals.for_config(config)
    gen = torch.Generator(device=device).manual_seed(seed)
    uses_controls = trained.converter.control_depth > 0
    starts = range(0, n, batch_size)
    # The posterior means of every window first: the "other z" decoding borrows the mean of the
    # window half the split away (another performance, as windows are stored in file order).
    all_mu, all_sigma = _encode_all(model, examples, starts, batch_size, device, uses_controls)
    other = (torch.arange(n, device=all_mu.device) + n // 2) % n
    bar_shown = sys.stderr.isatty() if progress is None else progress
    lines = progress is None and not bar_shown  # a log file: a line per tenth, not a silent bar
    t0 = time.monotonic()
    for i, s in enumerate(tqdm(starts, desc="evaluating", unit="batch", disable=not bar_shown)):
        if lines:
            _say_progress(i, len(starts), t0)
        idx = torch.arange(s, min(s + batch_size, n))
        rows = slice(s, s + len(idx))
        batch = tuple(t.to(device) for t in examples.batch(idx))
        latents = (all_mu[rows], all_sigma[rows], all_mu[other[rows]])
        _add_batch(totals, trained, batch, latents, qpm[rows], gen, uses_controls)

    result = _result(totals, trained, examples, examples_path, split, num_sequences, seed)
    result["latent"] = latent_usage(all_mu.cpu().numpy())
    if config.data.transforms_input:
        _performance_realism(result, totals.performances, examples_path, config, split, workers)
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


def check_protocol(protocol: str | None, config: Config) -> None:
    if protocol is not None:
        from musicvae.evaluation.protocols import PROTOCOLS
        from musicvae.families import family_of

        if protocol not in PROTOCOLS:
            raise MusicVAEError(
                f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})"
            )
        family = family_of(config)
        if protocol not in family.protocols:
            raise family.refuse(f"protocol {protocol}", config.name, "a GrooVAE model")


def _say_progress(i: int, num_batches: int, t0: float) -> None:
    """A line per tenth of the batches (for a log file, where a bar would be silent)."""
    if i and i % max(1, num_batches // 10) == 0:
        left = (time.monotonic() - t0) / i * (num_batches - i)
        print(
            f"evaluating: {i}/{num_batches} batches, about {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )


@dataclass
class _Totals:
    """What the batches add up to: the ELBO terms per drum class, the metrics of each decoding
    and, for input-transform models, the performances (for their realism)."""

    teacher_forced: ReconstructionMetrics
    other_z: ReconstructionMetrics
    sampled: ReconstructionMetrics
    # Humanize / add-instrument models are used with their input's hits kept (keep_hits), tap
    # models with their tapped steps kept (drums there and only there).
    kept: ReconstructionMetrics | None
    per_class: dict[str, np.ndarray] = field(
        default_factory=lambda: {k: np.zeros(len(CLASS_NAMES)) for k in LOSS_TERMS}
    )
    r_loss: float = 0.0
    kl_nats: float = 0.0
    performances: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {"sampled": [], "kept_hits": [], "target": []}
    )
    # The kept-hits performances played expressively (generation.expression), per amount.
    expressive: dict[float, ReconstructionMetrics] = field(default_factory=dict)

    @classmethod
    def for_config(cls, config: Config) -> _Totals:
        spq = config.data.steps_per_quarter
        kept = ReconstructionMetrics(spq) if config.data.transforms_input else None
        totals = cls(
            ReconstructionMetrics(spq), ReconstructionMetrics(spq), ReconstructionMetrics(spq), kept
        )
        if kept is not None:
            totals.expressive = {a: ReconstructionMetrics(spq) for a in EXPRESSIVE_AMOUNTS}
        return totals


def _encode_all(
    model: MusicVAE,
    examples: Examples,
    starts: range,
    batch_size: int,
    device: torch.device,
    uses_controls: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior ``(mu, sigma)`` of every window of ``examples``."""
    n = len(examples)
    mus, sigmas = [], []
    with torch.no_grad():
        for s in starts:
            inputs, _, controls, lengths = (
                t.to(device) for t in examples.batch(torch.arange(s, min(s + batch_size, n)))
            )
            mu, sigma = model.encode(inputs, lengths, controls if uses_controls else None)
            mus.append(mu)
            sigmas.append(sigma)
    return torch.cat(mus), torch.cat(sigmas)


def _add_batch(
    totals: _Totals,
    trained: TrainedModel,
    batch: tuple[torch.Tensor, ...],
    latents: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    qpm: np.ndarray,
    gen: torch.Generator,
    uses_controls: bool,
) -> None:
    """Decode one batch every way from its windows' ``(mu, sigma, another window's mu)`` and
    add the results to ``totals``."""
    from musicvae.models import kl_divergence
    from musicvae.models.decoder import GrooveDecoding, activate

    model, config = trained.model, trained.config
    inputs, outputs, controls, lengths = batch
    mu, sigma, other_mu = latents
    ctl = controls if uses_controls else None
    steps = outputs.shape[1]
    with torch.no_grad():
        decoded = model.decoder(outputs, lengths, mu, ctl, sampling_probability=0.0)
        other_out = model.decoder(
            outputs, lengths, other_mu, ctl, sampling_probability=0.0
        ).rnn_output
        parts = model.decoder.reconstruction_loss(decoded.rnn_output, outputs, lengths)
        kl = kl_divergence(mu, sigma)
        probs, vel, off = activate(decoded.rnn_output)
        sampled = model.decode(mu, steps, SAMPLED_TEMPERATURE, ctl, gen)
        kept = None
        if totals.kept is not None and config.data.tapify:
            taps = torch.from_numpy(trained.input_taps(inputs.cpu().numpy()))
            kept = model.decode(mu, steps, SAMPLED_TEMPERATURE, ctl, gen, GrooveDecoding(taps=taps))
        elif totals.kept is not None:
            fixed = torch.from_numpy(trained.input_hits(inputs.cpu().numpy()))
            kept = model.decode(mu, steps, SAMPLED_TEMPERATURE, ctl, gen, GrooveDecoding(fixed))
    target = outputs.cpu().numpy()
    terms = loss_terms_per_class(
        probs.cpu().numpy(),
        vel.cpu().numpy(),
        off.cpu().numpy(),
        target,
        model.decoder.hit_conditioned,
    )
    for k in LOSS_TERMS:
        totals.per_class[k] += terms[k].sum(axis=0)
    totals.r_loss += float(parts["r_loss"].sum())
    totals.kl_nats += float(kl.sum())
    tf_pred = torch.cat([probs, vel, off], dim=-1).cpu().numpy()
    totals.teacher_forced.update(tf_pred, target, qpm)
    totals.other_z.update(torch.cat(activate(other_out), dim=-1).cpu().numpy(), target, qpm)
    totals.sampled.update(sampled.cpu().numpy(), target, qpm)
    if totals.kept is not None and kept is not None:
        kept_np = kept.cpu().numpy()
        totals.kept.update(kept_np, target, qpm)
        totals.performances["kept_hits"].append(kept_np)
        if trained.expression is not None:
            for amount, metrics in totals.expressive.items():
                played = expressive(kept_np, trained.expression, amount)
                metrics.update(played, target, qpm)
                totals.performances.setdefault(f"expressive_{amount:g}", []).append(played)
    if config.data.transforms_input:
        totals.performances["sampled"].append(sampled.cpu().numpy())
        totals.performances["target"].append(target)


def _result(
    totals: _Totals,
    trained: TrainedModel,
    examples: Examples,
    examples_path: str | os.PathLike,
    split: str | None,
    num_sequences: int,
    seed: int,
) -> dict:
    """The report's ELBO and reconstruction blocks, from what the batches added up to."""
    config, n = trained.config, len(examples)
    per_class = totals.per_class
    elbo_class = {
        name: {k: float(per_class[k][c] / n) for k in LOSS_TERMS}
        for c, name in enumerate(CLASS_NAMES)
    }
    overall = {k: float(per_class[k].sum() / n) for k in LOSS_TERMS}
    # The model's own r_loss (masked by length) is the reference value; the split sums to it.
    overall["r_loss"] = totals.r_loss / n
    overall["kl_nats"] = totals.kl_nats / n
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
            **totals.teacher_forced.result(),
        },
        "other_z": {
            "decoding": (
                "teacher forcing from another window's mu (half the split away); the gap to "
                "teacher_forced is what the latent code carries"
            ),
            **totals.other_z.result(),
        },
        "sampled": {
            "decoding": (
                f"free-running from z = mu, near-greedy hits "
                f"(Bernoulli at temperature {SAMPLED_TEMPERATURE:g}, seed {seed})"
            ),
            "temperature": SAMPLED_TEMPERATURE,
            **totals.sampled.result(),
        },
    }
    if config.data.transforms_input:
        result["performance"] = {
            "decoding": "free-running from z = mu (as in 'sampled')",
            "baseline": "every real hit on the grid at the split's mean velocity",
            **totals.sampled.performance_result(),
        }
    if totals.kept is not None:
        kept_hits = totals.kept.result()["overall"]
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
            **totals.kept.performance_result(),
        }
        for amount, metrics in totals.expressive.items():
            if f"expressive_{amount:g}" in totals.performances:
                result[f"performance_expressive_{amount:g}"] = {
                    "decoding": (
                        f"as performance_kept_hits, played expressively at temperature "
                        f"{amount:g} (generation.expression)"
                    ),
                    **metrics.performance_result(),
                }
    return result


def _performance_realism(
    result: dict,
    performances: dict[str, list[np.ndarray]],
    examples_path: str | os.PathLike,
    config: Config,
    split: str | None,
    workers: int | None,
) -> None:
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
    blocks = [("sampled", "performance"), ("kept_hits", "performance_kept_hits")]
    blocks += [(f"expressive_{a:g}", f"performance_expressive_{a:g}") for a in EXPRESSIVE_AMOUNTS]
    for key, block in blocks:
        if not performances.get(key) or block not in result:
            continue
        pred = np.concatenate(performances[key])
        result[block]["velocity_correlation"] = velocity_correlation(pred, target)
        result[block]["lookup_velocity_mae"] = (
            lookup_velocity_mae(table, target, spb) if table is not None else math.nan
        )
        result[block]["realism"] = realism_report(pred, target, spb)


def prior_comparison(
    trained: TrainedModel,
    examples: Examples,
    num_samples: int | None,
    seed: int,
    uses_controls: bool,
) -> dict:
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
