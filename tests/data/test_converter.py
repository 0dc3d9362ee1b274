"""GrooveConverter: hand-computed grids, every option, windowing, round trips, Magenta's outputs."""

from __future__ import annotations

import collections
import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from musicvae.configs import DataConfig, get_config
from musicvae.data.converters.groove import (
    ConverterTensors,
    GrooveConverter,
    drum_pitch_class,
    tensors_to_midi,
)
from musicvae.data.midi import read_midi, write_midi
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.data.windows import bar_length
from tests.data.helpers import (
    assert_magenta_windows,
    magenta_gmd_files,
    magenta_note_dicts,
    note_dicts,
)

STEP = 0.125  # seconds per 16th note at 120 qpm

# (pitch, velocity, start, end) at 120 qpm; the 37 loses to the louder 38 in step 4.
GROOVE = [
    (36, 100, 0.0, 0.1),  # step 0, kick, on the grid
    (42, 80, 0.01, 0.1),  # step 0, closed hh, 0.01 s late
    (38, 64, 0.51, 0.6),  # step 4, snare, 0.01 s late
    (37, 50, 0.49, 0.6),  # step 4, snare class, quieter
    (46, 90, 0.74, 0.8),  # step 6, open hh, 0.01 s early
    (51, 127, 7.5, 7.6),  # step 60, ride: the last bar has an onset
]
LATE = -0.16  # 2 * (grid - onset) / step = 2 * -0.01 / 0.125
EARLY = 0.16


def expected_grid() -> np.ndarray:
    g = np.zeros((64, 27))
    for step, cls, vel, off in [
        (0, 0, 100, 0.0),
        (0, 2, 80, LATE),
        (4, 1, 64, LATE),
        (6, 3, 90, EARLY),
        (60, 8, 127, 0.0),
    ]:
        g[step, cls], g[step, 9 + cls], g[step, 18 + cls] = 1.0, vel / 127, off
    return g


def groove(notes=GROOVE, **kwargs) -> NoteSequence:
    return NoteSequence.from_notes(notes, **kwargs)


def convert(ns: NoteSequence, **options) -> ConverterTensors:
    return GrooveConverter(DataConfig(windowing="file", **options)).to_tensors(ns)


# ---------------------------------------------------------------- layout


def test_depths_and_window_shape():
    conv = GrooveConverter(get_config("groovae_4bar").data)
    assert (conv.input_depth, conv.output_depth, conv.control_depth) == (27, 27, 0)
    assert conv.window_steps == 64
    t = conv.to_tensors(groove())
    assert len(t) == 1 and t.lengths == [64]
    assert t.inputs[0].shape == t.outputs[0].shape == (64, 27)
    assert t.controls[0].shape == (64, 0)
    assert t.outputs[0].dtype == np.float32
    assert GrooveConverter(get_config("groovae_2bar_humanize").data).window_steps == 32


def test_pitch_class_map_for_every_gm_drum_pitch():
    roland = {36: 0, 38: 1, 37: 1, 40: 1, 42: 2, 22: 2, 44: 2, 46: 3, 26: 3, 43: 4, 58: 4}
    roland |= {47: 5, 45: 5, 50: 6, 48: 6, 49: 7, 52: 7, 55: 7, 57: 7, 51: 8, 53: 8, 59: 8}
    for pitch in range(35, 82):
        assert drum_pitch_class(pitch) == roland.get(pitch), pitch
    assert drum_pitch_class(22) == 2 and drum_pitch_class(26) == 3
    assert drum_pitch_class(-1) is None and drum_pitch_class(200) is None


def test_hand_computed_grid():
    t = convert(groove())
    np.testing.assert_allclose(t.outputs[0], expected_grid(), atol=1e-6)
    np.testing.assert_array_equal(t.inputs[0], t.outputs[0])


def test_loudest_wins_and_first_wins_ties():
    notes = [(38, 70, 0.50, 0.6), (40, 70, 0.52, 0.6), (37, 20, 0.5, 0.6)]
    g = convert(groove(notes + [(36, 90, 7.0, 7.1)])).outputs[0]
    # 38 and 40 tie at velocity 70: the earlier one (offset 0) is kept.
    assert (g[4, 1], g[4, 10], g[4, 19]) == (1.0, np.float32(70 / 127), 0.0)


