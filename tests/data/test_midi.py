"""MIDI I/O: write/read round trips, tempo maps, early hits and broken files."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.data.midi import MidiError, read_midi, read_midi_bytes, write_midi
from musicvae.data.sequence import NoteSequence, Tempo

NOTES = [(36, 100, 0.0, 0.1), (38, 80, 0.5, 0.6), (42, 64, 0.25, 0.3), (46, 127, 1.75, 1.9)]


def test_round_trip_keeps_every_note(tmp_path):
    ns = NoteSequence.from_notes(NOTES, qpm=100)
    back = read_midi(write_midi(ns, tmp_path / "a.mid"))
    assert back.qpm == pytest.approx(100, abs=1e-3)
    assert [(p, v) for p, v, *_ in back.notes] == [(36, 100), (42, 64), (38, 80), (46, 127)]
    np.testing.assert_allclose(back.start, [0.0, 0.25, 0.5, 1.75], atol=1e-4)
    np.testing.assert_allclose(back.end, [0.1, 0.3, 0.6, 1.9], atol=1e-4)
    assert back.is_drum.all()
    assert [(t.numerator, t.denominator) for t in back.time_signatures] == [(4, 4)]


def test_note_before_zero_is_moved_to_zero_not_lost(tmp_path):
    ns = NoteSequence.from_notes([(36, 100, -0.01, 0.1), (38, 90, 0.5, 0.6)])
    back = read_midi(write_midi(ns, tmp_path / "early.mid"))
    assert [p for p, *_ in back.notes] == [36, 38]
    assert back.start[0] == 0.0


def test_tempo_change_places_notes_at_their_seconds(tmp_path):
    # 120 qpm for 2 s, then 60 qpm: a note at 3 s sits 1 s (one quarter) after the change.
    ns = NoteSequence.from_notes([(36, 100, 1.0, 1.1), (38, 100, 3.0, 3.5)])
    ns.tempos = [Tempo(0.0, 120.0), Tempo(2.0, 60.0)]
    back = read_midi(write_midi(ns, tmp_path / "tempo.mid"))
    assert [round(t.qpm, 3) for t in back.tempos] == [120.0, 60.0]
    np.testing.assert_allclose(back.start, [1.0, 3.0], atol=1e-4)
    np.testing.assert_allclose(back.end, [1.1, 3.5], atol=1e-4)


def test_written_file_has_normal_permissions(tmp_path):
    path = write_midi(NoteSequence.from_notes(NOTES), tmp_path / "p.mid")
    assert path.stat().st_mode & 0o044  # readable by group/others (umask permitting)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, not midi at all", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00", "not a MIDI file"),
    ],
)
def test_broken_bytes_name_the_file(data, reason):
    with pytest.raises(MidiError, match=rf"^x\.mid: {reason}"):
        read_midi_bytes(data, filename="x.mid")


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(MidiError, match="nope.mid: cannot read"):
        read_midi(tmp_path / "nope.mid")


@pytest.mark.parametrize("bpm", [6e7, 10.0, 401.0])
def test_tempos_no_performance_has_are_refused(tmp_path, bpm):
    import symusic

    from musicvae.data.midi import MidiError, read_midi

    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, bpm))
    track = symusic.Track(program=0, is_drum=True)
    track.notes.append(symusic.Note(0, 120, 36, 100))
    score.tracks.append(track)
    path = tmp_path / "fast.mid"
    score.dump_midi(str(path))
    with pytest.raises(MidiError, match=r"fast.mid: tempo .* qpm is outside 20-400"):
        read_midi(path)


def test_a_header_only_midi_is_reported_not_converted(tmp_path):
    import symusic

    from musicvae.data.convert import convert_folder

    symusic.Score(480).dump_midi(str(tmp_path / "empty.mid"))
    report = convert_folder(tmp_path, workers=1)
    assert report.sequences == [] and report.skipped[0].endswith("empty.mid: has no notes")
