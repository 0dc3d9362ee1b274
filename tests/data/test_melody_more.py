"""Every registered melody config's converter against Magenta's, in 'train' mode.

Magenta's training converts with the converter in 'train' mode, whose cap of 5 windows per
sequence is a random draw (``np.random.seed(0)`` right before each call made the reference data,
so an ``np.random.RandomState(0)`` here must give the same windows in the same order). The
2-bar configs share cat-mel_2bar_big's converter settings, the 16-bar ones flat-mel_16bar's;
../shared/data/magenta/melody_more/README.md says how the data was made.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from musicvae.configs import CONFIGS, Config
from musicvae.data.converters import build_converter
from musicvae.data.converters.base import ConverterTensors
from musicvae.data.converters.melody import MelodyConverter
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence

N_FILES = 24
# The configs Magenta's reference data was made with: every melody config shares one's data.
REFERENCES = ("cat-mel_2bar_big", "flat-mel_16bar")
# Chord-conditioned melody configs have their own reference: tests/data/test_mel_chords.py.
MELODY_CONFIGS = sorted(
    name for name, c in CONFIGS.items() if c.converter == "melody" and not c.data.chord_encoding
)


def reference_of(config: Config) -> str | None:
    """The reference config whose converter settings ``config`` shares, if any."""
    return next((r for r in REFERENCES if CONFIGS[r].data == config.data), None)


# Debug configs copy a reference's data where they can; one that does not is left out.
CHECKED = [
    n for n in MELODY_CONFIGS if not n.startswith("debug") or reference_of(CONFIGS[n]) is not None
]


@pytest.fixture(scope="module")
def more_dir(magenta_dir) -> Path:
    d = magenta_dir / "melody_more"
    if not (d / "README.md").exists():
        pytest.skip("Magenta's train-mode melody data is not at ../shared/data/magenta/melody_more")
    return d


@pytest.fixture(scope="module")
def index(more_dir) -> dict:
    return json.loads((more_dir / "index.json").read_text())


@pytest.fixture(scope="module")
def folk(magenta_dir) -> list[NoteSequence]:
    d = magenta_dir / "melody" / "melodies"
    return [read_midi(d / f"{i:02d}.mid") for i in range(N_FILES)]


def reference(name: str) -> str:
    ref = reference_of(CONFIGS[name])
    assert ref is not None, f"{name}: no Magenta reference shares its converter settings"
    return ref


def train_converter(name: str, *, cap: bool = True) -> MelodyConverter:
    config = CONFIGS[name]
    if not cap:
        config = replace(config, data=replace(config.data, max_tensors_per_notesequence=None))
    conv = build_converter(config, "train")
    assert isinstance(conv, MelodyConverter)
    return conv


def assert_matches(t: ConverterTensors, ref: np.lib.npyio.NpzFile, key: str) -> int:
    """``t`` equals the reference file's windows for file ``key``, bit for bit and in order
    (ours are float32, Magenta's bool); returns the window count."""
    if f"{key}_outputs" not in ref:
        assert len(t) == 0, f"file {key}: Magenta gives no windows"
        return 0
    expected = ref[f"{key}_outputs"]
    outputs = np.stack(t.outputs)
    assert outputs.dtype == np.float32 and set(np.unique(outputs)) <= {0.0, 1.0}
    assert outputs.shape == expected.shape, f"file {key}"
    assert np.array_equal(outputs.astype(bool), expected), f"file {key}"
    assert np.array_equal(np.stack(t.inputs).astype(bool), ref[f"{key}_inputs"]), f"file {key}"
    assert t.lengths == ref[f"{key}_lengths"].tolist()
    assert all(c.shape == (expected.shape[1], 0) for c in t.controls)
    return len(t)


def test_every_melody_config_is_checked():
    """A new melody config must share a reference's converter settings (or be a debug one)."""
    assert set(REFERENCES) <= set(CHECKED)
    assert {"cat-mel_2bar_small", "hierdec-mel_16bar", "hier-mel_16bar"} <= set(CHECKED)
    for name in CHECKED:
        reference(name)


@pytest.mark.parametrize("name", CHECKED)
def test_converter_settings_match_magenta(name, index):
    conv = train_converter(name)
    settings = index[reference(name)]["settings"]
    assert conv.window_steps == settings["_slice_steps"]
    assert conv.steps_per_bar == settings["_steps_per_bar"]
    assert conv.data.steps_per_quarter == settings["_steps_per_quarter"]
    assert conv.data.max_tensors_per_notesequence == settings["_max_tensors_per_input"]
    assert (conv.min_pitch, conv.max_pitch) == (settings["_min_pitch"], settings["_max_pitch"])
    assert conv.input_depth == settings["_input_depth"] == conv.output_depth
    # Magenta's MEL_PROGRAMS (written "range(0, 32)") for the 2-bar configs, None for 16 bars.
    programs = {None: None, "range(0, 32)": tuple(range(32))}[settings["_valid_programs"]]
    assert conv.valid_programs == programs


@pytest.mark.parametrize("name", CHECKED)
def test_all_windows_in_magentas_order(name, more_dir, index, folk):
    """Cap off: every unique window of the 24 tunes in Magenta's (set) order. flat-mel_16bar
    has no all-windows file: no tune gives more than 5 windows, so its capped file is all."""
    ref_name = reference(name)
    all_file = f"{ref_name}_all_windows" if index[ref_name]["all_windows_file"] else ref_name
    ref = np.load(more_dir / f"{all_file}.npz")
    conv = train_converter(name, cap=False)
    counts = [assert_matches(conv.to_tensors(ns), ref, f"{i:02d}") for i, ns in enumerate(folk)]
    assert counts == [f["windows_all"] for f in index[ref_name]["files"]]
    assert sum(counts) == {"cat-mel_2bar_big": 262, "flat-mel_16bar": 23}[ref_name]


@pytest.mark.parametrize("name", CHECKED)
def test_train_mode_picks_match_magentas_seed_0(name, more_dir, index, folk):
    """With Magenta's RNG seeded as it was, the train-mode cap keeps the same windows in the
    same (CPython set) order, and they are the reference's picks into the all-windows list."""
    ref_name = reference(name)
    ref = np.load(more_dir / f"{ref_name}.npz")
    capped, every = train_converter(name), train_converter(name, cap=False)
    files = index[ref_name]["files"]
    total = 0
    for i, ns in enumerate(folk):
        t = capped.to_tensors(ns, np.random.RandomState(0))
        total += assert_matches(t, ref, f"{i:02d}")
        assert len(t) == files[i]["windows_train_mode"]
        picks = files[i]["train_picks_into_all_windows"]
        all_windows = every.to_tensors(ns).outputs
        assert all(
            np.array_equal(w, all_windows[p]) for w, p in zip(t.outputs, picks, strict=True)
        ), f"file {i:02d}"
    assert total == {"cat-mel_2bar_big": 100, "flat-mel_16bar": 23}[ref_name]


def test_other_seeds_draw_other_windows(folk):
    """The draw follows the RandomState: seed 1 keeps other windows than seed 0 (as Magenta's
    did in every tune with more than 5), and a Generator keeps the picks in index order."""
    conv = train_converter("cat-mel_2bar_big")
    ns = folk[0]
    zero = np.stack(conv.to_tensors(ns, np.random.RandomState(0)).outputs)
    one = np.stack(conv.to_tensors(ns, np.random.RandomState(1)).outputs)
    assert zero.shape == one.shape == (5, 32, 90) and not np.array_equal(zero, one)
    every = [
        w.tobytes() for w in train_converter("cat-mel_2bar_big", cap=False).to_tensors(ns).outputs
    ]
    drawn = conv.to_tensors(ns, np.random.default_rng(0)).outputs
    positions = [every.index(w.tobytes()) for w in drawn]
    assert len(drawn) == 5 and positions == sorted(positions)


@pytest.mark.parametrize("name", CHECKED)
def test_from_tensors_matches_magenta(name, more_dir):
    ref_name = reference(name)
    ref = np.load(more_dir / f"{ref_name}.npz")
    expected = json.loads((more_dir / "from_tensors_roundtrip.json").read_text())[ref_name]
    assert expected, f"{ref_name}: no round-trip windows"
    conv = train_converter(name)
    for w in expected:
        window = ref[f"{w['file_index']:02d}_outputs"][w["window_index"]]
        (ns,) = conv.from_tensors(window.astype(np.float32))
        seq = w["sequence"]
        fields = ("pitch", "velocity", "start_time", "end_time", "program", "is_drum")
        expected_notes = [tuple(n[f] for f in fields) for n in seq["notes"]]
        notes = zip(ns.pitch, ns.velocity, ns.start, ns.end, ns.program, ns.is_drum, strict=True)
        assert [tuple(n.item() for n in note) for note in notes] == expected_notes, (
            f"file {w['file_index']} window {w['window_index']}"
        )
        assert {n["instrument"] for n in seq["notes"]} == {0}  # ours keep no instrument
        assert ns.total_time == seq["total_time"]
        assert [t.qpm for t in ns.tempos] == seq["tempos_qpm"]
        assert [(s.numerator, s.denominator) for s in ns.time_signatures] == [
            (s["numerator"], s["denominator"]) for s in seq["time_signatures"]
        ]
