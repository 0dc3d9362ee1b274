"""Magenta artefacts used unchanged, end to end: a published-style checkpoint archive generates
through ``music_vae_generate`` and ``musicvae generate``, a NoteSequence TFRecord trains through
``music_vae_train --examples_path`` and converts to the same dataset as its MIDI files."""

from __future__ import annotations

import json
import re
import shutil
import tarfile

import numpy as np
import pytest

from musicvae.cli import generate as generate_cli
from musicvae.cli import train as train_cli
from musicvae.cli.main import main
from musicvae.configs import get_config
from musicvae.data.converters.groove import GrooveConverter
from musicvae.data.dataset import read_dataset
from musicvae.data.midi import read_midi
from musicvae.training.checkpoint import list_checkpoints
from tests.generation.helpers import single_torch_thread

STAMP = r"\d{4}-\d\d-\d\d_\d{6}"
# Inference-mode pitches (the first of each class in note_seq's reduced drum map), which is what
# Magenta's TrainedModel writes.
INFER_PITCHES = {36, 38, 42, 46, 45, 48, 50, 49, 51}


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with single_torch_thread():
        yield


def _published_tar(src, path):
    """An archive laid out like Magenta's published ones: model.ckpt-N.* at the top level."""
    with tarfile.open(path, "w") as tar:
        for f in sorted(src.glob("model.ckpt-5.*")):
            tar.add(f, arcname=f.name)
    return path


def _midis(folder, config, mode, n, seed=None):
    """The ``n`` MIDI files of one run, in order, named as music_vae_generate names them, or,
    given the ``seed``, as ``musicvae generate`` does."""
    paths = sorted(folder.glob("*.mid"))
    assert len(paths) == n
    for i, p in enumerate(paths):
        if seed is None:
            assert re.fullmatch(rf"{config}_{mode}_{STAMP}-{i:03d}-of-{n:03d}\.mid", p.name), p.name
        else:
            assert p.name == f"{mode}_{config}_{i:03d}_seed{seed}.mid"
    return paths


def _check_grooves(paths):
    for path in paths:
        ns = read_midi(path)
        assert len(ns) > 0 and ns.is_drum.all(), path.name
        assert set(ns.pitch.tolist()) <= INFER_PITCHES
        assert ns.start.max() < 8.0  # 4 bars at 120 BPM


def test_groovae_tar_generates_through_both_clis_and_after_import(magenta_dir, tmp_path, capsys):
    tar = _published_tar(magenta_dir / "groovae_tiny", tmp_path / "groovae_tiny.tar")
    m_out, g_out, i_out = tmp_path / "magenta", tmp_path / "musicvae", tmp_path / "imported"
    code = generate_cli.magenta_main(["--config=groovae_4bar", f"--checkpoint_file={tar}",
        f"--output_dir={m_out}", "--num_outputs=3", "--seed=7", "--no_png"])  # fmt: skip
    assert code == 0
    assert main(["generate", "--checkpoint", str(tar), "--output-dir", str(g_out),
                 "--num-outputs", "3", "--seed", "7"]) == 0  # fmt: skip
    assert main(["import-magenta", str(tar), "--config", "groovae_4bar"]) == 0
    assert main(["generate", "--checkpoint", str(tmp_path / "groovae_tiny.pt"), "--output-dir",
                 str(i_out), "--num-outputs", "3", "--seed", "7", "--no-png"]) == 0  # fmt: skip
    assert "error" not in capsys.readouterr().err
    magenta = _midis(m_out, "groovae_4bar", "sample", 3)
    ours, imported = (_midis(d, "groovae_4bar", "sample", 3, seed=7) for d in (g_out, i_out))
    assert sorted(p.name for p in g_out.glob("*.png")) == [p.with_suffix(".png").name for p in ours]
    assert not list(m_out.glob("*.png"))
    _check_grooves(magenta)
    # Same weights and seed: the same MIDI bytes whichever route loaded the checkpoint.
    for a, b, c in zip(magenta, ours, imported, strict=True):
        assert a.read_bytes() == b.read_bytes() == c.read_bytes()


