"""The one-hot melody converter against Magenta's own outputs, and on melodies built in code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicvae.configs import DataConfig
from musicvae.data.converters import CONVERTERS
from musicvae.data.converters.melody import (
    NO_EVENT,
    NOTE_OFF,
    MelodyConverter,
    split_on_time_changes,
)
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature

STEP = 0.125  # seconds per 16th note at 120 qpm
MEL_PROGRAMS = tuple(range(32))  # the 2-bar configs' programs, Magenta's MEL_PROGRAMS
N_FILES = 24


def converter(
    split_bars=2, cap=5, mode="eval", valid_programs=MEL_PROGRAMS, **kwargs
) -> MelodyConverter:
    data = DataConfig(
        split_bars=split_bars, max_tensors_per_notesequence=cap, valid_programs=valid_programs
    )
    return MelodyConverter(data, mode=mode, **kwargs)


def melody(notes, *, qpm=120.0, time_signature=(4, 4), program=0, **kwargs) -> NoteSequence:
    """A non-drum sequence from (pitch, start step, end step) at 16th notes."""
    step = 60.0 / qpm / 4
    rows = [(p, 90, s * step, e * step) for p, s, e in notes]
    ns = NoteSequence.from_notes(rows, qpm=qpm, time_signature=time_signature, is_drum=False)
    ns.program[:] = program
    for key, value in kwargs.items():
        setattr(ns, key, value)
    return ns


def events(c: MelodyConverter, onehot: np.ndarray) -> list[int]:
    """One-hot steps back to note_seq melody events (-2 hold, -1 off, pitches)."""
    classes = np.asarray(onehot).argmax(-1)
    return [int(k) - 2 if k < 2 else int(k) - 2 + c.min_pitch for k in classes]


# ------------------------------------------------------------------ Magenta's outputs


@pytest.fixture(scope="module")
def melody_dir(magenta_dir):
    d = magenta_dir / "melody"
    if not (d / "README.md").exists():
        pytest.skip("Magenta melody reference data is not at ../shared/data/magenta/melody")
    return d


@pytest.fixture(scope="module")
def folk(melody_dir):
    return [read_midi(melody_dir / "melodies" / f"{i:02d}.mid") for i in range(N_FILES)]


# (reference file, our converter): cat-mel_2bar_small's converter, the same with no cap, and
# hierdec-mel_16bar's (16-bar slices, every program).
REFERENCES = {
    "cat-mel_2bar_small": dict(split_bars=2, cap=5),
    "cat-mel_2bar_small_all_windows": dict(split_bars=2, cap=None),
    "hierdec-mel_16bar": dict(split_bars=16, cap=5, valid_programs=None),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_to_tensors_matches_magenta(name, melody_dir, folk):
    """Every window of all 24 tunes, bit for bit and in Magenta's order (its set order)."""
    ref = np.load(melody_dir / f"{name}.npz")
    conv = converter(**REFERENCES[name])
    total = 0
    for i, ns in enumerate(folk):
        t = conv.to_tensors(ns)
        key = f"{i:02d}"
        if f"{key}_outputs" not in ref:
            assert len(t) == 0, f"file {key}: Magenta gives no windows"
            continue
        expected = ref[f"{key}_outputs"]
        outputs = np.stack(t.outputs)
        assert outputs.dtype == np.float32 and set(np.unique(outputs)) <= {0.0, 1.0}
        assert outputs.shape == expected.shape, f"file {key}"
        assert np.array_equal(outputs.astype(bool), expected), f"file {key}"
        assert np.array_equal(np.stack(t.inputs).astype(bool), ref[f"{key}_inputs"])
        assert t.lengths == ref[f"{key}_lengths"].tolist()
        assert all(c.shape == (expected.shape[1], 0) for c in t.controls)
        total += len(t)
    assert total == sum(len(ref[k]) for k in ref.files if k.endswith("_outputs"))


def test_from_tensors_matches_magenta(melody_dir):
    ref = np.load(melody_dir / "cat-mel_2bar_small.npz")
    expected = json.loads((melody_dir / "from_tensors_roundtrip.json").read_text())
    conv = converter()
    for w in expected["windows"]:
        window = ref[f"{w['file']:02d}_outputs"][w["window"]]
        assert window.argmax(-1).tolist() == w["argmax_classes"]
        (ns,) = conv.from_tensors(window.astype(np.float32))
        notes = [
            {
                "pitch": n.pitch,
                "velocity": n.velocity,
                "start_time": n.start,
                "end_time": n.end,
                "instrument": 0,
                "program": n.program,
                "is_drum": n.is_drum,
            }
            for n in ns
        ]
        assert notes == w["notes"]
        assert ns.total_time == w["total_time"]
        assert [t.qpm for t in ns.tempos] == w["tempos_qpm"]


