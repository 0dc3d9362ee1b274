"""cat-mel_2bar_med_chords's converter against Magenta's, in 'train' mode.

Magenta's ``OneHotMelodyConverter(max_bars=100, slice_bars=2, steps_per_quarter=4,
chord_encoding=TriadChordOneHotEncoding())`` on the 24 folk melodies and the 12 trio files,
with the chords it inferred (../shared/data/magenta/mel_chords/README.md). Magenta dedupes
(event, chord) tuples in a Python set, whose order follows the string hash seed; the reference
was made with PYTHONHASHSEED=0, and ours reproduces that order whatever this process's seed,
so windows compare in order, and the train-mode picks of ``np.random.RandomState(0)`` are
Magenta's ``np.random.seed(0)`` picks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from musicvae.configs import CONFIGS
from musicvae.data.chords import NO_CHORD, ChordSequence
from musicvae.data.converters import build_converter
from musicvae.data.converters.base import ConverterTensors
from musicvae.data.converters.melody import MelodyConverter
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence

NAME = "cat-mel_2bar_med_chords"
INPUTS = {"melodies": ("melody/melodies", 24), "trio": ("trio/midis", 12)}
TOTALS = {  # windows: (train mode, all)
    "melodies": (100, 267),
    "trio": (60, 325),
}


@pytest.fixture(scope="module")
def chords_dir(magenta_dir) -> Path:
    d = magenta_dir / "mel_chords"
    if not (d / "README.md").exists():
        pytest.skip("Magenta's chord-conditioned melody data is not at mel_chords/")
    return d


@pytest.fixture(scope="module")
def index(chords_dir) -> dict:
    return json.loads((chords_dir / "index.json").read_text())


def converter(*, cap: bool = True) -> MelodyConverter:
    config = CONFIGS[NAME]
    if not cap:
        config = replace(config, data=replace(config.data, max_tensors_per_notesequence=None))
    conv = build_converter(config, "train")
    assert isinstance(conv, MelodyConverter)
    return conv


@pytest.fixture(scope="module")
def converted(magenta_dir) -> dict[str, list[tuple[ConverterTensors, ConverterTensors]]]:
    """Per input set and file: (train mode with RandomState(0), every window)."""
    capped, every = converter(), converter(cap=False)
    out = {}
    for kind, (folder, n) in INPUTS.items():
        files = [read_midi(magenta_dir / folder / f"{i:02d}.mid") for i in range(n)]
        out[kind] = [
            (capped.to_tensors(ns, np.random.RandomState(0)), every.to_tensors(ns)) for ns in files
        ]
    return out


def assert_matches(t: ConverterTensors, ref: np.lib.npyio.NpzFile, key: str) -> int:
    """``t`` equals file ``key``'s windows bit for bit, in order (inputs, outputs, controls
    and lengths; ours float32, Magenta's bool); returns the window count."""
    if f"{key}_outputs" not in ref:
        assert len(t) == 0, f"file {key}: Magenta gives no windows"
        return 0
    for part in ("inputs", "outputs", "controls"):
        ours = np.stack(getattr(t, part))
        assert ours.dtype == np.float32 and set(np.unique(ours)) <= {0.0, 1.0}
        expected = ref[f"{key}_{part}"]
        assert ours.shape == expected.shape, f"file {key} {part}"
        assert np.array_equal(ours.astype(bool), expected), f"file {key} {part}"
    assert t.lengths == ref[f"{key}_lengths"].tolist()
    return len(t)


def test_converter_settings_match_magenta(index):
    conv = converter()
    for kind in INPUTS:
        s = index[kind]["settings"]
        assert conv.window_steps == s["_slice_steps"] == 32
        assert conv.data.max_tensors_per_notesequence == s["_max_tensors_per_input"] == 5
        assert (conv.min_pitch, conv.max_pitch) == (s["_min_pitch"], s["_max_pitch"])
        assert conv.input_depth == conv.output_depth == s["_input_depth"]
        assert conv.control_depth == s["_control_depth"] == 49
        assert conv.valid_programs is None and s["_valid_programs"] is None


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_all_windows_in_magentas_order(kind, chords_dir, index, converted):
    ref = np.load(chords_dir / f"{kind}_{NAME}_all_windows.npz")
    counts = [
        assert_matches(every, ref, f"{i:02d}") for i, (_, every) in enumerate(converted[kind])
    ]
    assert counts == [f["windows_all"] for f in index[kind]["files"]]
    assert sum(counts) == TOTALS[kind][1]


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_train_mode_picks_match_magentas_seed_0(kind, chords_dir, index, converted):
    ref = np.load(chords_dir / f"{kind}_{NAME}.npz")
    files = index[kind]["files"]
    total = 0
    for i, (train, every) in enumerate(converted[kind]):
        total += assert_matches(train, ref, f"{i:02d}")
        assert len(train) == files[i]["windows_train_mode"]
        picks = files[i]["train_picks_into_all_windows"]
        for part in ("outputs", "controls"):
            picked = [getattr(every, part)[p] for p in picks]
            assert all(
                np.array_equal(a, b) for a, b in zip(getattr(train, part), picked, strict=True)
            ), f"file {i:02d} {part}"
    assert total == TOTALS[kind][0]


