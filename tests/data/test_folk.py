"""``musicvae data folk``: ABC splitting, splits, skip rules (no music21 needed), and the command on
3 tunes of music21's O'Neill corpus when music21 is installed."""

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
    assert main(["data", "folk", "-o", str(out), "--limit", "3", "--workers", "1"]) == 0
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
    assert main(["data", "folk", "-o", str(again), "--limit", "3", "--workers", "1"]) == 0
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
