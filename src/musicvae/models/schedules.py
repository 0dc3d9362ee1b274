"""Training schedules as pure functions of the global step, with Magenta's exact formulas.

- ``beta(step) = (1 - beta_rate ** step) * max_beta`` (so 0 at step 0 when ``beta_rate = 0``,
  because ``0 ** 0 = 1``).
- ``learning_rate(step) = (lr - min_lr) * decay_rate ** step + min_lr`` (Adam's step size).
- ``sampling_probability``: ``constant`` (the rate itself), ``exponential`` (``1 - rate ** step``)
  or ``inverse_sigmoid`` (``1 - k / (k + exp(step / k))``); outside training any non-zero
  schedule becomes 1.0, as Magenta assumes an eval job for a scheduled-sampling trainer.
- ``free_nats = free_bits * ln 2``: KL below this (per sequence) is not penalised.
"""

from __future__ import annotations

import math

from musicvae.configs import HParams
from musicvae.errors import MusicVAEError

SCHEDULES = ("constant", "exponential", "inverse_sigmoid")


def beta(step: int, hp: HParams) -> float:
    """KL weight at ``step``."""
    return (1.0 - hp.beta_rate ** float(step)) * hp.max_beta


def learning_rate(step: int, hp: HParams) -> float:
    """Adam learning rate at ``step``: exponential decay towards ``min_learning_rate``."""
    decay = hp.decay_rate ** float(step)
    return (hp.learning_rate - hp.min_learning_rate) * decay + hp.min_learning_rate


def free_nats(hp: HParams) -> float:
    """The free-bits threshold in nats."""
    return hp.free_bits * math.log(2.0)


def uses_sampling(hp: HParams) -> bool:
    """Whether the schedule ever feeds the decoder its own samples."""
    return bool(hp.sampling_schedule) and not (
        hp.sampling_schedule == "constant" and hp.sampling_rate == 0
    )


def validate_sampling(hp: HParams) -> None:
    """Raise :class:`MusicVAEError` for an unknown schedule or an out-of-range rate."""
    schedule, rate = hp.sampling_schedule, hp.sampling_rate
    if not uses_sampling(hp):
        return
    if schedule == "constant" and not 0.0 <= rate <= 1.0:
        raise MusicVAEError(f"constant sampling_rate must be in [0, 1], got {rate}")
    if schedule == "exponential" and not 0.0 < rate < 1.0:
        raise MusicVAEError(f"exponential sampling_rate must be in (0, 1), got {rate}")
    if schedule == "inverse_sigmoid" and rate < 1.0:
        raise MusicVAEError(f"inverse_sigmoid sampling_rate must be at least 1, got {rate}")
    if schedule not in SCHEDULES:
        raise MusicVAEError(
            f"unknown sampling_schedule {schedule!r}; choose from: {', '.join(SCHEDULES)}"
        )


def sampling_probability(step: int, hp: HParams, training: bool = True) -> float:
    """Probability of feeding the decoder its own previous sample instead of the target."""
    validate_sampling(hp)
    if not uses_sampling(hp):
        return 0.0
    if not training:
        return 1.0
    rate, step_f = hp.sampling_rate, float(step)
    if hp.sampling_schedule == "constant":
        return float(rate)
    if hp.sampling_schedule == "exponential":
        return 1.0 - rate**step_f
    # inverse_sigmoid; exp overflows only where the probability is already 1.
    try:
        return 1.0 - rate / (rate + math.exp(step_f / rate))
    except OverflowError:
        return 1.0
