"""Continuation scores on hand-built grooves whose answers are known, and on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.evaluation.continuation import (
    continuation_report,
    continuation_scores,
    prompt_similarity,
)
from musicvae.generation.api import TrainedModel
from musicvae.models import build_model


def _bar(*cells: tuple[int, int]) -> np.ndarray:
    """One bar (16, 9) of hits at (step, class) cells."""
    h = np.zeros((16, 9), bool)
    for s, c in cells:
        h[s, c] = True
    return h


BEAT = _bar((0, 0), (8, 0), (4, 1), (12, 1))  # kick on 1 and 3, snare on 2 and 4
FILL = _bar((0, 0), (4, 1), (12, 1), (13, 1), (14, 1), (15, 1))


def test_a_loop_of_the_prompt_scores_as_repeat():
    prompt = np.stack([np.concatenate([BEAT, BEAT])])  # (1, 32, 9)
    real = np.stack([np.concatenate([BEAT, FILL])])
    s = continuation_scores(real.copy(), real, prompt, 16)
    assert s["f1"] == pytest.approx(1.0)  # played what the drummer played
    # Looping BEAT against BEAT, FILL: 4 + 3 right, 0 + 1 extra (kick on 3), 0 + 3 missed.
    assert s["repeat_f1"] == pytest.approx(2 * 7 / (2 * 7 + 1 + 3))
    # BEAT with BEAT: 1; FILL with BEAT: 3 shared of 7.
    assert s["prompt_similarity"] == pytest.approx((1 + 3 / 7) / 2)
    assert s["real_prompt_similarity"] == s["prompt_similarity"]
    assert s["bar_similarity"] == pytest.approx(3 / 7)
    assert s["notes_per_bar"] == pytest.approx((4 + 6) / 2)


def test_silence_is_scored_as_silence():
    prompt = BEAT[None]
    real = np.stack([np.concatenate([BEAT, BEAT])])
    silent = np.zeros_like(real)
    s = continuation_scores(silent, real, prompt, 16)
    assert s["f1"] == 0.0
    assert s["prompt_similarity"] == 0.0
    assert s["notes_per_bar"] == 0.0
    assert s["real_notes_per_bar"] == 4.0


def test_prompt_similarity_skips_empty_pairs():
    new = np.zeros((2, 1, 16, 9), bool)
    new[0, 0] = BEAT
    last = np.zeros((2, 16, 9), bool)
    last[0] = BEAT
    assert prompt_similarity(new, last) == 1.0  # the second pair is empty on both sides
    assert np.isnan(prompt_similarity(new[1:], last[1:]))


def test_report_on_a_tiny_model():
    torch.manual_seed(0)
    config = get_config("debug")
    trained = TrainedModel(build_model(config), config, source="test")
    windows = np.zeros((5, 16 * 8, 27), np.float32)
    windows[:, 0::8, 0] = 1.0
    windows[:, 4::8, 1] = 1.0
    windows[:, :, 9:11] = 0.7 * windows[:, :, 0:2]
    windows[2] = 0.0  # an empty prompt is skipped
    r = continuation_report(trained, windows, num_prompts=5, prompt_bars=2, new_bars=3)
    assert r["prompts"] == 4
    assert (r["prompt_bars"], r["new_bars"]) == (2, 3)
    assert r["real_prompt_similarity"] == 1.0  # the real grooves loop one bar
    assert r["repeat_f1"] == 1.0
    assert 0.0 <= r["f1"] <= 1.0
    again = continuation_report(trained, windows, num_prompts=5, prompt_bars=2, new_bars=3)
    assert again == r  # seeded


def test_windows_too_short_are_refused():
    config = get_config("debug")
    trained = TrainedModel(build_model(config), config, source="test")
    with pytest.raises(ValueError, match="at least 8 bars"):
        continuation_report(trained, np.zeros((2, 64, 27), np.float32))