def test_offsets_span_half_a_step_each_way():
    notes = [(36, 100, 1.0 - STEP / 2, 1.1), (38, 100, 1.5 + STEP * 0.499, 1.6), (51, 9, 7.5, 7.6)]
    g = convert(groove(notes)).outputs[0]
    # Exactly half a step early rounds to the later step: offset +1 (played ahead).
    assert g[8, 0] == 1 and g[8, 18] == pytest.approx(1.0)
    assert g[12, 1] == 1 and g[12, 19] == pytest.approx(-0.998)


def test_unknown_pitches_are_skipped():
    g = convert(groove(GROOVE + [(35, 127, 1.0, 1.1), (81, 127, 2.0, 2.1)])).outputs[0]
    np.testing.assert_allclose(g, expected_grid(), atol=1e-6)


def test_infer_mode_uses_the_general_midi_map():
    notes = [(45, 100, 0.0, 0.1), (48, 100, 0.5, 0.6), (35, 100, 1.0, 1.1), (51, 1, 7.5, 7.6)]
    train = convert(groove(notes)).outputs[0]
    infer = GrooveConverter(DataConfig(windowing="file"), mode="infer").to_tensors(groove(notes))
    assert train[0, 5] == 1 and train[4, 6] == 1 and train[8, :9].sum() == 0
    assert (
        infer.outputs[0][0, 4] == 1 and infer.outputs[0][4, 5] == 1 and infer.outputs[0][8, 0] == 1
    )


# ---------------------------------------------------------------- sequences Magenta rejects


@pytest.mark.parametrize(
    "ns",
    [
        groove(time_signature=(3, 4)),
        groove(time_signature=(6, 8)),
        NoteSequence.from_notes([(36, 100, 0.0, 0.1), (51, 100, 5.0, 5.1)]),  # only 3 bars
        groove([(36, 100, -0.2, 0.1), *GROOVE]),  # negative time
        NoteSequence(),
    ],
    ids=["3/4", "6/8", "short", "negative", "empty"],
)
def test_no_windows(ns):
    assert len(convert(ns)) == 0


def test_tempo_and_signature_changes_give_no_windows():
    ns = groove()
    ns.tempos.append(Tempo(4.0, 100.0))
    assert len(convert(ns)) == 0
    ns = groove()
    ns.tempos.append(Tempo(4.0, 120.0))  # a repeated tempo is no change
    assert len(convert(ns)) == 1
    ns = groove()
    ns.time_signatures.append(TimeSignature(4.0, 3, 4))
    assert len(convert(ns)) == 0
    ns = groove()
    ns.tempos = [Tempo(1.0, 100.0)]  # an implicit change from MIDI's 120 qpm
    assert len(convert(ns)) == 0


def test_two_two_is_sixteen_steps_per_bar_too():
    assert len(convert(groove(time_signature=(2, 2)))) == 1


def test_other_tempo_changes_the_step():
    ns = groove([(36, 100, 0.0, 0.1), (38, 80, 0.3, 0.4), (51, 80, 9.0, 9.1)], qpm=100.0)
    g = convert(ns).outputs[0]  # step = 0.15 s: 0.3 s is step 2, 9.0 s is step 60
    assert g[2, 1] == 1 and g[60, 8] == 1 and g[2, 19] == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------- options


def test_humanize():
    t = convert(groove(), humanize=True)
    want = expected_grid()
    want[:, 9:] = 0
    np.testing.assert_allclose(t.inputs[0], want, atol=1e-6)
    np.testing.assert_allclose(t.outputs[0], expected_grid(), atol=1e-6)


