"""Chord symbols, note_seq's chord inference and the chord encodings (musicvae.data.chords).

The inference is checked against the chords Magenta inferred (note_seq 0.0.5) on the 24 folk
melodies and the 12 trio files of ../shared/data/magenta/mel_chords/index.json; the fast Viterbi
against the dense one note_seq runs; the set order against CPython's own under PYTHONHASHSEED=0.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from musicvae.configs import CONFIGS
from musicvae.data import chords as C
from musicvae.data.converters import build_converter
from musicvae.data.converters.melody import MelodyConverter
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence, Tempo, TimeSignature
from musicvae.errors import MusicVAEError

INPUTS = {"melodies": ("melody/melodies", 24), "trio": ("trio/midis", 12)}


def melody(notes, qpm=120.0, signature=(4, 4), program=0):
    """A sequence of (pitch, start, end) notes in seconds, not drums."""
    arr = np.array(notes, np.float64).reshape(-1, 3)
    return NoteSequence(
        pitch=arr[:, 0],
        velocity=np.full(len(arr), 80),
        start=arr[:, 1],
        end=arr[:, 2],
        is_drum=False,
        program=program,
        tempos=[Tempo(0.0, qpm)],
        time_signatures=[TimeSignature(0.0, *signature)],
    )


def chord_converter() -> MelodyConverter:
    conv = build_converter(CONFIGS["cat-mel_2bar_med_chords"], "train")
    assert isinstance(conv, MelodyConverter)
    return conv


# ---------------------------------------------------------------------------- inference


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_inference_equals_magentas_on_every_file(kind, magenta_dir):
    """Every chord change (time, step, figure) Magenta's converter inferred, per piece; files
    Magenta never inferred for (2/4 and 3/4 tunes, off the 16-step grid) have none here."""
    index = json.loads((magenta_dir / "mel_chords" / "index.json").read_text())[kind]
    folder, n = INPUTS[kind]
    conv = chord_converter()
    agree = changes = 0
    for entry in index["files"]:
        ns = read_midi(magenta_dir / folder / f"{entry['index']:02d}.mid")
        ours = [[(c.time, c.step, c.text) for c in piece] for piece in conv.piece_chords(ns)]
        theirs = [
            [(c["time"], c["quantized_step"], c["text"]) for c in piece]
            for piece in entry.get("inferred_chords", [])
        ]
        assert ours == theirs, f"{kind} file {entry['index']:02d}"
        agree += 1
        changes += sum(len(p) for p in ours)
    assert agree == n == len(index["files"])
    assert changes == {"melodies": 430, "trio": 256}[kind]


def test_a_c_major_bar_is_c():
    """C, E and G held through a 4/4 bar: two frames, both C, written once."""
    ns = melody([(60, 0.0, 2.0), (64, 0.0, 2.0), (67, 0.0, 2.0)])
    assert C.infer_chords_for_sequence(ns) == [C.ChordChange(0.0, 0, "C")]


def test_simple_progression_two_chords_a_bar():
    """Four half bars of C, Am, F and G7 arpeggios at 120 qpm (a half bar is one second)."""
    shapes = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62, 65)]
    notes = [
        (p, i + j / len(shape), i + (j + 1) / len(shape))
        for i, shape in enumerate(shapes)
        for j, p in enumerate(shape)
    ]
    changes = C.infer_chords_for_sequence(melody(notes))
    assert [(c.step, c.text) for c in changes] == [(0, "C"), (8, "Am"), (16, "F"), (24, "G7")]
    assert [c.time for c in changes] == [0.0, 1.0, 2.0, 3.0]


def test_chords_per_bar_follows_the_meter():
    notes = [(60, 0.0, 2.0), (64, 0.0, 2.0), (67, 0.0, 2.0), (57, 2.0, 4.0), (60, 2.0, 4.0)]
    notes += [(64, 2.0, 4.0)]
    two_two = C.infer_chords_for_sequence(melody(notes, signature=(2, 2)))
    assert [(c.step, c.text) for c in two_two] == [(0, "C"), (16, "Am")]  # one per 16 steps
    # Drums and unpitched programs are not read.
    drum = melody([(60, 0.0, 2.0), (64, 0.0, 2.0), (67, 0.0, 2.0)])
    drum.is_drum[:] = True
    assert C.infer_chords_for_sequence(drum) == [C.ChordChange(0.0, 0, C.NO_CHORD)]
    pad = melody([(60, 0.0, 2.0), (64, 0.0, 2.0), (67, 0.0, 2.0)], program=100)
    assert C.infer_chords_for_sequence(pad)[0].text == C.NO_CHORD


@pytest.mark.parametrize(
    ("signature", "total", "message"),
    [((5, 4), 2.0, "no default chords per bar for time signature 5/4"),
     ((4, 4), 0.0, "empty"),
     ((4, 4), 1001.0, "too long for chord inference: 1001 chords")],
)  # fmt: skip
def test_inference_refuses_as_note_seq_does(signature, total, message):
    with pytest.raises(C.ChordInferenceError, match=message):
        C.infer_chords(
            np.zeros(0), np.zeros(0), np.zeros(0), total_time=total, qpm=120.0,
            time_signature=signature,
        )  # fmt: skip


def test_fast_viterbi_is_the_dense_one():
    """Random evidence, rounded evidence and empty frames (ties everywhere): the same path as
    note_seq's dense Viterbi over the 1164 x 1164 transition matrix."""
    key_loglik, transition, vectors = C._chord_model(0.001, 0.5, 0.01)
    blocks = C._transition_blocks(0.001, 0.5, 0.01)
    rng = np.random.default_rng(0)
    for trial in range(24):
        frames = int(rng.integers(1, 30))
        x = rng.random((frames, 12)) * (rng.random((frames, 12)) < 0.3)
        x[rng.random(frames) < 0.3] = 0.0
        if trial % 2:
            x = np.round(x, 1)
        norm = np.linalg.norm(x, axis=1)
        x[norm > 0] /= norm[norm > 0, None]
        loglik = 100.0 * np.dot(x, vectors.T)
        dense = C.viterbi_dense(loglik, key_loglik, transition)
        assert C._viterbi(loglik, key_loglik, *blocks) == dense, trial


