"""Melody statistics with hand-computed answers, and the melody comparison on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicvae.evaluation.melody import (
    bar_similarity,
    events,
    in_key_share,
    melody_stats,
    path_changes,
)

NO_EVENT, NOTE_OFF = 0, 1


def one_hot(rows: list[list[int]]) -> np.ndarray:
    """(N, T, 90) windows from event classes."""
    out = np.zeros((len(rows), len(rows[0]), 90), np.float32)
    for i, row in enumerate(rows):
        out[i, np.arange(len(row)), row] = 1.0
    return out


def pitch(p: int) -> int:
    return p - 21 + 2


def test_in_key_share_takes_the_best_major_scale():
    c_major = np.array([60, 62, 64, 65, 67, 69, 71])
    assert in_key_share(c_major) == 1.0
    # C D E F# : G major holds all four.
    assert in_key_share(np.array([60, 62, 64, 66])) == 1.0
    # The chromatic cluster C C# D: no major scale holds more than two of the three.
    assert in_key_share(np.array([60, 61, 62])) == pytest.approx(2 / 3)
    assert math.isnan(in_key_share(np.array([], np.int64)))


def test_stats_of_a_two_bar_tune():
    bar = [pitch(60)] + [NO_EVENT] * 3 + [pitch(64)] + [NO_EVENT] * 3 + [pitch(67)] + [NO_EVENT] * 3
    bar += [pitch(72), NO_EVENT, NO_EVENT, NOTE_OFF]
    other = list(bar)
    other[0] = pitch(62)  # the second bar differs from the first at one step of 16
    stats = melody_stats(one_hot([bar + other]), 16)
    assert stats["notes_per_bar"] == 4.0
    assert stats["pitch_range"] == 12.0  # C4 to C5
    assert stats["over_two_octaves"] == 0.0
    assert stats["in_key_share"] == 1.0  # C E G C D: all in C major
    assert stats["bar_similarity_lag1"] == pytest.approx(15 / 16)
    assert math.isnan(stats["bar_similarity_lag4"])  # two bars have no lag 4
    assert stats["silent_share"] == 0.0


def test_silence_and_wide_ranges():
    silent = [NO_EVENT] * 32
    wide = [pitch(30)] + [NO_EVENT] * 15 + [pitch(90)] + [NO_EVENT] * 15
    stats = melody_stats(one_hot([silent, wide]), 16)
    assert stats["silent_share"] == 0.5
    assert stats["notes_per_bar"] == 0.5  # two notes over two windows of two bars
    assert stats["pitch_range"] == 60.0 and stats["over_two_octaves"] == 1.0


def test_bar_similarity_at_lag_4_and_path_changes():
    classes = np.tile(np.arange(16), 5)[None]  # five equal bars
    assert bar_similarity(classes, 16, 4) == 1.0 and bar_similarity(classes, 16, 1) == 1.0
    a, b = one_hot([[pitch(60)] * 4]), one_hot([[pitch(62)] * 2 + [pitch(60)] * 2])
    path = np.concatenate([a, a, b])  # no change, then half the steps
    assert path_changes(path) == pytest.approx(0.25)
    assert events(path).shape == (3, 4)
