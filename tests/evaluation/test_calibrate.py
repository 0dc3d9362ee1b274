"""The spread a model's heads leave out, stored in a bundle and used for prior samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicvae.cli.main import main
from musicvae.data.dataset import write_dataset
from musicvae.evaluation.calibrate import output_spread
from musicvae.generation import load
from musicvae.models.decoder import spread_tensor
from tests.generation.helpers import debug_run, groove


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    seqs = []
    for i, split in enumerate(["validation", "validation", "train"]):
        ns = groove(5, qpm=100.0, id=f"s{i}", filename=f"s{i}.mid", ticks_per_quarter=9600)
        ns.meta["split"] = split
        seqs.append(ns)
    return write_dataset(seqs, tmp_path_factory.mktemp("cal") / "d.parquet")


def test_output_spread_shapes_and_counts(tmp_path, dataset):
    model = load(debug_run(tmp_path, "hit_conditioned=true"))
    sp = output_spread(model, dataset, "validation")
    assert len(sp["velocity"]) == len(sp["offset"]) == 9 and sp["split"] == "validation"
    # Two 5-bar files in 4-bar windows slid by a bar: 4 windows; every bar has 2 kicks.
    assert sp["hits"][0] == 4 * 4 * 2 and sp["hits"][3] == 0
    assert all(v >= 0 for v in sp["velocity"]) and sp["velocity"][3] == 0.0
    assert spread_tensor(sp).shape == (2, 9) and spread_tensor(None) is None


def test_export_stores_the_spread_and_sampling_uses_it(tmp_path, dataset, capsys):
    run = debug_run(tmp_path, "hit_conditioned=true")
    out = tmp_path / "m.safetensors"
    assert main(["export", str(run), "-o", str(out), "--spread-from", str(dataset)]) == 0
    m = load(out)
    assert m.spread is not None and len(m.spread["velocity"]) == 9
    assert json.loads(m.metadata["output_spread"]) == m.spread
    with_spread = m.sample_tensors(4, 1.0, seed=3)
    without = m.sample_tensors(4, 1.0, seed=3, spread=False)
    assert with_spread.shape == without.shape == (4, 64, 27)
    assert not np.array_equal(with_spread, without)


def test_output_spread_measures_centers_and_gains(tmp_path, dataset):
    model = load(debug_run(tmp_path, "hit_conditioned=true"))
    sp = output_spread(model, dataset, "validation")
    for key in ("velocity_center", "velocity_gain", "offset_center", "offset_gain"):
        assert len(sp[key]) == 9, key
    assert all(1.0 <= g <= 3.0 for g in sp["velocity_gain"] + sp["offset_gain"])
    # No open hi-hat in these grooves: nothing to widen.
    assert sp["velocity_gain"][3] == sp["offset_gain"][3] == 1.0
    assert sp["velocity_center"][0] <= 0.0  # a mean log velocity