# ---------------------------------------------------------------------------- symbols


@pytest.mark.parametrize(
    ("figure", "root", "pitches", "bass", "quality"),
    [
        ("C", 0, [0, 4, 7], 0, C.QUALITY_MAJOR),
        ("Am", 9, [9, 0, 4], 9, C.QUALITY_MINOR),
        ("G7", 7, [7, 11, 2, 5], 7, C.QUALITY_MAJOR),
        ("Bbmaj7", 10, [10, 2, 5, 9], 10, C.QUALITY_MAJOR),
        ("F#m7b5", 6, [6, 9, 0, 4], 6, C.QUALITY_DIMINISHED),
        ("Eb+", 3, [3, 7, 11], 3, C.QUALITY_AUGMENTED),
        ("C#dim", 1, [1, 4, 7], 1, C.QUALITY_DIMINISHED),
        ("C/E", 0, [0, 4, 7], 4, C.QUALITY_MAJOR),
        ("Dm7/C", 2, [2, 5, 9, 0], 0, C.QUALITY_MINOR),
        ("Csus4", 0, [0, 5, 7], 0, C.QUALITY_OTHER),
        ("C7(b9)", 0, [0, 4, 7, 10, 1], 0, C.QUALITY_MAJOR),
        ("Cadd9", 0, [0, 4, 7, 2], 0, C.QUALITY_MAJOR),
        ("C7b5", 0, [0, 4, 6, 10], 0, C.QUALITY_OTHER),
        ("Cm(maj7)", 0, [0, 3, 7, 11], 0, C.QUALITY_MINOR),
        ("Cbb", 10, [10, 2, 5], 10, C.QUALITY_MAJOR),
    ],
)
def test_chord_symbols(figure, root, pitches, bass, quality):
    assert C.chord_root(figure) == root
    assert C.chord_pitches(figure) == pitches
    assert C.chord_bass(figure) == bass
    assert C.chord_quality(figure) == quality


@pytest.mark.parametrize("figure", ["H", "c", "C#b", "Cxyz", "", "N.C.", "Cadd3", "Cno7", "C/"])
def test_bad_chord_symbols(figure):
    with pytest.raises(C.ChordSymbolError):
        C.parse_chord(figure)


# ---------------------------------------------------------------------------- encodings


