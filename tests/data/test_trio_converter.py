"""The trio converter against Magenta's TrioConverter on twelve three-instrument MIDI files.

../shared/data/magenta/trio/README.md says how the files and the tensors were made: Magenta's
converter in 'train' mode with ``np.random.seed(0)`` right before each call, so an
``np.random.RandomState(0)`` here must give the same windows in the same order. Then the quirks
that shape the tensors, on trios built in code, and the three configs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from musicvae.configs import CONFIGS, get_config
from musicvae.data.converters import build_converter
from musicvae.data.converters.base import sample_items
from musicvae.data.converters.trio import TrioConverter
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.errors import ConfigError
from musicvae.families import family_name

N_FILES = 12
TRIO_CONFIGS = ("flat-trio_16bar", "hierdec-trio_16bar", "hier-trio_16bar")
WINDOWS = (1, 5, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2)  # README: 18 in all
NOTE_KEYS = ("pitch", "velocity", "start_time", "end_time", "program", "is_drum")


@pytest.fixture(scope="module")
def trio_dir(magenta_dir) -> Path:
    d = magenta_dir / "trio"
    if not (d / "README.md").exists():
        pytest.skip("Magenta's trio data is not at ../shared/data/magenta/trio")
    return d


@pytest.fixture(scope="module")
def trios(trio_dir) -> list[NoteSequence]:
    return [read_midi(trio_dir / "midis" / f"{i:02d}.mid") for i in range(N_FILES)]


def converter(name: str = "flat-trio_16bar", mode: str = "train", **changes) -> TrioConverter:
    config = get_config(name)
    conv = build_converter(config, mode, data=replace(config.data, **changes))
    assert isinstance(conv, TrioConverter)
    return conv


def part_classes(outputs: np.ndarray) -> np.ndarray:
    """(..., 3) argmax of the melody, bass and drum parts of (..., 692) one-hots."""
    return np.stack(
        [
            outputs[..., :90].argmax(-1),
            outputs[..., 90:180].argmax(-1),
            outputs[..., 180:].argmax(-1),
        ],
        axis=-1,
    )


# ------------------------------------------------------------------ Magenta's outputs


def test_every_window_of_every_file_matches_magenta(trio_dir, trios):
    ref = np.load(trio_dir / "flat-trio_16bar.npz")
    classes = np.load(trio_dir / "flat-trio_16bar_classes.npz")
    index = json.loads((trio_dir / "index.json").read_text())["flat-trio_16bar"]
    conv = converter()
    matched = 0
    for i, ns in enumerate(trios):
        k = f"{i:02d}"
        t = conv.to_tensors(ns, np.random.RandomState(0))
        assert len(t) == WINDOWS[i] == index["files"][i]["windows_train_mode"], k
        ours = np.stack(t.outputs)
        # Magenta's are bool; ours float32 with the same ones, bit for bit and in order.
        np.testing.assert_array_equal(ours, ref[f"{k}_outputs"].astype(np.float32), err_msg=k)
        np.testing.assert_array_equal(np.stack(t.inputs), ours, err_msg=k)
        np.testing.assert_array_equal(t.lengths, ref[f"{k}_lengths"], err_msg=k)
        np.testing.assert_array_equal(part_classes(ours), classes[f"{k}_classes"], err_msg=k)
        assert all(c.shape == (256, 0) for c in t.controls)
        assert ours.dtype == np.float32 and ours.sum(axis=-1).max() == 3.0
        # No file reaches the cap: the picks are every window, in order.
        assert index["files"][i]["train_picks_into_all_windows"] == list(range(len(t)))
        matched += len(t)
    assert matched == 18


def test_the_cap_is_magentas_draw_and_other_modes_keep_the_first(trios):
    """Two trios end to end give more windows than the cap of 5: 'train' keeps the draw of
    Magenta's maybe_sample_items (a RandomState's picks, in set order), 'infer' the first."""
    a, b = trios[1], trios[3]  # 20 and 17 bars, both melodies on program 21
    bar = 240.0 / a.qpm
    shift = np.ceil(a.total_time / bar) * bar  # b starts on the bar after a, at a's tempo
    long = replace(
        a,
        pitch=np.concatenate([a.pitch, b.pitch]),
        velocity=np.concatenate([a.velocity, b.velocity]),
        start=np.concatenate([a.start, b.start * b.qpm / a.qpm + shift]),
        end=np.concatenate([a.end, b.end * b.qpm / a.qpm + shift]),
        is_drum=np.concatenate([a.is_drum, b.is_drum]),
        program=np.concatenate([a.program, b.program]),
    )
    every = converter(max_tensors_per_notesequence=None).to_tensors(long).outputs
    assert len(every) > 5
    for seed in (0, 1, 7):
        got = converter().to_tensors(long, np.random.RandomState(seed)).outputs
        want = sample_items(every, 5, "train", np.random.RandomState(seed))
        assert len(got) == 5
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
    first = converter(mode="infer").to_tensors(long).outputs
    assert all(np.array_equal(g, w) for g, w in zip(first, every[:5], strict=True))


def test_edge_cases_of_the_fixture(trio_dir, trios):
    edge = json.loads((trio_dir / "index.json").read_text())["edge_cases_windows"]
    conv = converter()
    ns = trios[0]
    flute = replace(ns, program=np.where(~ns.is_drum & (ns.program == 0), 73, ns.program))
    assert conv.to_tensors(flute).outputs == []  # no melody part: 73 is not in 0-31
    no_drums = ns.select(~ns.is_drum)
    assert conv.to_tensors(no_drums).outputs == []
    assert edge["file 00 with the melody program set to 73 (flute)"] == 0
    assert edge["file 00 without its drum notes"] == 0
    # to_tensors leaves the caller's sequence alone.
    before = trios[3].total_time
    conv.to_tensors(trios[3])
    assert trios[3].total_time == before == pytest.approx(51.98712749999999)


def test_from_tensors_matches_magentas_notes(trio_dir):
    ref = np.load(trio_dir / "flat-trio_16bar.npz")
    cases = json.loads((trio_dir / "from_tensors_roundtrip.json").read_text())
    conv = converter()
    for case in cases:
        window = ref[f"{case['file_index']:02d}_outputs"][case["window_index"]]
        (ns,) = conv.from_tensors(window.astype(np.float32))
        ours = [(n.pitch, n.velocity, n.start, n.end, n.program, n.is_drum) for n in ns.notes]
        theirs = [tuple(n[k] for k in NOTE_KEYS) for n in case["sequence"]["notes"]]
        assert ours == theirs
        assert ns.total_time == case["sequence"]["total_time"]
        assert ns.qpm == 120.0
        # Melody on instrument 0 program 0, bass on program 33, drums on channel 10.
        parts = {(n["instrument"], n["program"], n["is_drum"]) for n in case["sequence"]["notes"]}
        assert parts == {(0, 0, False), (1, 33, False), (9, 0, True)}
        # Encoding the decoded trio again gives the window back.
        again = conv.to_tensors(ns).outputs
        assert any(np.array_equal(w, window) for w in again)


def test_sequence_grid_holds_every_window(trios):
    conv = converter(mode="infer")
    for i in (0, 1, 3, 11):
        t = conv.to_tensors(trios[i])
        (grid,) = conv.sequence_grid(trios[i]).outputs
        assert len(grid) % 16 == 0 and grid.shape[1] == 692
        starts = [j for j in range(0, len(grid) - 255, 16)]
        found = [next(j for j in starts if np.array_equal(grid[j : j + 256], w)) for w in t.outputs]
        assert found == sorted(found)
    assert conv.sequence_grid(trios[0].select(~trios[0].is_drum)).outputs == []


# ------------------------------------------------------------------ quirks, on trios built in code

STEP = 0.125  # a 16th note at 120 qpm


def trio(bars: int, *, melody=None, bass=None, drums=None) -> NoteSequence:
    """A 4/4 trio at 120 qpm: melody (program 0), bass (33) and kick (drum 36) notes, each a
    list of bars that hold one quarter note on every beat (default: every bar)."""
    rows = []
    for part, program, pitch, drum in (
        (melody, 0, 72, False),
        (bass, 33, 40, False),
        (drums, 0, 36, True),
    ):
        for bar in range(bars) if part is None else part:
            for beat in range(4):
                t = (bar * 16 + beat * 4) * STEP
                rows.append((pitch + (bar % 3 if not drum else 0), t, t + 3 * STEP, program, drum))
    return NoteSequence(
        pitch=[r[0] for r in rows],
        velocity=[100] * len(rows),
        start=[r[1] for r in rows],
        end=[r[2] for r in rows],
        program=[r[3] for r in rows],
        is_drum=[r[4] for r in rows],
        tempos=[Tempo(0.0, 120.0)],
        time_signatures=[TimeSignature(0.0, 4, 4)],
    )


def test_one_bar_hops_and_identical_windows_kept():
    conv = converter(max_tensors_per_notesequence=None)
    ns = trio(20)
    t = conv.to_tensors(ns)
    assert len(t) == 5  # bars 0..4, one bar apart
    # The melody repeats every 3 bars, so windows 0 and 3 are equal: Magenta keeps both.
    assert np.array_equal(t.outputs[0], t.outputs[3])


def test_gaps_up_to_gap_bars_are_filled():
    conv = converter(max_tensors_per_notesequence=None)
    # Bass silent in bars 8-11 (4 bars: 2 filled from each side): still 1 window of 16 bars.
    assert len(conv.to_tensors(trio(16, bass=[*range(8), *range(12, 16)]))) == 1
    # Silent in bars 8-12 (5 bars): bar 10 is more than 2 bars from a bass note.
    assert len(conv.to_tensors(trio(16, bass=[*range(8), *range(13, 16)]))) == 0
    assert len(converter(gap_bars=3).to_tensors(trio(16, bass=[*range(8), *range(13, 16)]))) == 1


def test_leading_silence_is_padded_and_the_first_bars_are_lenient():
    conv = converter(max_tensors_per_notesequence=None)
    # The drums come in at bar 4: bars 2-3 lie within 2 bars of them; bars 0-1 count as
    # covered because the melody and bass cover them (the first gap_bars bars' leniency).
    ns = trio(16, drums=range(4, 16))
    (w,) = conv.to_tensors(ns).outputs
    classes = part_classes(w)
    assert (classes[:64, 2] == 0).all() and classes[64, 2] == 1  # silence, then a kick
    assert classes[0, 0] == 2 + 72 - 21  # the melody starts at step 0
    # Drums from bar 5: bar 2 is 3 bars away and not in the first two bars.
    assert conv.to_tensors(trio(16, drums=range(5, 16))).outputs == []


def test_the_last_bars_are_lenient_too():
    conv = converter(max_tensors_per_notesequence=None)
    # The melody stops after bar 11: the gap filling reaches bar 13, and bars 14-15 count
    # as covered because the bass and drums cover the last two bars.
    assert len(conv.to_tensors(trio(16, melody=range(12)))) == 1
    # After bar 10 it reaches bar 12 only: bar 13 is uncovered.
    assert len(conv.to_tensors(trio(16, melody=range(11)))) == 0


def test_a_part_that_encodes_to_nothing_covers_nothing():
    conv = converter()
    ns = trio(16)
    # A bass whose notes all lie below the piano range encodes to nothing.
    low = replace(ns, pitch=np.where(ns.program == 33, 12, ns.pitch))
    assert conv.to_tensors(low).outputs == []
    # Other programs play no part and change nothing.
    extra = trio(16)
    strings = replace(
        extra,
        pitch=np.concatenate([extra.pitch, [60]]),
        velocity=np.concatenate([extra.velocity, [90]]),
        start=np.concatenate([extra.start, [0.0]]),
        end=np.concatenate([extra.end, [1.0]]),
        program=np.concatenate([extra.program, [48]]),
        is_drum=np.concatenate([extra.is_drum, [False]]),
    )
    assert np.array_equal(conv.to_tensors(strings).outputs[0], conv.to_tensors(ns).outputs[0])


def test_a_melody_held_to_a_bar_line_gets_its_note_off_there():
    conv = converter()
    # The melody's last note holds to the end of bar 13; the piece runs 16 bars.
    ns = trio(16, melody=range(14))
    melody_notes = np.flatnonzero(~ns.is_drum & (ns.program == 0))
    last = int(melody_notes[ns.start[melody_notes].argmax()])
    ns.end[last] = 14 * 16 * STEP
    melody = part_classes(conv.to_tensors(ns).outputs[0])[:, 0]
    assert melody[14 * 16 - 1] == 0  # held to the bar line
    assert melody[14 * 16] == 1 and (melody[14 * 16 + 1 :] == 0).all()  # then ended


def test_a_window_may_start_with_a_note_off():
    """Windows are slices of the parts' one-hots, not of note_seq melodies, so the note-off
    of a note held to the window's first bar line stays (a melody window would drop it)."""
    conv = converter(max_tensors_per_notesequence=None)
    ns = trio(17)
    first = ~ns.is_drum & (ns.program == 0)
    ns.end[first & (ns.start == 12 * STEP)] = 16 * STEP  # bar 0's last note ends at bar 1
    ns.start[first & (ns.start == 16 * STEP)] = 17 * STEP  # and bar 1's first comes later
    windows = conv.to_tensors(ns).outputs
    assert len(windows) == 2
    assert part_classes(windows[1])[0, 0] == 1


