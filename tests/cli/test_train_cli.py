"""``musicvae train`` / ``musicvae plot`` and Magenta's ``music_vae_train`` flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from musicvae.cli.main import build_parser, main
from musicvae.cli.train import magenta_main, magenta_parser
from musicvae.plotting.curves import read_scalars
from musicvae.training.checkpoint import list_checkpoints
from tests.training.helpers import make_dataset


@pytest.fixture(scope="module")
def dataset(groove_dir, tmp_path_factory):
    return make_dataset(groove_dir, tmp_path_factory.mktemp("cli") / "small.parquet")


def _subparser(name):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[name]


@pytest.mark.parametrize(
    "parser", [lambda: _subparser("train"), lambda: _subparser("plot"), magenta_parser]
)
def test_every_flag_has_help(parser):
    for action in parser()._actions:
        assert action.help, action.option_strings


@pytest.mark.slow
def test_train_then_plot(tmp_path, dataset, capsys):
    run = tmp_path / "run"
    args = ["train", "--config", "debug", "--run-dir", str(run), "--examples", str(dataset),
            "--num-steps", "3", "--seed", "0", "--eval-every", "3", "--eval-num-batches", "1",
            "--checkpoint-every", "2", "--checkpoints-to-keep", "1", "--log-every", "1",
            "--threads", "1", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "step 3: loss" in out and "eval at step 3: loss" in out
    assert f"checkpoint: {run / 'train' / 'model.ckpt-3.pt'}" in out
    assert [s for s, _ in list_checkpoints(run / "train")] == [3]
    # --mode eval evaluates the latest checkpoint once more, logging to RUN/eval.
    assert main(["train", "--config", "debug", "--run-dir", str(run), "--examples", str(dataset),
                 "--mode", "eval", "--eval-num-batches", "1"]) == 0  # fmt: skip
    assert "eval at step 3" in capsys.readouterr().out
    assert main(["plot", str(run), "--output", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_magenta_flags_train_and_eval_on_a_magenta_tfrecord(tmp_path, magenta_dir, capsys):
    # A NoteSequence TFRecord written by Magenta's convert_dir_to_note_sequences: every record
    # is training data, and --mode=eval reads the whole file, as Magenta does.
    tfrecord = magenta_dir / "tfrecord" / "groove10_notesequences.tfrecord"
    run = tmp_path / "run"
    common = ["--config=debug", f"--run_dir={run}", f"--examples_path={tfrecord}",
              "--hparams=batch_size=4,z_size=4", "--device=cpu"]  # fmt: skip
    code = magenta_main([*common, "--mode=train", "--num_steps=2", "--checkpoints_to_keep=3",
                         "--cache_dataset=false", "--seed=1"])  # fmt: skip
    assert code == 0
    assert [s for s, _ in list_checkpoints(run / "train")] == [2]
    assert "loss" in read_scalars(run / "train")
    assert not (run / "eval").exists()  # Magenta evaluates in its own --mode=eval process
    code = magenta_main([*common, "--mode", "eval", "--eval_num_batches", "2",
                         "--eval_dir_suffix=_val", "--nocache_dataset"])  # fmt: skip
    assert code == 0
    scalars = read_scalars(run / "eval_val")
    assert scalars["loss"][0].tolist() == [2]
    assert {"losses/r_loss", "losses/kl_bits", "metrics/hit_accuracy"} <= set(scalars)
    assert "eval at step 2" in capsys.readouterr().out


def test_missing_examples_is_one_error_line(tmp_path, capsys):
    missing = tmp_path / "nope.parquet"
    assert main(["train", "--config", "debug", "--run-dir", str(tmp_path / "r"),
                 "--examples", str(missing)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err == f"error: {missing}: no such examples file\n"
    assert (
        magenta_main(["--config=debug", f"--run_dir={tmp_path}", f"--examples_path={missing}"]) == 1
    )
    assert capsys.readouterr().err == f"error: {missing}: no such examples file\n"
    assert not (tmp_path / "r").exists()


def test_bad_config_and_hparams_are_one_line(tmp_path, dataset, capsys):
    base = ["train", "--run-dir", str(tmp_path / "r"), "--examples", str(dataset)]
    assert main([*base, "--config", "nope"]) == 1
    assert "unknown config 'nope'" in capsys.readouterr().err
    assert main([*base, "--config", "debug", "--hparams", "z_sise=3"]) == 1
    err = capsys.readouterr().err
    assert "unknown hparam 'z_sise'" in err and err.count("\n") == 1
    assert magenta_main(["--config=debug", f"--run_dir={tmp_path}", f"--examples_path={dataset}",
                         "--mode=eval"]) == 1  # fmt: skip
    assert capsys.readouterr().err == (
        f"error: {tmp_path}: no checkpoints (model.ckpt-STEP.pt) in this run folder\n"
    )
    assert magenta_main(["--config=debug", "--run_dir=r", f"--examples_path={dataset}",
                         "--tfds_name=groove/4bar-midionly"]) == 1  # fmt: skip
    assert "--tfds_name groove/4bar-midionly: not supported" in capsys.readouterr().err


def test_command_line_exit_code(tmp_path):
    missing = tmp_path / "missing.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "musicvae.cli.main", "train", "--config", "groovae_4bar",
         "--run-dir", str(tmp_path / "run"), "--examples", str(missing)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: {missing}: no such examples file"]


def test_both_forms_build_train_options(tmp_path, dataset):
    from musicvae.cli import train as train_cli

    run = tmp_path / "run"
    args = build_parser().parse_args(["train", "--config", "debug", "--run-dir", str(run),
                                      "--examples", str(dataset), "--num-steps", "0",
                                      "--eval-num-batches", "2", "--threads", "1", "--no-amp",
                                      "--max-time", "1h30m", "--no-progress"])  # fmt: skip
    config, options = train_cli._options(args)
    assert config.name == "debug"
    assert (options.run_dir, options.examples) == (run, dataset)
    assert options.num_steps is None  # 0: until interrupted
    assert (options.eval_num_batches, options.threads, options.max_time) == (2, 1, 5400.0)
    assert options.amp is False and options.progress is False
    assert options.eval_every == 1000 and options.checkpoint_every is None
    magenta = magenta_parser().parse_args([
        "--config=debug", f"--run_dir={run}", f"--examples_path={dataset}", "--num_steps=7",
        "--checkpoints_to_keep=2", "--hparams=batch_size=4", "--seed=3"])  # fmt: skip
    config, options = train_cli._magenta_options(magenta)
    assert config.hparams.batch_size == 4
    assert (options.run_dir, options.examples, options.num_steps) == (run, dataset, 7)
    assert (options.checkpoints_to_keep, options.seed, options.device) == (2, 3, "auto")
    assert options.eval_every == 0  # Magenta evaluates in its own --mode=eval process
    assert options.eval_num_batches is None and options.amp is True