def test_triad_encoding_classes():
    """49 classes (the tiny checkpoint's control depth); sevenths collapse to their triad."""
    triad = C.CHORD_ENCODINGS["triad"]
    assert triad.depth == 49
    assert isinstance(triad, C.OneHotChordEncoding)
    cases = {"N.C.": 0, "C": 1, "Bbmaj7": 11, "Gm7": 20, "Edim": 41, "C#dim": 38, "Ab+": 33}
    cases |= {"G7": 8, "Bm7b5": 48, "F#m": 19}
    assert {f: triad.index(f) for f in cases} == cases
    for i in range(49):  # every class decodes to a figure that encodes back to it
        assert triad.index(triad.figure(i)) == i
        row = np.eye(49, dtype=np.float32)[i]
        assert np.array_equal(triad.encode(triad.decode(row)), row)
    assert triad.figure(38) == "C#dim" and triad.figure(27) == "Daug"
    assert triad.decode(np.zeros(49)) == C.NO_CHORD
    # Every chord the inference writes has a triad class.
    candidates = [C._candidate_figure(i) for i in range(97)]
    assert len({triad.index(f) for f in candidates}) == 49
    with pytest.raises(C.ChordEncodingError, match="'Csus4' has no class in the triad"):
        triad.encode("Csus4")


def test_major_minor_encoding():
    mm = C.CHORD_ENCODINGS["major_minor"]
    assert mm.depth == 25
    assert [mm.decode(mm.encode(f)) for f in ("C", "Am", "G7", "N.C.", "Ebm7")] == [
        "C", "Am", "G", "N.C.", "Ebm"
    ]  # fmt: skip
    with pytest.raises(C.ChordEncodingError):
        mm.encode("Bdim")


def test_pitch_encoding():
    pitch = C.CHORD_ENCODINGS["pitch"]
    assert pitch.depth == 37
    row = pitch.encode("Dm7/C")
    assert np.flatnonzero(row).tolist() == [1 + 2, 13 + 0, 13 + 2, 13 + 5, 13 + 9, 25 + 0]
    assert np.flatnonzero(pitch.encode("N.C.")).tolist() == [0]
    for figure in ("C", "Am", "G7", "Bbmaj7", "F#m7b5", "Csus4", "Dm7/C", "N.C.", "Ebaug"):
        decoded = pitch.decode(pitch.encode(figure))
        assert np.array_equal(pitch.encode(decoded), pitch.encode(figure)), (figure, decoded)
    assert pitch.decode(pitch.encode("Ebaug")) == "Eb+"  # the first name of the kind


@pytest.mark.parametrize("name", sorted(C.CHORD_ENCODINGS))
@pytest.mark.parametrize("shift", [-3, 1, 5, 12])
def test_transposing_controls_transposes_the_chords(name, shift):
    enc = C.CHORD_ENCODINGS[name]
    chords = [(0, ""), (9, "m"), (None, ""), (6, "m"), (3, "dim"), (7, "+"), (2, "m7/A")]
    if name == "major_minor":
        chords = chords[:4]

    def figure(root: int | None, kind: str, by: int = 0) -> str:
        if root is None:
            return C.NO_CHORD
        bass = kind.partition("/")[2]
        name = C.chord_name(root + by, kind.partition("/")[0])
        return f"{name}/{C.chord_name(C.chord_root(bass) + by)}" if bass else name

    figures = [figure(r, k) for r, k in chords]
    up = [figure(r, k, shift) for r, k in chords]
    controls = enc.encode_steps(figures)[None]
    moved = C.transpose_chord_controls(controls, [shift], enc)
    assert np.array_equal(moved[0], enc.encode_steps(up))


def test_parse_and_encode_user_chords():
    assert C.parse_chords("C G Am F") == ["C", "G", "Am", "F"]
    assert C.parse_chords(" Dm7, G7 | Cmaj7  NC ") == ["Dm7", "G7", "Cmaj7", "N.C."]
    controls = C.encode_chords("C G Am F", 32, "triad")
    assert controls.shape == (32, 49) and controls.dtype == np.float32
    assert np.argmax(controls, -1).tolist() == [1] * 8 + [8] * 8 + [22] * 8 + [6] * 8
    three = np.argmax(C.encode_chords(["C", "F", "G"], 32, "major_minor"), -1).tolist()
    assert three == [1] * 11 + [6] * 11 + [8] * 10
    for bad, message in (("C Xm", "chord 'Xm' is not a chord symbol"),
                         ("C Csus4", "chord 'Csus4' has no class in the triad encoding"),
                         ("", "no chords given")):  # fmt: skip
        with pytest.raises(MusicVAEError, match=message) as e:
            C.encode_chords(bad, 32, "triad")
        assert "\n" not in str(e.value)
    with pytest.raises(MusicVAEError, match="33 chords do not fit in 32 steps"):
        C.encode_chords(["C"] * 33, 32, "triad")
    assert C.encode_chords("Csus4", 4, "pitch").shape == (4, 37)


