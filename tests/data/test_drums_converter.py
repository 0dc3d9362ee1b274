"""The drums converter against Magenta's own outputs on 24 GMD files, and on grooves built in code."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from musicvae.configs import DataConfig, get_config
from musicvae.data.converters import CONVERTERS, Converter, build_converter
from musicvae.data.converters.drums import DrumsConverter
from musicvae.data.converters.groove import drum_pitch_class
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from tests.data.helpers import (
    assert_magenta_windows,
    magenta_gmd_files,
    magenta_note_dicts,
    note_dicts,
)

STEP = 0.125  # seconds per 16th note at 120 qpm
CONFIGS = ("cat-drums_2bar_small", "cat-drums_2bar_big", "nade-drums_2bar_reduced")
CONFIGS += ("nade-drums_2bar_full",)
# Magenta's fixtures store cat-drums_2bar_small only: _big builds an equal converter.
REFERENCE = {name: name for name in CONFIGS} | {"cat-drums_2bar_big": "cat-drums_2bar_small"}
# Unique windows per file (README): the reduced map collapses file 20 to 2 windows.
ALL_WINDOWS = {"reduced": 1113, "full": 1149}


def converter(name: str, mode: str = "train", **changes) -> DrumsConverter:
    config = get_config(name)
    conv = build_converter(config, mode, data=replace(config.data, **changes))
    assert isinstance(conv, DrumsConverter)
    return conv


def drums(hits, *, bars=None, qpm=120.0, time_signature=(4, 4), **kwargs) -> NoteSequence:
    """A drum sequence from (pitch, step) hits at 16th notes, each half a step long."""
    step = 60.0 / qpm / 4
    rows = [(p, 100, s * step, (s + 0.5) * step) for p, s in hits]
    return NoteSequence.from_notes(rows, qpm=qpm, time_signature=time_signature, **kwargs)


def classes_of(conv: DrumsConverter, inputs: np.ndarray) -> list[set[int]]:
    """The classes hit at each step of a roll input (NOR column checked and dropped)."""
    roll = np.asarray(inputs) > 0.5
    assert np.array_equal(roll[:, -1], ~roll[:, :-1].any(axis=1))
    return [set(np.flatnonzero(row[:-1]).tolist()) for row in roll]


# ------------------------------------------------------------------ Magenta's outputs


@pytest.fixture(scope="module")
def drums_dir(magenta_dir):
    d = magenta_dir / "drums"
    return d if (d / "README.md").exists() else pytest.skip(f"no Magenta drum fixtures at {d}")


@pytest.fixture(scope="module")
def gmd(magenta_dir, groove_dir) -> list[NoteSequence]:
    return [read_midi(groove_dir / f["midi_filename"]) for f in magenta_gmd_files(magenta_dir)]


@pytest.fixture(scope="module")
def all_windows(gmd):
    """Every unique window of every file, per config (converters without the cap)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            conv = converter(name, max_tensors_per_notesequence=None)
            cache[name] = [conv.to_tensors(ns) for ns in gmd]
        return cache[name]

    return get


@pytest.fixture(scope="module")
def train_picks(gmd):
    """Each file's train-mode windows with Magenta's np.random.seed(0) before to_tensors."""
    cache = {}

    def get(name: str):
        if name not in cache:
            conv = converter(name)
            cache[name] = [conv.to_tensors(ns, np.random.RandomState(0)) for ns in gmd]
        return cache[name]

    return get


@pytest.mark.parametrize("name", CONFIGS)
def test_every_unique_window_matches_magenta_in_its_order(name, drums_dir, all_windows):
    ref = np.load(drums_dir / f"{REFERENCE[name]}_all_windows.npz")
    tensors = all_windows(name)
    for i, t in enumerate(tensors):
        assert_magenta_windows(t, ref, f"{i:02d}")
        assert all(c.shape == (32, 0) for c in t.controls)
    total = sum(len(t) for t in tensors)
    assert total == ALL_WINDOWS[get_config(name).data.drum_pitch_classes]


@pytest.mark.parametrize("name", CONFIGS)
def test_train_mode_picks_match_magenta(name, drums_dir, train_picks, all_windows):
    ref = np.load(drums_dir / f"{REFERENCE[name]}.npz")
    index = json.loads((drums_dir / "index.json").read_text())[REFERENCE[name]]
    for i, (t, every) in enumerate(zip(train_picks(name), all_windows(name), strict=True)):
        assert_magenta_windows(t, ref, f"{i:02d}")
        assert len(t) == index["files"][i]["windows_train_mode"]
        # The picks are windows of the full list, in the order of CPython's set of indices.
        picks = index["files"][i]["train_picks_into_all_windows"]
        assert np.array_equal(np.stack(t.outputs), np.stack(every.outputs)[picks])