@pytest.mark.parametrize("fixed", [False, True])
def test_tapify(fixed):
    t = convert(groove(), tapify=True, fixed_velocities=fixed)
    want = np.zeros((64, 27))
    # The loudest class per step goes to channel 3 (open hi-hat).
    for step, vel, off in [(0, 100, 0.0), (4, 64, LATE), (6, 90, EARLY), (60, 127, 0.0)]:
        want[step, 3], want[step, 12], want[step, 21] = 1, 0 if fixed else vel / 127, off
    np.testing.assert_allclose(t.inputs[0], want, atol=1e-6)
    np.testing.assert_allclose(t.outputs[0], expected_grid(), atol=1e-6)


def test_fixed_velocities():
    t = convert(groove(), fixed_velocities=True)
    want = expected_grid()
    want[:, 9:18] = 0
    np.testing.assert_allclose(t.inputs[0], want, atol=1e-6)


def test_add_instruments_removes_classes_from_inputs_only():
    t = convert(groove(), add_instruments=(2, 3))
    want = expected_grid()
    want[:, [2, 3, 11, 12, 20, 21]] = 0
    np.testing.assert_allclose(t.inputs[0], want, atol=1e-6)
    np.testing.assert_allclose(t.outputs[0], expected_grid(), atol=1e-6)


def test_hits_as_controls():
    conv = GrooveConverter(DataConfig(windowing="file", hits_as_controls=True))
    assert conv.control_depth == 9
    t = conv.to_tensors(groove())
    assert t.controls[0].shape == (64, 9)
    np.testing.assert_array_equal(t.controls[0], expected_grid()[:, :9])


def test_taps_as_controls_say_where_the_taps_are_and_the_next_one():
    conv = GrooveConverter(DataConfig(windowing="file", tapify=True, taps_as_controls=True))
    assert conv.control_depth == 3
    c = conv.to_tensors(groove()).controls[0]
    assert c.shape == (64, 3)
    want = np.zeros((64, 3), np.float32)
    want[[0, 4, 6, 60], 0] = 1.0  # tapped steps (step 0's loudest hit is the kick, on the grid)
    want[4, 1], want[6, 1] = LATE, EARLY  # the loudest hit's offset at each tapped step
    want[[3, 5, 59], 2] = 1.0  # the next step is tapped
    np.testing.assert_allclose(c, want, atol=1e-6)
    # A registered tap-controls config reads the same controls through its whole pipeline.
    registered = GrooveConverter(get_config("groovae_2bar_tap_controls").data)
    two_bars = groove([n for n in GROOVE if n[2] < 4.0] + [(36, 90, 2.0, 2.1)])
    t = registered.to_tensors(two_bars)
    assert t.controls[0].shape == (32, 3)
    np.testing.assert_array_equal(t.controls[0][:, 0], t.inputs[0][:, 3])


def test_taps_as_controls_need_taps():
    with pytest.raises(ValueError, match="needs tapify"):
        DataConfig(taps_as_controls=True)
    with pytest.raises(ValueError, match="exclude each other"):
        DataConfig(tapify=True, taps_as_controls=True, hits_as_controls=True)
    with pytest.raises(ValueError, match="note dropout"):
        DataConfig(tapify=True, taps_as_controls=True, max_note_dropout_probability=0.5)


def test_note_dropout_touches_inputs_only_and_follows_the_rng():
    many = [(36 if i % 2 else 42, 10 + i, i * STEP, i * STEP + 0.05) for i in range(64)]
    conv = GrooveConverter(DataConfig(windowing="file", max_note_dropout_probability=1.0))
    assert conv.is_random and not GrooveConverter(DataConfig()).is_random
    a = conv.to_tensors(groove(many), np.random.default_rng(3))
    b = conv.to_tensors(groove(many), np.random.default_rng(3))
    np.testing.assert_array_equal(a.inputs[0], b.inputs[0])
    out, inp = a.outputs[0], a.inputs[0]
    kept = inp[:, :9] == 1
    dropped = (out[:, :9] == 1) & ~kept
    assert dropped.any() and kept.any()
    np.testing.assert_array_equal(inp[:, 9:18][kept], out[:, 9:18][kept])
    assert not inp[:, 9:18][dropped].any() and not inp[:, 18:][dropped].any()
    assert out[:, :9].sum() == 64  # targets are untouched


