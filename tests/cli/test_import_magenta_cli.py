"""``musicvae import-magenta``: Magenta's tiny checkpoints to .pt files that reproduce Magenta's
posterior, from every path form, and one-line errors for bad variables, shapes and paths."""

from __future__ import annotations

import json
import shutil
import tarfile

import numpy as np
import pytest
import torch

from musicvae.cli import import_magenta
from musicvae.cli.main import build_parser, main
from musicvae.generation import load
from musicvae.interop.tf_checkpoint import read_checkpoint
from musicvae.training.checkpoint import FORMAT
from tests.interop.test_tf_checkpoint import _write_bundle

CONFIGS = {"groovae_tiny": "groovae_4bar", "hierdec_tiny": "groovae_4bar_hierdec"}
# Bidirectional 27 -> 16 encoder, mu/sigma 32 -> 8, decoder LSTMs (27 + 8 or 27 + 16 inputs) of 16
# units; torch's LSTM holds two bias vectors per layer, hence the 2 * 64 per LSTM.
LSTM = {27: 4 * 16 * (27 + 16) + 128, 35: 4 * 16 * (35 + 16) + 128, 43: 4 * 16 * (43 + 16) + 128}
ENCODER = 2 * LSTM[27] + 2 * (32 * 8 + 8)
TOP_LAYER = 4 * 16 * 32 + 128  # a 16 -> 16 LSTM layer
PROJECTION = 16 * 27 + 27
PARAMETERS = {
    "groovae_tiny": ENCODER + LSTM[35] + TOP_LAYER + (8 * 64 + 64) + PROJECTION,
    # conductor: layer 0 sees a 1-wide zero input; core decoder sees 27 + 16 (the embedding).
    "hierdec_tiny": ENCODER
    + (4 * 16 * 17 + 128 + TOP_LAYER + 8 * 64 + 64)
    + (LSTM[43] + TOP_LAYER + 16 * 64 + 64 + PROJECTION),
}


def _model_variables(folder) -> int:
    spec = json.loads((folder / "variables.json").read_text())
    return sum(1 for v in spec["variables"] if v["kind"] == "model_weight")


def _copy_checkpoint(src, dst):
    dst.mkdir(parents=True)
    for f in [*src.glob("model.ckpt-5*"), src / "checkpoint"]:
        shutil.copy(f, dst / f.name)
        (dst / f.name).chmod(0o644)  # the shared fixtures are read-only
    return dst