def test_big_and_small_give_identical_tensors(train_picks, all_windows):
    for got in (train_picks, all_windows):
        for small, big in zip(got("cat-drums_2bar_small"), got("cat-drums_2bar_big"), strict=True):
            assert np.array_equal(np.stack(small.inputs), np.stack(big.inputs))
            assert np.array_equal(np.stack(small.outputs), np.stack(big.outputs))


def test_file_20_collapses_under_the_reduced_map(all_windows, gmd):
    """One repetitive groove: 2 unique reduced windows, 15 with the full map (38/40 and 42/44
    stay apart, 22/26 vanish), out of the 15 windows its one track is cut into."""
    reduced, full = all_windows("cat-drums_2bar_small")[20], all_windows("nade-drums_2bar_full")[20]
    assert (len(reduced), len(full)) == (2, 15)
    conv = converter("cat-drums_2bar_small")
    ((track,),) = conv.tracks(gmd[20])
    assert len(conv.windows(track)) == 15 and len(set(conv.windows(track))) == 2


def test_from_tensors_matches_magenta(drums_dir):
    expected = json.loads((drums_dir / "from_tensors_roundtrip.json").read_text())
    for name, windows in expected.items():
        ref = np.load(drums_dir / f"{name}.npz")
        conv = converter(name, mode="infer")
        for w in windows:
            window = ref[f"{w['file_index']:02d}_outputs"][w["window_index"]]
            (ns,) = conv.from_tensors(window.astype(np.float32))
            assert note_dicts(ns) == magenta_note_dicts(w["sequence"]["notes"]), name
            assert ns.is_drum.all() and ns.total_time == w["sequence"]["total_time"]
            assert [t.qpm for t in ns.tempos] == w["sequence"]["tempos_qpm"]


def test_the_full_map_is_magentas(drums_dir):
    index = json.loads((drums_dir / "index.json").read_text())
    settings = index["nade-drums_2bar_full"]["settings"]
    full = converter("nade-drums_2bar_full")
    assert [list(c) for c in full.pitch_classes] == settings["_pitch_classes"]
    reduced = converter("nade-drums_2bar_reduced")
    assert [list(c) for c in reduced.pitch_classes] == index["cat-drums_2bar_small"]["settings"][
        "_pitch_classes"
    ]


# ------------------------------------------------------------------ built in code


@pytest.mark.parametrize("name", CONFIGS)
def test_registered_and_sized(name):
    conv = converter(name, mode="infer")
    assert isinstance(conv, Converter) and CONVERTERS["drums"] is DrumsConverter
    n = 61 if name.endswith("full") else 9
    roll = name.startswith("nade")
    assert (conv.input_depth, conv.output_depth) == (n + 1, n if roll else 2**n)
    assert conv.control_depth == 0 and conv.window_steps == 32 and conv.steps_per_bar == 16
    assert len(conv.class_names) == conv.output_depth and not conv.is_random


def test_class_names():
    cat = converter("cat-drums_2bar_small")
    assert cat.class_names[:4] == ("silence", "kick", "snare", "kick+snare")
    assert cat.class_names[511].count("+") == 8
    assert converter("nade-drums_2bar_reduced").class_names[4] == "low_tom"
    full = converter("nade-drums_2bar_full").class_names
    assert full[:3] == ("bass drum 1", "acoustic bass drum", "acoustic snare")


def test_reduced_map_is_not_groovaes():
    """45 is a low tom (class 4) here but a mid tom in GrooVAE's Roland map; 48 and 58 differ
    too. Pitches 22 and 26 are hi-hats here and dropped by the full map."""
    conv = converter("nade-drums_2bar_reduced")
    for pitch, ours, groovae in [(45, 4, 5), (48, 5, 6), (58, 7, 4)]:
        assert conv._lookup[pitch] == ours and drum_pitch_class(pitch) == groovae
    ns = drums([(22, 0), (26, 4), (36, 16), (42, 24), (42, 36)])
    ((track,),) = conv.tracks(ns)
    assert len(track) == 48 and track[:5] == [{2}, set(), set(), set(), {3}]
    # The full map keeps no hit in bar 0, so its one track starts at bar 1.
    full = converter("nade-drums_2bar_full")
    (kept,) = full.to_tensors(ns).inputs
    assert [(i, c) for i, c in enumerate(classes_of(full, kept)) if c] == [
        (0, {0}),
        (8, {17}),
        (20, {17}),
    ]


