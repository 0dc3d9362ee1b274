"""The multi-instrument performance converter against Magenta's own outputs on the 12 trio files.

../shared/data/magenta/multiperf/README.md says how the tensors were made: Magenta's
MultiInstrumentPerformanceConverter of hier-multiperf_vel_1bar_med (= _big), in 'train' mode,
on ../shared/data/magenta/trio/midis/NN.mid, and what it did bar by bar (index.json).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from musicvae.configs import get_config
from musicvae.data.converters import build_converter
from musicvae.data.converters.multiperf import (
    NOTE_OFF,
    NOTE_ON,
    TIME_SHIFT,
    VELOCITY,
    MultiPerformanceConverter,
    Performance,
    set_length,
    split_performance,
    velocity_to_bin,
)
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence, Tempo
from musicvae.families import family_of

MED, BIG = "hier-multiperf_vel_1bar_med", "hier-multiperf_vel_1bar_big"
MED_CHORDS, BIG_CHORDS = f"{MED}_chords", f"{BIG}_chords"
FILES = [f"{i:02d}" for i in range(12)]
# Windows per file (README): one per bar Magenta keeps.
WINDOWS = [1, 20, 15, 10, 11, 0, 5, 2, 1, 5, 3, 0]
# With chords, file 02 loses 8 more bars to CoincidentChordsError (QUIRK chord times).
CHORD_WINDOWS = [1, 20, 7, 10, 11, 0, 5, 2, 1, 5, 3, 0]


def converter(name: str = MED, mode: str = "train", **changes) -> MultiPerformanceConverter:
    config = get_config(name)
    conv = build_converter(config, mode, data=replace(config.data, **changes))
    assert isinstance(conv, MultiPerformanceConverter)
    return conv


@pytest.fixture(scope="module")
def multiperf_dir(magenta_dir):
    d = magenta_dir / "multiperf"
    if not (d / "README.md").exists():
        pytest.skip(f"no Magenta multiperf fixtures at {d}")
    return d


@pytest.fixture(scope="module")
def trio(magenta_dir) -> dict[str, NoteSequence]:
    return {k: read_midi(magenta_dir / "trio" / "midis" / f"{k}.mid") for k in FILES}


@pytest.fixture(scope="module")
def index(multiperf_dir):
    return json.loads((multiperf_dir / "index.json").read_text())


@pytest.fixture(scope="module")
def windows(trio):
    conv = converter()
    return {k: conv.to_tensors(ns) for k, ns in trio.items()}


@pytest.fixture(scope="module")
def chord_windows(trio):
    conv = converter(MED_CHORDS)
    return {k: conv.to_tensors(ns) for k, ns in trio.items()}


def tokens_of(outputs: np.ndarray) -> np.ndarray:
    """The token fixtures' view: argmax of each row, -1 for an all-zero row."""
    return np.where(outputs.any(-1), outputs.argmax(-1), -1)


# ------------------------------------------------------------------ Magenta's outputs


@pytest.mark.parametrize(
    ("name", "counts", "total"), [(MED, WINDOWS, 73), (MED_CHORDS, CHORD_WINDOWS, 65)]
)
def test_windows_equal_magentas_on_all_twelve_files(name, counts, total, trio, multiperf_dir):
    ref = np.load(multiperf_dir / f"{name}.npz")
    tokens = np.load(multiperf_dir / f"{name}_tokens.npz")
    conv = converter(name)
    width = 49 if conv.chords is not None else 0
    matched = 0
    for k, expected in zip(FILES, counts, strict=True):
        t = conv.to_tensors(trio[k])
        assert len(t) == expected, k
        if not expected:
            assert f"{k}_outputs" not in ref.files
            continue
        outputs, controls = np.stack(t.outputs), np.stack(t.controls)
        assert outputs.dtype == np.float32 and outputs.shape == (expected, 512, 490)
        assert controls.dtype == np.float32 and controls.shape == (expected, 512, width)
        np.testing.assert_array_equal(outputs, ref[f"{k}_outputs"].astype(np.float32), err_msg=k)
        np.testing.assert_array_equal(np.stack(t.inputs), outputs, err_msg=k)
        # Lengths per instrument slot, (8,) per window, as Magenta's length_shape [8].
        np.testing.assert_array_equal(np.stack(t.lengths), ref[f"{k}_lengths"], err_msg=k)
        np.testing.assert_array_equal(tokens_of(outputs), tokens[f"{k}_tokens"], err_msg=k)
        if width:
            np.testing.assert_array_equal(controls, ref[f"{k}_controls"], err_msg=k)
            np.testing.assert_array_equal(
                tokens_of(controls), tokens[f"{k}_control_tokens"], err_msg=k
            )
        matched += expected
    assert matched == total


