"""The config registry: Magenta's names, our variants beside them, ``key=value`` overrides."""

from __future__ import annotations

from dataclasses import replace

import pytest

from musicvae.configs import CONFIGS, Config, get_config
from musicvae.errors import ConfigError

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


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_registered_config_round_trips_through_its_dict(name):
    config = get_config(name)
    assert Config.from_dict(config.to_dict()) == config


BAD_OVERRIDES = [
    ("batch_size=-8", "batch_size=-8: must be >= 1"),
    ("batch_size=0", "batch_size=0: must be >= 1"),
    ("batch_size=2.5", "bad value for hparam 'batch_size'"),
    ("learning_rate=nan", "learning_rate=nan: expected a finite number"),
    ("learning_rate=inf", "learning_rate=inf: expected a finite number"),
    ("learning_rate=0", "learning_rate=0.0: must be > 0"),
    ("learning_rate=-1e-3", "learning_rate=-0.001: must be > 0"),
    ("free_bits=-1", "free_bits=-1.0: must be >= 0"),
    ("max_beta=-0.1", "max_beta=-0.1: must be >= 0"),
    ("beta_rate=1.0", "beta_rate=1.0: must be in [0, 1)"),
    ("decay_rate=0", "decay_rate=0.0: must be in (0, 1]"),
    ("decay_rate=1.5", "decay_rate=1.5: must be in (0, 1]"),
    ("grad_clip=0", "grad_clip=0.0: must be > 0"),
    ("dropout_keep_prob=0", "dropout_keep_prob=0.0: must be in (0, 1]"),
    ("dropout_keep_prob=1.2", "dropout_keep_prob=1.2: must be in (0, 1]"),
    ("z_size=0", "z_size=0: must be >= 1"),
    ("max_seq_len=0", "max_seq_len=0: must be >= 1"),
    ("enc_rnn_size=[0]", "enc_rnn_size=(0,): must be >= 1"),
    ("dec_rnn_size=[256,-1]", "dec_rnn_size=(256, -1): must be >= 1"),
    ("clip_mode=foo", "clip_mode='foo': expected one of 'global_norm', 'value'"),
    ("sampling_schedule=linear", "sampling_schedule='linear': expected one of"),
    ("sampling_rate=-1", "sampling_rate=-1.0: must be >= 0"),
    ("split_bars=0", "split_bars=0: must be >= 1"),
    ("hop_size=abc", "hop_size='abc': expected an integer or None"),
    ("hop_size=0", "hop_size=0: must be >= 1"),
    ("steps_per_quarter=0", "steps_per_quarter=0: must be >= 1"),
    ("windowing=sliding", "windowing='sliding': expected one of 'bars', 'file'"),
    ("add_instruments=[9]", "add_instruments=(9,): must be in [0, 8]"),
    ("max_note_dropout_probability=2", "max_note_dropout_probability=2: must be in [0, 1]"),
    ("decoder=transformer", "decoder='transformer': expected one of"),
    ("level_lengths=[0,16]", "level_lengths=(0, 16): must be >= 1"),
    ("humanize=maybe", "bad value for hparam 'humanize'"),
    ("z_sise=4", "unknown hparam 'z_sise'"),
    ("z_size", "expected key=value"),
]


@pytest.mark.parametrize(("override", "message"), BAD_OVERRIDES)
def test_bad_settings_are_refused_when_made(override, message):
    with pytest.raises(ConfigError) as e:
        get_config("groovae_4bar", override)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_ints_become_floats_and_lists_tuples():
    config = get_config("groovae_4bar", {"free_bits": 10, "enc_rnn_size": [64]})
    assert isinstance(config.hparams.free_bits, float) and config.hparams.enc_rnn_size == (64,)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(zz=1), "config: unknown keys zz"),
        (lambda d: d["hparams"].update(batch_sise=8), "config hparams: unknown keys batch_sise"),
        (lambda d: d["data"].update(split_bars=-1), "split_bars=-1: must be >= 1"),
        (lambda d: d.update(hparams=[1, 2]), "config hparams: expected a mapping"),
    ],
)
def test_from_dict_rejects_unknown_keys_and_bad_values(mutate, message):
    d = get_config("groovae_4bar").to_dict()
    mutate(d)
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(d)