def test_round_trip_and_encoding_of_a_two_bar_groove():
    hits = [(36, 0), (42, 0), (38, 4), (42, 8), (36, 10), (38, 12), (46, 14), (51, 20), (49, 31)]
    for name in ("cat-drums_2bar_small", "nade-drums_2bar_reduced"):
        conv = converter(name)
        t = conv.to_tensors(drums(hits))
        assert len(t) == 1 and t.lengths == [32]
        assert t.inputs[0].dtype == t.outputs[0].dtype == np.float32
        steps = classes_of(conv, t.inputs[0])
        assert steps[0] == {0, 2} and steps[1] == set() and steps[31] == {7}
        if name.startswith("cat"):
            assert t.outputs[0].argmax(-1)[0] == 0b101 and t.outputs[0].sum() == 32
        else:
            assert np.array_equal(t.outputs[0], t.inputs[0][:, :-1])
        (ns,) = conv.from_tensors(t.outputs[0], qpm=60.0)
        got = sorted(
            (int(p), round(s / (2 * STEP))) for p, s in zip(ns.pitch, ns.start, strict=True)
        )
        assert got == sorted(hits)
        assert set(ns.velocity) == {80} and ns.is_drum.all() and ns.tempos[0].qpm == 60.0
        assert np.allclose(ns.end - ns.start, 2 * STEP)


def test_tracks_split_at_a_bar_of_silence_and_start_at_a_bar():
    conv = converter("cat-drums_2bar_small")
    # Bars 0-1, a silent bar from step 32, then hits from step 50 (bar 3).
    ((first, second),) = conv.tracks(
        drums([(36, s) for s in (0, 8, 16, 31)] + [(38, 50), (38, 66)])
    )
    assert len(first) == 32 and first[31] == {0} and first[30] == set()
    assert len(second) == 32 and second[2] == {1} and second[18] == {1}
    # A gap of 15 silent steps does not split, one of 16 does.
    ((only,),) = conv.tracks(drums([(36, 0), (36, 16), (38, 31)]))
    assert len(only) == 32
    assert [len(t) for t in conv.tracks(drums([(36, 0), (38, 17)]))[0]] == [16, 16]


def test_what_gives_nothing():
    conv = converter("cat-drums_2bar_small")
    assert (
        len(conv.to_tensors(drums([(36, s) for s in range(0, 48, 4)], time_signature=(3, 4)))) == 0
    )
    assert len(conv.to_tensors(drums([(36, 0), (36, 31)], is_drum=False))) == 0
    quiet = drums([(36, 0), (36, 31)])
    quiet.velocity[:] = 0
    assert len(conv.to_tensors(quiet)) == 0
    assert len(conv.to_tensors(drums([(36, 0)]))) == 0  # one bar is no 2-bar window


def test_the_cap_outside_training_keeps_the_first_windows(gmd, all_windows):
    for mode in ("eval", "infer"):
        conv = converter("nade-drums_2bar_reduced", mode=mode)
        for ns, every in zip(gmd[:4], all_windows("nade-drums_2bar_reduced")[:4], strict=True):
            got = conv.to_tensors(ns, np.random.RandomState(0))
            assert np.array_equal(np.stack(got.outputs), np.stack(every.outputs)[:5])
    with pytest.raises(MusicVAEError, match="mode"):  # build_converter's one-line error
        converter("nade-drums_2bar_reduced", mode="serve")


def test_sequence_grid_starts_at_step_0_with_no_gap_limit():
    conv = converter("cat-drums_2bar_small")
    ns = drums([(36, 20), (38, 70)])  # from bar 1, then more than a bar of silence
    t = conv.sequence_grid(ns)
    assert len(t) == 1 and t.lengths == [80]
    steps = classes_of(conv, t.inputs[0])
    assert steps[20] == {0} and steps[70] == {1} and sum(map(len, steps)) == 2
    assert len(conv.sequence_grid(drums([(36, 0)], is_drum=False))) == 0


def test_rejects_options_it_would_ignore():
    for changes in (
        {"humanize": True},
        {"tapify": True},
        {"valid_programs": (0,)},
        {"transpose_range": (-3, 3)},
        {"hop_size": 8},
    ):
        with pytest.raises(MusicVAEError, match=next(iter(changes))):
            converter("cat-drums_2bar_small", **changes)
    with pytest.raises(ValueError, match="2\\*\\*61"):
        DrumsConverter(DataConfig(split_bars=2, drum_pitch_classes="full"))