def test_the_cap_keeps_a_prefix_of_the_set_order(melody_dir, folk):
    capped, every = converter(cap=5), converter(cap=None)
    for ns in folk[:6]:
        assert np.array_equal(
            np.stack(capped.to_tensors(ns).outputs), np.stack(every.to_tensors(ns).outputs)[:5]
        )


# ------------------------------------------------------------------ built in code


def test_registered_and_sized():
    conv = CONVERTERS["melody"](DataConfig(split_bars=2), mode="infer")
    assert isinstance(conv, MelodyConverter)
    assert conv.input_depth == conv.output_depth == 90 and conv.control_depth == 0
    assert conv.window_steps == 32 and conv.steps_per_bar == 16
    assert conv.class_names[:3] == ("no_event", "note_off", "A0")
    assert conv.class_names[-1] == "C8" and conv.class_names[2 + 60 - 21] == "C4"
    assert not conv.is_random


def test_round_trip_of_a_two_bar_melody():
    notes = [(60, 0, 4), (62, 4, 6), (64, 8, 16), (65, 20, 24), (67, 24, 32)]
    conv = converter()
    t = conv.to_tensors(melody(notes))
    assert len(t) == 1 and t.lengths == [32]
    (ns,) = conv.from_tensors(t.outputs[0])
    assert [(n.pitch, n.start / STEP, n.end / STEP) for n in ns] == [(p, s, e) for p, s, e in notes]
    assert set(ns.velocity) == {80} and not ns.is_drum.any() and set(ns.program) == {0}


def test_events_hold_off_and_pitch_classes():
    conv = converter(split_bars=1)
    (w,) = conv.to_tensors(melody([(21, 0, 2), (108, 4, 8), (60, 8, 16)])).outputs
    classes = w.argmax(-1).tolist()
    assert classes[:9] == [2, 0, 1, 0, 89, 0, 0, 0, 2 + 60 - 21]
    assert classes[9:] == [0] * 7  # the last note ends on the bar line: it sounds to the end


def test_padding_to_the_bar_puts_the_note_off_back():
    conv = converter(split_bars=1)
    (w,) = conv.to_tensors(melody([(60, 0, 4), (62, 4, 10)])).outputs
    assert events(conv, w) == [60, -2, -2, -2, 62] + [-2] * 5 + [NOTE_OFF] + [NO_EVENT] * 5


def test_highest_simultaneous_onset_wins_and_overlaps_are_cut():
    conv = converter(split_bars=1)
    (w,) = conv.to_tensors(melody([(60, 0, 8), (67, 0, 4), (64, 2, 6)])).outputs
    assert events(conv, w)[:7] == [67, -2, 64, -2, -2, -2, NOTE_OFF]


def test_a_bar_of_silence_ends_a_melody_and_melodies_start_on_their_bar():
    conv = converter(split_bars=1, cap=None)
    ns = melody([(60, 2, 4), (62, 36, 40)])  # a note in bar 0, then silence until bar 2
    assert conv.melodies(ns) == [
        [[-2, -2, 60, -2, NOTE_OFF] + [-2] * 11, [-2] * 4 + [62, -2, -2, -2, NOTE_OFF] + [-2] * 7]
    ]
    assert len(converter(split_bars=2).to_tensors(ns)) == 0  # each melody is one bar long


def test_slices_hop_one_bar_and_lose_leading_note_offs():
    conv = converter(split_bars=1, cap=None)
    ns = melody([(60, 0, 14), (62, 16, 20), (64, 22, 30), (65, 32, 48)])
    windows = sorted(events(conv, w) for w in conv.to_tensors(ns).outputs)
    first = [60] + [-2] * 13 + [NOTE_OFF, -2]
    second = [62, -2, -2, -2, NOTE_OFF, -2, 64] + [-2] * 7 + [NOTE_OFF, -2]
    third = [65] + [-2] * 15
    assert windows == sorted([first, second, third])
    # A window starting on a note-off stores it as NO_EVENT (a note_seq Melody's cleaning).
    late = conv.windows([NOTE_OFF, -2, 60, -2] * 4)
    assert late[0][:3] == [NO_EVENT, NO_EVENT, 60]


def test_duplicate_windows_are_kept_once():
    bar = [(60, 0, 4), (64, 4, 8), (67, 8, 12), (72, 12, 16)]
    ns = melody([(p, s + 16 * b, e + 16 * b) for b in range(4) for p, s, e in bar])
    # Each bar's last note is held into the next bar's first: every bar is the same window.
    assert len(converter(split_bars=1, cap=None).to_tensors(ns)) == 1
    ns.end[-1] -= STEP  # a note-off in the last bar makes it a second window
    assert len(converter(split_bars=1, cap=None).to_tensors(ns)) == 2


