"""The model-family table: every registered config has a row, and the rows agree with what the
commands offer (generate's modes, evaluate's protocols, the studio's tools)."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.cli import generate as generate_cli
from musicvae.configs import CONFIGS, get_config
from musicvae.errors import MusicVAEError
from musicvae.evaluation.protocols import PROTOCOLS
from musicvae.families import ALL_MODES, FAMILIES, families_with_mode, family_name, family_of
from musicvae.generation.modes import MODES
from musicvae.plotting.curves import ACCURACY_PANEL, PANELS, panels
from musicvae.web import tools as studio_tools

EXPECTED = {
    "groovae_4bar": "groove",
    "groovae_16bar_hierdec": "groove",
    "cat-mel_2bar_small": "melody",
    "hierdec-mel_16bar": "melody",
    "hier-mel_16bar": "melody",
    "cat-drums_2bar_small": "drums",
    "nade-drums_2bar_reduced": "drum_roll",
    "nade-drums_2bar_full": "drum_roll",
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_registered_config_has_a_family(name):
    family = family_of(CONFIGS[name])
    assert family.name in FAMILIES
    assert "sample" in family.modes and set(family.modes) <= set(ALL_MODES)


@pytest.mark.parametrize(("name", "family"), sorted(EXPECTED.items()))
def test_families_of_magentas_configs(name, family):
    assert family_name(get_config(name)) == family


def test_the_table_names_only_what_the_commands_have():
    assert tuple(MODES) == ALL_MODES == generate_cli.MODES
    tools = {t.name for t in studio_tools.TOOLS}
    for family in FAMILIES.values():
        assert set(family.protocols) <= set(PROTOCOLS)
        assert set(family.studio_tools) <= tools
    assert families_with_mode("humanize") == ["groove"]
    assert families_with_mode("sample") == list(FAMILIES)


def test_a_mode_a_family_lacks_is_one_line_naming_its_modes():
    family = FAMILIES["melody"]
    family.check_mode("sample", "cat-mel_2bar_small")
    with pytest.raises(MusicVAEError) as e:
        family.check_mode("humanize", "cat-mel_2bar_small")
    assert str(e.value) == (
        "--mode humanize: config 'cat-mel_2bar_small' is a melody model (monophonic melodies); "
        "its modes are sample, interpolate, reconstruct"
    )
    assert "\n" not in str(e.value)


def test_studio_roles_are_refused_for_a_family_without_tools(monkeypatch):
    import dataclasses

    assert studio_tools.family_problem("generate", get_config("groovae_4bar")) is None
    # A melody model is a main model (its Generate, Interpolate and Continue make melodies),
    # and the melody role takes nothing else.
    assert studio_tools.family_problem("generate", get_config("cat-mel_2bar_small")) is None
    problem = studio_tools.family_problem("melody", get_config("groovae_4bar"))
    assert problem is not None and problem.endswith("take melody models")
    melody = dataclasses.replace(FAMILIES["melody"], studio_tools=())
    monkeypatch.setitem(FAMILIES, "melody", melody)
    problem = studio_tools.family_problem("groove", get_config("cat-mel_2bar_small"))
    assert problem is not None and problem.startswith("config 'cat-mel_2bar_small' is a melody")
    assert problem.endswith("take groove models")


def test_plot_shows_the_accuracy_the_runs_log():
    series = (np.arange(3), np.ones(3))
    assert panels([("g", {"metrics/hit_accuracy": series}, {})])[ACCURACY_PANEL] == (
        "metrics/hit_accuracy",
        "hit accuracy",
    )
    assert panels([("m", {"metrics/accuracy": series}, {})])[ACCURACY_PANEL] == (
        "metrics/accuracy",
        FAMILIES["melody"].accuracy_label,
    )
    assert panels([("none", {}, {})]) == list(PANELS)