def test_every_flag_has_help():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for action in sub.choices["import-magenta"]._actions:
        assert action.help, action.option_strings


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_imported_checkpoint_reproduces_magentas_posterior(name, magenta_dir, tmp_path, capsys):
    src = magenta_dir / name
    out = tmp_path / "nested" / "tiny.pt"
    argv = ["import-magenta", str(src / "model.ckpt-5"), "--config", CONFIGS[name]]
    assert main([*argv, "--output", str(out), "--hparams", "max_beta=0.5"]) == 0
    n_vars, n_params = _model_variables(src), PARAMETERS[name]
    assert n_vars == (16 if name == "groovae_tiny" else 22)
    assert capsys.readouterr().out == (
        f"imported {n_vars} variables ({n_params:,} parameters, step 5) from "
        f"{src / 'model.ckpt-5'} as {CONFIGS[name]} -> {out}\n"
    )
    raw = torch.load(out, weights_only=True)
    assert raw["format"] == FORMAT and raw["step"] == 5 and raw["optimizer"] is None
    assert raw["imported_from"]["format"] == "magenta"
    assert sum(t.numel() for t in raw["model"].values()) == n_params
    hp = raw["config"]["hparams"]
    # Sizes come from the weights, other hparams from the config and --hparams.
    assert (hp["z_size"], list(hp["enc_rnn_size"]), list(hp["dec_rnn_size"])) == (8, [16], [16, 16])
    assert (hp["max_beta"], hp["free_bits"]) == (0.5, 48)
    model = load(out)
    assert model.kind != "magenta" and model.step == 5 and model.config.name == CONFIGS[name]
    ref = np.load(src / "reference.npz")
    _, mu, sigma = model.encode_tensors(ref["inputs"])
    np.testing.assert_allclose(mu, ref["mu"], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(sigma, ref["sigma"], atol=1e-5, rtol=1e-5)


def test_tar_and_run_folder_with_default_outputs(magenta_dir, tmp_path, monkeypatch, capsys):
    src = magenta_dir / "groovae_tiny"
    staged = _copy_checkpoint(src, tmp_path / "staged")
    # A published-style archive: model.ckpt-N.* (and the state file) at the top level.
    with tarfile.open(tmp_path / "groovae_4bar.tar", "w") as tar:
        for f in sorted(staged.iterdir()):
            tar.add(f, arcname=f.name)
    # A music_vae_train run folder keeps its checkpoints in RUN/train.
    run = tmp_path / "my_run"
    shutil.copytree(staged, run / "train")
    (run / "eval").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    for path, expected in [
        (tmp_path / "groovae_4bar.tar", tmp_path / "groovae_4bar.pt"),
        (run, tmp_path / "my_run.pt"),
        (run / "train", tmp_path / "my_run.pt"),
        (tmp_path / "staged" / "model.ckpt-5.index", tmp_path / "staged" / "model.ckpt-5.pt"),
    ]:
        assert main(["import-magenta", str(path), "--config", "groovae_4bar"]) == 0
        assert capsys.readouterr().out.endswith(f"-> {expected}\n")
        assert load(expected).step == 5
    assert list((tmp_path / "elsewhere").iterdir()) == []
    from_tar, from_run = (
        torch.load(tmp_path / name, weights_only=True)["model"]
        for name in ("groovae_4bar.pt", "my_run.pt")
    )
    assert all(torch.equal(from_tar[k], from_run[k]) for k in from_tar)
    # A folder we may not write to: the file lands in the current folder instead.
    monkeypatch.setattr(import_magenta.os, "access", lambda *a: False)
    assert import_magenta.default_output(run) == tmp_path / "elsewhere" / "my_run.pt"


def _bundle(prefix, tf_vars):
    dtypes = {np.dtype("float32"): 1, np.dtype("int64"): 9}
    tensors = {
        k: (dtypes[v.dtype], v.shape, np.ascontiguousarray(v).tobytes(), None)
        for k, v in tf_vars.items()
    }
    _write_bundle(prefix, tensors)
    return prefix


@pytest.fixture(scope="module")
def tiny_vars(magenta_dir):
    return read_checkpoint(magenta_dir / "groovae_tiny")


PROJ = "decoder/output_projection/kernel"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda v: {**{k: x for k, x in v.items() if k != PROJ}, PROJ + "_2": v[PROJ]},
            f"unknown variable '{PROJ}_2' for config 'groovae_4bar'",
        ),
        (
            lambda v: {k: x for k, x in v.items() if k != "encoder/sigma/bias"},
            "missing variable 'encoder/sigma/bias' for config 'groovae_4bar'",
        ),
        (
            lambda v: {**v, PROJ: v[PROJ][:, :26].copy()},
            f"variable '{PROJ}' has shape [16, 26], config 'groovae_4bar' expects [16, 27]",
        ),
    ],
    ids=["renamed", "missing", "wrong-shape"],
)
def test_bad_variables_are_one_line_naming_them(tiny_vars, tmp_path, capsys, change, message):
    prefix = _bundle(tmp_path / "model.ckpt-5", change(tiny_vars))
    out = tmp_path / "out.pt"
    assert main(["import-magenta", str(prefix), "--config", "groovae_4bar", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {prefix}: {message}") and err.count("\n") == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "model.ckpt-5.data-00000-of-00001",
        "model.ckpt-5.index",
    ]


def test_unaltered_rewritten_bundle_imports(tiny_vars, tmp_path):
    # The control for the test above: the bundle writer itself loses nothing.
    prefix = _bundle(tmp_path / "model.ckpt-5", tiny_vars)
    out, figures = import_magenta.import_checkpoint(prefix, "groovae_4bar")
    assert out == tmp_path / "model.ckpt-5.pt"
    assert figures == {
        "config": "groovae_4bar",
        "variables": 16,
        "parameters": PARAMETERS["groovae_tiny"],
        "step": 5,
    }
    # --output naming a folder puts <name>.pt inside it.
    (tmp_path / "models").mkdir()
    out, _ = import_magenta.import_checkpoint(prefix, "groovae_4bar", tmp_path / "models")
    assert out == tmp_path / "models" / "model.ckpt-5.pt" and out.is_file()


def test_path_and_config_errors(magenta_dir, tmp_path, capsys):
    missing = tmp_path / "groovae_4bar.tar"
    assert main(["import-magenta", str(missing), "--config", "groovae_4bar"]) == 1
    assert capsys.readouterr().err == (
        f"error: {missing}: no such Magenta checkpoint (expected a .tar, a prefix such as "
        "model.ckpt-N, or a run folder)\n"
    )
    hier, out = magenta_dir / "hierdec_tiny", str(tmp_path / "x.pt")
    assert main(["import-magenta", str(hier), "--config", "groovae_4bar", "-o", out]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {hier}: unknown variable 'core_decoder/") and err.count("\n") == 1
    )
    assert main(["import-magenta", str(hier), "--config", "nope", "-o", out]) == 1
    assert "unknown config 'nope'" in capsys.readouterr().err
    ours = tmp_path / "model.ckpt-5.pt"
    ours.write_bytes(b"")
    assert main(["import-magenta", str(ours), "--config", "groovae_4bar"]) == 1
    assert (
        capsys.readouterr().err
        == f"error: {ours}: already a musicvae checkpoint; nothing to import\n"
    )
    assert not (tmp_path / "x.pt").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "sub" / "x.pt"
    assert main(["import-magenta", str(hier), "--config", CONFIGS["hierdec_tiny"],
                 "-o", str(target)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith(f"error: {target}: cannot write checkpoint (") and err.count("\n") == 1


def test_any_output_name_reads_back(magenta_dir, tmp_path):
    out = tmp_path / "g.ckpt"  # not .pt: the content says what it is
    assert main(["import-magenta", str(magenta_dir / "groovae_tiny"), "--config",
                 "groovae_4bar", "-o", str(out)]) == 0  # fmt: skip
    assert main(["generate", "--checkpoint", str(out), "--output-dir", str(tmp_path / "o"),
                 "--num-outputs", "1", "--no-png"]) == 0  # fmt: skip
    assert len(list((tmp_path / "o").glob("*.mid"))) == 1


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_is_guessed_when_left_out(name, magenta_dir, tmp_path, capsys):
    src, out = magenta_dir / name, tmp_path / "guessed.pt"
    argv = ["import-magenta", str(src), "-o", str(out), "--hparams", "max_beta=0.5"]
    assert main(argv) == 0
    assert capsys.readouterr().out.endswith(
        f" as {CONFIGS[name]} (guessed from its variables) -> {out}\n"
    )
    raw = torch.load(out, weights_only=True)
    assert raw["config"]["name"] == CONFIGS[name]
    assert raw["config"]["hparams"]["max_beta"] == 0.5  # --hparams apply after the guess


def test_a_checkpoint_no_config_fits_needs_one(tiny_vars, tmp_path, capsys):
    prefix = _bundle(tmp_path / "model.ckpt-5", {**tiny_vars, PROJ: tiny_vars[PROJ][:, :26].copy()})
    assert main(["import-magenta", str(prefix), "-o", str(tmp_path / "x.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {prefix}: no registered config fits this checkpoint (")
    assert err.endswith("pass its config by name\n") and err.count("\n") == 1
    assert not (tmp_path / "x.pt").exists()
