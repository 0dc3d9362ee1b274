"""How well a model continues a groove: the studio's Continue, scored against what was played.

Real 16-bar windows of a split are cut into a prompt (the first ``prompt_bars``) and what the
drummer played next (the following ``new_bars``). The model continues each prompt
(:func:`musicvae.generation.continuation.continue_tensors`, the first result: the prompt's
posterior mean), and its new bars are compared with the real ones:

- ``f1``: hit F1 of the new bars' cells against the real next bars' (pooled). The future is not
  fully predictable, so no model reaches 1; ``repeat_f1`` gives the same figure for simply
  looping the prompt's last bar, the continuation a drum machine would play;
- ``prompt_similarity``: mean Jaccard of each new bar's hits with the prompt's last bar, beside
  the real next bars' (``real_prompt_similarity``): does it stay in the groove?
- ``bar_similarity``: consecutive new bars' Jaccard, beside the real ones';
- ``notes_per_bar``, beside the real ones'.

Every model is scored on the same windows, whatever its own window length, so 4- and 16-bar
models compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from musicvae.evaluation.metrics import HIT_THRESHOLD, prf, split_channels
from musicvae.evaluation.realism import bar_similarity, mean_jaccard
from musicvae.validation import derive_seed

if TYPE_CHECKING:
    from musicvae.generation.trained_model import TrainedModel

DEFAULT_PROMPTS = 128


def _hits(x: np.ndarray) -> np.ndarray:
    return split_channels(np.asarray(x, np.float64))[0] > HIT_THRESHOLD


def _f1(pred: np.ndarray, real: np.ndarray) -> float:
    tp = float((pred & real).sum())
    fp = float((pred & ~real).sum())
    fn = float((~pred & real).sum())
    return prf(tp, fp, fn, float((~pred & ~real).sum()))["f1"]


def prompt_similarity(new: np.ndarray, prompt_last: np.ndarray) -> float:
    """Mean Jaccard of each bar of ``new`` (N, bars, S, C) hits with ``prompt_last`` (N, S, C),
    over the bar pairs where either has a hit (NaN if none)."""
    a = new.reshape(new.shape[0], new.shape[1], -1)
    return mean_jaccard(a, prompt_last.reshape(prompt_last.shape[0], 1, -1))


def continuation_scores(
    generated: np.ndarray, real: np.ndarray, prompt: np.ndarray, spb: int
) -> dict:
    """The figures above from hit grids: ``generated`` and ``real`` new bars (N, T, C) and the
    ``prompt`` (N, P, C), all bool."""
    n = len(real)
    bars = real.shape[1] // spb
    last = prompt[:, -spb:]
    gen_bars = generated.reshape(n, bars, spb, -1)
    real_bars = real.reshape(n, bars, spb, -1)
    repeat = np.tile(last, (1, bars, 1))
    return {
        "f1": _f1(generated, real),
        "repeat_f1": _f1(repeat, real),
        "prompt_similarity": prompt_similarity(gen_bars, last),
        "real_prompt_similarity": prompt_similarity(real_bars, last),
        "bar_similarity": bar_similarity(generated, spb),
        "real_bar_similarity": bar_similarity(real, spb),
        "notes_per_bar": float(generated.sum() / (n * bars)),
        "real_notes_per_bar": float(real.sum() / (n * bars)),
    }


def continuation_report(
    trained: TrainedModel,
    windows: np.ndarray,
    *,
    prompt_bars: int = 4,
    new_bars: int = 4,
    num_prompts: int = DEFAULT_PROMPTS,
    temperature: float = 0.5,
    seed: int = 0,
) -> dict:
    """Score ``trained``'s continuations of prompts cut from real ``windows`` (N, T, 27) of at
    least ``prompt_bars + new_bars`` bars; ``num_prompts`` of them, spread over the split."""
    from musicvae.generation.continuation import continue_tensors

    spb = trained.converter.steps_per_bar
    p, m = prompt_bars * spb, new_bars * spb
    windows = np.asarray(windows, np.float32)
    if windows.ndim != 3 or windows.shape[1] < p + m:
        raise ValueError(
            f"windows of at least {prompt_bars + new_bars} bars needed, got {windows.shape}"
        )
    picks = np.unique(
        np.linspace(0, len(windows) - 1, min(num_prompts, len(windows))).round().astype(int)
    )
    generated, kept = [], []
    for k, i in enumerate(picks):
        prompt = windows[i, :p]
        if not _hits(prompt).any():
            continue
        out = continue_tensors(trained, prompt, new_bars, 1, temperature, derive_seed(seed, k))
        generated.append(out[0, p : p + m])
        kept.append(i)
    real = windows[kept]
    report = continuation_scores(
        _hits(np.stack(generated)), _hits(real[:, p : p + m]), _hits(real[:, :p]), spb
    )
    report.update(
        prompts=len(kept), prompt_bars=prompt_bars, new_bars=new_bars, temperature=temperature
    )
    return report
