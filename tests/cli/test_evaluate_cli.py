"""``musicvae evaluate``: tables, JSON and exit codes."""

from __future__ import annotations

import json

import pytest

from musicvae.cli.main import main
from tests.evaluation.test_evaluate import make_dataset
from tests.generation.helpers import debug_run, single_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with single_torch_thread():
        yield


def test_json_and_text(tmp_path, capsys):
    data = make_dataset(tmp_path / "d.parquet")
    run = debug_run(tmp_path / "run")
    argv = [
        "evaluate",
        "--checkpoint",
        str(run),
        "--examples",
        str(data),
        "--batch-size",
        "2",
        "--num-prior-samples",
        "3",
    ]
    assert main([*argv, "--json", "--output", str(tmp_path / "r.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_windows"] == 4 and report["split"] == "test"
    assert set(report["teacher_forced"]["per_class"]) >= {"kick", "snare", "ride"}
    assert json.loads((tmp_path / "r.json").read_text()) == report
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "ELBO at z = mu" in text and "near-greedy" in text and "prior samples" in text
    assert main([*argv[:-4], "--split", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_sequences"] == 3


def test_errors(tmp_path, capsys):
    run = debug_run(tmp_path / "run")
    assert main(["evaluate", "--checkpoint", str(run), "--examples", str(tmp_path / "no")]) == 1
    assert "no such dataset file" in capsys.readouterr().err
    data = make_dataset(tmp_path / "d.parquet")
    assert (
        main(
            ["evaluate", "--checkpoint", str(run), "--examples", str(data), "--split", "validation"]
        )
        == 1
    )
    assert "validation" in capsys.readouterr().err