def test_every_bar_as_magenta_tested_it(trio, index):
    """Each of the 198 one-bar pieces: accepted or not, its tracks as extracted (program,
    drums, events) and the chunk event counts Magenta tested, up to the first failing track."""
    conv = converter()
    files = index[MED]["files"]
    dropped_for_drums = 0
    for k, entry in zip(FILES, files, strict=True):
        bars = [bar for piece in conv.bars(trio[k]) for bar in piece]
        assert len(bars) == len(entry["bars"]), k
        for bar, ref in zip(bars, entry["bars"], strict=True):
            ours = {
                "accepted": bar.chunks is not None,
                "tracks": [
                    {"program": t.program, "is_drum": t.is_drum, "events": len(t.events)}
                    for t in bar.tracks
                ],
                "chunk_events": bar.chunk_events,
            }
            assert ours == {key: ref[key] for key in ours}, k
            dropped_for_drums += bool(bar.chunk_events and bar.chunk_events[-1] > 62)
    # README: 125 of 198 bars fail because the drum track needs more than 62 events.
    assert dropped_for_drums == 125


def test_window_layout(windows):
    """File 01 window 0 (README): melody (program 21), bass (33), drums, five unused slots."""
    t = windows["01"]
    tokens = tokens_of(t.outputs[0]).reshape(8, 64)
    assert tokens[0, :5].tolist() == [381, 357, 76, 273, 204]
    assert tokens[1, :5].tolist() == [393, 356, 40, 327, 168]
    assert tokens[2, :5].tolist() == [488, 318, 359, 38, 260]
    lengths = t.lengths[0]
    for slot in range(8):
        assert tokens[slot, lengths[slot] - 1] == 489  # the end token closes every slot
        assert (tokens[slot, lengths[slot] :] == -1).all()  # then all-zero rows
    assert lengths[3:].tolist() == [1] * 5  # an unused slot is one end-token row


def test_from_tensors_equals_magentas(windows, multiperf_dir):
    fixture = json.loads((multiperf_dir / "from_tensors_roundtrip.json").read_text())[MED]
    conv = converter()
    for entry in fixture:
        window = windows[f"{entry['file_index']:02d}"].outputs[entry["window_index"]]
        (ns,) = conv.from_tensors(window)
        expected = entry["sequence"]
        ours = [(n.pitch, n.velocity, n.start, n.end, n.program, n.is_drum) for n in ns.notes]
        theirs = [
            (n["pitch"], n["velocity"], n["start_time"], n["end_time"], n["program"], n["is_drum"])
            for n in expected["notes"]
        ]
        assert ours == theirs
        assert ns.total_time == expected["total_time"]
        assert [t.qpm for t in ns.tempos] == expected["tempos_qpm"]


def test_from_tensors_then_to_tensors_gives_the_window_back(windows):
    """Every fixture window decoded (at 120 qpm) and converted again is the same window."""
    conv = converter()
    for k in FILES:
        t = windows[k]
        if not len(t):
            continue
        decoded = conv.from_tensors(np.stack(t.outputs))
        for ns, window, lengths in zip(decoded, t.outputs, t.lengths, strict=True):
            again = conv.to_tensors(ns)
            assert len(again) == 1, k
            np.testing.assert_array_equal(again.outputs[0], window, err_msg=k)
            np.testing.assert_array_equal(again.lengths[0], lengths, err_msg=k)


def test_med_and_big_share_their_converter_settings(trio):
    med, big = get_config(MED), get_config(BIG)
    assert med.data == big.data
    assert (med.encoder_level_lengths, med.level_lengths) == (big.encoder_level_lengths,) + (
        big.level_lengths,
    )
    a, b = converter(MED).to_tensors(trio["01"]), converter(BIG).to_tensors(trio["01"])
    np.testing.assert_array_equal(np.stack(a.outputs), np.stack(b.outputs))


def test_magentas_hparams():
    for name, enc, dec in ((MED, (1024,), (512, 512, 512)), (BIG, (2048,), (1024,) * 3)):
        config = get_config(name)
        hp = config.hparams
        assert (hp.batch_size, hp.max_seq_len, hp.z_size) == (256, 512, 512)
        assert (hp.enc_rnn_size, hp.dec_rnn_size) == (enc, dec)
        assert (hp.free_bits, hp.max_beta, hp.beta_rate, hp.dropout_keep_prob) == (0, 1, 0, 1)
        assert (hp.sampling_schedule, hp.sampling_rate) == ("constant", 0.0)
        assert config.encoder == "hierarchical_lstm" and config.encoder_level_lengths == (64, 8)
        assert config.decoder == "hierarchical" and config.level_lengths == (8, 64)
        assert config.core_decoder == "categorical_lstm"
        d = config.data
        assert (d.num_velocity_bins, d.max_num_instruments, d.max_events_per_instrument) == (
            8,
            8,
            64,
        )
        assert (d.split_bars, d.steps_per_quarter, d.max_tensors_per_notesequence) == (1, 24, None)
        assert family_of(config).name == "multiperf"