def test_other_time_signatures_give_nothing():
    ns = trio(16)
    three = replace(ns, time_signatures=[TimeSignature(0.0, 3, 4)])
    assert converter().to_tensors(three).outputs == []


# ------------------------------------------------------------------ configs


def test_the_three_configs_share_the_converter_settings(trios):
    datas = {CONFIGS[n].data for n in TRIO_CONFIGS}
    assert len(datas) == 1
    (data,) = datas
    assert (data.split_bars, data.steps_per_quarter, data.quarters_per_bar) == (16, 4, 4)
    assert (data.gap_bars, data.max_tensors_per_notesequence, data.windowing) == (2, 5, "file")
    first = [converter(n).to_tensors(trios[1]).outputs for n in TRIO_CONFIGS]
    assert all(np.array_equal(np.stack(f), np.stack(first[0])) for f in first)
    conv = converter()
    assert conv.input_depth == conv.output_depth == len(conv.class_names) == 692
    assert conv.control_depth == 0 and conv.window_steps == 256
    assert conv.class_names[:3] == ("melody no_event", "melody note_off", "melody A0")
    assert conv.class_names[90:92] == ("bass no_event", "bass note_off")
    assert conv.class_names[180] == "drums silence" and conv.class_names[-1].startswith("drums ")


MAGENTA = {
    "flat-trio_16bar": dict(enc_rnn_size=(2048, 2048), dec_rnn_size=(2048, 2048, 2048),
                            free_bits=0.0, max_beta=1.0),
    "hierdec-trio_16bar": dict(enc_rnn_size=(2048, 2048), dec_rnn_size=(1024, 1024),
                               free_bits=256.0, max_beta=0.2),
    "hier-trio_16bar": dict(enc_rnn_size=(1024,), dec_rnn_size=(1024, 1024), free_bits=256.0,
                            max_beta=0.2),
}  # fmt: skip


