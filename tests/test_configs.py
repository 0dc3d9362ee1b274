"""The config registry: Magenta's names, our variants beside them, ``key=value`` overrides."""

from __future__ import annotations

from dataclasses import replace

import pytest

from musicvae.configs import CONFIGS, get_config

MAGENTA_GROOVAE = [
    "groovae_4bar",
    "groovae_2bar_humanize",
    "groovae_2bar_tap_fixed_velocity",
    "groovae_2bar_tap_fixed_velocity_note_dropout",
    "groovae_2bar_add_closed_hh",
    "groovae_2bar_hits_control",
]


@pytest.mark.parametrize("name", MAGENTA_GROOVAE)
def test_magenta_configs_keep_magentas_loss(name):
    assert not get_config(name).hparams.hit_conditioned


@pytest.mark.parametrize(
    "base", ["groovae_4bar", "groovae_2bar_humanize", "groovae_2bar_tap_fixed_velocity"]
)
def test_hitcond_variants_differ_only_in_the_loss(base):
    ours, theirs = get_config(f"{base}_hitcond"), CONFIGS[base]
    assert ours.hparams.hit_conditioned
    assert replace(ours, name=base, hparams=replace(ours.hparams, hit_conditioned=False)) == theirs


def test_override_of_hit_conditioned():
    assert get_config("groovae_4bar", "hit_conditioned=true").hparams.hit_conditioned
