"""NoteSequence: length, iteration over notes, and Magenta's note_seq protobuf both ways."""

from __future__ import annotations

import pytest

from musicvae.data.sequence import Note, NoteSequence, Tempo, TimeSignature


def _seq() -> NoteSequence:
    ns = NoteSequence.from_notes([(38, 90, 0.5, 0.6), (36, 100, 0.0, 0.1)], qpm=96.0, id="a")
    ns.filename = "beat.mid"
    return ns


def test_len_and_iteration_yield_notes_in_order():
    ns = _seq()
    assert len(ns) == 2
    notes = list(ns)
    assert notes[0] == Note(36, 100, 0.0, 0.1, True, 0)
    assert notes[1].pitch == 38 and notes[1].velocity == 90 and notes[1].start == 0.5
    assert all(isinstance(n, Note) for n in ns)


def test_note_seq_round_trip():
    ns = _seq()
    msg = ns.to_note_seq()
    assert [n.pitch for n in msg.notes] == [36, 38] and msg.notes[0].is_drum
    assert msg.tempos[0].qpm == 96.0 and msg.time_signatures[0].numerator == 4
    assert msg.id == "a" and msg.filename == "beat.mid"
    for back in (
        NoteSequence.from_note_seq(msg),
        NoteSequence.from_note_seq(msg.SerializeToString()),
    ):
        assert list(back) == list(ns)
        assert back.tempos == [Tempo(0.0, 96.0)]
        assert back.time_signatures == [TimeSignature(0.0, 4, 4)]
        assert back.filename == "beat.mid"


def test_from_note_seq_rejects_garbage():
    with pytest.raises(Exception):  # noqa: B017 - protobuf's DecodeError
        NoteSequence.from_note_seq(b"\xff\xff\xff")
