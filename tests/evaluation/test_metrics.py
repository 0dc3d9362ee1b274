"""Groove metrics on hand-built cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicvae.evaluation.metrics import (
    ReconstructionMetrics,
    groove_stats,
    json_safe,
    loss_terms_per_class,
    prf,
    wasserstein_1d,
)
from musicvae.models.decoder import activate, groove_loss

KICK, SNARE = 0, 1


def cell(grid, step, cls, velocity, offset):
    grid[step, cls] = 1.0
    grid[step, 9 + cls] = velocity / 127.0
    grid[step, 18 + cls] = offset


def hand_case():
    """Kick: target hits at steps 0 and 2, predicted at 0 and 1 -> tp 1, fp 1, fn 1, tn 1."""
    target = np.zeros((1, 4, 27))
    pred = np.zeros((1, 4, 27))
    cell(target[0], 0, KICK, 100, 0.2)
    cell(target[0], 2, KICK, 80, 0.0)
    cell(pred[0], 0, KICK, 90, -0.2)
    cell(pred[0], 1, KICK, 50, 0.0)
    return pred, target


def test_hit_velocity_and_timing_metrics():
    pred, target = hand_case()
    m = ReconstructionMetrics()
    m.update(pred, target, qpm=120.0)
    r = m.result()
    kick = r["per_class"]["kick"]
    assert (kick["tp"], kick["fp"], kick["fn"], kick["tn"]) == (1, 1, 1, 1)
    assert kick["accuracy"] == kick["precision"] == kick["recall"] == kick["f1"] == 0.5
    assert kick["velocity_mae"] == pytest.approx(10.0)
    # 120 qpm: a 16th is 125 ms; offsets 0.2 vs -0.2 are 0.4 / 2 steps apart = 25 ms.
    assert kick["timing_mae_ms"] == pytest.approx(25.0)
    snare = r["per_class"]["snare"]
    assert snare["tn"] == 4 and snare["accuracy"] == 1.0
    assert math.isnan(snare["precision"]) and math.isnan(snare["f1"])
    assert math.isnan(snare["velocity_mae"])
    overall = r["overall"]
    assert (overall["tp"], overall["fp"], overall["fn"], overall["tn"]) == (1, 1, 1, 33)
    assert overall["accuracy"] == pytest.approx(34 / 36)
    assert overall["f1"] == 0.5


def test_timing_uses_each_windows_tempo():
    pred, target = hand_case()
    m = ReconstructionMetrics()
    m.update(np.concatenate([pred, pred]), np.concatenate([target, target]), np.array([120, 60]))
    # 25 ms at 120 qpm, 50 ms at 60 qpm.
    assert m.result()["per_class"]["kick"]["timing_mae_ms"] == pytest.approx(37.5)


def test_probabilities_are_thresholded():
    pred, target = hand_case()
    pred[0, 0, KICK] = 0.7
    pred[0, 1, KICK] = 0.3  # no longer a false positive
    m = ReconstructionMetrics()
    m.update(pred, target, 120.0)
    kick = m.result()["per_class"]["kick"]
    assert (kick["tp"], kick["fp"], kick["fn"]) == (1, 0, 1)


def test_performance_result():
    pred, target = hand_case()
    m = ReconstructionMetrics()
    m.update(pred, target, 120.0)
    kick = m.performance_result()["per_class"]["kick"]
    # Baseline: real velocities 100 and 80 vs their mean 90; real offsets 0.2 (= 0.1 step =
    # 12.5 ms at 120 qpm) and 0.
    assert kick["baseline_velocity_mae"] == pytest.approx(10.0)
    assert kick["baseline_timing_mae_ms"] == pytest.approx(6.25)
    # Predicted velocities {90, 50} vs real {100, 80}: sorted pairs differ by 30 and 10.
    assert kick["velocity_wasserstein"] == pytest.approx(20.0)
    # Predicted offsets {-12.5, 0} ms vs real {0, 12.5} ms.
    assert kick["offset_wasserstein_ms"] == pytest.approx(12.5)


def test_prf_edge_cases():
    assert prf(0, 0, 0, 5) == {
        "accuracy": 1.0,
        "precision": pytest.approx(math.nan, nan_ok=True),
        "recall": pytest.approx(math.nan, nan_ok=True),
        "f1": pytest.approx(math.nan, nan_ok=True),
    }
    assert prf(2, 0, 2, 0)["f1"] == pytest.approx(2 / 3)


def test_wasserstein_known_values():
    assert wasserstein_1d([0, 1], [0, 1]) == 0.0
    assert wasserstein_1d([0], [1]) == 1.0
    assert wasserstein_1d([0, 1, 3], [5, 6, 8]) == pytest.approx(5.0)
    assert wasserstein_1d([0, 2], [1, 1]) == pytest.approx(1.0)
    assert wasserstein_1d([0, 0, 0, 4], [1]) == pytest.approx(0.75 * 1 + 0.25 * 3)
    assert math.isnan(wasserstein_1d([], [1.0]))


def test_loss_terms_sum_to_the_models_loss():
    rng = np.random.default_rng(0)
    rnn = torch.from_numpy(rng.normal(size=(3, 8, 27)).astype(np.float32))
    target = np.zeros((3, 8, 27), np.float32)
    target[..., :9] = rng.random((3, 8, 9)) < 0.3
    target[..., 9:18] = target[..., :9] * rng.random((3, 8, 9))
    target[..., 18:] = target[..., :9] * rng.uniform(-1, 1, (3, 8, 9))
    ref = groove_loss(rnn, torch.from_numpy(target), None)
    probs, vel, off = (t.numpy() for t in activate(rnn))
    terms = loss_terms_per_class(probs, vel, off, target)
    assert terms["r_loss"].shape == (3, 9)
    for k in ("hits_loss", "velocities_loss", "offsets_loss", "r_loss"):
        np.testing.assert_allclose(terms[k].sum(axis=1), ref[k].numpy(), rtol=1e-5)


def test_loss_terms_hand_case():
    # One step, p = 0.5 everywhere, one target kick hit at velocity 1, offset 0.5.
    target = np.zeros((1, 1, 27))
    target[0, 0, [KICK, 9 + KICK, 18 + KICK]] = [1.0, 1.0, 0.5]
    half = np.full((1, 1, 9), 0.5)
    terms = loss_terms_per_class(half, half, np.zeros((1, 1, 9)), target)
    assert terms["hits_loss"][0, KICK] == pytest.approx(-math.log(0.5 + 1e-7))
    assert terms["velocities_loss"][0, KICK] == pytest.approx(0.25)
    assert terms["velocities_loss"][0, SNARE] == pytest.approx(0.25)
    assert terms["offsets_loss"][0, KICK] == pytest.approx(0.25)
    assert terms["offsets_loss"][0, SNARE] == 0.0


def test_groove_stats():
    g = np.zeros((2, 32, 27))
    for s in (0, 4, 8, 12):  # groove 0, bar 1: four kicks, velocity 127 and 63.5 alternating
        cell(g[0], s, KICK, 127 if s % 8 == 0 else 63.5, 0.5 if s == 0 else 0.0)
    cell(g[1], 20, SNARE, 100, -1.0)
    st = groove_stats(g, steps_per_bar=16)
    assert st["num_grooves"] == 2
    # Bars: 4, 0, 0, 1 notes.
    assert st["notes_per_bar_mean"] == pytest.approx(1.25)
    assert st["notes_per_bar_std"] == pytest.approx(np.std([4, 0, 0, 1]))
    kick = st["per_class"]["kick"]
    assert kick["hit_rate"] == pytest.approx(4 / 64)
    assert kick["velocity_mean"] == pytest.approx(95.25)
    assert kick["offset_mean_steps"] == pytest.approx(0.25 / 4)
    assert st["per_class"]["snare"]["offset_mean_steps"] == pytest.approx(-0.5)
    assert math.isnan(st["per_class"]["ride"]["velocity_mean"])
    assert st["overall"]["hit_rate"] == pytest.approx(5 / (64 * 9))


def test_json_safe():
    assert json_safe({"a": math.nan, "b": [np.float32(1.5), np.int64(2)], 3: math.inf}) == {
        "a": None,
        "b": [1.5, 2],
        "3": None,
    }


def test_latent_usage_counts_dimensions_whose_mean_varies():
    from musicvae.evaluation.metrics import latent_line, latent_usage

    # Per dimension across the two windows: variance 0, 0.25, 0.0225 and 0.0025.
    mu = np.array([[0.0, 0.5, 1.0, 3.0], [0.0, -0.5, 1.3, 3.1]])
    usage = latent_usage(mu)
    assert usage["active_units"] == 2 and usage["z_size"] == 4
    assert usage["mu_spread"] == pytest.approx((0 + 0.5 + 0.15 + 0.05) / 4)
    assert (
        latent_line(usage) == "latent dimensions in use: 2 of 4 (mu's spread across windows 0.175)"
    )
    # One code for every window, far from the prior's mean: KL to pay, nothing carried.
    assert latent_usage(np.full((5, 3), 2.0))["active_units"] == 0
    assert latent_usage(np.zeros((1, 3)))["active_units"] == 0
