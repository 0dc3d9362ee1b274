"""Bad input, every command: a non-zero exit, one ``error:`` line naming the problem, no
traceback, and nothing left behind."""

from __future__ import annotations

import os

import pytest

from musicvae.cli.main import main
from tests.test_configs import BAD_OVERRIDES


@pytest.fixture(scope="module")
def files(tmp_path_factory, groove_dir):
    """A folder of bad and good inputs, and a dataset file."""
    from musicvae.data.convert import convert_folder, write_report

    d = tmp_path_factory.mktemp("bad")
    (d / "empty.mid").write_bytes(b"")
    (d / "text.mid").write_text("not a MIDI file\n")
    (d / "truncated.mid").write_bytes(
        b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10"
    )
    (d / "notes.txt").write_text("hello")
    (d / "folder.mid").mkdir()
    (d / "folder.parquet").mkdir()
    (d / "a_file").write_text("x")
    (d / "garbage.parquet").write_bytes(os.urandom(256))
    (d / "garbage.safetensors").write_bytes(os.urandom(256))
    (d / "garbage.pt").write_bytes(os.urandom(256))
    (d / "empty_dir").mkdir()
    src = d / "src"
    src.mkdir()
    good = groove_dir / "drummer1/session1/1_funk_80_beat_4-4.mid"
    (src / "good.mid").write_bytes(good.read_bytes())
    data = write_report(convert_folder(src, workers=1), d / "data.parquet", str(src))
    return d, data