def test_depths_and_class_names():
    conv = converter()
    assert (conv.input_depth, conv.output_depth, conv.control_depth) == (490, 490, 0)
    assert conv.window_steps == conv.steps_per_bar == 512 and conv.time_steps_per_bar == 96
    names = conv.class_names
    assert len(names) == 490 and len(set(names)) == 490
    assert (names[60], names[128 + 60], names[256], names[351]) == (
        "on C4",
        "off C4",
        "shift 1",
        "shift 96",
    )
    assert (names[352], names[359], names[360 + 33], names[488], names[489]) == (
        "velocity 1",
        "velocity 8",
        "program 33",
        "drums",
        "end",
    )


# ------------------------------------------------------------------ with chords


def test_chords_inferred_and_split_bar_by_bar_as_magenta(trio, index):
    """The chords note_seq infers for each file, and each bar's chord annotations after
    split_note_sequence (times to the last bit: QUIRK chord times) and whether note_seq's
    ChordProgression raised on them."""
    conv = converter(MED_CHORDS)
    coincident = {}
    for k, entry in zip(FILES, index[MED_CHORDS]["files"], strict=True):
        ns = trio[k]
        inferred = [[(a.time, a.text) for a in conv.piece_chords(ns, ns.qpm, 4, 4)]]
        assert inferred == [[(c["time"], c["text"]) for c in p] for p in entry["inferred_chords"]]
        bars = [bar for piece in conv.bars(ns) for bar in piece]
        assert len(bars) == len(entry["bars"]), k
        for bar, ref in zip(bars, entry["bars"], strict=True):
            assert [(a.time, a.text) for a in bar.annotations] == [
                (c["time"], c["text"]) for c in ref["chords"]
            ], k
            assert (bar.chord_error is None) == (ref["chord_error"] is None), k
            assert (bar.chunks is not None) == ref["accepted"], k
        coincident[k] = sum(bar.chord_error is not None for bar in bars)
    # README: the residue hits files 02 (8 bars), 08 (10) and 10 (2).
    assert {k: n for k, n in coincident.items() if n} == {"02": 8, "08": 10, "10": 2}


def test_chord_from_tensors_equals_magentas(chord_windows, multiperf_dir):
    fixture = json.loads((multiperf_dir / "from_tensors_roundtrip.json").read_text())
    conv = converter(MED_CHORDS)
    for entry in fixture[MED_CHORDS]:
        t = chord_windows[f"{entry['file_index']:02d}"]
        w = entry["window_index"]
        (ns,) = conv.from_tensors(t.outputs[w], t.controls[w])
        expected = entry["sequence"]
        assert [(a.time, a.text) for a in ns.text_annotations] == [
            (a["time"], a["text"]) for a in expected["text_annotations"]
        ]
        assert [(n.pitch, n.velocity, n.start, n.end) for n in ns.notes] == [
            (n["pitch"], n["velocity"], n["start_time"], n["end_time"]) for n in expected["notes"]
        ]
        (plain,) = conv.from_tensors(t.outputs[w])  # no controls: no annotations
        assert not hasattr(plain, "text_annotations")


def test_chord_controls_of_a_window_alone(chord_windows):
    """controls_for infers chords from the decoded window: a row beside every token row, N.C.
    beside program tokens and unused slots."""
    conv = converter(MED_CHORDS)
    t = chord_windows["01"]
    windows = np.stack(t.outputs[:3])
    controls = conv.controls_for(windows, windows)
    assert controls.shape == (3, 512, 49)
    np.testing.assert_array_equal(controls.any(-1), windows.any(-1))
    assert (controls.reshape(3, 8, 64, 49)[:, :, 0, 0] == 1).all()  # N.C. at each slot's start
    assert converter().controls_for(windows, windows).shape == (3, 512, 0)


def test_chord_configs_share_settings_and_hparams():
    for plain, chords in ((MED, MED_CHORDS), (BIG, BIG_CHORDS)):
        a, b = get_config(plain), get_config(chords)
        assert b.data == replace(a.data, chord_encoding="triad")
        assert b.hparams == a.hparams
        assert (b.encoder, b.decoder, b.core_decoder) == (a.encoder, a.decoder, a.core_decoder)
    assert get_config(MED_CHORDS).data == get_config(BIG_CHORDS).data
    assert converter(MED_CHORDS).control_depth == 49


