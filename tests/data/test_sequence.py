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


def test_notes_reads_as_note_seq_users_expect():
    ns = _seq()
    assert len(ns.notes) == 2  # a Magenta habit: len(ns.notes)
    first, second = ns.notes
    assert [n.pitch for n in ns.notes] == [36, 38] and ns.notes[-1] == second
    assert (first.start_time, first.end_time, second.velocity) == (0.0, 0.1, 90)
    assert first.is_drum and first.instrument == 9 and first.program == 0
    assert ns.notes[:1] == [first] and ns.notes == list(ns) and 38 in [n.pitch for n in ns.notes]
    assert [n.instrument for n in ns.to_note_seq().notes] == [n.instrument for n in ns.notes]
    melody = NoteSequence.from_notes([(60, 80, 0.0, 1.0)], is_drum=False)
    assert melody.notes[0].instrument == 0 and not melody.notes[0].is_drum
    assert len(NoteSequence().notes) == 0 and list(NoteSequence().notes) == []
    with pytest.raises(IndexError):
        ns.notes[2]
    with pytest.raises(TypeError, match=r"write ns\.notes"):
        ns.notes()
