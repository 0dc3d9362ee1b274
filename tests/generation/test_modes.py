"""The ``generate`` modes: a registry that covers the command line, each mode's exact output."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.cli import generate as gen_cli
from musicvae.cli.main import build_parser
from musicvae.errors import MusicVAEError
from musicvae.generation import load
from musicvae.generation.api import DEFAULT_BUNDLE, HUMANIZE_BUNDLE, TAP_BUNDLE
from musicvae.generation.modes import (
    INPUTS,
    MAX_INPUT_BARS,
    MODES,
    ModeRequest,
    check_input,
    run_mode,
)
from tests.generation.helpers import groove, requires_bundle

pytestmark = requires_bundle(DEFAULT_BUNDLE)


@pytest.fixture(scope="module")
def bundled():
    return load()


def test_every_mode_the_command_line_offers_is_registered():
    assert tuple(MODES) == gen_cli.MODES
    assert set(INPUTS) == set(MODES)
    assert (INPUTS["sample"], INPUTS["interpolate"], INPUTS["continue"]) == (0, 2, 1)
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["generate"]
    (mode,) = (a for a in sub._actions if a.dest == "mode")
    assert tuple(mode.choices) == tuple(MODES)
    for name in ("sample", "interpolate"):  # music_vae_generate's modes
        assert name in MODES


def test_sample_is_the_models_own_sample(bundled):
    out = run_mode("sample", bundled, ModeRequest(num_outputs=3, temperature=0.5, seed=4))
    assert out.grooves.shape == (3, 64, 27)  # 4 bars of 16 steps
    assert out.qpm == 120.0 and len(out.sequences) == 3
    for got, want in zip(out.sequences, bundled.sample(3, 0.5, seed=4), strict=True):
        assert np.array_equal(got.pitch, want.pitch)
        assert np.array_equal(got.start, want.start)
    slow = run_mode("sample", bundled, ModeRequest(num_outputs=1, temperature=0.5, tempo=90.0))
    assert slow.qpm == 90.0 and slow.sequences[0].qpm == pytest.approx(90.0)


def test_interpolate_goes_from_the_first_input_to_the_second(bundled):
    a, b = groove(4, qpm=96.0), groove(4, qpm=96.0).select(groove(4).pitch != 42)
    request = ModeRequest(num_outputs=4, temperature=0.5, inputs=(a, b), seed=0)
    out = run_mode("interpolate", bundled, request)
    assert out.grooves.shape == (4, 64, 27) and len(out.sequences) == 4
    assert out.qpm == 96.0  # the first input's tempo
    want = bundled.interpolate(a, b, 4, 0.5, seed=0)
    assert [len(ns) for ns in out.sequences] == [len(ns) for ns in want]


def test_reconstruct_and_continue_keep_every_bar(bundled):
    six = groove(6, qpm=110.0)
    out = run_mode("reconstruct", bundled, ModeRequest(2, 0.5, inputs=(six,), seed=1))
    assert out.grooves.shape == (2, 96, 27) and out.qpm == 110.0  # 6 bars of 16 steps
    (again,) = run_mode("reconstruct", bundled, ModeRequest(1, 0.5, inputs=(six,), seed=3)).grooves
    assert np.array_equal(again, out.grooves[1])  # output i draws from seed + 2 i
    out = run_mode("continue", bundled, ModeRequest(2, 0.5, inputs=(groove(2),), seed=0, bars=3))
    assert out.grooves.shape == (2, 80, 27) and len(out.sequences) == 2  # 2 + 3 bars
    want = bundled.extend(groove(2), 3, 2, 0.5, seed=0)
    assert [len(ns) for ns in out.sequences] == [len(ns) for ns in want]


def test_transforms_need_a_model_trained_for_them(bundled):
    request = ModeRequest(1, 0.5, inputs=(groove(2),))
    with pytest.raises(MusicVAEError, match="not trained to humanize"):
        run_mode("humanize", bundled, request)
    with pytest.raises(MusicVAEError, match="not trained to turn taps into drums"):
        run_mode("tap2drum", bundled, request)


@requires_bundle(HUMANIZE_BUNDLE)
def test_humanize_on_the_bundled_humanizer_keeps_the_hits():
    model = load(HUMANIZE_BUNDLE)
    three = groove(3)
    out = run_mode("humanize", model, ModeRequest(2, 0.5, inputs=(three,), seed=0))
    assert out.grooves.shape == (2, 48, 27) and len(out.sequences) == 2
    prep = model.prepare(three)
    hits = prep.outputs[0][:32, :9] > 0.5
    assert ((out.grooves[:, :32, :9] > 0.5) == hits).all()


@requires_bundle(TAP_BUNDLE)
def test_tap2drum_on_the_bundled_tapper_plays_on_the_taps():
    model = load(TAP_BUNDLE)
    out = run_mode("tap2drum", model, ModeRequest(3, 0.5, inputs=(groove(2),), seed=0))
    assert out.grooves.shape == (3, 32, 27) and len(out.sequences) == 3
    tapped = model.input_taps(model.prepare(groove(2)).inputs)[0]
    assert ((out.grooves[..., :9] > 0.5).any(axis=-1) == tapped).all()


def test_unknown_modes_and_missing_inputs_are_clear(bundled):
    with pytest.raises(MusicVAEError, match="unknown mode 'dance'; choose from sample, interp"):
        run_mode("dance", bundled, ModeRequest(1, 0.5))
    with pytest.raises(MusicVAEError, match="mode interpolate reads 2 input sequence"):
        run_mode("interpolate", bundled, ModeRequest(2, 0.5, inputs=(groove(4),)))


def test_inputs_are_checked_against_the_model(bundled):
    eight = groove(8)
    eight.filename = "eight.mid"
    assert check_input(bundled, "interpolate", eight) == (
        "eight.mid: 8 bars; interpolating from its first 4"
    )
    assert check_input(bundled, "reconstruct", eight) is None
    assert check_input(bundled, "interpolate", groove(4)) is None
    hours = groove(1)
    hours.end[-1] = (MAX_INPUT_BARS + 1) * 2.0  # a note 2001 bars late at 120 BPM
    hours.filename = "late.mid"
    with pytest.raises(MusicVAEError, match="late.mid: 2,001 bars; an input of at most 2,000"):
        check_input(bundled, "continue", hours)
