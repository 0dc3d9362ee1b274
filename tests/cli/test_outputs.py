"""Nothing a user owns is overwritten, and nothing hangs (issue 30, point 3).

Every command that writes a file the user names refuses, in one ``error:`` line and before any
work, an output that is one of its inputs, a folder (a trailing slash), a path under a file or
another format's suffix; an empty run folder is refused; a SoundFont that is not a regular
file, too large or damaged (a sample rate of 0) is one line; and every size a user picks has a
cap, each a one-line error.
"""

from __future__ import annotations

import importlib
import os
import signal
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from musicvae.cli.main import main
from musicvae.errors import MusicVAEError
from tests.cli.test_bad_inputs import EOT, HIT, TEMPO, TS44, _groove, _smf, _vlq
from tests.generation.helpers import groove


@contextmanager
def deadline(seconds: int = 30):
    """Fail instead of hanging (a FIFO read would block for ever)."""

    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")

    before = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder (the current one) with a groove MIDI file, a one-file MIDI folder, a dataset, a
    plain file and a bundle copy."""
    from musicvae.data.convert import convert_folder, write_report
    from musicvae.generation.api import bundled_path

    midi = tmp_path / "song.mid"
    midi.write_bytes(_smf(_groove(4)))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.mid").write_bytes(midi.read_bytes())
    data = write_report(convert_folder(tmp_path / "src", workers=1), tmp_path / "data.parquet", "")
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "model.safetensors").write_bytes(bundled_path("groovae_4bar").read_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path, midi, data


@pytest.fixture
def no_load(monkeypatch):
    """Fails the test if a refused command gets as far as loading a model."""

    def fail(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    import musicvae.generation
    import musicvae.generation.api

    monkeypatch.setattr(musicvae.generation, "load", fail)
    monkeypatch.setattr(musicvae.generation.api, "load", fail)


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def _one_error_line(capsys, code, message):
    err = capsys.readouterr().err
    assert code not in (0, None), err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    assert message in lines[0], err
    return lines[0]


def _run(argv: list[str], entry=main) -> int | None:
    try:
        with deadline():
            return entry(argv)
    except SystemExit as e:  # argparse's one-line usage errors
        return e.code  # type: ignore[return-value]


OUTPUT_CASES = [
    # render song.mid -o song.mid turned the input MIDI into a WAV, with exit 0.
    ("render_over_its_input", ["render", "song.mid", "-o", "song.mid"],
     "song.mid: is one of the command's inputs; refusing to write over it"),
    ("render_over_its_input_by_another_name", ["render", "song.mid", "-o", "./src/../song.mid"],
     "is one of the command's inputs (song.mid)"),
    ("render_trailing_slash", ["render", "song.mid", "-o", "out/"],
     "out/: names a folder (it ends in '/')"),
    ("render_mp3", ["render", "song.mid", "-o", "x.mp3"],
     "x.mp3: the output is a WAV file (not .mp3); give it a name ending in .wav"),
    ("render_no_suffix", ["render", "song.mid", "-o", "x"], "it has no suffix"),
    ("render_over_its_soundfont", ["render", "song.mid", "-o", "song.mid.sf2", "--soundfont",
                                   "song.mid.sf2"], "is one of the command's inputs"),
    ("plot_trailing_slash", ["plot", ".", "-o", "p/"], "p/: names a folder"),
    ("plot_jpg", ["plot", ".", "-o", "p.jpg"], "the output is a PNG picture"),
    # evaluate --output over its --examples replaced the dataset, and over a MIDI file too.
    ("evaluate_over_its_examples", ["evaluate", "--examples", "data.parquet", "--output",
                                    "data.parquet"], "data.parquet: is one of the command's inputs"),
    ("evaluate_over_a_midi_file", ["evaluate", "--examples", "data.parquet", "--output",
                                   "song.mid"], "song.mid: the output is a JSON report (not .mid)"),
    ("evaluate_trailing_slash", ["evaluate", "--examples", "data.parquet", "--output", "rep/"],
     "rep/: names a folder"),
    # evaluated for 40 s, then failed: now it fails before the model is loaded.
    ("evaluate_under_a_file", ["evaluate", "--examples", "data.parquet", "--output",
                               "a_file/x.json"], "a_file/x.json: cannot write"),
    ("export_over_its_source", ["export", "model.safetensors", "-o", "model.safetensors"],
     "model.safetensors: is one of the command's inputs"),
    ("export_trailing_slash", ["export", "model.safetensors", "-o", "b.safetensors/"],
     "names a folder"),
    ("export_under_a_file", ["export", "model.safetensors", "-o", "a_file/b.safetensors"],
     "cannot write"),
    ("convert_trailing_slash", ["convert", "src", "-o", "out/"], "out/: names a folder"),
    ("convert_json", ["convert", "src", "-o", "x.json"],
     "x.json: the output is a Parquet dataset (not .json)"),
    ("convert_parquet_named_tfrecord", ["convert", "src", "-o", "x.tfrecord", "--format",
                                        "parquet"], "the output is a Parquet dataset"),
    ("convert_tfrecord_named_parquet", ["convert", "src", "-o", "x.parquet", "--format",
                                        "tfrecord"], "the output is a NoteSequence TFRecord"),
    ("explain_trailing_slash", ["explain", "--config", "debug", "--diagram", "d/"],
     "d/: names a folder"),
    ("generate_into_its_input", ["generate", "--mode", "humanize", "--input-midi-1", "song.mid",
                                 "--output-dir", "song.mid"], "song.mid: is a file, not a folder"),
    ("generate_under_a_file", ["generate", "--output-dir", "a_file/out"],
     "a_file/out: cannot write (a_file is a file, not a folder)"),
    # train --run-dir '' trained into the current folder.
    ("train_empty_run_dir", ["train", "--config", "debug", "--run-dir", "", "--examples",
                             "data.parquet"], "an empty run folder name"),
    ("train_examples_inside_its_run", ["train", "--config", "debug", "--run-dir", ".",
                                       "--examples", "train/data.parquet"],
     "is inside the run folder's train/ folder"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"), [c[1:] for c in OUTPUT_CASES], ids=[c[0] for c in OUTPUT_CASES]
)
def test_an_output_never_replaces_an_input(work, no_load, capsys, argv, message):
    root, _, _ = work
    (root / "song.mid.sf2").write_bytes(b"RIFF")
    (root / "train").mkdir()
    (root / "train" / "data.parquet").write_bytes((root / "data.parquet").read_bytes())
    before = _snapshot(root)
    _one_error_line(capsys, _run(argv), message)
    assert _snapshot(root) == before  # every input untouched, nothing written


def test_import_magenta_never_writes_over_its_checkpoint(tmp_path, capsys):
    tar = tmp_path / "model.tar"
    tar.write_bytes(b"not read: the output is refused first")
    prefix = tmp_path / "model.ckpt-5"
    for part in (".index", ".data-00000-of-00001"):
        Path(f"{prefix}{part}").write_bytes(b"x")
    before = _snapshot(tmp_path)
    for argv, message in [
        ([str(tar), "-o", str(tar)], "model.tar: is one of the command's inputs"),
        ([str(prefix), "-o", f"{prefix}.data-00000-of-00001"], "is one of the command's inputs"),
        ([str(prefix), "-o", f"{prefix}.index"], "is one of the command's inputs"),
        ([str(prefix), "-o", str(tmp_path / "x.index")], "the output is a musicvae checkpoint"),
        ([str(tar), "-o", str(tmp_path / "new") + "/"], "names a folder"),
        ([str(tar), "-o", str(tmp_path / "x.safetensors")], "not .safetensors"),
    ]:
        _one_error_line(capsys, _run(["import-magenta", *argv]), message)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        # music_vae_train --run_dir= trained into the current folder.
        ("train", ["--config=debug", "--run_dir=", "--examples_path=data.parquet"],
         "an empty run folder name"),
        # music_vae_generate --run_dir= gave a traceback.
        ("generate", ["--config=groovae_4bar", "--run_dir=", "--output_dir=out"],
         "--run_dir is empty"),
        ("generate", ["--config=groovae_4bar", "--checkpoint_file=", "--output_dir=out"],
         "--checkpoint_file is empty"),
    ],
)  # fmt: skip
def test_magenta_commands_refuse_an_empty_run_dir(work, no_load, capsys, command, argv, message):
    root, _, _ = work
    before = _snapshot(root)
    entry = importlib.import_module(f"musicvae.cli.{command}").magenta_main
    _one_error_line(capsys, _run(argv, entry), message)
    assert _snapshot(root) == before


# ------------------------------------------------------------------------------ SoundFonts


def _font_with_rate(rate: int) -> bytes:
    """The test SoundFont with its drum sample ("burst") recorded at ``rate``."""
    from tests.helpers_sf2 import _name, build_sf2

    data = bytearray(build_sf2())
    at = data.index(_name("burst"))
    data[at + 36 : at + 40] = struct.pack("<I", rate)
    return bytes(data)


def test_sample_rates_are_read_from_the_sample_headers():
    from musicvae.soundfont import sample_rates
    from tests.helpers_sf2 import RATE, build_sf2

    assert sample_rates(build_sf2()) == [("burst", RATE), ("tone", RATE), ("bass", RATE)]
    assert sample_rates(_font_with_rate(0))[0] == ("burst", 0)
    assert sample_rates(b"RIFF\x04\x00\x00\x00sfbk") == []


@pytest.mark.parametrize(
    ("font", "message"),
    [
        ("fifo", "fifo.sf2: cannot read the SoundFont (not a regular file"),  # hung for ever
        ("/dev/zero", "/dev/zero: cannot read the SoundFont (not a regular file"),  # 9.7 GB
        ("huge", "huge.sf2: 1,025 MB; a SoundFont of at most 1,024 MB is read"),
        ("rate0", "rate0.sf2: sample 'burst' has a sample rate of 0 Hz"),  # 88 s of silence
        ("rate_absurd", "sample 'burst' has a sample rate of 1,000,000,000 Hz"),
        ("folder", "folder.sf2: cannot read the SoundFont (it is a folder)"),
    ],
)
def test_a_soundfont_that_is_not_a_regular_sane_file_is_one_line(work, capsys, font, message):
    from musicvae.soundfont import MAX_SOUNDFONT_BYTES

    root, midi, _ = work
    path = root / f"{font}.sf2"
    if font == "fifo":
        os.mkfifo(path)
    elif font == "huge":
        with open(path, "wb") as f:  # sparse: costs no disk
            f.truncate(MAX_SOUNDFONT_BYTES + 2**20)
    elif font == "rate0":
        path.write_bytes(_font_with_rate(0))
    elif font == "rate_absurd":
        path.write_bytes(_font_with_rate(10**9))
    elif font == "folder":
        path.mkdir()
    else:
        path = Path(font)
    out = root / "out.wav"
    _one_error_line(capsys, _run(["render", str(midi), "-o", str(out), "--soundfont", str(path)]),
                    message)  # fmt: skip
    assert not out.exists()


# ------------------------------------------------------------------------------------ caps


@pytest.fixture(scope="module")
def model():
    import musicvae

    return musicvae.load("groovae_4bar")


def _late(seconds: float):
    """A 4-bar groove with one more hit ``seconds`` in (a corrupt delta time)."""
    ns = groove(4)
    ns.end[-1] = seconds
    return ns


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # interpolate: 100,000 steps reached 3.8 GB.
        (lambda m: m.interpolate(groove(4), groove(4), 100_000),
         "interpolate: steps must be 2 to 10,000 (both ends included), got 100,000"),
        (lambda m: m.interpolate(groove(4), groove(4), 1), "steps must be 2 to 10,000"),
        (lambda m: m.extend(groove(4), 4, n=10**6), "continue: n must be 1 to 10,000"),
        (lambda m: m.extend(groove(4), 4, n=0), "n must be 1 to 10,000, got 0"),
        # Notes placed at t = 1e7 s: a 5 GB grid.
        (lambda m: m.encode(_late(1e7)), "5,000,000 bars; a sequence of at most 2,000 bars"),
        (lambda m: m.reconstruct(_late(1e7)), "a sequence of at most 2,000 bars"),
        (lambda m: m.extend(_late(1e7), 4), "a sequence of at most 2,000 bars"),
        # Seeds: 2^64 - 1 on the command line, an overflow at 2^70 in the API.
        (lambda m: m.sample(1, seed=2**70), "seed 1180591620717411303424: out of range"),
        (lambda m: m.sample(1, seed=2**64), "expected 0 to 18,446,744,073,709,551,615"),
        (lambda m: m.sample(1, seed=-1), "seed -1: out of range"),
        (lambda m: m.sample(1, seed=1.5), "seed 1.5: expected an integer"),
        (lambda m: m.reconstruct(groove(4), seed=2**70), "out of range"),
        (lambda m: m.interpolate(groove(4), groove(4), 3, seed=2**70), "out of range"),
    ],
)  # fmt: skip
def test_api_caps_are_one_line(model, call, message):
    with pytest.raises(MusicVAEError) as e:
        call(model)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_largest_seed_works_where_seeds_are_derived_from_it(model):
    from musicvae.validation import MAX_SEED

    assert len(model.sample(1, seed=MAX_SEED)) == 1
    assert len(model.reconstruct(groove(4), seed=MAX_SEED)) > 0  # decodes with seed + 1
    assert len(model.extend(groove(4), 2, n=2, seed=MAX_SEED)) == 2


def test_the_studio_path_cap():
    """The studio's route builds its own path with ``slerp_path``: the cap is there too."""
    from musicvae.generation.latent import MAX_STEPS, slerp_path

    assert slerp_path(np.zeros(2), np.ones(2), MAX_STEPS).shape == (MAX_STEPS, 2)
    with pytest.raises(MusicVAEError, match="steps must be 1 to 10,000"):
        slerp_path(np.zeros(2), np.ones(2), MAX_STEPS + 1)