def test_velocity_dropout_clears_whole_windows_in_training_only():
    data = DataConfig(windowing="file", tapify=True, velocity_dropout_probability=0.5)
    conv = GrooveConverter(data)
    assert conv.is_random and not GrooveConverter(data, mode="eval").is_random
    hits = np.zeros((400, 32, 9))
    hits[:, ::4, 0] = 1.0
    vel, off = hits * 0.7, hits * 0.1
    _, in_vel, in_off = conv.transform_inputs(hits, vel, off, np.random.default_rng(5))
    played = in_vel[..., 3].sum(-1)
    # A window keeps all its tapped velocities or none of them, about half and half.
    assert set(np.round(played, 6)) == {0.0, round(8 * 0.7, 6)}
    assert 160 < (played == 0).sum() < 240
    np.testing.assert_allclose(in_off[..., 3], off[..., 0])  # timing is always kept
    again = conv.transform_inputs(hits, vel, off, np.random.default_rng(5))[1]
    np.testing.assert_array_equal(in_vel, again)
    # Evaluation and inference read the taps as played.
    for mode in ("eval", "infer"):
        kept = GrooveConverter(data, mode=mode).transform_inputs(hits, vel, off, None)[1]
        np.testing.assert_allclose(kept[..., 3], vel[..., 0])


def test_taps_of_one_velocity_read_as_fixed_velocity_taps():
    data = DataConfig(windowing="file", split_bars=2, tapify=True, velocity_dropout_probability=0.5)
    conv = GrooveConverter(data, mode="infer")
    flat = [(42, 90, i * STEP, i * STEP + 0.05) for i in range(0, 32, 2)]
    played = [(42, 40 + 5 * i, i * STEP, i * STEP + 0.05) for i in range(0, 32, 2)]
    inputs = conv.sequence_grid(groove(flat)).inputs[0]
    assert inputs[::2, 3].all() and not inputs[:, 9:18].any()
    inputs = conv.sequence_grid(groove(played)).inputs[0]
    np.testing.assert_allclose(inputs[::2, 12], [(40 + 5 * i) / 127 for i in range(0, 32, 2)])
    # Without velocity dropout a model never saw velocities of 0, so they stay as played.
    magenta = GrooveConverter(replace(data, velocity_dropout_probability=None), mode="infer")
    np.testing.assert_allclose(magenta.sequence_grid(groove(flat)).inputs[0][::2, 12], 90 / 127)


def test_bad_options():
    with pytest.raises(ValueError, match="hop_size"):
        GrooveConverter(DataConfig(split_bars=None, hop_size=16))
    with pytest.raises(ValueError, match="mode"):
        GrooveConverter(DataConfig(), mode="sample")
    with pytest.raises(ValueError, match="windowing"):
        GrooveConverter(DataConfig(windowing="beats"))
    with pytest.raises(ValueError, match="add_instruments"):
        GrooveConverter(DataConfig(add_instruments=(9,)))


# ---------------------------------------------------------------- windowing


def nine_bars() -> NoteSequence:
    return groove([(36, 100, bar * 2.0, bar * 2.0 + 0.1) for bar in range(9)])


def test_file_windows_hop_and_trailing_window():
    # 9 bars padded to 144 steps: windows at 0 and 64, the rest dropped; every window is kept
    # (Magenta's GrooveConverter ignores max_tensors_per_notesequence).
    assert convert(nine_bars()).lengths == [64, 64]
    t = convert(nine_bars(), hop_size=16, max_tensors_per_notesequence=2)
    assert len(t) == 6
    assert [int(w[:, 0].sum()) for w in t.outputs] == [4, 4, 4, 4, 4, 4]
    whole = convert(nine_bars(), split_bars=None)
    assert whole.lengths == [144] and whole.outputs[0][128, 0] == 1


