"""benchmarks/magenta.py's pieces that need no TensorFlow: the Magenta config and ``--hparams``
each of ours maps to, the melody TFRecord it writes, the parameter check and its log reading."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from musicvae.configs import get_config
from musicvae.data.dataset import read_dataset
from musicvae.data.tfrecord import read_note_sequences
from tests.helpers_melody import folk_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT / "benchmarks"))  # it imports its sibling train.py
        spec = importlib.util.spec_from_file_location(
            "bench_magenta", ROOT / "benchmarks" / "magenta.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def test_configs_map_to_magenta_names_and_size_overrides(bench):
    assert bench.magenta_config("hierdec-mel_16bar") == ("hierdec-mel_16bar", "")
    assert bench.magenta_config("groovae_4bar") == ("groovae_4bar", "")
    sizes = "enc_rnn_size=[256],dec_rnn_size=[256,256]"
    assert bench.magenta_config("mel_16bar_hierdec") == ("hierdec-mel_16bar", sizes)
    assert bench.magenta_config("mel_16bar_flat") == ("flat-mel_16bar", sizes)
    # Were ours mapped onto a Magenta config they differ from in more than its sizes:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(bench.MAGENTA_BASE, "groovae_4bar_hitcond", "groovae_4bar")
        mp.setitem(bench.MAGENTA_BASE, "groovae_4bar_hierdec", "groovae_4bar")
        with pytest.raises(SystemExit, match="no hparam hit_conditioned"):  # ours alone
            bench.magenta_config("groovae_4bar_hitcond")
        with pytest.raises(SystemExit, match="beyond its hparams"):  # another decoder
            bench.magenta_config("groovae_4bar_hierdec")
    args = argparse.Namespace(python="py", batch_size=64, steps=5)
    cmd = bench.magenta_command(args, Path("m.tfrecord"), Path("run"), "hierdec-mel_16bar", sizes)
    assert cmd[1:3] == ["-m", "magenta.models.music_vae.music_vae_train"]
    assert f"--hparams=batch_size=64,{sizes}" in cmd
    assert {"--config=hierdec-mel_16bar", "--examples_path=m.tfrecord", "--num_steps=5"} <= set(cmd)
    assert bench.hparam_text(True) == "true" and bench.hparam_text(0.5) == "0.5"


def test_melody_tfrecord_holds_the_train_split(bench, magenta_dir, tmp_path):
    source = folk_dataset(magenta_dir / "melody", tmp_path / "folk.parquet")
    out = bench.melody_tfrecord(source, tmp_path / "m.tfrecord")
    written = list(read_note_sequences(out))
    assert len(written) == 24
    first = read_dataset(source)[0]
    assert (written[0].id, list(written[0].notes)) == (first.id, list(first.notes))
    with pytest.raises(SystemExit, match="no test sequences"):
        bench.melody_tfrecord(source, tmp_path / "t.tfrecord", split="test")


def test_parameter_check_reads_magentas_checkpoint(bench, magenta_dir):
    """The tiny hierdec-mel_16bar Magenta trained with list overrides in --hparams: its
    variables are exactly those of our model at those sizes, and other sizes are refused."""
    tiny = "z_size=8,enc_rnn_size=(16,16),dec_rnn_size=(16,16)"
    train_dir = magenta_dir / "hierdec_mel_tiny"
    counts = bench.compare_variables(get_config("hierdec-mel_16bar", tiny), train_dir)
    assert counts["magenta"] == counts["musicvae_in_magenta_layout"] > 0
    assert counts["musicvae_torch"] > counts["magenta"]  # torch keeps two biases per LSTM
    with pytest.raises(SystemExit, match="differ"):
        bench.compare_variables(
            get_config("hierdec-mel_16bar", tiny.replace("z_size=8", "z_size=9")), train_dir
        )


def test_rate_leaves_out_the_checkpoints_between(bench):
    def line(time: str, message: str) -> str:
        return f"I1207 {time} 140 basic_session_run_hooks.py:1] {message}"

    log = "\n".join(
        [
            line("23:59:00.000000", "Saving checkpoints for 0 into /r/model.ckpt."),
            line("23:59:05.000000", "Calling checkpoint listeners after saving checkpoint 0..."),
            line("23:59:10.000000", "global_step = 1, loss = 3.0"),
            line("23:59:50.000000", "Saving checkpoints for 2 into /r/model.ckpt."),
            line("23:59:58.500000", "Calling checkpoint listeners after saving checkpoint 2..."),
            line("00:00:40.000000", "Saving checkpoints for 3 into /r/model.ckpt."),
        ]
    )
    assert bench.log_timing(log, 3) == {"seconds": 81.5, "checkpoint_s": [8.5]}
    with pytest.raises(SystemExit, match="final checkpoint"):
        bench.log_timing(log, 4)
