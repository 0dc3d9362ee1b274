"""Evaluate a model whose outputs are classes: Magenta's one-hot melodies and drum patterns, and
its multi-label NADE drum rolls.

The report follows Magenta's own evaluation of these models: the ELBO terms at ``z = mu`` (the
decoder's reconstruction loss and the KL, in nats and bits) and its accuracy, teacher-forced. For
one-hot outputs that is the share of steps whose most likely class is the target's (Magenta's
``metrics/accuracy``); for multi-label outputs, the share of steps with every label right (a
step decoded greedily, as a reconstruction plays it; Magenta's own figure, which predicts each
label from the true ones before it, is reported beside it), with label precision, recall and F1 (a NADE's labels are drum hits, mostly absent, so step accuracy
alone flatters a model that predicts silence). Beside it, what a user hears: the same scores for
greedy free-running decodes from ``mu`` (what ``reconstruct`` writes, at temperature 0) and
teacher-forced with another window's ``mu`` (how much the latent code is used: a collapsed
posterior scores as well with the wrong code). :mod:`musicvae.evaluation.evaluate` scores
GrooVAE's expressive grooves; ``musicvae.families`` says which module serves which model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from musicvae.evaluation.metrics import latent_line, latent_usage
from musicvae.families import family_of
from musicvae.models.base import Activations

if TYPE_CHECKING:
    from musicvae.generation.trained_model import TrainedModel

# Melody models' prior samples are drawn at temperature 1 (the model's own distribution), at
# most this many; latent paths join this many pairs of windows in this many outputs.
PRIOR_TEMPERATURE = 1.0
MAX_PRIOR_SAMPLES = 512
PATH_PAIRS = 32
PATH_STEPS = 9


@dataclass
class _Scores:
    """Running sums for one way of decoding."""

    steps: int = 0
    steps_right: int = 0
    labels_hit: int = 0  # true positives (multi-label)
    labels_predicted: int = 0
    labels_true: int = 0

    def add(self, predicted: torch.Tensor, target: torch.Tensor, one_hot: bool) -> None:
        """``predicted`` and ``target`` (B, T, D): one-hot rows, or 0/1 labels."""
        if one_hot:
            right = predicted.argmax(-1) == target.argmax(-1)
        else:
            right = (predicted == target).all(-1)
            self.labels_hit += int((predicted * target).sum())
            self.labels_predicted += int(predicted.sum())
            self.labels_true += int(target.sum())
        self.steps += right.numel()
        self.steps_right += int(right.sum())

    def report(self, one_hot: bool) -> dict[str, float]:
        out = {"accuracy": self.steps_right / max(self.steps, 1)}
        if not one_hot:
            precision = self.labels_hit / self.labels_predicted if self.labels_predicted else 0.0
            recall = self.labels_hit / self.labels_true if self.labels_true else 0.0
            both = precision + recall
            out |= {
                "precision": precision,
                "recall": recall,
                "f1": 2 * precision * recall / both if both else 0.0,
            }
        return out


@dataclass
class _Totals:
    windows: int = 0
    r_loss: float = 0.0
    # The decoder's own teacher-forced step accuracy, Magenta's metrics/accuracy (for a NADE,
    # each label predicted from the true labels before it in the step).
    magenta_accuracy: float = 0.0
    kl_nats: float = 0.0
    scores: dict[str, _Scores] = field(
        default_factory=lambda: {
            k: _Scores() for k in ("teacher_forced", "free", "sampled", "other_z")
        }
    )


def _threshold(activations: Activations, one_hot: bool) -> torch.Tensor:
    """Teacher-forced predictions: the most likely class, or every label above one half."""
    if not isinstance(activations, torch.Tensor):
        raise TypeError("class outputs activate to one tensor of probabilities")
    if one_hot:
        return torch.nn.functional.one_hot(activations.argmax(-1), activations.shape[-1]).float()
    return (activations > 0.5).float()


def evaluate_classes(
    trained: TrainedModel,
    examples_path: str | os.PathLike,
    split: str | None = "test",
    *,
    batch_size: int = 64,
    seed: int = 0,
    workers: int | None = None,
    num_prior_samples: int | None = None,
) -> dict:
    """Magenta's metrics of a one-hot or multi-label ``trained`` model on a dataset split;
    for melodies also how tune-like its samples and interpolations are (``prior``,
    ``interpolation``: :mod:`musicvae.evaluation.melody`)."""
    from musicvae.evaluation.evaluate import load_split
    from musicvae.models import kl_divergence

    model, config, device = trained.model, trained.config, trained.device
    family = family_of(config)
    one_hot = family.metrics == "categorical"
    examples, _qpm, num_sequences = load_split(examples_path, config, split, workers=workers)
    n = len(examples)
    totals = _Totals()
    gen = torch.Generator(device=device).manual_seed(seed)
    decoder = model.decoder
    controls_used = trained.converter.control_depth > 0
    mus = []
    with torch.no_grad():
        for s in range(0, n, batch_size):
            idx = torch.arange(s, min(s + batch_size, n))
            inputs, outputs, controls, lengths = (t.to(device) for t in examples.batch(idx))
            ctl = controls.float() if controls_used else None
            mu, sigma = model.encode(inputs, lengths, ctl)
            mus.append(mu)
            target = outputs.float()
            decoded = decoder(target, lengths, mu, ctl)
            parts = decoder.reconstruction_loss(decoded.rnn_output, target, lengths)
            totals.windows += len(idx)
            totals.r_loss += float(parts["r_loss"].sum())
            totals.magenta_accuracy += float(parts["accuracy"]) * len(idx)
            totals.kl_nats += float(kl_divergence(mu, sigma).sum())
            predicted = _threshold(decoder.activate(decoded.rnn_output), one_hot)
            totals.scores["teacher_forced"].add(predicted, target, one_hot)
            free = model.decode(mu, target.shape[1], 0.0, ctl, gen)
            totals.scores["free"].add(free.float(), target, one_hot)
            drawn = model.decode(mu, target.shape[1], 1.0, ctl, gen)  # the paper's "sampled"
            totals.scores["sampled"].add(drawn.float(), target, one_hot)
        all_mu = torch.cat(mus)
        other = (torch.arange(n, device=all_mu.device) + n // 2) % n
        for s in range(0, n, batch_size):
            idx = torch.arange(s, min(s + batch_size, n))
            inputs, outputs, controls, lengths = (t.to(device) for t in examples.batch(idx))
            ctl = controls.float() if controls_used else None
            target = outputs.float()
            decoded = decoder(target, lengths, all_mu[other[idx]], ctl)
            predicted = _threshold(decoder.activate(decoded.rnn_output), one_hot)
            totals.scores["other_z"].add(predicted, target, one_hot)
    windows = max(totals.windows, 1)
    r_loss, kl = totals.r_loss / windows, totals.kl_nats / windows
    return {
        "checkpoint": trained.source,
        "config": config.name,
        "family": family.name,
        "examples": str(examples_path),
        "split": split,
        "num_sequences": num_sequences,
        "num_windows": n,
        "elbo": {
            "r_loss": r_loss,
            "kl_nats": kl,
            "kl_bits": kl / math.log(2.0),
            "neg_elbo": r_loss + kl,
        },
        **{k: v.report(one_hot) for k, v in totals.scores.items()},
        "magenta_accuracy": totals.magenta_accuracy / windows,
        "latent": latent_usage(all_mu.cpu().numpy()),
        **(
            _melody_blocks(trained, examples.outputs, all_mu, num_prior_samples, seed)
            if family.name == "melody" and not controls_used
            else {}
        ),
    }


def _melody_blocks(
    trained: TrainedModel,
    real: torch.Tensor,
    mus: torch.Tensor,
    num_prior_samples: int | None,
    seed: int,
) -> dict:
    """Prior samples and latent paths of a melody model, set beside the split's windows."""
    from musicvae.evaluation.melody import melody_stats, path_changes
    from musicvae.generation.latent import slerp_path

    spb = trained.converter.steps_per_bar
    n = len(real)
    count = min(num_prior_samples or n, MAX_PRIOR_SAMPLES)
    prior = trained.sample_tensors(count, PRIOR_TEMPERATURE, seed)
    # Paths between windows half the split apart (other tunes), PATH_STEPS outputs each.
    pairs = min(PATH_PAIRS, n // 2)
    mu = mus.cpu().numpy()
    changes, midpoints = [], []
    for i in range(pairs):
        z = slerp_path(mu[i], mu[(i + n // 2) % n], PATH_STEPS).astype(np.float32)
        path = trained.decode_tensors(z, 1e-3, seed + i)  # near-greedy: the path, not noise
        changes.append(path_changes(path))
        midpoints.append(path[PATH_STEPS // 2])
    return {
        "prior": {
            "temperature": PRIOR_TEMPERATURE,
            "generated": melody_stats(prior, spb),
            "real": melody_stats(real.cpu().numpy(), spb),
        },
        "interpolation": {
            "pairs": pairs,
            "steps": PATH_STEPS,
            "events_changed_per_step": float(np.mean(changes)) if changes else float("nan"),
            "midpoints": melody_stats(np.stack(midpoints), spb) if midpoints else {},
        },
    }


def format_classes(r: dict) -> str:
    """The report as a few lines of text."""
    e = r["elbo"]
    lines = [
        f"{r['config']} ({r['family']} model) on {r['examples']}, split {r['split'] or 'all'}: "
        f"{r['num_windows']:,} windows from {r['num_sequences']:,} sequences",
        f"  reconstruction loss {e['r_loss']:.3f} nats per window, KL {e['kl_nats']:.3f} nats "
        f"({e['kl_bits']:.2f} bits), -ELBO {e['neg_elbo']:.3f}",
    ]
    lines.append(
        f"  Magenta's metrics/accuracy (teacher-forced at mu): {r['magenta_accuracy']:.3f}"
    )
    if "latent" in r:
        lines.append(f"  {latent_line(r['latent'])}")
    names = {
        "sampled": "decoded from mu at temperature 1 (the paper's sampled accuracy)",
        "teacher_forced": "teacher-forced at mu, each step decoded greedily",
        "free": "greedy decode from mu (what reconstruct writes)",
        "other_z": "teacher-forced at another window's mu",
    }
    for key, label in names.items():
        scores = r[key]
        extra = "".join(
            f", {k} {scores[k]:.3f}" for k in ("precision", "recall", "f1") if k in scores
        )
        lines.append(f"  {label}: step accuracy {scores['accuracy']:.3f}{extra}")
    if "prior" in r:
        lines += _melody_lines(r)
    return "\n".join(lines)


_MELODY_ROWS = (
    ("notes per bar", "notes_per_bar"),
    ("pitch range (semitones)", "pitch_range"),
    ("share over two octaves", "over_two_octaves"),
    ("in-key share", "in_key_share"),
    ("bar similarity, lag 1", "bar_similarity_lag1"),
    ("bar similarity, lag 4", "bar_similarity_lag4"),
)


def _melody_lines(r: dict) -> list[str]:
    """The prior and interpolation blocks: generated beside real, per statistic."""
    p, i = r["prior"], r["interpolation"]
    mid = i.get("midpoints", {})
    lines = [
        f"  prior samples at temperature {p['temperature']:g} "
        f"({int(p['generated']['windows'])}) against the split; path midpoints",
        f"    {'':28} {'generated':>10} {'real':>10} {'midpoints':>10}",
    ]
    for label, key in _MELODY_ROWS:
        vals = (p["generated"].get(key), p["real"].get(key), mid.get(key))
        cells = "".join(f" {v:>10.3f}" if v is not None else f" {'-':>10}" for v in vals)
        lines.append(f"    {label:28}{cells}")
    lines.append(
        f"  interpolation: {i['events_changed_per_step']:.3f} of the steps change per move "
        f"({i['pairs']} paths of {i['steps']})"
    )
    return lines