# ---------------------------------------------------------------------------- progressions


def test_chords_per_step():
    assert (
        C.chords_per_step([(2, "C"), (4, "G"), (9, "F")], 6) == ["N.C."] * 2 + ["C"] * 2 + ["G"] * 2
    )
    assert C.chords_per_step([(0, "C"), (0, "C"), (3, "Am")], 4) == ["C", "C", "C", "Am"]
    with pytest.raises(C.CoincidentChordsError):
        C.chords_per_step([(0, "C"), (0, "Am")], 4)
    assert C.chords_at(["C", "G"], range(1, 4)) == ["G", "G", "G"]
    assert C.chords_at([], range(2)) == ["N.C.", "N.C."]


def test_split_annotations_as_note_seq_splits_chords():
    a = C.TextAnnotation
    notes = [a(0.0, "C"), a(0.0, "Dm"), a(1.5, "G"), a(3.0, "Am"), a(4.5, "F")]
    pieces = C.split_annotations(notes, [0.0, 3.0, 6.0, 9.0])
    # Of two chords at 0 only the last stays; a chord on a split starts the next piece.
    assert pieces == [
        [a(0.0, "Dm"), a(1.5, "G")],
        [a(0.0, "Am"), a(1.5, "F")],
        [a(0.0, "F")],
    ]


def test_annotated_chords_are_read_not_inferred():
    """A sequence with chord annotations: its chords, whatever the notes say."""
    notes = [(60 + (i % 5), i * 0.25, (i + 1) * 0.25) for i in range(16)]  # 2 bars
    ns = melody(notes)
    values = {f: getattr(ns, f) for f in NoteSequence.__dataclass_fields__}
    annotated = C.ChordSequence(
        **values, text_annotations=[C.TextAnnotation(0.0, "Ebm7"), C.TextAnnotation(2.0, "Bdim")]
    )
    conv = chord_converter()
    assert [[c.text for c in p] for p in conv.piece_chords(annotated)] == [["Ebm7", "Bdim"]]
    t = conv.to_tensors(annotated)
    assert len(t) == 1
    classes = np.argmax(t.controls[0], -1).tolist()
    assert classes == [16] * 16 + [48] * 16  # Ebm, then Bdim (from step 16 = 2 s)
    inferred = conv.to_tensors(ns)
    assert not np.array_equal(inferred.controls[0], t.controls[0])


# ---------------------------------------------------------------------------- CPython's set order


def test_set_order_is_cpythons_under_hash_seed_0():
    """Hashes of strings and tuples, and the order of list(set(...)) with resizes and
    duplicates, as a fresh CPython process with PYTHONHASHSEED=0 gives them."""
    rng = np.random.default_rng(1)
    figures = ["C", "C#dim", "N.C.", "Bbmaj7", "Gm7", "Ebm7b5", "F#+", ""]
    items = [
        tuple((int(rng.choice([-2, -1, 60, 67])), str(rng.choice(figures))) for _ in range(k))
        for k in rng.integers(1, 12, 120)
    ]
    items += items[:30]
    code = (
        "import json, sys\n"
        "figures, items = json.loads(sys.stdin.read())\n"
        "items = [tuple(map(tuple, i)) for i in items]\n"
        "print(json.dumps([[hash(f) for f in figures], [hash(i) for i in items],\n"
        "                  [items.index(i) for i in list(set(items))]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([figures, items]),
        env={"PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    string_hashes, tuple_hashes, order = json.loads(out)
    assert [C.seeded_hash(f) for f in figures] == string_hashes
    assert [C.seeded_hash(i) for i in items] == tuple_hashes
    assert C.magenta_set_order(items) == order
    ints = [(i % 7, i % 3) for i in range(200)]  # int tuples hash the same under any seed
    assert C.magenta_set_order(ints) == [ints.index(t) for t in list(set(ints))]


def test_a_progression_with_no_change_inside_its_steps_is_no_chord_throughout():
    from musicvae.data.chords import NO_CHORD, chords_per_step

    assert chords_per_step([], 4) == [NO_CHORD] * 4
    assert chords_per_step([(4, "C"), (9, "G")], 4) == [NO_CHORD] * 4
    assert chords_per_step([(1, "C"), (6, "G")], 4) == [NO_CHORD, "C", "C", "C"]
