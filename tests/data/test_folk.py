"""``musicvae data folk``: ABC splitting, splits, skip rules, titles, collections and progress (no
music21 needed); the builder on a few tunes written here in ABC (chord symbols, dedup across
collections, splits, credits), and the command on a few tunes of music21's corpus, when music21 is
installed."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest

from musicvae.cli.main import main
from musicvae.data import folk
from musicvae.data.dataset import read_dataset
from musicvae.data.midi import read_midi
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError

ABC = """% a comment before the first tune
X: 7
T: First Tune
T: An alternative title
M: C
Z: "Transcribed by A. Person"
Z:
K:G
GABc d2d2 | e4 d4 |]

X:8
T:Second
Z:1999 by B. Person
K:D
D2 | Z: not a field in the body |
"""


def test_split_tunes_reads_header_fields_per_tune():
    tunes = folk.split_tunes(ABC, "oneills1850/x.abc")
    assert [(t.number, t.title, t.transcribers) for t in tunes] == [
        ("7", "First Tune", ("Transcribed by A. Person",)),  # empty Z: and quotes dropped
        ("8", "Second", ("1999 by B. Person",)),  # the body's "Z:" is no field
    ]
    assert tunes[0].text.startswith("X: 7") and "X:8" not in tunes[0].text
    assert tunes[1].key == "oneills1850/x.abc#8"


def test_split_is_stable_balanced_and_keeps_retranscriptions_together():
    numbers = [str(n) for n in range(1, 2001)]
    counts = Counter(folk.tune_split(n) for n in numbers)
    assert set(counts) == {"train", "validation", "test"}
    assert 0.76 < counts["train"] / 2000 < 0.84
    assert 0.07 < counts["validation"] / 2000 < 0.13 and 0.07 < counts["test"] / 2000 < 0.13
    # The split depends on the X: number only, not on the file holding the transcription.
    a, b = (
        folk.Tune("c/0626-0635.abc", "630", "", (), ""),
        folk.Tune("c/0626-0700.abc", "630", "", (), ""),
    )
    assert folk.tune_split(a.number) == folk.tune_split(b.number) == folk.tune_split(" 630")
    assert folk.tune_id(a) != folk.tune_id(b)  # two rows, one per transcription
    assert folk.tune_split("1") == "train" and folk.tune_split("10") == "validation"  # pinned


@pytest.mark.parametrize(
    ("parts", "chords", "meters", "why"),
    [
        (1, 0, 1, None),
        (2, 0, 1, folk.SKIP_PARTS),
        (1, 3, 1, folk.SKIP_CHORDS),
        (1, 0, 2, folk.SKIP_METER),
        (1, 0, 0, folk.SKIP_NO_METER),
    ],
)
def test_score_problem(parts, chords, meters, why):
    assert folk.score_problem(parts, chords, meters) == why


def _melody(notes):
    ns = NoteSequence.from_notes([(p, 90, s, e) for p, s, e in notes], is_drum=False)
    return ns


def test_sequence_problem_wants_one_line():
    assert folk.sequence_problem(_melody([(60, 0.0, 0.5), (62, 0.5, 1.0)])) is None
    assert folk.sequence_problem(_melody([])) == folk.SKIP_EMPTY
    assert folk.sequence_problem(_melody([(60, 0.0, 0.6), (62, 0.5, 1.0)])) == folk.SKIP_OVERLAP
    # A long note overlapping the third one, with a short one between them.
    long = _melody([(60, 0.0, 2.0), (62, 0.0, 0.25), (64, 1.0, 1.5)])
    assert folk.sequence_problem(long) == folk.SKIP_OVERLAP
    # Float rounding at a note boundary is not an overlap.
    assert folk.sequence_problem(_melody([(60, 0.0, 0.5 + 1e-12), (62, 0.5, 1.0)])) is None


def test_missing_music21_is_one_line_with_the_install_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "music21", None)  # makes `import music21` fail
    with pytest.raises(
        MusicVAEError, match=r"music21 is not installed; run: pip install 'musicvae\[folk\]'"
    ):
        folk.build_folk()
    assert main(["data", "folk", "-o", str(tmp_path / "f.parquet")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'musicvae[folk]'" in err[0]
    assert not (tmp_path / "f.parquet").exists()


def test_report_summary_counts_splits_and_skips():
    kept = _melody([(60, 0.0, 0.5)])
    kept.meta["split"] = "test"
    report = folk.FolkReport([kept], read=3, skipped=Counter({folk.SKIP_METER: 2}))
    assert report.summary.startswith(
        "read 3 tunes, kept 1 (train 0, validation 0, test 1), skipped 2 (2 meter changes"
    )


@pytest.fixture(scope="module")
def music21():
    return pytest.importorskip("music21")


def test_command_on_three_tunes(music21, tmp_path, capsys):
    out = tmp_path / "folk.parquet"
    argv = ["data", "folk", "-o", str(out), "--limit", "3", "--workers", "1", "--all-meters"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    # Tune 1 of the first file has a bar music21 gives its own meter; 2 and 3 are melodies.
    assert "read 3 tunes, kept 2" in text and "1 meter changes inside the tune" in text
    assert "O'Neill's Music of Ireland" in text
    rows = read_dataset(out)
    assert [ns.filename for ns in rows] == [
        "oneills1850/0001-0050.abc#2",
        "oneills1850/0001-0050.abc#3",
    ]
    for ns in rows:
        assert ns.meta["split"] == folk.tune_split(ns.meta["abc_number"])
        assert "Norbert Paap" in ns.meta["transcriber"]
        assert ns.id.startswith("/id/abc/oneills1850/") and not ns.is_drum.any()
        assert folk.sequence_problem(ns) is None
    assert rows[1].meta["title"] == "The Little Heathy Hill"
    again = tmp_path / "again.parquet"
    assert main([*argv[:3], str(again), *argv[4:]]) == 0
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_notes_match_magentas_reference_midi(music21, magenta_dir):
    """Tune 3 is file 00 of the melody reference data, written by music21 the same way."""
    tunes = folk.read_tunes(folk.corpus_dir())
    tune = next(t for t in tunes if t.key == "oneills1850/0001-0050.abc#3")
    ns, why, graces = folk.tune_to_sequence(tune)
    assert why is None and graces == 0
    ref = read_midi(magenta_dir / "melody" / "melodies" / "00.mid")
    for name in ("pitch", "velocity", "start", "end"):
        np.testing.assert_array_equal(getattr(ns, name), getattr(ref, name))


# --- titles, meters, collections and progress (no music21 needed) ---------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The Flogging Reel", "FLOGGING -- REEL"),  # O'Neill's and Ryan's spelling of one tune
        ("Bashful Lover., The", "The Bashful Lover"),
        ("Jenny's Wedding", "JENNY'S WEDDING -- REEL"),
        ("Rocks of Cashel, The", "The Rocks of Cashel."),
    ],
)
def test_normalise_title_matches_one_tune_spelt_two_ways(a, b):
    assert folk.normalise_title(a) == folk.normalise_title(b)


def test_normalise_title_keeps_tunes_apart():
    assert folk.normalise_title("Fisher's Hornpipe") != folk.normalise_title("Fisherman's Reel")
    assert folk.normalise_title("The Reel") == "reel"  # a title that is only a dance type stays
    assert folk.normalise_title("Ça ira") == "ca ira"


@pytest.mark.parametrize(
    ("meter", "fits"),
    [("C", True), ("C|", True), ("4/4", True), ("2/2", True), (" 4 / 4", True), ("", None)]
    + [(m, False) for m in ("6/8", "3/4", "2/4", "4/2", "9/8", "none")],
)
def test_four_quarter_bars_is_magentas_meter_rule(meter, fits):
    assert folk.four_quarter_bars(meter) is fits


def test_split_tunes_reads_the_header_meter_without_its_comment():
    (tune,) = folk.split_tunes("X:1\nT:A\nM:9/8 % Aird bars it in 6/8\nK:G\nGAB|\n", "airdsAirs/b")
    assert tune.meter == "9/8" and tune.collection == "airdsAirs"


def test_other_meters_are_skipped_unparsed_and_counted_per_collection():
    tunes = folk.split_tunes(
        "X:1\nT:Jig\nM:6/8\nK:G\nGAB|\n\nX:2\nT:Waltz\nM:3/4\nK:G\nG|\n", "x/a"
    )
    report = folk.build_tunes(tunes, workers=1)  # nothing to parse: music21 is not needed
    assert (report.read, report.sequences) == (2, [])
    assert report.skipped == Counter({folk.SKIP_OTHER_METER: 2})
    assert report.collection_lines() == [
        f"  x: read 2, kept 0, skipped 2 (2 {folk.SKIP_OTHER_METER})"
    ]


def test_parse_collections_names_aliases_and_order():
    assert folk.parse_collections("misc,OneIlls1850") == ("oneills1850", "miscFolk")
    assert folk.parse_collections("default,essen") == (*folk.DEFAULT_COLLECTIONS, folk.ESSEN)
    assert folk.ESSEN not in folk.DEFAULT_COLLECTIONS
    assert "O'Neill's Music of Ireland" in folk.FOLK_CREDIT and "Ryan's" in folk.FOLK_CREDIT
    assert "Essen" not in folk.FOLK_CREDIT and "non-commercial" in folk.credit([folk.ESSEN])


def test_bad_collection_is_one_error_line_with_the_choices(tmp_path, capsys):
    out = tmp_path / "f.parquet"
    with pytest.raises(SystemExit) as e:
        main(["data", "folk", "-o", str(out), "--collections", "oneills,nope"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "'nope'" in err[0]
    for name in (*folk.COLLECTIONS, "default"):
        assert name in err[0]
    assert not out.exists()


def test_missing_output_folder_is_refused_before_building(tmp_path, capsys):
    assert main(["data", "folk", "-o", str(tmp_path / "no" / "f.parquet")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_progress_is_a_line_per_tenth_off_a_terminal(capsys):
    t0 = folk.time.perf_counter() - 1.0
    done = 0
    for step in [3] * 33 + [1]:  # chunks of 3 tunes, as a pool returns them
        folk._say_progress(done, done + step, 100, t0)
        done += step
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 9  # 10% ... 90%; the summary says 100%
    assert lines[0].startswith("parsing ABC: 12/100 tunes, about ") and lines[0].endswith(" s left")


# --- the builder on tunes written here (music21) ---------------------------------------------


MELODY = "GABc d2B2|c2e2 d2A2|G2B2 A2F2|G8|]"
CHORDED = '"G"GABc d2B2|"C"c2e2 "D7"d2A2|"G"G2B2 "D"A2F2|"G"G8|]'


def _abc(number, title, body, *, meter="C", z="Z:Ann Transcriber"):
    return f"X:{number}\nT:{title}\nM:{meter}\nL:1/8\n{z}\nK:G\n{body}\n\n"


def test_chord_symbols_are_kept_out_of_the_notes(music21):
    (plain,) = folk.split_tunes(_abc(1, "Plain", MELODY), "ryansMammoth/Plain.abc")
    (chorded,) = folk.split_tunes(_abc(1, "Chorded", CHORDED), "ryansMammoth/Chorded.abc")
    report = folk.build_tunes([plain, chorded], workers=1)
    assert report.skipped == Counter() and len(report.sequences) == 2
    assert report.tunes_with_chord_symbols == 1 and report.chord_symbols_removed == 6
    a, b = report.sequences
    for name in ("pitch", "velocity", "start", "end"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert folk.sequence_problem(b) is None and len(b) == 15


def test_dedup_by_title_across_collections_keeps_the_earlier_collection(music21):
    oneill = folk.split_tunes(
        _abc(5, "The Flogging Reel", MELODY)
        + _abc(6, "Mullingar Races", MELODY)
        + _abc(7, "Mullingar Races", "d2B2 GABc|" + MELODY)  # another tune of that name: kept
        + _abc(8, "Jenny's Wedding", MELODY, meter="6/8"),  # not built, so Ryan's copy stays
        "oneills1850/0001-0050.abc",
    )
    ryans = [
        *folk.split_tunes(_abc(1, "FLOGGING -- REEL", CHORDED), "ryansMammoth/FloggingReel.abc"),
        *folk.split_tunes(_abc(1, "JENNY'S WEDDING -- REEL", MELODY), "ryansMammoth/Jenny.abc"),
    ]
    report = folk.build_tunes([*ryans, *oneill], workers=1)  # input order does not matter
    kept = sorted(ns.filename for ns in report.sequences)
    assert kept == [
        "oneills1850/0001-0050.abc#5",
        "oneills1850/0001-0050.abc#6",
        "oneills1850/0001-0050.abc#7",
        "ryansMammoth/Jenny.abc#1",
    ]
    assert report.skipped == Counter({folk.SKIP_DUPLICATE: 1, folk.SKIP_OTHER_METER: 1})
    assert report.collections["ryansMammoth"] == Counter(
        {"read": 2, "kept": 1, folk.SKIP_DUPLICATE: 1}
    )
    assert list(report.collections) == ["oneills1850", "ryansMammoth"]


def test_splits_are_stable_by_tune(music21):
    text = _abc(630, "Captain O'Kane", MELODY)
    a = folk.split_tunes(text, "oneills1850/0626-0635.abc")[0]
    b = folk.split_tunes(text.replace("O'Kane", "O'Kane (2nd copy)"), "oneills1850/0626-0700.abc")[
        0
    ]
    # O'Neill's: by number, as before (both transcriptions in one split, whatever their titles).
    assert folk.split_of(a) == folk.split_of(b) == folk.tune_split("630")
    # Elsewhere: by title, not file or X:, so a collection's two copies of a tune share a split.
    fife = [
        folk.split_tunes(_abc(n, t, MELODY), f"miscFolk/{f}")[0]
        for n, t, f in [(1, "Olde Saybrooke", "a.abc"), (101, "OLDE SAYBROOKE.", "b.abc")]
    ]
    assert folk.split_of(fife[0]) == folk.split_of(fife[1])
    titles = [f"Tune {i}" for i in range(400)]
    splits = Counter(
        folk.split_of(folk.Tune(f"airdsAirs/book{i % 6}.abc", str(i), t, (), ""))
        for i, t in enumerate(titles)
    )
    assert 0.74 < splits["train"] / 400 < 0.86 and min(splits.values()) > 20
    # The built rows carry that split, whatever else is built beside them.
    alone = folk.build_tunes([fife[1]], workers=1).sequences[0]
    together = folk.build_tunes([a, *fife], workers=1).sequences
    assert alone.meta["split"] == together[-1].meta["split"] == folk.split_of(fife[1])
    assert together[0].meta["split"] == folk.tune_split("630")


def test_rows_credit_transcriber_and_collection(music21):
    tunes = [
        *folk.split_tunes(
            _abc(3, "Credited", MELODY, z='Z:"Transcribed by A. Person"'), "airdsAirs/book1.abc"
        ),
        *folk.split_tunes(_abc(4, "Uncredited", MELODY, z=""), "essenFolksong/kinder0.abc"),
    ]
    a, b = folk.build_tunes(tunes, workers=1).sequences
    assert a.meta["transcriber"] == "Transcribed by A. Person"
    assert a.meta["collection_name"] == "airdsAirs" and a.meta["source"].startswith("Aird's Airs")
    assert a.meta["licence"].startswith("public domain") and a.meta["title"] == "Credited"
    assert a.id.startswith("/id/abc/airdsAirs/") and a.filename == "airdsAirs/book1.abc#3"
    # Essen has no Z: fields: the row credits its ABC encoder, and says the licence.
    assert "Seymour Shlien" in b.meta["transcriber"]
    assert b.meta["licence"].startswith("non-commercial")


def test_command_with_essen_prints_the_note_and_writes_a_tfrecord(music21, tmp_path, capsys):
    from musicvae.data import tfrecord

    out = tmp_path / "essen.tfrecord"
    argv = ["data", "folk", "-o", str(out), "--collections", "essen", "--limit", "2"]
    assert main([*argv, "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == folk.ESSEN_NOTE and "non-commercial" in text
    assert "NoteSequence TFRecord" in text and "Essen Folksong Collection" in text
    assert tfrecord.is_tfrecord(out)  # a real TFRecord, not Parquet bytes under its name
    rows = read_dataset(out)
    assert len(rows) == 2 and {ns.meta["collection_name"] for ns in rows} == {folk.ESSEN}