# ------------------------------------------------------------------ quirks, built in code


def test_velocity_bins():
    assert [velocity_to_bin(v, 8) for v in (1, 16, 17, 100, 112, 113, 127)] == [1, 1, 2, 7, 7, 8, 8]


def test_set_length_pads_the_last_shift_then_adds_shifts():
    events = [(NOTE_ON, 60), (TIME_SHIFT, 10), (NOTE_OFF, 60)]
    set_length(events, 96, 96)
    assert events[-1] == (TIME_SHIFT, 86)  # QUIRK trailing shift: one event more
    events = [(NOTE_ON, 60), (TIME_SHIFT, 90)]
    set_length(events, 200, 96)
    assert events == [(NOTE_ON, 60), (TIME_SHIFT, 96), (TIME_SHIFT, 96), (TIME_SHIFT, 8)]
    set_length(events, 50, 96)  # cut: everything after step 50 goes
    assert events == [(NOTE_ON, 60), (TIME_SHIFT, 50)]


def test_an_empty_chunk_reads_as_drums():
    """QUIRK empty chunks read as drums: a bass whose only note starts on step 96 (the next bar
    line) is cut away and the rebuilt chunk, without notes, gets note_seq's drum flag."""
    perf = Performance([(TIME_SHIFT, 96), (VELOCITY, 5), (NOTE_ON, 40)], 33, False)
    (chunk,) = split_performance(perf, 96, 8, 96)
    assert (chunk.events, chunk.program, chunk.is_drum) == ([(TIME_SHIFT, 96)], None, True)


def bar(notes, qpm=120.0) -> NoteSequence:
    """(pitch, velocity, start step, end step, program, is_drum) at 24 steps per quarter."""
    step = 60.0 / qpm / 24
    return NoteSequence(
        pitch=[n[0] for n in notes],
        velocity=[n[1] for n in notes],
        start=[n[2] * step for n in notes],
        end=[n[3] * step for n in notes],
        program=[n[4] for n in notes],
        is_drum=[n[5] for n in notes],
        tempos=[Tempo(0.0, qpm)],
    )


def test_a_bar_needs_two_to_eight_tracks():
    conv = converter()
    one_track = bar([(60, 100, 0, 24, 0, False), (62, 100, 24, 48, 0, False)])
    assert len(conv.to_tensors(one_track)) == 0
    two_tracks = bar([(60, 100, 0, 24, 0, False), (36, 100, 0, 12, 33, False)])
    (lengths,) = conv.to_tensors(two_tracks).lengths
    assert lengths.tolist() == [7, 7, 1, 1, 1, 1, 1, 1]
    nine = bar([(60, 100, 0, 24, p, False) for p in range(9)])
    assert len(conv.to_tensors(nine)) == 0
    assert len(converter(max_num_instruments=9).to_tensors(nine)) == 1


def test_offs_of_one_step_follow_their_notes_order():
    """QUIRK event order: 67 (from step 0) and 60 (from step 24) end together at step 48, and
    their offs come in their notes' (start, pitch) order, 67 first. Ons of one step come by
    pitch, even when the higher note was played first (the chunk is rebuilt from its notes)."""
    conv = converter()
    ns = bar([(67, 100, 0, 48, 0, False), (60, 100, 24, 48, 0, False), (36, 100, 0, 96, 33, False)])
    (window,) = conv.to_tensors(ns).outputs
    tokens = tokens_of(window).reshape(8, 64)
    assert tokens[0, :10].tolist() == [360, 358, 67, 279, 60, 279, 195, 188, 303, 489]
    assert tokens[1, :6].tolist() == [393, 358, 36, 351, 164, 489]
    played = bar([(67, 100, 0.1, 48, 0, False), (60, 100, 0.3, 48, 0, False), *ns.notes[2:3]])
    (window,) = conv.to_tensors(played).outputs
    assert tokens_of(window)[:4].tolist() == [360, 358, 60, 67]


def test_an_overfull_track_drops_the_bar():
    """QUIRK over-full bars: 16 drum hits of two pitches give 4 events each (shift, velocity
    on, off... ) past 62, and the bar is gone."""
    conv = converter()
    drums = [(36 + i % 2, 10 + 7 * i, 6 * i, 6 * i + 3, 0, True) for i in range(16)]
    assert len(conv.to_tensors(bar([(60, 100, 0, 96, 0, False), *drums]))) == 0
    few = [(36, 100, 24 * i, 24 * i + 3, 0, True) for i in range(4)]
    assert len(conv.to_tensors(bar([(60, 100, 0, 96, 0, False), *few]))) == 1