def _cases():
    c = []
    # Settings, wherever --hparams is taken.
    for override, message in BAD_OVERRIDES:
        c.append((["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{data}",
                   "--hparams", override], message))  # fmt: skip
        c.append((["dataset", "stats", "{data}", "--config", "debug", "--hparams", override],
                  message))  # fmt: skip
        c.append((["explain", "--config", "groovae_4bar", "--hparams", override], message))
    c += [
        (
            ["train", "--config", "nope", "--run-dir", "{d}/run", "--examples", "{data}"],
            "unknown config 'nope'",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{d}/missing"],
            "no such examples file",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--max-time",
                "soon",
            ],
            "--max-time 'soon'",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--max-time",
                "0s",
            ],
            "--max-time '0s'",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--num-steps",
                "-1",
            ],
            "--num-steps -1",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--init-from",
                "{d}/missing.pt",
            ],
            "missing.pt",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--device",
                "cuda:7",
            ],
            "cuda",
        ),
        (["generate", "--output-dir", "{d}/out", "--num-outputs", "0"], "--num-outputs"),
        (["generate", "--output-dir", "{d}/out", "--num-outputs", "1000000"], "--num-outputs"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "0"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "nan"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "inf"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "-1"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--device", "cuda"], "CUDA is not available"),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/missing.pt"], "missing.pt"),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/garbage.pt"], "garbage.pt"),
        (
            ["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/garbage.safetensors"],
            "garbage.safetensors",
        ),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/empty_dir"], "empty_dir"),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/notes.txt"], "notes.txt"),
        (["generate", "--output-dir", "{d}/a_file"], "a_file"),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/text.mid",
            ],
            "text.mid",
        ),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/empty.mid",
            ],
            "empty.mid",
        ),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/truncated.mid",
            ],
            "truncated.mid",
        ),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/folder.mid",
            ],
            "folder.mid",
        ),
        (["generate", "--output-dir", "{d}/out", "--mode", "interpolate"], "input"),
        (["evaluate", "--examples", "{d}/missing.parquet"], "missing.parquet"),
        (["evaluate", "--examples", "{d}/garbage.parquet"], "garbage.parquet"),
        (["evaluate", "--examples", "{d}/folder.parquet"], "folder.parquet"),
        (["evaluate", "--examples", "{data}", "--device", "cuda"], "CUDA is not available"),
        (["evaluate", "--examples", "{data}", "--split", "validation"], "validation"),
        (["evaluate", "--examples", "{data}", "--batch-size", "0"], "--batch-size"),
        (["evaluate", "--examples", "{data}", "--checkpoint", "{d}/garbage.pt"], "garbage.pt"),
        (["dataset", "stats", "{d}/missing.parquet"], "missing.parquet"),
        (["dataset", "stats", "{d}/garbage.parquet"], "garbage.parquet"),
        (["dataset", "stats", "{d}/notes.txt"], "notes.txt"),
        (["convert", "{d}/missing_dir", "-o", "{d}/x.parquet"], "missing_dir"),
        (["convert", "{d}/empty_dir", "-o", "{d}/x.parquet"], "no MIDI files"),
        (["convert", "{d}/src", "-o", "{d}/folder.parquet"], "folder.parquet"),
        (["convert", "{d}/src", "-o", "/dev/null"], "/dev/null"),
        (["convert", "{d}/src", "-o", "{d}/a_file/x.parquet"], "a_file"),
        (["convert", "--from-tfrecord", "{d}/notes.txt", "-o", "{d}/x.parquet"], "notes.txt"),
        (["export", "{d}/missing", "-o", "{d}/x.safetensors"], "missing"),
        (["export", "groovae_4bar", "-o", "{d}/x.pt"], ".safetensors"),
        (["export", "{d}/garbage.pt", "-o", "{d}/x.safetensors"], "garbage.pt"),
        (["plot", "{d}/missing"], "missing"),
        (["plot", "{d}/empty_dir"], "empty_dir"),
        (["render", "{d}/text.mid", "-o", "{d}/x.wav"], "text.mid"),
        (["render", "{d}/missing.mid", "-o", "{d}/x.wav"], "missing.mid"),
        (["render", "{d}/src/good.mid", "-o", "{d}/folder.mid"], "folder.mid"),
        (["render", "{d}/src/good.mid", "-o", "/dev/null"], "/dev/null"),
        (["import-magenta", "{d}/garbage.pt", "--config", "groovae_4bar"], "garbage.pt"),
        (["import-magenta", "{d}/missing", "--config", "groovae_4bar"], "missing"),
        (["explain", "--config", "nope"], "unknown config 'nope'"),
        (["explain", "--config", "groovae_4bar", "--batch", "0"], "--batch"),
    ]
    # Flags checked by argparse (exit 2, one line).
    for argv, message in [
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "r",
                "--examples",
                "e",
                "--threads",
                "100000",
            ],
            "--threads",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--threads", "0"],
            "--threads",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "r",
                "--examples",
                "e",
                "--workers",
                "100000",
            ],
            "--workers",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--seed", "-1"],
            "--seed",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "r",
                "--examples",
                "e",
                "--seed",
                str(2**64),
            ],
            "--seed",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--seed", "x"],
            "--seed",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--device", "tpu"],
            "--device",
        ),
        (["generate", "--output-dir", "o", "--seed", "-5"], "--seed"),
        (["generate", "--output-dir", "o", "--device", "gpu"], "--device"),
        (["generate", "--output-dir", "o", "--mode", "dance"], "--mode"),
        (["evaluate", "--examples", "e", "--seed", "1.5"], "--seed"),
        (["evaluate", "--examples", "e", "--split", "dev"], "--split"),
        (["studio", "--port", "70000"], "--port"),
        (["studio", "--port", "-1"], "--port"),
        (["studio", "--threads", "100000"], "--threads"),
        (["studio", "--device", "quantum"], "--device"),
        (["convert", "x", "-o", "y", "--workers", "0"], "--workers"),
        (["convert", "x", "-o", "y", "--workers", "100000"], "--workers"),
        (["convert", "x", "-o", "y", "--format", "csv"], "--format"),
        (["dataset", "stats", "x", "--workers", "-2"], "--workers"),
        (["demo", "--num-outputs", "0"], "--num-outputs"),
        (["demo", "--temperature", "0"], "--temperature"),
        (["demo", "--seed", "-1"], "--seed"),
        (["train", "--config", "debug"], "required"),
        (["nonsense"], "invalid choice"),
    ]:
        c.append((argv, message))
    return c


CASES = _cases()


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_clear_line(files, capsys, argv, message, one_thread):
    d, data = files
    before = sorted(p.name for p in d.iterdir())
    argv = [a.replace("{d}", str(d)).replace("{data}", str(data)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len([x for x in lines if "error:" in x]) == 1, err
    assert "Traceback" not in err
    assert message in err, err
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    after = sorted(p.name for p in d.iterdir() if p.name not in ("run", "out"))
    assert after == [n for n in before if n not in ("run", "out")], "a file was left behind"


def test_there_are_many_cases():
    assert len(CASES) >= 150
