"""The haki2022 protocol: its metrics on hand-built windows, its subset rule on hand-built and
real GMD files, and ``musicvae evaluate --protocol`` end to end on a tiny tap model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicvae.cli.main import main
from musicvae.configs import get_config
from musicvae.data.convert import apply_metadata, load_info_csv
from musicvae.data.converters import build_converter
from musicvae.data.dataset import write_dataset
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from musicvae.evaluation.protocols import (
    haki2022_file_windows,
    haki2022_metrics,
    haki2022_windows,
    timing_accuracy,
)
from tests.generation.helpers import debug_run

KICK, SNARE, CLOSED_HH, RIDE = 0, 1, 2, 8
TAP = build_converter(get_config("groovae_2bar_tap_fixed_velocity"), "eval")


def grid(cells: dict[tuple[int, int], tuple[float, float, float]], steps: int = 32) -> np.ndarray:
    """A (steps, 27) groove from {(step, class): (hit, velocity, offset in converter units)}."""
    g = np.zeros((steps, 27))
    for (s, c), (h, v, o) in cells.items():
        g[s, c], g[s, 9 + c], g[s, 18 + c] = h, v, o
    return g


# Offsets in converter units are twice theirs: 0.2 here is 0.1 of a step.
TARGET = grid(
    {
        (0, KICK): (1, 0.5, 0.2),
        (0, SNARE): (1, 0.5, -0.6),
        (2, CLOSED_HH): (1, 0.25, 0.6),
        (4, SNARE): (1, 1.0, -0.4),
    }
)
PRED = grid(
    {
        (0, KICK): (1, 0.75, 0.0),
        (4, SNARE): (1, 1.0, -0.4),
        (5, RIDE): (1, 0.5, 0.2),
        (10, KICK): (0.2, 0.9, 0.8),  # below the threshold: no hit, its values read as 0
    }
)


def test_metrics_on_a_hand_built_window():
    m = haki2022_metrics(PRED[None], TARGET[None], 120.0)
    # 2 true positives, 1 false positive (ride), 2 misses (snare on 0, hi-hat on 2).
    assert m["hit_accuracy"] == pytest.approx(285 / 288)
    assert m["silent_grid_hit_accuracy"] == pytest.approx(284 / 288)
    assert (m["hit_precision"], m["hit_recall"]) == pytest.approx((2 / 3, 1 / 2))
    assert m["hit_f1"] == pytest.approx(4 / 7)
    # Velocity errors: kick 0.25, snare on 0 0.5, hi-hat 0.25, ride 0.5, all else 0.
    assert m["velocity_mse"] == pytest.approx((0.0625 + 0.25 + 0.0625 + 0.25) / 288)
    # Offsets in steps: kick 0 vs 0.1, snare on 0 0 vs -0.3, hi-hat 0 vs 0.3, ride 0.1 vs 0.
    assert m["offset_mse"] == pytest.approx((0.01 + 0.09 + 0.09 + 0.01) / 288)
    # Timing accuracy averages a step's drums before the absolute value: the target's step 0
    # is (0.1 - 0.3) / 2 = -0.1, step 2 is 0.3, step 4 is -0.2; the prediction's step 5 is off
    # the 8th-note grid, leaving 0 and -0.2.
    assert m["real_timing_accuracy"] == pytest.approx(0.2)
    assert m["timing_accuracy"] == pytest.approx(0.1)
    assert m["timing_accuracy_ratio"] == pytest.approx(0.5)
    # On the true positives: velocity |0.75 - 0.5| and 0; timing 0.1 step (12.5 ms at 120 qpm).
    assert m["velocity_mae_on_hits"] == pytest.approx(0.25 * 127 / 2)
    assert m["timing_mae_on_hits_ms"] == pytest.approx(6.25)


def test_cell_accuracy_averages_windows_and_timing_skips_windows_without_eighths():
    only_odd = grid({(3, KICK): (1, 0.5, 0.4)})
    target = np.stack([TARGET, only_odd])
    pred = np.stack([TARGET, np.zeros((32, 27))])
    m = haki2022_metrics(pred, target, np.array([120.0, 90.0]))
    assert m["hit_accuracy"] == pytest.approx((1.0 + 287 / 288) / 2)
    assert np.isnan(timing_accuracy(only_odd[None])[0])
    # The window without a hit on an 8th note counts for neither set.
    assert m["real_timing_accuracy"] == pytest.approx(0.2)
    assert m["timing_accuracy"] == pytest.approx(0.2)
    assert m["velocity_mse"] == pytest.approx(0.25 / (2 * 288))


def beat(notes, **meta) -> NoteSequence:
    """A 120 qpm 4/4 GMD-like beat (2 s bars) with info.csv metadata."""
    ns = NoteSequence.from_notes(notes, qpm=120.0, ticks_per_quarter=9600)
    ns.meta.update({"bpm": "120", "beat_type": "beat", "time_signature": "4-4", "split": "test"})
    ns.meta.update(meta)
    return ns


# Bars of 2 s: a kick on bar 1's downbeat; a hi-hat just ahead of bar 3 (on step 32 of the
# first window, step 16 of the second); nothing in bars 3-4; a kick in bar 5. round(9.1 / 2)
# = 5 bars give 4 windows.
NOTES = [(36, 100, 0.0, 0.1), (42, 80, 3.99, 3.995), (36, 90, 9.0, 9.1)]


def test_subset_rule_on_hand_built_files():
    hits, vel, off, qpm = haki2022_file_windows(beat(NOTES), TAP._lookup)
    # Window 1 keeps the kick on step 0 (its hi-hat rounds onto step 32, cut off); window 2
    # holds the hi-hat on step 16; window 3 is empty and dropped; window 4 has the kick on 24.
    assert hits.shape == (3, 32, 9)
    assert [tuple(np.argwhere(h)[:, 0]) for h in hits] == [(0,), (16,), (24,)]
    assert vel[0, 0, KICK] == pytest.approx(100 / 127)
    assert off[1, 16, CLOSED_HH] == pytest.approx(2 * 0.08, abs=1e-3)  # 0.08 step ahead
    assert qpm == pytest.approx(120.0, rel=1e-4)
    # Magenta's converter pads a window to its last onset's bar and keeps it only if that
    # makes two bars: here the cut hi-hat counts, but a lone first bar does not.
    assert len(TAP.examples(beat(NOTES)).outputs) == 3
    first_bar_only = beat([(36, 100, 0.0, 0.1), (36, 90, 4.5, 4.6)])  # 2 bars, one window
    assert len(haki2022_file_windows(first_bar_only, TAP._lookup)[3]) == 1
    assert len(TAP.examples(first_bar_only).outputs) == 0
    for meta in ({"beat_type": "fill"}, {"time_signature": "3-4"}):
        with pytest.raises(MusicVAEError, match="no 4/4 beat windows"):
            haki2022_windows([beat(NOTES, **meta)], TAP)
    repeated = beat(NOTES)
    repeated.time_signatures = repeated.time_signatures * 2  # the one file they lose
    w = haki2022_windows([beat(NOTES), repeated, beat(NOTES, split="train")], TAP)
    assert w.counts() == {"train": 3, "validation": 0, "test": 3}
    # The encoder input is the config's tapped groove: one tap per played step.
    taps = w.inputs[..., :9].max(-1)
    assert np.array_equal(taps, w.outputs[..., :9].max(-1))
    assert not w.inputs[..., 9:18].any()  # fixed velocities


# Small GMD files the rule treats differently, with their windows: ours (Haki et al.'s rule)
# and Magenta's converter's. The long one is the file whose 4/4 is stored twice, the only one
# of its kind among the 4/4 beats: they lose its 71 windows, as we do.
GMD_FILES = {
    "drummer1/session1/76_jazz-mediumfast_180_beat_4-4.mid": (6, 5),
    "drummer1/session1/145_latin-brazilian-baiao_95_beat_4-4.mid": (12, 11),
    "drummer1/session1/10_jazz-funk_116_fill_4-4.mid": (0, 0),
    "drummer1/session2/4_jazz_120_beat_3-4.mid": (0, 0),
    "drummer2/session3/1_rock-shuffle_85_beat_4-4.mid": (0, 71),
}


def test_subset_rule_on_real_gmd_files(groove_dir):
    info = load_info_csv(groove_dir / "info.csv")
    sequences = []
    for name, (ours, magenta) in GMD_FILES.items():
        ns = read_midi(groove_dir / name, filename=name)
        ns.id = name
        apply_metadata([ns], info)
        sequences.append(ns)
        converted = TAP.examples(ns).outputs
        assert len(converted) == magenta, name
        if not ours:
            continue
        w = haki2022_windows([ns], TAP)
        assert len(w.qpm) == ours, name
        # Every window the converter makes is one of ours, value for value.
        outputs = {o.tobytes() for o in w.outputs}
        assert all(o.astype(np.float32).tobytes() in outputs for o in converted), name
    w = haki2022_windows(sequences, TAP)
    assert w.counts() == {"train": 6, "validation": 12, "test": 0}
    assert sorted(set(w.sequence_ids)) == sorted(n for n, (k, _) in GMD_FILES.items() if k)


def test_evaluate_cli_protocol(tmp_path, capsys):
    data = write_dataset([beat(NOTES, split=s) for s in ("train", "test")], tmp_path / "d.parquet")
    run = debug_run(tmp_path, "split_bars=2,max_seq_len=32,tapify=True,fixed_velocities=True")
    out = tmp_path / "report.json"
    argv = ["evaluate", "--checkpoint", str(run), "--examples", str(data), "--protocol"]
    assert main([*argv, "haki2022", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "windows: ours vs theirs" in text and "kept taps" in text
    p = json.loads(out.read_text())["protocol"]
    assert p["windows"] == {"train": 3, "validation": 0, "test": 3}
    assert p["window_difference"]["test"] == 3 - 2054
    assert set(p["metrics"]) == {"free", "kept_taps"}
    kept = p["metrics"]["kept_taps"]
    assert kept["num_windows"] == 3 and 0.0 <= kept["hit_accuracy"] <= 1.0
    # Drums on the tapped steps only: 3 taps, so at most 3 steps hold a prediction.
    assert kept["silent_grid_hit_accuracy"] == pytest.approx(1 - 3 / (3 * 288))


def test_protocol_scores_a_velocity_tap_model_on_played_and_fixed_velocity_taps(tmp_path):
    from musicvae.evaluation.protocols import run_haki2022
    from musicvae.generation import load

    data = write_dataset([beat(NOTES, split=s) for s in ("train", "test")], tmp_path / "d.parquet")
    run = debug_run(
        tmp_path, "split_bars=2,max_seq_len=32,tapify=True,velocity_dropout_probability=0.5"
    )
    p = run_haki2022(load(run), data, "test")
    assert set(p["metrics"]) == {
        "free",
        "kept_taps",
        "free_fixed_velocity",
        "kept_taps_fixed_velocity",
    }
    assert all(m["num_windows"] == 3 for m in p["metrics"].values())
    # The windows are encoded as played, so the two readings differ; both are the same every run.
    assert p["metrics"]["free"] != p["metrics"]["free_fixed_velocity"]
    assert run_haki2022(load(run), data, "test")["metrics"] == p["metrics"]


def test_protocol_feeds_a_tap_controls_model_its_taps(tmp_path):
    from musicvae.evaluation.protocols import run_haki2022
    from musicvae.generation import load

    data = write_dataset([beat(NOTES, split=s) for s in ("train", "test")], tmp_path / "d.parquet")
    run = debug_run(
        tmp_path,
        "split_bars=2,max_seq_len=32,tapify=True,fixed_velocities=True,taps_as_controls=True",
    )
    p = run_haki2022(load(run), data, "test")
    assert set(p["metrics"]) == {"free", "kept_taps"}
    kept = p["metrics"]["kept_taps"]
    assert kept["num_windows"] == 3
    assert kept["silent_grid_hit_accuracy"] == pytest.approx(1 - 3 / (3 * 288))
    # The same model read through tap_to_drums gets the same controls from the converter.
    trained = load(run)
    taps = beat([(42, 80, 0.0, 0.1), (42, 80, 1.0, 1.1), (42, 80, 1.25, 1.3), (42, 80, 3.5, 3.6)])
    drums = trained.tap_to_drums(taps, seed=0)
    # Drums on the tapped steps 0, 8, 10 and 28 (0.125 s a step) and nowhere else.
    assert len(drums) > 0
    assert set(np.round(drums.start / 0.125).astype(int)) <= {0, 8, 10, 28}


def test_protocol_needs_a_two_bar_model():
    with pytest.raises(MusicVAEError, match="2-bar models"):
        haki2022_windows([beat(NOTES)], build_converter(get_config("groovae_4bar"), "eval"))


def test_evaluate_adds_the_protocol_block(tmp_path):
    from musicvae.evaluation.evaluate import evaluate
    from musicvae.generation import load

    data = write_dataset([beat(NOTES, split=s) for s in ("train", "test")], tmp_path / "d.parquet")
    run = debug_run(tmp_path, "split_bars=2,max_seq_len=32,tapify=True,fixed_velocities=True")
    r = evaluate(load(run), data, "test", num_prior_samples=2, workers=1, protocol="haki2022")
    assert r["protocol"]["name"] == "haki2022"
    assert r["protocol"]["metrics"]["free"]["num_windows"] == 3
    with pytest.raises(MusicVAEError, match="unknown protocol"):
        evaluate(load(run), data, "test", num_prior_samples=2, workers=1, protocol="nope")
