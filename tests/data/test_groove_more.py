"""GrooveConverter against Magenta's groove_more/ fixtures: hits as controls, seeded note
dropout under tapify, 'infer' mode's input pitch map, and from_tensors of the hits-control config."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from musicvae.configs import DataConfig, get_config
from musicvae.data.converters.groove import GrooveConverter
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence
from tests.data.helpers import (
    assert_magenta_windows,
    magenta_gmd_files,
    magenta_note_dicts,
    note_dicts,
)

HITS_CONTROL = "groovae_2bar_hits_control_tfds"
NOTE_DROPOUT = "groovae_2bar_tap_fixed_velocity_note_dropout"


@pytest.fixture(scope="module")
def more(magenta_dir):
    return magenta_dir / "groove_more"


@pytest.fixture(scope="module")
def index(more):
    return json.loads((more / "index.json").read_text())


@pytest.fixture(scope="module")
def gmd(magenta_dir, groove_dir) -> dict[str, NoteSequence]:
    """The 24 fixture files by two-digit index, read once."""
    return {
        f"{f['index']:02d}": read_midi(groove_dir / f["midi_filename"])
        for f in magenta_gmd_files(magenta_dir)
    }


def converter(name: str, mode: str = "train") -> GrooveConverter:
    return GrooveConverter(replace(get_config(name).data, windowing="file"), mode=mode)


def test_hits_control_tfds(more, index, gmd):
    ref = np.load(more / f"{HITS_CONTROL}.npz")
    conv = converter(HITS_CONTROL)
    assert conv.control_depth == 9
    counts = [f["windows_all"] for f in index[HITS_CONTROL]["files"]]
    assert sum(counts) == 623
    for (k, ns), count in zip(gmd.items(), counts, strict=True):
        t = conv.to_tensors(ns)
        assert len(t) == count, k
        assert_magenta_windows(t, ref, k)
        controls = np.stack(t.controls)
        assert set(np.unique(controls)) <= {0.0, 1.0}
        np.testing.assert_array_equal(controls.astype(bool), ref[f"{k}_controls"], err_msg=k)


def test_tap_note_dropout_with_magentas_seed(more, index, gmd):
    """np.random.seed(0) before each file in Magenta is a RandomState(0) per file here."""
    ref = np.load(more / f"{NOTE_DROPOUT}.npz")
    conv = converter(NOTE_DROPOUT)
    assert conv.is_random
    for k, ns in gmd.items():
        assert_magenta_windows(conv.to_tensors(ns, np.random.RandomState(0)), ref, k)
    # The dropout ignores the mode; 'infer' differs where its pitch map moves a tom or crash.
    same = index["note_dropout_files_identical_to_train_mode_by_mode"]
    for mode in ("eval", "infer"):
        other = converter(NOTE_DROPOUT, mode)
        identical = []
        for k, ns in gmd.items():
            t = other.to_tensors(ns, np.random.RandomState(0))
            parts = [(t.inputs, ref[f"{k}_inputs"]), (t.outputs, ref[f"{k}_outputs"])]
            if all(np.array_equal(np.stack(a), b.astype(np.float32)) for a, b in parts):
                identical.append(int(k))
        assert identical == same[mode], mode


def test_tap_note_dropout_with_a_generator(magenta_dir, gmd):
    """Training's Generator still drives the dropout: seeded, and only ever removing taps."""
    plain = np.load(magenta_dir / "converter" / "groovae_2bar_tap_fixed_velocity.npz")
    conv = converter(NOTE_DROPOUT)
    ns = gmd["15"]
    a = conv.to_tensors(ns, np.random.default_rng(7))
    b = conv.to_tensors(ns, np.random.default_rng(7))
    np.testing.assert_array_equal(np.stack(a.inputs), np.stack(b.inputs))
    taps, all_taps = np.stack(a.inputs)[..., 3], plain["15_inputs"][..., 3]
    assert (taps <= all_taps).all() and 0 < taps.sum() < all_taps.sum()
    np.testing.assert_array_equal(np.stack(a.outputs), plain["15_outputs"].astype(np.float32))


def test_a_step_with_a_kick_never_loses_its_tap():
    """Magenta's quirk: where every note of a step drops out, the tap still comes from class 0,
    with the original kick's hit and offset; a step of only a snare does lose its tap."""
    step = 0.125
    # Quiet notes, kicks 0.01 s early (offset 0.16): the seeds below drop 4 to 15 of 15 kicks.
    kicks = [(36, 1, i * step - 0.01, i * step + 0.05) for i in range(2, 32, 2)]
    snares = [(38, 1, i * step, i * step + 0.05) for i in range(1, 32, 2)]
    ns = NoteSequence.from_notes(kicks + snares)
    data = DataConfig(windowing="file", split_bars=2, tapify=True, max_note_dropout_probability=1)
    conv = GrooveConverter(data)
    for seed in range(5):
        inputs = conv.to_tensors(ns, np.random.RandomState(seed)).inputs[0]
        assert inputs[2::2, 3].all()  # every kick step is tapped, dropped or not
        np.testing.assert_allclose(inputs[2::2, 21], 0.16, rtol=1e-6)  # with the kick's offset
        assert not inputs[1::2, 3].all()  # some snare steps lost theirs


def test_infer_mode_maps_input_pitches_with_the_reduced_classes(magenta_dir, more, index, gmd):
    ref = np.load(more / "groovae_4bar_infer_mode.npz")
    default = np.load(magenta_dir / "converter" / "groovae_4bar.npz")
    conv = converter("groovae_4bar", "infer")
    differing = {}
    for k, ns in gmd.items():
        t = conv.to_tensors(ns)
        assert_magenta_windows(t, ref, k)
        changed = (np.stack(t.outputs) != default[f"{k}_outputs"].astype(np.float32)).any((0, 1))
        differing[k] = sorted({int(c) % 9 for c in np.flatnonzero(changed)})
    assert differing == index["groovae_4bar_infer_mode"]["classes_differing_per_file"]


def test_hits_control_from_tensors(more):
    ref = np.load(more / f"{HITS_CONTROL}.npz")
    doc = json.loads((more / "from_tensors_roundtrip.json").read_text())[HITS_CONTROL]
    conv = converter(HITS_CONTROL)
    assert [w["file_index"] for w in doc] == [0, 8, 16]
    for w in doc:
        k, i = f"{w['file_index']:02d}", w["window_index"]
        (ns,) = conv.from_tensors(ref[f"{k}_outputs"][i], ref[f"{k}_controls"][i])
        assert w["sequence"]["tempos_qpm"] == [ns.qpm]
        assert note_dicts(ns) == magenta_note_dicts(w["sequence"]["notes"])