def test_cli_interpolate_steps_are_capped(work, capsys):
    argv = ["generate", "--mode", "interpolate", "--input-midi-1", "song.mid", "--input-midi-2",
            "song.mid", "--num-outputs", "100000", "--output-dir", "out"]  # fmt: skip
    _one_error_line(capsys, _run(argv), "--num-outputs")


def test_dataset_stats_refuses_a_sequence_too_long(work, tmp_path, capsys):
    """A 12 MB MIDI file became 46,872 windows and 3.7 GB in `dataset stats` (and training)."""
    from musicvae.data.dataset import write_dataset

    long = _late(1e5)  # 50,000 bars at 120 qpm
    long.filename = "long.mid"
    data = write_dataset([groove(8, filename="ok.mid"), long], tmp_path / "long.parquet")
    _one_error_line(capsys, _run(["dataset", "stats", str(data), "--workers", "1"]),
                    "long.mid: 50,000 bars; a sequence of at most 2,000 bars is read")  # fmt: skip


def test_convert_skips_a_file_too_long_and_keeps_the_others(work, capsys):
    root, midi, _ = work
    folder = root / "mixed"
    folder.mkdir()
    (folder / "good.mid").write_bytes(midi.read_bytes())
    # One hit, then one 2^28 - 1 tick delta: 140,000 bars of silence.
    (folder / "late.mid").write_bytes(
        _smf(TEMPO + TS44 + b"\x00" + HIT + _vlq(2**28 - 1) + HIT + EOT)
    )
    assert _run(["convert", str(folder), "-o", "mixed.parquet", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "late.mid: 139,810 bars; a sequence of at most 2,000 bars is read" in err, err
    from musicvae.data.dataset import read_dataset

    assert [ns.filename for ns in read_dataset(root / "mixed.parquet")] == ["good.mid"]


def test_render_caps_the_length_and_writes_the_wav_a_block_at_a_time(work, capsys, monkeypatch):
    """A 59-minute file took 5 GB to render: half an hour is the cap, and the WAV is written in
    blocks, byte for byte what wav_bytes gives."""
    import musicvae.audio as audio
    from musicvae.cli.render import MAX_RENDER_S

    root, midi, _ = work
    minutes = MAX_RENDER_S // 60 + 1
    bars = minutes * 30  # 2 s bars at 120 qpm
    long = root / "long.mid"
    long.write_bytes(_smf(TEMPO + TS44 + b"\x00" + HIT + _vlq(bars * 4 * 480) + HIT + EOT))
    _one_error_line(capsys, _run(["render", str(long), "-o", "long.wav"]),
                    f"long.mid: {minutes} minutes long; render plays at most 30 minutes")  # fmt: skip
    assert not (root / "long.wav").exists()
    monkeypatch.setattr(audio, "WAV_BLOCK", 1000)
    for samples in (np.linspace(-1.5, 1.5, 4321), np.linspace(-1, 1, 5000).reshape(-1, 2)):
        out = audio.write_wav_samples(root / "s.wav", samples.astype(np.float32))
        assert out.read_bytes() == audio.wav_bytes(samples.astype(np.float32))


# ------------------------------------------------------------------------ compare_models.py


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "nothing to compare: give --model"),  # printed an empty table, exit 0
        (["--model", "{root}/missing.safetensors"], "missing.safetensors"),
        (["--model", "groovae_4bar", "--examples", "{root}/missing.parquet"],
         "missing.parquet: no such dataset file"),
        (["--model", "groovae_4bar", "--split", "dev"], "argument --split: invalid choice"),
        (["--reports", "{root}/missing.json"], "missing.json: no such reports file"),
        (["--reports", "{root}/song.mid"], "song.mid: cannot read the reports"),
        (["--reports", "{root}/bad.json"], "bad.json: not JSON"),
        (["--reports", "{root}/list.json"], "list.json: not a list of compare_models reports"),
        (["--reports", "{root}/empty.json"], "empty.json: holds no reports"),
        (["--reports", "{root}/empty.json", "--json", "{root}/data.parquet"],
         "data.parquet: is one of the command's inputs"),
        (["--reports", "{root}/empty.json", "--plot", "{root}/p/"], "names a folder"),
    ],
)  # fmt: skip
def test_compare_models_errors_are_one_line(work, capsys, argv, message):
    from tests.test_scripts import _script

    root, _, data = work
    (root / "bad.json").write_text("{not json")
    (root / "list.json").write_text('[{"config": "debug"}]')
    (root / "empty.json").write_text("[]")
    before = _snapshot(root)
    compare = _script("compare_models")
    argv = ["--examples", str(data), *[a.replace("{root}", str(root)) for a in argv]]
    _one_error_line(capsys, _run(argv, compare.main), message)
    assert _snapshot(root) == before
