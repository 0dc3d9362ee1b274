"""Melody transposition in training: a shift moves the pitch classes and nothing else, shifts
never push a note off the piano, draws repeat per (seed, step), and a transposed run trains
and resumes exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.transpose import Transposition, shift_bounds, transpose_windows
from musicvae.errors import ConfigError
from musicvae.plotting.curves import read_scalars
from musicvae.training.checkpoint import load_checkpoint
from tests.helpers_melody import TINY_MELODY, folk_dataset, train_tiny_melody

NO_EVENT, NOTE_OFF = 0, 1  # classes


def pitch(midi: int) -> int:
    return midi - 19  # class 2 is MIDI 21 (A0)


def window(classes: list[int], steps: int = 8) -> torch.Tensor:
    """(steps, 90) one-hot of ``classes``, zero (padding) after them."""
    w = torch.zeros(steps, 90)
    w[torch.arange(len(classes)), torch.tensor(classes)] = 1.0
    return w


# C4 held, off, rest, E4, G4 held, then padding.
MELODY = [pitch(60), NO_EVENT, NOTE_OFF, NO_EVENT, pitch(64), pitch(67), NO_EVENT]


def test_a_shift_moves_every_pitch_class_and_nothing_else():
    batch = torch.stack([window(MELODY), window(MELODY)])
    out = transpose_windows(batch, torch.tensor([2, -3]))
    assert out.argmax(-1)[0, :7].tolist() == [
        pitch(62),
        NO_EVENT,
        NOTE_OFF,
        NO_EVENT,
        pitch(66),
        pitch(69),
        NO_EVENT,
    ]
    assert out.argmax(-1)[1, :7].tolist() == [pitch(57), 0, 1, 0, pitch(61), pitch(64), 0]
    assert not out[:, 7].any()  # padding stays zero
    assert out.dtype == torch.float32 and (out.sum(-1)[:, :7] == 1).all()
    assert torch.equal(transpose_windows(batch, torch.tensor([0, 0])), batch)


def test_bounds_keep_every_note_on_the_piano():
    low_note = window([pitch(23), pitch(60)])  # B0: two semitones above A0
    high_note = window([pitch(60), pitch(105)])  # A7: three below C8
    both = window([pitch(21), pitch(108)])
    empty = window([NO_EVENT, NOTE_OFF])
    lo, hi = shift_bounds(torch.stack([low_note, high_note, both, empty]), -5, 5)
    assert lo.tolist() == [-2, -5, 0, -5] and hi.tolist() == [5, 3, 0, 5]
    # An all-positive range is cut at the top, as note_seq's _clamp_transpose cuts it.
    lo, hi = shift_bounds(high_note[None], 4, 6)
    assert (lo.item(), hi.item()) == (3, 3)


def test_draws_repeat_per_seed_and_step_and_cover_the_range():
    aug = Transposition(-5, 5, seed=3)
    batch = torch.stack([window(MELODY)] * 16)
    assert torch.equal(aug.shifts(batch, 7), aug.shifts(batch, 7))
    assert not torch.equal(aug.shifts(batch, 7), aug.shifts(batch, 8))
    assert not torch.equal(aug.shifts(batch, 7), Transposition(-5, 5, seed=4).shifts(batch, 7))
    seen = torch.cat([aug.shifts(batch, s) for s in range(20)])
    assert set(seen.tolist()) == set(range(-5, 6))
    edge = torch.stack([window([pitch(106)])] * 16)  # B7: one semitone of room up
    assert set(torch.cat([aug.shifts(edge, s) for s in range(20)]).tolist()) == set(range(-5, 3))


def test_a_batch_moves_inputs_and_outputs_together():
    aug = Transposition(-5, 5, seed=0)
    outputs = torch.stack([window(MELODY)] * 4)
    controls, lengths = torch.zeros(4, 8, 0), torch.full((4,), 8)
    inputs, new, c, n = aug((outputs.clone(), outputs, controls, lengths), step=2)
    assert torch.equal(inputs, new) and c is controls and n is lengths
    shifts = aug.shifts(outputs, 2)
    assert torch.equal(new, transpose_windows(outputs, shifts))
    assert torch.equal(outputs, torch.stack([window(MELODY)] * 4))  # the batch is not changed


def test_which_configs_transpose():
    aug = Transposition.from_config(get_config("cat-mel_2bar_small"), seed=1, rank=2)
    assert aug == Transposition(-5, 5, seed=1, rank=2)
    assert Transposition.from_config(get_config(TINY_MELODY), seed=0) is not None
    for name in ("flat-mel_16bar", "hierdec-mel_16bar", "hier-mel_16bar", "groovae_4bar"):
        assert Transposition.from_config(get_config(name), seed=0) is None
    assert Transposition.from_config(get_config(TINY_MELODY, "transpose_range=[0,0]"), 0) is None
    # The config itself refuses an option its converter does not read.
    with pytest.raises(ConfigError, match="groove converter does not read transpose_range"):
        get_config("groovae_4bar", "transpose_range=[-2,2]")


@pytest.mark.slow
def test_a_transposed_melody_run_trains_and_resumes_exactly(magenta_dir, tmp_path, monkeypatch):
    dataset = folk_dataset(magenta_dir / "melody", tmp_path / "folk.parquet")
    full = train_tiny_melody(tmp_path / "full", dataset, steps=4)
    assert full.step == 4 and math.isfinite(full.train["loss"])
    train_tiny_melody(tmp_path / "resumed", dataset, steps=2)
    assert train_tiny_melody(tmp_path / "resumed", dataset, steps=4).step == 4
    a = read_scalars(tmp_path / "full" / "train")
    b = read_scalars(tmp_path / "resumed" / "train")
    assert a["loss"][0].tolist() == b["loss"][0].tolist() == [0, 1, 2, 3]
    assert a["loss"][1].tolist() == b["loss"][1].tolist()
    wa = load_checkpoint(tmp_path / "full")[0].state_dict()
    wb = load_checkpoint(tmp_path / "resumed")[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # Transposition changes what it trains on: untransposed, the first batch has another loss.
    monkeypatch.setattr(Transposition, "from_config", staticmethod(lambda *_, **__: None))
    plain = train_tiny_melody(tmp_path / "plain", dataset, steps=1)
    assert plain.train["loss"] != a["loss"][1][0]


def test_a_chord_model_transposes_its_chords_with_its_melody():
    """Magenta transposes the whole sequence, so a window's chords move with its notes."""
    from musicvae.data.chords import chord_encoding, encode_chords

    config = get_config("cat-mel_2bar_med_chords")
    aug = Transposition.from_config(config, seed=3)
    assert aug is not None and aug.chord_encoding == "triad"
    enc = chord_encoding("triad")
    melody = torch.zeros(2, 32, 90)
    melody[:, :, 2 + 60 - 21] = 1.0  # middle C held: every shift in -3..3 fits
    chords = torch.from_numpy(np.stack([encode_chords("C Am", 32, enc)] * 2))
    batch = (melody, melody, chords, torch.full((2,), 32))
    _, out, moved, _ = aug(batch, step=5)
    shifts = out.argmax(-1)[:, 0] - melody.argmax(-1)[:, 0]
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    for b in range(2):
        k = int(shifts[b])
        decoded = enc.decode_steps(moved[b].numpy())
        assert decoded[0] == names[k % 12] and decoded[-1] == names[(9 + k) % 12] + "m"
