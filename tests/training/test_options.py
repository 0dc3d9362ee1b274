"""TrainOptions checks its own fields; the command line takes its defaults from them."""

import math
import subprocess
import sys

import pytest

from musicvae.errors import MusicVAEError
from musicvae.training.options import TrainOptions, default


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_steps", -1, "--num-steps -1: must be 0 or more"),
        ("eval_every", -5, "--eval-every -5: must be 0 or more"),
        ("eval_num_batches", 0, "--eval-num-batches 0: must be 1 or more"),
        ("checkpoint_every", 0, "--checkpoint-every 0: must be 1 or more"),
        ("checkpoint_secs", math.nan, "--checkpoint-secs nan: must be 0 or more"),
        ("checkpoints_to_keep", -1, "--checkpoints-to-keep -1: must be 0 or more"),
        ("log_every", 0, "--log-every 0: must be 1 or more"),
        ("workers", -1, "--workers -1: must be 0 or more"),
        ("threads", 0, "--threads 0: must be 1 or more"),
        ("print_every", 0, "--print-every 0: must be 1 or more"),
        ("max_time", 0.0, "--max-time 0.0: must be more than 0"),
    ],
)
def test_a_bad_field_is_one_line(tmp_path, field, value, message):
    with pytest.raises(MusicVAEError) as e:
        TrainOptions(run_dir=tmp_path, examples=tmp_path / "x.parquet", **{field: value})
    assert str(e.value) == message


def test_none_and_zero_mean_the_defaults_behaviour(tmp_path):
    options = TrainOptions(
        run_dir=str(tmp_path), examples="x.parquet", num_steps=None, eval_every=0
    )
    assert options.num_steps is None and options.run_dir == tmp_path


def test_the_command_lines_defaults_are_the_fields():
    from musicvae.cli.main import build_parser
    from musicvae.cli.train import magenta_parser

    args = build_parser().parse_args(
        ["train", "--config", "c", "--run-dir", "r", "--examples", "e"]
    )
    for name in ("num_steps", "eval_every", "checkpoints_to_keep", "log_every", "workers"):
        assert getattr(args, name) == default(name), name
    assert args.print_every == default("print_every")
    magenta = magenta_parser().parse_args(
        ["--config", "c", "--run_dir", "r", "--examples_path", "e"]
    )
    assert magenta.num_steps == default("num_steps")
    assert magenta.checkpoints_to_keep == default("checkpoints_to_keep")


def test_the_options_module_loads_without_torch():
    code = "import sys, musicvae.training.options; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