@pytest.mark.parametrize("name", TRIO_CONFIGS)
def test_magentas_trio_hparams(name):
    config = get_config(name)
    hp = config.hparams
    for key, value in MAGENTA[name].items():
        assert getattr(hp, key) == value, key
    assert (hp.batch_size, hp.max_seq_len, hp.z_size) == (256, 256, 512)
    assert (hp.dropout_keep_prob, hp.beta_rate, hp.sampling_schedule) == (1.0, 0.0, "constant")
    assert config.converter == "trio" and family_name(config) == "trio"
    if name == "flat-trio_16bar":
        assert config.decoder == "multi_out_categorical"
    else:
        assert (config.decoder, config.core_decoder) == ("hierarchical", "split_multi_out")
        assert config.level_lengths == (16, 16)
    assert (config.encoder == "hierarchical_lstm") == name.startswith("hier-")
    assert (config.encoder_level_lengths == (16, 16)) == name.startswith("hier-")


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        ("flat-trio_16bar", "valid_programs=[0]", "trio converter does not read valid_programs"),
        ("flat-trio_16bar", "roll_output=true", "trio converter does not read roll_output"),
        ("cat-mel_2bar_small", "gap_bars=3", "melody converter does not read gap_bars"),
        (
            "flat-trio_16bar",
            "decoder=categorical_lstm",
            "'categorical_lstm' does not read the trio",
        ),
        ("hier-trio_16bar", "core_decoder=categorical_lstm", "does not read the trio"),
        ("cat-mel_2bar_small", "decoder=multi_out_categorical", "does not read the melody"),
    ],
)
def test_what_the_trio_does_not_read_is_refused(name, override, message):
    with pytest.raises(ConfigError, match=message):
        get_config(name, override)
