"""Schedules against hand-computed values of Magenta's formulas."""

from __future__ import annotations

import math

import pytest

from musicvae.configs import HParams
from musicvae.errors import MusicVAEError
from musicvae.models import schedules


def test_beta_rate_zero_gives_zero_at_step_0_then_max_beta():
    hp = HParams(max_beta=0.2, beta_rate=0.0)
    assert schedules.beta(0, hp) == 0.0
    assert schedules.beta(1, hp) == pytest.approx(0.2)
    assert schedules.beta(5000, hp) == pytest.approx(0.2)


def test_beta_annealing():
    hp = HParams(max_beta=0.5, beta_rate=0.99)
    assert schedules.beta(2, hp) == pytest.approx((1 - 0.9801) * 0.5)


def test_learning_rate_decays_towards_minimum():
    hp = HParams(learning_rate=1e-3, decay_rate=0.9999, min_learning_rate=1e-5)
    assert schedules.learning_rate(0, hp) == pytest.approx(1e-3)
    assert schedules.learning_rate(1, hp) == pytest.approx(0.99e-3 * 0.9999 + 1e-5)
    assert schedules.learning_rate(10000, hp) == pytest.approx(0.99e-3 * 0.9999**10000 + 1e-5)
    assert schedules.learning_rate(10**7, hp) == pytest.approx(1e-5)


def test_free_nats():
    assert schedules.free_nats(HParams(free_bits=48)) == pytest.approx(33.271065)
    assert schedules.free_nats(HParams(free_bits=0)) == 0.0


def test_sampling_schedules():
    assert schedules.sampling_probability(100, HParams()) == 0.0
    const = HParams(sampling_schedule="constant", sampling_rate=0.25)
    assert schedules.sampling_probability(7, const) == 0.25
    expo = HParams(sampling_schedule="exponential", sampling_rate=0.9)
    assert schedules.sampling_probability(0, expo) == 0.0
    assert schedules.sampling_probability(2, expo) == pytest.approx(0.19)
    inv = HParams(sampling_schedule="inverse_sigmoid", sampling_rate=1000.0)
    assert schedules.sampling_probability(0, inv) == pytest.approx(1 - 1000 / 1001)
    assert schedules.sampling_probability(2000, inv) == pytest.approx(
        1 - 1000 / (1000 + math.exp(2))
    )
    assert schedules.sampling_probability(10**7, inv) == 1.0


def test_sampling_is_full_outside_training_only_for_nonzero_schedules():
    inv = HParams(sampling_schedule="inverse_sigmoid", sampling_rate=1000.0)
    assert schedules.sampling_probability(0, inv, training=False) == 1.0
    assert schedules.sampling_probability(0, HParams(), training=False) == 0.0


@pytest.mark.parametrize(
    ("schedule", "rate"),
    [("constant", 1.5), ("exponential", 1.0), ("inverse_sigmoid", 0.5), ("linear", 0.1)],
)
def test_bad_schedules_are_rejected(schedule, rate):
    with pytest.raises(MusicVAEError):
        schedules.sampling_probability(1, HParams(sampling_schedule=schedule, sampling_rate=rate))