def test_notes_that_do_not_count():
    conv = converter(split_bars=1)
    ns = melody([(60, 0, 4), (64, 4, 8), (20, 8, 12), (109, 12, 16)])
    ns.program[1] = 40  # strings: not one of Magenta's melody programs
    (w,) = conv.to_tensors(ns).outputs
    assert events(conv, w)[:5] == [60, -2, -2, -2, NOTE_OFF]
    # Every program counts without the filter; each program is its own melody line.
    lines = converter(split_bars=1, valid_programs=None).melodies(ns)[0]
    assert [line[:5] for line in lines] == [[60, -2, -2, -2, NOTE_OFF], [-2] * 4 + [64]]
    drums = melody([(36, 0, 1), (38, 4, 5)])
    drums.is_drum[:] = True
    assert len(conv.to_tensors(drums)) == 0


def test_bars_that_are_not_sixteen_steps_give_nothing():
    notes = [(60, 0, 4), (62, 4, 8), (64, 8, 12)]
    assert len(converter(split_bars=1).to_tensors(melody(notes, time_signature=(3, 4)))) == 0
    assert len(converter(split_bars=1).to_tensors(melody(notes, time_signature=(2, 2)))) == 1


def test_a_tempo_change_splits_the_sequence():
    ns = melody([(60, 0, 16), (62, 16, 32)])
    ns.tempos = [Tempo(0.0, 120.0), Tempo(2.0, 120.0), Tempo(2.0, 60.0)]
    pieces = split_on_time_changes(ns)
    assert [(len(p), qpm, num, den) for p, qpm, num, den in pieces] == [
        (1, 120.0, 4, 4),
        (1, 60.0, 4, 4),
    ]
    assert pieces[1][0].start.tolist() == [0.0]
    # At 60 qpm the second note (2 s) is 8 steps: both pieces give a one-bar melody.
    t = converter(split_bars=1, cap=None).to_tensors(ns)
    assert sorted(events(converter(), w)[:9] for w in t.outputs) == [
        [60] + [-2] * 8,
        [62] + [-2] * 7 + [NOTE_OFF],
    ]
    ns.time_signatures = [TimeSignature(0.0, 4, 4), TimeSignature(2.0, 3, 4)]
    ns.tempos = []
    assert len(converter(split_bars=1).to_tensors(ns)) == 1  # the 3/4 piece gives nothing


def test_long_melodies_are_truncated_before_slicing():
    ns = melody([(60 + b % 12, 16 * b, 16 * b + 8) for b in range(6)])
    every = converter(split_bars=1, cap=None, max_bars=2)
    assert [len(m) for m in every.melodies(ns)[0]] == [32]


def test_train_mode_draws_a_repeatable_subset():
    ns = melody([(60 + b, 16 * b + s, 16 * b + s + 2) for b in range(12) for s in (0, 4, 8)])
    every = converter(split_bars=1, cap=None).to_tensors(ns).outputs
    train = converter(split_bars=1, cap=3, mode="train")
    drawn = train.to_tensors(ns).outputs
    assert len(every) == 12 and len(drawn) == 3
    assert all(any(np.array_equal(d, e) for e in every) for d in drawn)
    again = train.to_tensors(ns).outputs
    assert all(np.array_equal(a, b) for a, b in zip(drawn, again, strict=True))
    other = train.to_tensors(ns, np.random.default_rng(1)).outputs
    assert len(other) == 3
    first = converter(split_bars=1, cap=3).to_tensors(ns).outputs
    assert all(np.array_equal(a, b) for a, b in zip(first, every[:3], strict=True))


def test_sequence_grid_is_the_whole_melody_from_step_zero():
    conv = converter()
    ns = melody([(60, 20, 24), (62, 40, 44), (64, 80, 84)])  # gaps of more than a bar
    t = conv.sequence_grid(ns)
    assert t.lengths == [96]
    ev = events(conv, t.outputs[0])
    assert ev[20] == 60 and ev[40] == 62 and ev[80] == 64 and ev[:20] == [NO_EVENT] * 20
    assert len(conv.sequence_grid(melody([(60, 0, 4)], time_signature=(3, 4)))) == 0
    assert len(conv.sequence_grid(NoteSequence())) == 0


def test_from_tensors_shapes_and_tempo():
    conv = converter()
    batch = np.zeros((2, 32, 90), np.float32)
    batch[:, :, 0] = 1.0
    batch[0, 0] = np.eye(90)[2 + 69 - 21]
    out = conv.from_tensors(batch, qpm=60.0)
    assert len(out) == 2 and len(out[1]) == 0
    assert [n[:4] for n in out[0].notes] == [(69, 80, 0.0, 8.0)] and out[0].qpm == 60.0
    with pytest.raises(ValueError, match="outputs must be"):
        conv.from_tensors(np.zeros((32, 27)))


def test_drum_options_are_refused():
    with pytest.raises(ValueError, match="drum options"):
        MelodyConverter(DataConfig(split_bars=2, humanize=True))
    with pytest.raises(ValueError, match="one bar at a time"):
        MelodyConverter(DataConfig(split_bars=2, hop_size=16))
    with pytest.raises(ValueError, match="converter mode"):
        MelodyConverter(DataConfig(split_bars=2), mode="sample")
