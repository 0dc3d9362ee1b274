"""Checkpoints: self-describing, atomic, pruned, and reloaded into an identical model."""

from __future__ import annotations

import pytest
import torch

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.models import build_model
from musicvae.training.checkpoint import (
    FORMAT,
    checkpoint_path,
    config_changes,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)


def _model_and_optimizer(config, steps=2):
    torch.manual_seed(0)
    model = build_model(config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = (torch.rand(4, 64, 27) > 0.8).float()
    for step in range(steps):  # move away from the init so Adam has state
        out = model(x, x, torch.full((4,), 64), step=step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    return model, opt, x


def test_save_load_gives_identical_outputs(tmp_path):
    config = get_config("debug", "z_size=4")
    model, opt, x = _model_and_optimizer(config)
    path = save_checkpoint(
        tmp_path / "train", model=model, config=config, step=7, optimizer=opt, seed=3
    )
    assert path == tmp_path / "train" / "model.ckpt-7.pt"

    loaded, loaded_config, step, state = load_checkpoint(path)
    assert step == 7 and loaded_config == config and not loaded.training
    assert state["seed"] == 3 and state["format"] == FORMAT and state["musicvae_version"]
    model.eval()
    lengths = torch.full((4,), 64)
    with torch.no_grad():
        a, b = model(x, x, lengths, step=7), loaded(x, x, lengths, step=7)
    for key in ("loss", "r_loss", "kl_bits", "hit_accuracy"):
        assert torch.equal(a[key], b[key]), key
    mu_a, sigma_a = model.encode(x, lengths)
    mu_b, sigma_b = loaded.encode(x, lengths)
    assert torch.equal(mu_a, mu_b) and torch.equal(sigma_a, sigma_b)
    # Sampling from one file is enough: same seed, same drums.
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(model.sample(3, generator=g1), loaded.sample(3, generator=g2))
    # The optimizer state round-trips too.
    opt2 = torch.optim.Adam(loaded.parameters(), lr=1e-2)
    opt2.load_state_dict(state["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == 2


def test_checkpoint_is_plain_data_and_self_describing(tmp_path):
    config = get_config("groovae_4bar_hierdec", "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16]")
    model = build_model(config)
    path = save_checkpoint(tmp_path, model=model, config=config, step=0)
    raw = torch.load(path, weights_only=True)  # no pickled classes
    assert raw["config"]["decoder"] == "hierarchical"
    assert raw["config"]["hparams"]["dec_rnn_size"] == (16, 16)
    assert set(raw["model"]) == set(model.state_dict())
    assert {"torch", "numpy", "python"} <= set(raw["rng"])
    loaded, loaded_config, _, _ = load_checkpoint(path)
    assert loaded_config == config and type(loaded.decoder).__name__ == "HierarchicalLstmDecoder"


def test_latest_in_run_dir_and_pruning(tmp_path):
    config = get_config("debug")
    model = build_model(config)
    train_dir = tmp_path / "run" / "train"
    for step in (5, 10, 100, 20):
        save_checkpoint(train_dir, model=model, config=config, step=step, keep=3)
    # Pruning keeps the newest steps, compared as numbers (100 > 20).
    assert [s for s, _ in list_checkpoints(train_dir)] == [10, 20, 100]
    assert latest_checkpoint(tmp_path / "run") == checkpoint_path(train_dir, 100)
    assert latest_checkpoint(train_dir) == checkpoint_path(train_dir, 100)
    assert load_checkpoint(tmp_path / "run")[2] == 100
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in train_dir.iterdir()) == [
        "model.ckpt-10.pt",
        "model.ckpt-100.pt",
        "model.ckpt-20.pt",
    ]


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(MusicVAEError, match="no such checkpoint file or run folder"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MusicVAEError, match="no checkpoints"):
        load_checkpoint(tmp_path / "empty")
    bad = tmp_path / "model.ckpt-1.pt"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(MusicVAEError, match="not a readable musicvae checkpoint") as e:
        read_checkpoint(bad)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(MusicVAEError, match="not a musicvae checkpoint"):
        load_checkpoint(bad)
    # Weights of one config do not load into another.
    config = get_config("debug")
    path = save_checkpoint(tmp_path / "x", model=build_model(config), config=config, step=1)
    with pytest.raises(MusicVAEError, match="do not fit config"):
        load_checkpoint(path, config=get_config("debug", "z_size=4"))


def test_config_changes_name_each_changed_field():
    saved = get_config("groovae_4bar", "batch_size=128").to_dict()
    same = get_config("groovae_4bar", "batch_size=128")
    assert config_changes(saved, same) == []
    changed = get_config("groovae_4bar", "batch_size=128,free_bits=256,enc_rnn_size=[64]")
    assert config_changes(saved, changed) == [
        "hparams.enc_rnn_size: [512] -> [64]",
        "hparams.free_bits: 48.0 -> 256.0",
    ]


def test_config_changes_read_fields_newer_than_the_checkpoint_as_defaults():
    saved = get_config("groovae_4bar").to_dict()
    del saved["hparams"]["word_dropout"]  # a checkpoint written before the field existed
    assert config_changes(saved, get_config("groovae_4bar")) == []
    assert config_changes(saved, get_config("groovae_4bar", "word_dropout=0.25")) == [
        "hparams.word_dropout: 0.0 -> 0.25"
    ]


def test_a_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path, capsys):
    from musicvae.configs import get_config
    from musicvae.models import build_model
    from musicvae.training.checkpoint import (
        list_checkpoints,
        load_checkpoint,
        newest_readable,
        save_checkpoint,
    )

    config = get_config("debug")
    model = build_model(config)
    for step in (1, 2):
        save_checkpoint(tmp_path / "train", model=model, config=config, step=step)
    newest = tmp_path / "train" / "model.ckpt-2.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # a copy cut short
    _, _, step, _ = load_checkpoint(tmp_path)
    assert step == 1
    assert "model.ckpt-2.pt: not a readable musicvae checkpoint" in capsys.readouterr().err
    path, state = newest_readable(tmp_path / "train", set_aside=True)
    assert path.name == "model.ckpt-1.pt" and state["step"] == 1
    assert [s for s, _ in list_checkpoints(tmp_path / "train")] == [1]
    assert (tmp_path / "train" / "model.ckpt-2.pt.corrupt").exists()


def test_which_best_needs_a_best_checkpoint(tmp_path):
    from musicvae.configs import get_config
    from musicvae.errors import MusicVAEError
    from musicvae.models import build_model
    from musicvae.training.checkpoint import latest_checkpoint, save_checkpoint

    config = get_config("debug")
    save_checkpoint(tmp_path / "train", model=build_model(config), config=config, step=3)
    with pytest.raises(MusicVAEError, match="no best checkpoint yet"):
        latest_checkpoint(tmp_path, "best")
    assert latest_checkpoint(tmp_path).name == "model.ckpt-3.pt"


# A training run whose second checkpoint write stalls after its first bytes reach the disk, so
# that the test can SIGKILL it in the middle of the write.
_STALLS_MID_WRITE = r"""
import sys, time
from pathlib import Path
from musicvae.training import checkpoint as ckpt

marker, real_write, saves = Path(sys.argv[1]), ckpt.write_checkpoint, []

class Stall(ckpt._WriteErrors):
    def write(self, data):
        n = self.f.write(data)
        self.f.flush()
        marker.touch()
        time.sleep(600)
        return n

def write_checkpoint(path, payload):
    saves.append(path)
    if len(saves) == 2:
        ckpt._WriteErrors = Stall
    return real_write(path, payload)

ckpt.write_checkpoint = write_checkpoint
from musicvae.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_checkpoint_write(tmp_path, small_dataset, capsys):
    import os
    import subprocess
    import sys
    import time

    from musicvae.cli.main import main

    run, marker, log = tmp_path / "run", tmp_path / "writing", tmp_path / "child.log"
    args = ["train", "--config", "debug", "--run-dir", str(run), "--examples",
            str(small_dataset), "--checkpoint-every", "3", "--eval-every", "0", "--threads",
            "1", "--seed", "1", "--no-progress"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _STALLS_MID_WRITE, str(marker), *args, "--num-steps", "9"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the child never reached its second checkpoint"
            time.sleep(0.05)
        proc.kill()
        assert proc.wait(30) == -9
    train_dir = run / "train"
    (partial,) = train_dir.glob(".model.ckpt-6.pt.*.tmp")  # cut short; never renamed
    assert partial.stat().st_size > 0
    assert [s for s, _ in list_checkpoints(train_dir)] == [3]
    old = time.time() - 3600  # the rerun cleans temps an interrupted write left (not fresh ones)
    os.utime(partial, (old, old))

    assert main([*args, "--num-steps", "6"]) == 0
    err = capsys.readouterr().err
    assert "resuming from step 3 (" in err and "warning" not in err
    assert [s for s, _ in list_checkpoints(train_dir)] == [3, 6]
    assert read_checkpoint(checkpoint_path(train_dir, 6))["step"] == 6
    assert not list(train_dir.glob("*.tmp"))
