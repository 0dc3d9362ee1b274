"""What a run tells its user: durations, log lines off a terminal, SIGTERM and --max-time stops."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.training.checkpoint import list_checkpoints
from musicvae.training.progress import Reporter, format_duration, parse_duration
from musicvae.training.trainer import TrainOptions, train


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("45m", 2700.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("0.5h", 1800.0),
    ],  # fmt: skip
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 hours", "h", "-5m", "0", "0s", "1x", "nan"])
def test_parse_duration_rejects(text):
    with pytest.raises(MusicVAEError, match="--max-time"):
        parse_duration(text)


def test_format_duration():
    assert format_duration(42) == "42 s"
    assert format_duration(17 * 60) == "17 min"
    assert format_duration(3 * 3600 + 5 * 60) == "3 h 05 min"
    assert format_duration(1121 * 3600) == "46.7 days"


def test_reporter_lines_eta_and_recipe_hint():
    out = io.StringIO()
    r = Reporter(enabled=True, start_step=0, num_steps=200_000, batch_size=512, lines=True,
                 print_every=10, out=out)  # fmt: skip
    r._timing = (20, time.monotonic() - 10.0)  # 10 steps in 10 s after warm-up: 1 step/s
    r.step_done(30, {"loss": 123.4, "kl_bits": 48.2, "hit_accuracy": 0.9512,
                     "examples_per_sec": 512.0})  # fmt: skip
    text = out.getvalue().splitlines()
    assert text[0].startswith("51") and "examples/s: step 200000 in about 2.3 days" in text[0]
    assert "more than a day" in text[1] and "batch_size=128 --num-steps 10000" in text[1]
    assert text[2].startswith("step 30/200000, loss 123.4, KL 48.2 bits, hit accuracy 0.951, ")
    assert text[2].endswith("ETA 2.3 days") and "512 examples/s" in text[2]
    # A melody model (categorical decoder) has no hit accuracy; its line shows its accuracy.
    assert ", accuracy 0.420, " in r.line(40, {"loss": 1.0, "accuracy": 0.42})
    assert ", hit accuracy nan, " in r.line(40, {"loss": 1.0})
    quiet = io.StringIO()
    r2 = Reporter(enabled=False, start_step=0, num_steps=10, batch_size=8, lines=True,
                  print_every=1, out=quiet)  # fmt: skip
    r2.step_done(1, {"loss": 1.0})
    assert quiet.getvalue() == ""  # other ranks are silent


@pytest.mark.slow
def test_max_time_stops_with_a_checkpoint(tmp_path, small_dataset):
    options = TrainOptions(run_dir=tmp_path / "run", examples=small_dataset, num_steps=10**6,
                           seed=0, eval_every=0, threads=1, progress=False, max_time=1.0)  # fmt: skip
    result = train(get_config("debug"), options)
    assert result.stopped_by == "max-time" and 0 < result.step < 10**6
    assert list_checkpoints(tmp_path / "run" / "train")[-1][0] == result.step


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_the_step_and_a_rerun_resumes(tmp_path, small_dataset, sig, code):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "musicvae.cli.main", "train", "--config", "debug",
           "--run-dir", str(run), "--examples", str(small_dataset), "--num-steps", "0",
           "--eval-every", "0", "--threads", "1", "--print-every", "10", "--seed", "1"]  # fmt: skip
    log = tmp_path / "log.txt"
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "step 10, loss" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        proc.send_signal(sig)
        assert proc.wait(60) == code
    text = log.read_text()
    assert "train debug on" in text and "bf16 autocast" in text  # the start-up summary
    assert "step 10, loss" in text and "examples/s" in text  # log lines, not a silent bar
    assert "Traceback" not in text
    saved = list_checkpoints(run / "train")[-1][0]
    assert f"saved step {saved}; rerun the same command to resume" in text
    again = subprocess.run([*cmd[:-6], "--num-steps", str(saved + 2), "--eval-every", "0",
                            "--threads", "1"], capture_output=True, text=True, timeout=120,
                           env={**os.environ})  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"resuming from step {saved} (" in again.stderr
    assert f"finished at step {saved + 2}" in again.stderr
