"""Training-time augmentation: each transform does what it says on hand-built grids, inputs follow
the converter's transform, draws repeat per (seed, step), and a resumed augmented run is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.augment import Augmentation
from musicvae.errors import ConfigError


def _grid(steps: int = 16) -> torch.Tensor:
    """(2, steps, 27): row 0 kick on every 4th step at velocity 0.5, snare on 4 and 12 at 0.8,
    offsets 0.2; row 1 a kick alone on step 0."""
    g = torch.zeros(2, steps, 27)
    g[0, ::4, 0] = 1
    g[0, ::4, 9] = 0.5
    g[0, ::4, 18] = 0.2
    g[0, [4, 12], 1] = 1
    g[0, [4, 12], 10] = 0.8
    g[0, [4, 12], 19] = 0.2
    g[1, 0, 0], g[1, 0, 9] = 1, 0.5
    return g


def _batch(g: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return g.clone(), g.clone(), torch.zeros(len(g), g.shape[1], 0), torch.full((len(g),), 16)


def _augment(overrides: str, config: str = "groovae_4bar") -> Augmentation:
    aug = Augmentation.from_config(get_config(config, overrides), seed=3)
    assert aug is not None
    return aug


def test_no_augmentation_by_default():
    assert Augmentation.from_config(get_config("groovae_4bar"), seed=0) is None


def test_velocity_scales_each_window_by_one_factor():
    g = _grid()
    out = _augment("augment_velocity=0.25").targets(g, np.random.default_rng(0))
    hits = g[..., :9].numpy().astype(bool)
    ratio = out[..., 9:18][hits] / g[..., 9:18].numpy()[hits]
    row0 = ratio[: hits[0].sum()]
    assert np.allclose(row0, row0[0]) and 0.75 <= row0[0] <= 1.25 and row0[0] != 1
    assert np.array_equal(out[..., :9], g[..., :9].numpy())  # hits and timing untouched
    assert np.allclose(out[..., 18:], g[..., 18:].numpy())
    assert (out[..., 9:18][~hits] == 0).all()


def test_drop_class_silences_one_played_class_never_the_only_one():
    g = _grid()
    out = _augment("augment_drop_class=1.0").targets(g, np.random.default_rng(1))
    kept = [c for c in (0, 1) if out[0, :, c].any()]
    assert len(kept) == 1  # kick or snare gone, with its velocities and offsets
    gone = 1 - kept[0]
    assert not out[0, :, [gone, 9 + gone, 18 + gone]].any()
    assert np.array_equal(out[1], g[1].numpy())  # the lone kick stays


def test_shift_moves_every_hit_of_a_window_by_one_amount():
    g = _grid()
    out = _augment("augment_shift=0.2").targets(g, np.random.default_rng(2))
    hits = g[0, :, :9].numpy().astype(bool)
    delta = out[0, :, 18:][hits] - g[0, :, 18:].numpy()[hits]
    assert np.allclose(delta, delta[0]) and 0 < abs(delta[0]) <= 0.4  # offsets are half steps
    assert (out[0, :, 18:][~hits] == 0).all()
    big = _augment("augment_shift=0.5").targets(g, np.random.default_rng(5))
    assert np.abs(big[..., 18:]).max() <= 1.0


def test_inputs_follow_the_converters_transform():
    g = _grid()
    aug = _augment("augment_velocity=0.5,augment_shift=0.2", "groovae_2bar_humanize")
    inputs, outputs, _, _ = aug(_batch(g), step=4)
    assert torch.equal(inputs[..., :9], outputs[..., :9])
    assert not inputs[..., 9:].any()  # humanize: the encoder sees no velocity or timing
    assert outputs[..., 9:18].max() != 0.8 or outputs[..., 9:18].min() != 0.5
    plain = _augment("augment_drop_class=1.0")
    inputs, outputs, _, _ = plain(_batch(g), step=4)
    assert torch.equal(inputs, outputs)


def test_draws_repeat_per_step_and_differ_between_steps():
    aug = _augment("augment_velocity=0.3,augment_drop_class=0.5,augment_shift=0.2")
    a = aug(_batch(_grid()), step=7)[1]
    b = aug(_batch(_grid()), step=7)[1]
    c = aug(_batch(_grid()), step=8)[1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_hits_as_controls_follow_a_dropped_class():
    aug = _augment("augment_drop_class=1.0", "groovae_2bar_hits_control")
    g = _grid()
    inputs, outputs, controls, _ = aug(_batch(g), step=0)
    assert torch.equal(controls, outputs[..., :9])


def test_melody_configs_refuse_augmentation():
    with pytest.raises(ConfigError, match="augmentation works on drum grooves"):
        get_config("cat-mel_2bar_small", "augment_velocity=0.1")


@pytest.mark.parametrize("bad", ["augment_velocity=1.0", "augment_shift=0.6"])
def test_out_of_range_values_are_refused(bad):
    with pytest.raises(ConfigError):
        get_config("groovae_4bar", bad)
