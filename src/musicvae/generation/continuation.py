"""Continue a groove: more bars in the prompt's own feel (the studio's Continue tool).

Magenta Studio's Continue extends a prompt with an RNN; a MusicVAE can do it with what it has.
The prompt is encoded once, tiled to fill the model's window so the encoder hears a whole
window of it, and its posterior gives the code of every new bar: ``mu`` for the first result,
``mu + sigma * eps`` for variations. New bars are then decoded window by window. Each window
starts with the last bars played so far as fixed hits (the decoder plays them, and so knows where
it is in the groove) and decodes the rest freely; the free bars are appended. A 16-bar
hierarchical model thus makes up to 8 new bars per window after an 8-bar context, a 4-bar model 2
after 2. The prompt itself comes back unchanged at the start of each result.

Melodies (any model whose decoder, or hierarchical decoder's core, is categorical) continue the
same way with :func:`continue_categorical_tensors`: the prompt tiled to the window is encoded once,
and each window decodes freely from its code after a teacher-forced prefix of the last bars played
so far, so the model hears where the melody is before it goes on. Trios (a multi-output decoder,
or a split one under a conductor) continue so too, one draw per part at each step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from musicvae.validation import SEED_SPACE, derive_seed

if TYPE_CHECKING:
    from musicvae.generation.trained_model import TrainedModel

MAX_BARS = 64


def context_bars(prompt_bars: int, window_bars: int) -> int:
    """Bars of what was played that each window starts from: up to half the window, so every
    window adds at least half a window of new bars."""
    return max(1, min(prompt_bars, window_bars // 2))


def _encoded(
    trained: TrainedModel,
    prompt: np.ndarray,
    bars: int,
    n: int,
    seed: int | None,
    what: str,
    classes: int | None,
    depths: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray, int]:
    """The checked float32 prompt, the ``n`` codes of its windows (its posterior mean first,
    then posterior samples) and the context in steps each window starts from. Its music is the
    first ``classes`` columns (hits), or with None every step's class other than 0 (one-hot; of
    each part, for the parts of widths ``depths``)."""
    if not 1 <= bars <= MAX_BARS:
        raise MusicVAEError(f"continue: bars must be 1 to {MAX_BARS}, got {bars}")
    from musicvae.generation.trained_model import MAX_BATCH

    if not 1 <= n <= MAX_BATCH:  # every continuation is decoded in one batch
        raise MusicVAEError(f"continue: n must be 1 to {MAX_BATCH:,}, got {n}")
    spb, window = trained.converter.steps_per_bar, trained.window_steps
    prompt = np.asarray(prompt, np.float32)
    if prompt.ndim != 2 or len(prompt) % spb or not len(prompt):
        raise MusicVAEError(f"continue: the prompt must be whole bars of {spb} steps")
    if classes is not None:
        music = bool(prompt[:, :classes].any())
    else:
        parts = np.split(prompt, np.cumsum(depths)[:-1], axis=1) if depths else [prompt]
        music = any(part.argmax(-1).any() for part in parts)
    if not music:
        raise MusicVAEError(f"continue: the prompt is empty (no {what} to continue from)")
    tiled = prompt[np.arange(window) % len(prompt)]
    z, mu, _sigma = trained.encode_tensors(np.repeat(tiled[None], n, 0), seed=seed)
    z[0] = mu[0]  # the best guess first, then variations drawn from the posterior
    return prompt, z, context_bars(len(prompt) // spb, window // spb) * spb


def continue_tensors(
    trained: TrainedModel,
    prompt: np.ndarray,
    bars: int,
    n: int = 1,
    temperature: float = 1.0,
    seed: int | None = None,
) -> np.ndarray:
    """``n`` grooves (n, T + bars * steps_per_bar, 27): the (T, 27) ``prompt`` (whole bars),
    then ``bars`` new bars from ``trained`` (a ``TrainedModel`` without input transforms)."""
    trained.family.check_mode("continue", trained.config.name)
    if trained.config.data.transforms_input or trained.converter.control_depth:
        raise MusicVAEError(
            f"config {trained.config.name!r} transforms its input or takes controls; "
            "continue a groove with a plain GrooVAE (e.g. groovae_4bar or groovae_16bar_hierdec)"
        )
    spb, window = trained.converter.steps_per_bar, trained.window_steps
    classes = len(trained.converter.class_names)
    prompt, z, context = _encoded(trained, prompt, bars, n, seed, "hits", classes)
    out = np.repeat(prompt[None], n, 0)
    k = 0
    while out.shape[1] < len(prompt) + bars * spb:
        fixed = np.full((n, window, classes), np.nan, np.float32)
        ctx = out[:, -context:, :classes]
        fixed[:, : ctx.shape[1]] = ctx
        s = derive_seed(seed, 1 + 7919 * k)
        decoded = trained.decode_tensors(z, temperature, s, fixed_hits=fixed, spread=True)
        need = len(prompt) + bars * spb - out.shape[1]
        out = np.concatenate([out, decoded[:, ctx.shape[1] : ctx.shape[1] + need]], axis=1)
        k += 1
    return out


def continue_categorical_tensors(
    trained: TrainedModel,
    prompt: np.ndarray,
    bars: int,
    n: int = 1,
    temperature: float = 1.0,
    seed: int | None = None,
) -> np.ndarray:
    """``n`` continuations (n, T + bars * steps_per_bar, D) of a (T, D) one-hot ``prompt``
    (whole bars) by a model with a categorical decoder (a melody's) or a multi-output one (a
    trio's: one one-hot per part): the prompt, then ``bars`` new bars, the first result from
    the posterior mean and the others from posterior samples."""
    import torch

    from musicvae.models.categorical import CategoricalLstmDecoder, sample_categorical
    from musicvae.models.multi_out import PartsOutput

    decoder = trained.model.decoder
    core = getattr(decoder, "core", decoder)
    categorical = isinstance(core, CategoricalLstmDecoder | PartsOutput)
    if not categorical or trained.converter.control_depth:
        raise MusicVAEError(
            f"config {trained.config.name!r}: only a model with a categorical decoder and no "
            "controls (a melody or trio model) continues one-hot steps"
        )
    window, depth = trained.window_steps, trained.converter.output_depth
    depths = core.output_depths if isinstance(core, PartsOutput) else (depth,)
    if np.ndim(prompt) != 2 or np.shape(prompt)[1] != depth:
        raise MusicVAEError(f"continue: the prompt must be one-hot steps of {depth} classes")
    # Class 0 ("no event", no hits) throughout, in every part, is no music at all.
    prompt, z, context = _encoded(trained, prompt, bars, n, seed, "notes", None, depths)
    spb = trained.converter.steps_per_bar
    total = len(prompt) + bars * spb
    out = np.repeat(prompt[None], n, 0)
    zt = torch.as_tensor(z, dtype=torch.float32, device=trained.device)
    k = 0
    while out.shape[1] < total:
        fresh = min(window - context, total - out.shape[1])
        g = None
        if seed is not None:
            g = torch.Generator(device=trained.device)
            g.manual_seed((seed + 1 + 7919 * k) % SEED_SPACE)  # inside the seed range
        steps = torch.zeros((n, context + fresh, depth), device=trained.device)
        steps[:, :context] = torch.as_tensor(out[:, -context:], device=trained.device)
        with torch.no_grad():
            for t in range(context, context + fresh):
                # Teacher-forced on every step before t: step t's logits are what a free run
                # that had played those steps would give.
                logits = decoder(steps[:, : t + 1], None, zt).rnn_output[:, t]
                draws = [
                    sample_categorical(part, temperature, g)
                    for part in logits.split(list(depths), -1)
                ]
                steps[:, t] = torch.cat(draws, -1)
        out = np.concatenate([out, steps[:, context:].cpu().numpy()], axis=1)
        k += 1
    return out


def prompt_grid(trained: TrainedModel, ns: NoteSequence) -> np.ndarray:
    """The (T, 27) grid of a whole prompt, in whole bars, as the model's converter reads it."""
    from musicvae.data.windows import check_bars

    check_bars(ns, ns.filename or "prompt")  # before the grid: a note hours late fills memory
    grid = trained.converter.sequence_grid(ns)
    if not len(grid):
        raise MusicVAEError(f"{ns.filename or 'prompt'}: no 4/4 grid to continue (no drum notes?)")
    return np.asarray(grid.outputs[0], np.float32)