def test_chords_make_windows_distinct(converted, magenta_dir):
    """The dedupe is over (event, chord) tuples: one 2-bar melody under two chord sequences
    is two windows (file 00: 13 windows, 12 distinct melodies, as cat-mel_2bar_big has)."""
    _, every = converted["melodies"][0]
    melodies = {w.tobytes() for w in every.outputs}
    assert (len(every), len(melodies)) == (13, 12)


def test_the_tiny_checkpoints_batch(magenta_dir, converted):
    """The controls fed to the tiny TF checkpoint are these windows' (reference.npz)."""
    ref_path = magenta_dir / "mel_chords_tiny" / "reference.npz"
    if not ref_path.exists():
        pytest.skip("no mel_chords_tiny reference")
    ref = np.load(ref_path)
    for row, (f, w) in enumerate(ref["picks_file_window"].tolist()):
        train, _ = converted["melodies"][f]
        assert np.array_equal(train.controls[w], ref["controls"][row])
        assert np.array_equal(train.outputs[w], ref["outputs"][row])


def test_from_tensors_writes_the_chords(chords_dir):
    """Magenta's round trip, notes and chord annotations, except its diminished-chord bug:
    Magenta reads the chord as the argmax of all but the last 12 control columns (room for a
    key it does not have here), so C#dim (class 38) in window (16, 0) became N.C.; we keep
    it. Without controls there are no annotations."""
    ref = np.load(chords_dir / f"melodies_{NAME}.npz")
    expected = json.loads((chords_dir / "from_tensors_roundtrip.json").read_text())
    conv = converter()
    fixed = 0
    for w in expected["with_controls"]:
        key, i = f"{w['file_index']:02d}", w["window_index"]
        outputs = ref[f"{key}_outputs"][i].astype(np.float32)
        controls = ref[f"{key}_controls"][i].astype(np.float32)
        (ns,) = conv.from_tensors(outputs, controls)
        assert isinstance(ns, ChordSequence)
        seq = w["sequence"]
        assert_notes(ns, seq)
        assert conv.chords is not None
        assert conv.chords.decode_steps(controls) == w["control_chords"]
        ours = [(a.time, a.text) for a in ns.text_annotations]
        theirs = [(a["time"], a["text"]) for a in seq["text_annotations"]]
        assert {a["annotation_type"] for a in seq["text_annotations"]} == {1}
        magenta_reads = w["from_tensors_reads_control_classes"]
        if magenta_reads == w["control_classes"]:
            assert ours == theirs
        else:  # the diminished chords Magenta dropped
            lost = [c for c, r in zip(w["control_classes"], magenta_reads, strict=True) if c != r]
            assert set(lost) == {38} and set(magenta_reads) - set(w["control_classes"]) == {0}
            assert theirs == [(0.0, "D"), (2.0, NO_CHORD)]
            assert ours == [(0.0, "D"), (2.0, "C#dim")]
            fixed += 1
    assert fixed == 1
    (plain,) = expected["without_controls"]
    outputs = ref[f"{plain['file_index']:02d}_outputs"][plain["window_index"]]
    (ns,) = conv.from_tensors(outputs.astype(np.float32))
    assert type(ns) is NoteSequence and plain["sequence"]["text_annotations"] == []
    assert_notes(ns, plain["sequence"])


def assert_notes(ns: NoteSequence, seq: dict) -> None:
    fields = ("pitch", "velocity", "start_time", "end_time", "program", "is_drum")
    expected = [tuple(n[f] for f in fields) for n in seq["notes"]]
    notes = zip(ns.pitch, ns.velocity, ns.start, ns.end, ns.program, ns.is_drum, strict=True)
    assert [tuple(v.item() for v in note) for note in notes] == expected
    assert ns.total_time == seq["total_time"]
    assert [t.qpm for t in ns.tempos] == seq["tempos_qpm"]


def test_inference_time_paths(magenta_dir):
    """What generation reads: the whole melody on one grid with its chords, and controls of
    windows on their own (chords inferred from each window's melody)."""
    conv = converter()
    ns = read_midi(magenta_dir / "melody" / "melodies" / "00.mid")
    grid = conv.sequence_grid(ns)
    (controls,) = grid.controls
    assert controls.shape == (grid.lengths[0], 49)
    assert np.array_equal(controls.sum(-1), np.ones(len(controls), np.float32))
    names = conv.chords.decode_steps(controls) if conv.chords else []
    assert names[:8] == ["Gm"] * 8 and names[8] == "Bb"  # Bbmaj7, the inference's, as a triad
    window = np.stack(conv.to_tensors(ns).outputs[:3])
    own = conv.controls_for(window, window)
    assert own.shape == (3, 32, 49) and np.array_equal(own.sum(-1), np.ones((3, 32)))
    no_chords = build_converter(CONFIGS["cat-mel_2bar_small"], "train")
    assert no_chords.control_depth == 0
    assert no_chords.controls_for(window, window).shape == (3, 32, 0)