def test_bar_windows_slide_one_bar():
    # Bar = 60 / 120 * 4 = 2 s. A note on every bar start for 0..4, none in bar 5, one at 10 s.
    notes = [(36, 100, b * 2.0, b * 2.0 + 0.1) for b in (0, 1, 2, 3, 4, 5)]
    notes += [(38, 90, 7.9, 8.2)]  # crosses the end of window 0: only in windows from bar 1 on
    ns = groove(notes)
    conv = GrooveConverter(DataConfig(windowing="bars"))
    t = conv.examples(ns)
    # end 10.1 s -> round(5.05) = 5 bars -> windows starting at bars 0 and 1.
    assert t.lengths == [64, 64]
    w0, w1 = t.outputs
    assert w0[:, 0].nonzero()[0].tolist() == [0, 16, 32, 48] and w0[:, 1].sum() == 0
    assert w1[:, 0].nonzero()[0].tolist() == [0, 16, 32, 48] and w1[47, 1] == 1
    assert w1[47, 19] == pytest.approx(2 * (47 * STEP - 5.9) / STEP)
    # Without the note at 8 s the second window has no onset in its last bar: dropped.
    ns = groove([n for n in notes if n[2] != 8.0] + [(51, 10, 9.0, 10.1)])
    assert len(conv.examples(ns)) == 1


def test_bar_windows_take_bpm_and_meter_from_metadata():
    ns = groove([(36, 100, b * 2.0, b * 2.0 + 0.1) for b in range(8)])  # 120 qpm, ends at 14.1 s
    conv = GrooveConverter(DataConfig(windowing="bars"))
    assert bar_length(ns) == 2.0 and len(conv.examples(ns)) == 4  # round(7.05) = 7 bars
    ns.meta.update(bpm="60", time_signature="4-4")  # TFDS: 4 s bars -> round(3.5) = 4 bars
    assert bar_length(ns) == 4.0
    (window,) = conv.examples(ns).outputs  # still quantised at the file's 120 qpm
    assert window[:, 0].nonzero()[0].tolist() == [0, 16, 32, 48]
    ns.meta.update(bpm="100", time_signature="3-4")
    assert bar_length(ns) == pytest.approx(1.8)


def test_bar_windows_reject_non_four_four():
    ns = groove([(36, 100, b * 1.5, b * 1.5 + 0.1) for b in range(8)], time_signature=(3, 4))
    assert len(GrooveConverter(DataConfig(windowing="bars")).examples(ns)) == 0


# ---------------------------------------------------------------- from tensors


def test_from_tensors_by_hand():
    out = np.zeros((2, 4, 27), np.float32)
    out[0, 1, 0], out[0, 1, 9], out[0, 1, 18] = 0.9, 0.5, 0.4  # kick, round(63.5) = 64
    out[0, 3, 4], out[0, 3, 13], out[0, 3, 22] = 0.6, 1.2, -3.0  # low tom, clipped
    out[0, 3, 1], out[0, 3, 10] = 0.5, 0.3  # 0.5 is not a hit
    conv = GrooveConverter(DataConfig())
    a, b = conv.from_tensors(out)
    assert len(b) == 0 and a.qpm == 120.0 and a.is_drum.all()
    assert [n[:2] for n in a.notes] == [(36, 64), (43, 127)]
    np.testing.assert_allclose(a.start, [(1 - 0.2) * STEP, (3 + 0.5) * STEP])
    np.testing.assert_allclose(a.end - a.start, [STEP, STEP])
    infer = GrooveConverter(DataConfig(), mode="infer").from_tensors(out[0], qpm=60.0)[0]
    assert infer.pitch.tolist() == [36, 45]
    np.testing.assert_allclose(infer.start, [0.8 * 0.25, 3.5 * 0.25])


def assert_tensors_close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(a[:, :9], b[:, :9])
    np.testing.assert_allclose(a[:, 9:18], b[:, 9:18], atol=1 / 127 + 1e-6)
    np.testing.assert_allclose(a[:, 18:], b[:, 18:], atol=1e-3)


def test_midi_round_trip_tiny(tmp_path):
    conv = GrooveConverter(DataConfig(windowing="file"))
    first = conv.to_tensors(read_midi(write_midi(groove(), tmp_path / "in.mid"))).outputs[0]
    np.testing.assert_allclose(first, expected_grid(), atol=1e-3)
    path = tensors_to_midi(first, tmp_path / "out.mid")
    second = conv.to_tensors(read_midi(path)).outputs[0]
    assert_tensors_close(second, first)


