"""The PyTorch dataset: precomputed windows with hand-checked values, DataLoader batches, dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from musicvae.configs import get_config
from musicvae.data.converters.groove import GrooveConverter
from musicvae.data.dataset import write_dataset
from musicvae.data.torch_dataset import GrooveDataset, collate
from musicvae.errors import MusicVAEError

from .helpers import kick_groove


def _sequences():
    a, b, c = kick_groove(8, velocity=127), kick_groove(5, qpm=100.0), kick_groove(2)
    for i, (ns, split) in enumerate([(a, "train"), (b, "train"), (c, "test")]):
        ns.filename, ns.id, ns.meta = f"s{i}.mid", f"id{i}", {"split": split}
    return [a, b, c]


def test_windows_are_precomputed_with_the_right_values(tmp_path):
    path = write_dataset(_sequences(), tmp_path / "d.parquet")
    ds = GrooveDataset(path, get_config("groovae_4bar"), "train", workers=1)
    # 8 bars -> 5 four-bar windows, 5 bars -> 2.
    assert len(ds) == 7
    assert ds.sequence_ids == ["id0"] * 5 + ["id1"] * 2
    assert ds.outputs.shape == (7, 64, 27) and ds.outputs.dtype == torch.float32
    assert ds.controls.shape == (7, 64, 0)
    assert ds.inputs is ds.outputs  # groovae_4bar has no input transform: one copy kept
    inputs, outputs, controls, length = ds[0]
    assert inputs.shape == outputs.shape == (64, 27) and controls.shape == (64, 0)
    assert length.dtype == torch.int64 and int(length) == 64
    # A kick (class 0) on every 4th step, velocity 127/127, exactly on the grid.
    want_hits = torch.zeros(64, 9)
    want_hits[::4, 0] = 1.0
    torch.testing.assert_close(outputs[:, :9], want_hits, rtol=0, atol=0)
    torch.testing.assert_close(outputs[:, 9:18], want_hits, rtol=0, atol=0)
    assert float(outputs[:, 18:].abs().max()) < 1e-9
    # The 100-qpm file: velocity 100/127.
    assert float(ds[5][1][0, 9]) == pytest.approx(100 / 127)


def test_matches_the_converter_for_a_transforming_config():
    seqs = _sequences()
    config = get_config("groovae_2bar_tap_fixed_velocity")
    ds = GrooveDataset(seqs, config, split=None, workers=1)
    conv = GrooveConverter(config.data)
    want = []
    for ns in seqs:
        ex = conv.examples(ns)
        want += zip(ex.inputs, ex.outputs, strict=True)
    assert len(ds) == len(want) == 7 + 4 + 1
    assert ds.inputs is not ds.outputs
    for i, (x, y) in enumerate(want):
        np.testing.assert_array_equal(ds[i][0].numpy(), x)
        np.testing.assert_array_equal(ds[i][1].numpy(), y)


def test_dataloader_batches(tmp_path):
    ds = GrooveDataset(_sequences(), get_config("groovae_4bar"), "train", workers=1)
    loader = DataLoader(ds, batch_size=4, shuffle=True, collate_fn=collate)
    shapes = [tuple(t.shape for t in batch) for batch in loader]
    assert shapes == [
        ((4, 64, 27), (4, 64, 27), (4, 64, 0), (4,)),
        ((3, 64, 27), (3, 64, 27), (3, 64, 0), (3,)),
    ]
    x, y, c, n = default_collate([ds[0], ds[6]])
    assert x.shape == (2, 64, 27) and n.tolist() == [64, 64]


def test_note_dropout_is_redrawn_per_item_on_fixed_targets():
    seqs = _sequences()
    ds = GrooveDataset(
        seqs, get_config("groovae_4bar", "max_note_dropout_probability=0.8"), "train", workers=1
    )
    assert ds.inputs is None and len(ds) == 7
    torch.manual_seed(0)
    draws = torch.stack([ds[0][0] for _ in range(30)])
    # Targets never change; the inputs lose some of the 16 kicks, a different number each time.
    assert torch.equal(ds[0][1], ds.outputs[0])
    hits = draws[:, :, 0]
    assert hits.sum(1).unique().numel() > 1 and float(hits.sum(1).max()) <= 16
    assert bool((hits <= ds.outputs[0, :, 0]).all())
    torch.manual_seed(0)
    assert torch.equal(ds[0][0], draws[0])  # repeatable under torch's seed
    # With dropout probability 0 the re-drawn inputs are the plain tapify transform.
    name = "groovae_2bar_tap_fixed_velocity_note_dropout"
    no_drop = GrooveDataset(
        seqs, get_config(name, "max_note_dropout_probability=0.0"), "train", workers=1
    )
    assert no_drop.inputs is None
    plain = GrooveDataset(seqs, get_config("groovae_2bar_tap_fixed_velocity"), "train", workers=1)
    for i in range(len(plain)):
        torch.testing.assert_close(no_drop[i][0], plain[i][0], rtol=0, atol=0)


def test_split_selection_and_errors():
    seqs = _sequences()
    assert len(GrooveDataset(seqs, get_config("groovae_4bar"), "test", workers=1)) == 0
    assert len(GrooveDataset(seqs, get_config("groovae_2bar_humanize"), "test", workers=1)) == 1
    with pytest.raises(MusicVAEError, match="unknown split"):
        GrooveDataset(seqs, get_config("groovae_4bar"), "dev")
