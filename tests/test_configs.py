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


# Magenta's CONFIG_MAP names registered here, with the values of its configs.py that set each
# family apart (the rest are HParams defaults checked elsewhere).
MAGENTA = {
    "cat-mel_2bar_small": dict(z_size=256, enc_rnn_size=(512,), dec_rnn_size=(256, 256),
                               free_bits=0.0, max_beta=0.2, beta_rate=0.99999),
    "cat-mel_2bar_big": dict(z_size=512, enc_rnn_size=(2048,), dec_rnn_size=(2048,) * 3,
                             free_bits=0.0, max_beta=0.5, beta_rate=0.99999),
    "flat-mel_16bar": dict(max_seq_len=256, z_size=512, enc_rnn_size=(2048, 2048),
                           dec_rnn_size=(2048,) * 3, free_bits=256.0),
    "hierdec-mel_16bar": dict(max_seq_len=256, z_size=512, enc_rnn_size=(2048, 2048),
                              dec_rnn_size=(1024, 1024), free_bits=256.0),
    "hier-mel_16bar": dict(max_seq_len=256, z_size=512, enc_rnn_size=(1024,),
                           dec_rnn_size=(1024, 1024), free_bits=256.0),
    "cat-drums_2bar_small": dict(z_size=256, enc_rnn_size=(512,), dec_rnn_size=(256, 256),
                                 free_bits=48.0, sampling_schedule="inverse_sigmoid"),
    "cat-drums_2bar_big": dict(z_size=512, enc_rnn_size=(2048,), dec_rnn_size=(2048,) * 3),
    "nade-drums_2bar_reduced": dict(enc_rnn_size=(1024,), dec_rnn_size=(512, 512),
                                    nade_num_hidden=128),
    "nade-drums_2bar_full": dict(enc_rnn_size=(1024,), dec_rnn_size=(512, 512),
                                 nade_num_hidden=128),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MAGENTA))
def test_magentas_melody_and_drum_configs(name):
    config = get_config(name)
    for key, value in MAGENTA[name].items():
        assert getattr(config.hparams, key) == value, key
    assert config.hparams.dropout_keep_prob == 1.0  # lstm_models' default, not GrooVAE's 0.3
    data = config.data
    assert data.max_tensors_per_notesequence == 5 and data.windowing == "file"
    if config.converter == "melody":
        two_bar = name.startswith("cat-")
        assert data.valid_programs == (tuple(range(32)) if two_bar else None)
        assert data.transpose_range == ((-5, 5) if two_bar else None)
    if name.startswith("hier"):
        assert (config.decoder, config.core_decoder) == ("hierarchical", "categorical_lstm")
        assert config.level_lengths == (16, 16)
    assert (config.encoder_level_lengths == (16, 16)) == name.startswith("hier-")
    assert data.roll_output == name.startswith("nade-")
    assert data.drum_pitch_classes == ("full" if name.endswith("_full") else "reduced")


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        ("groovae_4bar", "valid_programs=[0,1]", "groove converter does not read valid_programs"),
        ("cat-mel_2bar_small", "humanize=true", "melody converter does not read humanize"),
        ("cat-drums_2bar_small", "transpose_range=[-2,2]", "does not read transpose_range"),
        ("cat-drums_2bar_small", "drum_pitch_classes=full", "2^61 classes"),
        ("cat-drums_2bar_small", "roll_output=true", "decoder 'categorical_lstm' does not"),
        ("nade-drums_2bar_reduced", "roll_output=false", "decoder 'nade' does not read"),
        ("cat-mel_2bar_small", "decoder=groove_lstm", "'groove_lstm' does not read the melody"),
        ("groovae_4bar", "decoder=categorical_lstm", "does not read the groove"),
    ],
)
def test_a_converter_option_or_decoder_that_does_not_fit_is_refused(name, override, message):
    with pytest.raises(ConfigError, match=message.replace("^", r"\^")):
        get_config(name, override)