def test_tensors_to_midi_writes_windows_in_sequence(tmp_path):
    t = convert(nine_bars())
    path = tensors_to_midi(np.stack(t.outputs), tmp_path / "two.mid", qpm=120.0)
    ns = read_midi(path)
    np.testing.assert_allclose(ns.start, np.arange(8) * 2.0, atol=1e-4)


# ---------------------------------------------------------------- real data


def gmd_rows(groove_dir) -> list[dict[str, str]]:
    with open(groove_dir / "info.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_midi_round_trip_on_gmd_files(groove_dir, tmp_path):
    conv = GrooveConverter(DataConfig(windowing="file", split_bars=None))
    beats = [
        r for r in gmd_rows(groove_dir) if (r["time_signature"], r["beat_type"]) == ("4-4", "beat")
    ]
    rows = beats[::100]  # a spread of drummers and tempi
    for i, row in enumerate(rows):
        ns = read_midi(groove_dir / row["midi_filename"])
        first = conv.to_tensors(ns).outputs[0]
        path = tensors_to_midi(first, tmp_path / f"{i}.mid", qpm=ns.qpm)
        second = conv.to_tensors(read_midi(path)).outputs[0]
        assert second.shape == first.shape and first[:, :9].sum() > 100
        assert_tensors_close(second, first)


MAGENTA_CONFIGS = [
    "groovae_4bar",
    "groovae_2bar_humanize",
    "groovae_2bar_tap_fixed_velocity",
    "groovae_2bar_add_closed_hh",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", MAGENTA_CONFIGS)
def test_magenta_reference_tensors(name, magenta_dir, groove_dir):
    ref = np.load(magenta_dir / "converter" / f"{name}.npz")
    conv = GrooveConverter(replace(get_config(name).data, windowing="file"))
    for f in magenta_gmd_files(magenta_dir):
        t = conv.to_tensors(read_midi(groove_dir / f["midi_filename"]))
        assert len(t) == f["windows"][name]
        assert_magenta_windows(t, ref, f"{f['index']:02d}")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["train", "infer"])
def test_magenta_reference_from_tensors(mode, magenta_dir):
    ref = np.load(magenta_dir / "converter" / "groovae_4bar.npz")
    doc = json.loads((magenta_dir / "converter" / "from_tensors_roundtrip.json").read_text())
    conv = GrooveConverter(get_config("groovae_4bar").data, mode=mode)
    assert [list(c) for c in conv.pitch_classes] == doc[f"pitch_classes_{mode}_mode"]
    for w in doc["windows"]:
        window = ref[f"{w['file_index']:02d}_outputs"][w["window_index"]]
        (ns,) = conv.from_tensors(window, qpm=w[f"qpm_{mode}"])
        assert note_dicts(ns) == magenta_note_dicts(w[f"notes_mode_{mode}"])


@pytest.mark.slow
def test_gmd_example_counts(groove_dir):
    """The published split sizes: TFDS groove/{4,2}bar-midionly and Magenta's tfrecord route."""
    rows = gmd_rows(groove_dir)
    seqs = []
    for row in rows:
        ns = read_midi(groove_dir / row["midi_filename"])
        ns.meta.update(bpm=row["bpm"], time_signature=row["time_signature"], split=row["split"])
        seqs.append(ns)
    expected = {
        ("groovae_4bar", "bars"): [15591, 1929, 1901],
        ("groovae_2bar_humanize", "bars"): [16389, 2039, 2064],
        ("groovae_4bar", "file"): [4078, 504, 526],
        # 16-bar windows slid by one bar (the 16-bar configs, flat and hierarchical).
        ("groovae_16bar", "bars"): [12394, 1437, 1080],
        ("groovae_16bar_hierdec", "bars"): [12394, 1437, 1080],
    }
    for (name, windowing), want in expected.items():
        conv = GrooveConverter(replace(get_config(name).data, windowing=windowing))
        counts = collections.Counter()
        for ns in seqs:
            counts[ns.meta["split"]] += len(conv.examples(ns))
        assert [counts[s] for s in ("train", "validation", "test")] == want, (name, windowing)
