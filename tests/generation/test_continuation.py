"""Continue: the prompt comes back unchanged, then exactly the bars asked for, in its feel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.generation.api import TrainedModel
from musicvae.generation.continuation import context_bars, continue_tensors
from musicvae.models import build_model
from tests.generation.helpers import groove, requires_bundle


def _model(overrides: str | None = None, seed: int = 0) -> TrainedModel:
    torch.manual_seed(seed)
    config = get_config("debug", overrides)
    return TrainedModel(build_model(config), config, source="test")


def _prompt(bars: int) -> np.ndarray:
    g = np.zeros((16 * bars, 27), np.float32)
    g[0::8, 0] = 1.0  # kick on 1 and 3
    g[4::8, 1] = 1.0  # snare on 2 and 4
    g[:, 9:11] = 0.7 * g[:, 0:2]
    return g


@pytest.mark.parametrize(
    ("prompt", "window", "expected"), [(1, 4, 1), (4, 4, 2), (4, 16, 4), (12, 16, 8)]
)
def test_context_is_at_most_half_a_window(prompt, window, expected):
    assert context_bars(prompt, window) == expected


@pytest.mark.parametrize(("prompt_bars", "bars"), [(1, 1), (2, 5), (4, 8)])
def test_prompt_then_the_bars_asked_for(prompt_bars, bars):
    model = _model()
    prompt = _prompt(prompt_bars)
    out = continue_tensors(model, prompt, bars, n=3, temperature=0.5, seed=7)
    assert out.shape == (3, 16 * (prompt_bars + bars), 27)
    np.testing.assert_array_equal(out[:, : len(prompt)], np.repeat(prompt[None], 3, 0))
    hits = out[:, len(prompt) :, :9]
    assert set(np.unique(hits)) <= {0.0, 1.0}
    # Seeded: the same call gives the same grooves; the first is the posterior mean's, so a
    # second seed changes only the variations' codes and the draws.
    again = continue_tensors(model, prompt, bars, n=3, temperature=0.5, seed=7)
    np.testing.assert_array_equal(out, again)


def test_each_window_starts_from_what_was_played(monkeypatch):
    model = _model()
    seen = []
    real = model.decode_tensors

    def spy(z, temperature, seed, fixed_hits=None, spread=False, **kw):
        seen.append(fixed_hits.copy())
        return real(z, temperature, seed, fixed_hits=fixed_hits, spread=spread, **kw)

    monkeypatch.setattr(model, "decode_tensors", spy)
    prompt = _prompt(4)
    out = continue_tensors(model, prompt, 5, n=1, seed=1)
    # A 4-bar model with a 2-bar context adds 2 bars per window: 5 bars take 3 windows.
    assert len(seen) == 3
    np.testing.assert_array_equal(seen[0][0, :32], prompt[32:64, :9])  # the prompt's last 2 bars
    np.testing.assert_array_equal(seen[1][0, :32], out[0, 64:96, :9])  # then the new ones
    assert np.isnan(seen[0][0, 32:]).all()  # the rest is the model's to play


@pytest.mark.parametrize(
    ("prompt", "overrides", "message"),
    [
        (np.zeros((16, 27), np.float32), None, "the prompt is empty"),
        (_prompt(1)[:10], None, "whole bars"),
        (_prompt(1), "humanize=True", "transforms its input"),
    ],
)
def test_bad_prompts_are_clear(prompt, overrides, message):
    with pytest.raises(MusicVAEError, match=message):
        continue_tensors(_model(overrides), prompt, 2)


def test_bars_are_bounded():
    with pytest.raises(MusicVAEError, match="bars must be 1 to 64"):
        continue_tensors(_model(), _prompt(1), 0)


def test_extend_a_note_sequence():
    model = _model()
    (first, second) = model.extend(groove(2, qpm=100.0), bars=2, n=2, seed=3)
    assert first.qpm == 100.0
    step = 60.0 / 100.0 / 4
    # The prompt's notes come back first, on their steps (a kick on step 0 of bar 1).
    assert abs(min(first.start)) < step and max(first.start) < 4 * 16 * step


@requires_bundle("groovae_4bar")
def test_the_bundled_model_keeps_the_feel():
    from musicvae.evaluation.realism import bar_similarity
    from musicvae.generation.api import load

    model = load("groovae_4bar")
    prompt = model.converter.sequence_grid(groove(2)).outputs[0]
    out = continue_tensors(model, np.asarray(prompt), 4, n=8, temperature=0.5, seed=0)
    new = out[:, 32:, :9] > 0.5
    # A plain rock beat goes on as a rock beat: most of the new bars' hits repeat bar to bar,
    # and kick and snare keep playing.
    assert bar_similarity(new, 16) > 0.5
    assert new[..., 0].sum(axis=1).min() >= 4 and new[..., 1].sum(axis=1).min() >= 4