def test_hierdec_tar_interpolates_and_samples(magenta_dir, groove_dir, tmp_path):
    tar = _published_tar(magenta_dir / "hierdec_tiny", tmp_path / "hierdec_tiny.tar")
    index = json.loads((magenta_dir / "converter" / "index.json").read_text())
    start, end = (groove_dir / index["files"][k]["midi_filename"] for k in (0, 8))
    out = tmp_path / "interp"
    code = generate_cli.magenta_main(["--config=groovae_4bar_hierdec", f"--checkpoint_file={tar}",
        "--mode=interpolate", f"--input_midi_1={start}", f"--input_midi_2={end}",
        f"--output_dir={out}", "--num_outputs=3", "--seed=1", "--no_png"])  # fmt: skip
    assert code == 0
    interp = _midis(out, "groovae_4bar_hierdec", "interpolate", 3)
    for path in interp:
        ns = read_midi(path)
        assert len(ns) > 0 and set(ns.pitch.tolist()) <= INFER_PITCHES
        assert ns.qpm == pytest.approx(read_midi(start).qpm)  # the first input's tempo
    # Without --config the hierarchical decoder is recognised from the variable names.
    out = tmp_path / "sample"
    assert main(["generate", "--checkpoint", str(tar), "--output-dir", str(out),
                 "--num-outputs", "2", "--seed", "1", "--no-png"]) == 0  # fmt: skip
    _check_grooves(_midis(out, "groovae_4bar_hierdec", "sample", 2, seed=1))


@pytest.mark.slow
def test_music_vae_train_on_a_tfrecord_then_generate(magenta_dir, tmp_path, capsys):
    tfrecord = magenta_dir / "tfrecord" / "groove10_notesequences.tfrecord"
    run = tmp_path / "run"
    code = train_cli.magenta_main(["--config=debug", f"--run_dir={run}",
        f"--examples_path={tfrecord}", "--num_steps=2", "--hparams=batch_size=4",
        "--device=cpu", "--seed=0"])  # fmt: skip
    assert code == 0
    assert [s for s, _ in list_checkpoints(run / "train")] == [2]
    out = capsys.readouterr().out
    assert re.search(r"^step 2: loss \d+\.\d+", out, re.M), out
    code = generate_cli.magenta_main(["--config=debug", f"--run_dir={run}",
        f"--output_dir={tmp_path / 'gen'}", "--num_outputs=2", "--seed=0", "--no_png"])  # fmt: skip
    assert code == 0
    assert len(_midis(tmp_path / "gen", "debug", "sample", 2)) == 2


def _sorted_notes(ns) -> np.ndarray:
    order = np.lexsort((ns.program, ns.is_drum, ns.end, ns.velocity, ns.pitch, ns.start))
    cols = (ns.pitch, ns.velocity, ns.start, ns.end, ns.is_drum, ns.program)
    return np.stack([np.asarray(c, np.float64)[order] for c in cols])


def test_convert_from_tfrecord_matches_converting_the_midi_files(magenta_dir, groove_dir, tmp_path):
    # Rebuild the folder Magenta converted: files 0-9 under groove10/, GMD subfolders kept.
    index = json.loads((magenta_dir / "converter" / "index.json").read_text())
    folder = tmp_path / "groove10"
    for entry in index["files"][:10]:
        dst = folder / entry["midi_filename"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(groove_dir / entry["midi_filename"], dst)
    tfrecord = magenta_dir / "tfrecord" / "groove10_notesequences.tfrecord"
    from_midi, from_record = tmp_path / "midi.parquet", tmp_path / "record.parquet"
    assert main(["convert", str(folder), "-o", str(from_midi), "--workers", "1"]) == 0
    assert main(["convert", "--from-tfrecord", str(tfrecord), "-o", str(from_record)]) == 0
    midi = {ns.filename: ns for ns in read_dataset(from_midi)}
    record = {ns.filename: ns for ns in read_dataset(from_record)}
    summary = json.loads((magenta_dir / "tfrecord" / "groove10_summary.json").read_text())
    expected = {r["filename"]: r for r in summary["records"]}
    assert set(midi) == set(record) == set(expected) and len(expected) == 10
    converter = GrooveConverter(get_config("groovae_4bar").data)
    windows = {e["midi_filename"]: e["windows"]["groovae_4bar"] for e in index["files"]}
    for name, ns in midi.items():
        other = record[name]
        # Magenta's id is the SHA-1 of the path relative to the converted folder.
        assert ns.id == other.id == expected[name]["id"]
        assert ns.ticks_per_quarter == other.ticks_per_quarter == 480
        assert ns.tempos == other.tempos and ns.time_signatures == other.time_signatures
        assert ns.meta["split"] == other.meta["split"] == "train"
        assert ns.total_time == other.total_time == expected[name]["total_time"]
        # note_seq keeps MIDI event order and we sort by (start, pitch); the notes are the same.
        np.testing.assert_array_equal(_sorted_notes(ns), _sorted_notes(other))
        a, b = converter.to_tensors(ns), converter.to_tensors(other)
        assert len(a) == len(b) == windows[name] > 0
        for x, y in zip(a.outputs, b.outputs, strict=True):
            np.testing.assert_array_equal(x, y)
