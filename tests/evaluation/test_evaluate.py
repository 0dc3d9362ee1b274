"""Split-level evaluation of a tiny model on a synthetic dataset file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicvae.data.dataset import write_dataset
from musicvae.errors import MusicVAEError
from musicvae.evaluation.evaluate import evaluate
from musicvae.generation import load
from tests.generation.helpers import debug_run, groove


def make_dataset(path):
    seqs = []
    for i, (bars, split) in enumerate([(6, "test"), (4, "test"), (5, "train")]):
        # Bar windows re-time notes through MIDI ticks as TFDS does: a fine resolution keeps
        # the hand-computed offsets exact.
        ns = groove(bars, qpm=100.0, id=f"seq{i}", filename=f"seq{i}.mid", ticks_per_quarter=9600)
        ns.meta["split"] = split
        seqs.append(ns)
    return write_dataset(seqs, path)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "grooves.parquet")


def test_evaluate_report(tmp_path, dataset):
    model = load(debug_run(tmp_path))
    r = evaluate(model, dataset, "test", batch_size=3, num_prior_samples=5, workers=1)
    # Bar windows slid one bar at a time: 6 bars give 3 windows, 4 bars give 1.
    assert (r["num_sequences"], r["num_windows"], r["window_steps"]) == (2, 4, 64)
    elbo = r["elbo"]["overall"]
    per_class_r = sum(c["r_loss"] for c in r["elbo"]["per_class"].values())
    assert per_class_r == pytest.approx(elbo["r_loss"], rel=1e-5)
    assert elbo["elbo"] == pytest.approx(-(elbo["r_loss"] + elbo["kl_nats"]))
    assert elbo["kl_bits"] == pytest.approx(elbo["kl_nats"] / math.log(2))
    for key in ("teacher_forced", "other_z", "sampled"):
        o = r[key]["overall"]
        assert o["tp"] + o["fp"] + o["fn"] + o["tn"] == 4 * 64 * 9
        assert 0.0 <= o["accuracy"] <= 1.0
    # Every window holds the same bars, so another window's code is as good as the right one.
    assert r["other_z"]["overall"] == pytest.approx(r["teacher_forced"]["overall"], rel=1e-6)
    # ... and the encoder gives every window one code: no latent dimension varies.
    assert r["latent"]["active_units"] == 0 and r["latent"]["mu_spread"] == pytest.approx(
        0, abs=1e-6
    )
    assert r["latent"]["z_size"] == model.config.hparams.z_size
    assert "near-greedy" in r["sampled"]["decoding"]
    # Four windows: pairs (0, 2) and (1, 3), 9 points each.
    assert (r["interpolation"]["num_pairs"], r["interpolation"]["num_steps"]) == (2, 9)
    assert r["interpolation"]["hits_changed_per_bar"] >= 0.0
    assert "performance" not in r  # no input transform in the debug config
    data = r["prior"]["data"]
    # Every bar: 2 kicks, 2 + 1 snares, 8 hi-hats played 0.1 step late.
    assert data["notes_per_bar_mean"] == pytest.approx(13.0)
    assert data["per_class"]["closed_hh"]["offset_mean_steps"] == pytest.approx(-0.1, abs=1e-6)
    assert data["per_class"]["kick"]["hit_rate"] == pytest.approx(2 / 16)
    assert r["prior"]["num_samples"] == 5 and r["prior"]["samples"]["num_grooves"] == 5
    real = r["prior"]["realism"]["real"]
    assert real["notes_per_bar"] == pytest.approx(13.0)
    assert real["bar_similarity"] == 1.0  # every bar is the same pattern
    assert r["prior"]["realism"]["generated"]["num_grooves"] == 5


def test_humanize_config_reports_performance(tmp_path, dataset):
    model = load(debug_run(tmp_path, "humanize=True"))
    r = evaluate(model, dataset, "test", num_prior_samples=2, workers=1)
    perf = r["performance"]["overall"]
    # Hi-hats are 0.1 step = 15 ms late at 100 qpm, other notes on the grid: the flat baseline's
    # timing error is 15 ms on 8 of every 13 notes.
    assert perf["baseline_timing_mae_ms"] == pytest.approx(15.0 * 8 / 13, rel=1e-4)
    assert perf["true_velocity_mean"] == pytest.approx(
        (2 * 110 + 2 * 100 + 40 + 4 * 60 + 4 * 68) / 13
    )
    assert not np.isnan(perf["velocity_wasserstein"]) or np.isnan(perf["pred_velocity_mean"])
    # Decoded with the input's hits kept, every real hit is played: each class has predictions.
    kept = r["performance_kept_hits"]
    assert kept["overall"]["baseline_timing_mae_ms"] == perf["baseline_timing_mae_ms"]
    for name in ("kick", "snare", "closed_hh"):
        assert 0.0 <= kept["per_class"][name]["pred_velocity_mean"] <= 127.0, name
    # The train file repeats the test bars: a per-class, per-position table knows every velocity.
    assert kept["lookup_velocity_mae"] == pytest.approx(0.0, abs=1e-9)
    assert kept["realism"]["real"]["velocity_mean"] == pytest.approx(perf["true_velocity_mean"])
    assert kept["realism"]["generated"]["num_hits"] >= kept["realism"]["real"]["num_hits"]
    tap = evaluate(
        load(debug_run(tmp_path / "tap", "tapify=True")), dataset, "test", num_prior_samples=1
    )["performance_kept_hits"]
    assert "tapped steps" in tap["decoding"] and 0.0 <= tap["hit_accuracy"] <= 1.0
    # Drums on the tapped steps only: a note per tapped step at least, and never elsewhere,
    # so the realism report counts at least one hit per step the drummer played.
    # Per bar the drummer plays on 9 steps (the 8 hi-hat eighths and the last 16th).
    assert tap["realism"]["generated"]["notes_per_bar"] >= 9


def test_empty_split_is_an_error(tmp_path, dataset):
    model = load(debug_run(tmp_path))
    with pytest.raises(MusicVAEError, match="validation"):
        evaluate(model, dataset, "validation", workers=1)


def test_progress_lines_off_a_terminal(tmp_path, dataset, capsys):
    model = load(debug_run(tmp_path))
    evaluate(model, dataset, "test", batch_size=1, num_prior_samples=1, workers=1)
    err = capsys.readouterr().err  # captured: not a terminal
    assert "evaluating: 1/4 batches, about" in err and "s left" in err
