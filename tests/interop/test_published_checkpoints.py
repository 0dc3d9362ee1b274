"""Magenta's published melody and drum checkpoints, as ``.tar`` files, through every command.

Magenta publishes ``cat-mel_2bar_big``, ``hierdec-mel_16bar``, ``cat-drums_2bar_small``
(``.lokl`` and ``.hikl``) and ``nade-drums_2bar_full`` as ``.tar`` files holding a TF1
checkpoint (``NAME.ckpt.index`` and ``.data-00000-of-00001``, no state file). They cannot be
downloaded here, so each config is tested on a tiny checkpoint of its layout, packed the same
way: Magenta's own tiny runs (``../shared/data/magenta/*_tiny``; ``cat_mel_tiny`` has
``cat-mel_2bar_small``'s 2 decoder layers, which ``cat-mel_2bar_big`` takes as it reads the
sizes off the variables) and, for the full drum map's NADE, which has no tiny run, variables
exported from the config at tiny sizes. ``musicvae import-magenta`` (with and without
``--config``), ``musicvae generate --checkpoint X.tar`` (with and without ``--config``) and
Magenta's ``music_vae_generate --checkpoint_file=X.tar`` sample and interpolate, and the MIDI
they write is each family's: melodies on a General MIDI program, drums on channel 10 with each
class's first pitch. One checkpoint is written at the published size (``cat-drums_2bar_small``)
and imported with the right shapes, and importing a published-size ``nade-drums_2bar_full``
stays under twice the model's size in memory (``benchmarks/import_magenta.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from musicvae.cli.generate import magenta_main
from musicvae.cli.main import main
from musicvae.configs import get_config
from musicvae.data.converters import build_converter
from musicvae.data.midi import read_midi
from musicvae.families import family_of
from musicvae.generation import load
from musicvae.interop.magenta import export_magenta_variables, variable_map
from musicvae.interop.tf_checkpoint import list_variables, write_bundle
from musicvae.models import build_model
from tests.generation.helpers import single_torch_thread

ROOT = Path(__file__).resolve().parents[2]
# Published config -> (Magenta's tiny run of its layout, or None: exported here; the config
# guess_config picks from the variables).
CASES = {
    "cat-mel_2bar_big": ("cat_mel_tiny", "cat-mel_2bar_small"),
    "hierdec-mel_16bar": ("hierdec_mel_tiny", "hierdec-mel_16bar"),
    "hier-mel_16bar": ("hier_mel_tiny", "hier-mel_16bar"),
    "cat-drums_2bar_small": ("cat_drums_tiny", "cat-drums_2bar_small"),
    "nade-drums_2bar_reduced": ("nade_drums_tiny", "nade-drums_2bar_reduced"),
    "nade-drums_2bar_full": (None, "nade-drums_2bar_full"),
}
# The file names Magenta publishes them under (.lokl and .hikl are the same config).
TAR_NAMES = {"cat-drums_2bar_small": "cat-drums_2bar_small.hikl"}
TINY = "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16],nade_num_hidden=8"
MELODIES = ("01.mid", "08.mid")  # 16 bars and more: long enough for every melody config
GMD_FILES = (
    "drummer1/session1/1_funk_80_beat_4-4.mid",
    "drummer1/session1/100_neworleans-secondline_94_beat_4-4.mid",
)


def pack(prefix: Path, archive: Path, stem: str) -> Path:
    """The checkpoint at ``prefix`` in an uncompressed tar as Magenta publishes them:
    ``STEM.ckpt.index`` and ``.data-00000-of-00001`` at the top level, no state file."""
    with tarfile.open(archive, "w") as tar:
        for f in sorted(prefix.parent.glob(f"{prefix.name}.*")):
            tar.add(f, arcname=f"{stem}.ckpt{f.name.removeprefix(prefix.name)}")
    return archive


def exported(config_name: str, overrides: str | None, folder: Path, seed: int = 0) -> Path:
    """A checkpoint of ``config_name``'s freshly initialised model (random weights) in
    Magenta's variable names and layouts; returns its prefix."""
    torch.manual_seed(seed)
    model = build_model(get_config(config_name, overrides))
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {**export_magenta_variables(model), "global_step": np.array(42, np.int64)}
    return write_bundle(folder / "model.ckpt-42", tensors)


@pytest.fixture(scope="module")
def tars(magenta_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("published")
    out = {}
    for name, (tiny, _) in CASES.items():
        if tiny is None:
            prefix = exported(name, TINY, root / name)
        else:
            prefix = magenta_dir / tiny / "model.ckpt-5"
        out[name] = pack(prefix, root / f"{TAR_NAMES.get(name, name)}.tar", name)
    return out


@pytest.fixture(scope="module")
def inputs(magenta_dir, groove_dir) -> dict[str, tuple[Path, Path]]:
    """Two input MIDI files per voice, for interpolation."""
    melodies = [magenta_dir / "melody" / "melodies" / f for f in MELODIES]
    drums = [groove_dir / f for f in GMD_FILES]
    return {"program": (melodies[0], melodies[1]), "drums": (drums[0], drums[1])}


def check_midi(paths: list[Path], config_name: str) -> None:
    """What each family writes, as Magenta's converter does: melodies on one General MIDI
    program, drums on channel 10 with each class's first pitch; and some notes in all."""
    config = get_config(config_name)
    notes = 0
    for path in paths:
        ns = read_midi(path)
        notes += len(ns)
        if family_of(config).voice == "drums":
            first = {pitches[0] for pitches in build_converter(config).pitch_classes}
            assert ns.is_drum.all(), path
            assert set(ns.pitch.tolist()) <= first, path
        else:
            assert not ns.is_drum.any(), path
            assert len(set(ns.program.tolist())) <= 1, path
            assert ((ns.pitch >= 21) & (ns.pitch <= 108)).all(), path
    assert notes > 0, paths


def _mids(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.mid"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_import_magenta_with_and_without_config(name, tars, tmp_path, capsys):
    tar, guess = tars[name], CASES[name][1]
    given, guessed = tmp_path / "given.pt", tmp_path / "guessed.pt"
    assert main(["import-magenta", str(tar), "--config", name, "-o", str(given)]) == 0
    assert capsys.readouterr().out.endswith(f" as {name} -> {given}\n")
    assert main(["import-magenta", str(tar), "-o", str(guessed)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(f" as {guess} (guessed from its variables) -> {guessed}\n")
    a, b = load(given), load(guessed)
    assert (a.config.name, b.config.name) == (name, guess)
    assert a.config.hparams.z_size == b.config.hparams.z_size == 8  # the sizes are the weights'
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.step == (42 if CASES[name][0] is None else 5)


def test_default_output_keeps_the_published_name(tars, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tar = tars["cat-drums_2bar_small"]
    assert main(["import-magenta", str(tar)]) == 0
    expected = tar.parent / "cat-drums_2bar_small.hikl.pt"
    assert capsys.readouterr().out.endswith(
        f" as cat-drums_2bar_small (guessed from its variables) -> {expected}\n"
    )
    assert load(expected).config.name == "cat-drums_2bar_small"


@pytest.mark.slow
@pytest.mark.parametrize("with_config", [True, False], ids=["config", "guessed"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_generate_samples_and_interpolates_from_the_tar(
    name, with_config, tars, inputs, tmp_path, capsys
):
    config = name if with_config else CASES[name][1]
    voice = family_of(get_config(config)).voice
    first, second = inputs[voice]
    base = ["generate", "--checkpoint", str(tars[name]), "--seed", "0", "--no-png"]
    base += ["--config", name] if with_config else []
    with single_torch_thread():
        assert main([*base, "--output-dir", str(tmp_path / "s"), "--num-outputs", "2"]) == 0
        assert main([*base, "--output-dir", str(tmp_path / "i"), "--num-outputs", "3",
                     "--mode", "interpolate", "--input-midi-1", str(first),
                     "--input-midi-2", str(second)]) == 0  # fmt: skip
    assert "Traceback" not in capsys.readouterr().err
    samples, steps = _mids(tmp_path / "s"), _mids(tmp_path / "i")
    assert len(samples) == 2 and len(steps) == 3
    # musicvae generate names files <mode>_<config>_<index>_seed<seed>.mid
    assert all(p.name.startswith(f"sample_{config}_") for p in samples)
    assert all(p.name.startswith(f"interpolate_{config}_") for p in steps)
    check_midi(samples, config)
    check_midi(steps, config)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_music_vae_generate_checkpoint_file_tar(name, tars, inputs, tmp_path, capsys):
    first, second = inputs[family_of(get_config(name)).voice]
    base = [f"--config={name}", f"--checkpoint_file={tars[name]}", "--seed=0", "--no_png"]
    with single_torch_thread():
        assert magenta_main([*base, "--mode=sample", "--num_outputs=2",
                             f"--output_dir={tmp_path / 's'}"]) == 0  # fmt: skip
        assert magenta_main([*base, "--mode=interpolate", "--num_outputs=3",
                             f"--input_midi_1={first}", f"--input_midi_2={second}",
                             f"--output_dir={tmp_path / 'i'}"]) == 0  # fmt: skip
    capsys.readouterr()
    samples, steps = _mids(tmp_path / "s"), _mids(tmp_path / "i")
    assert len(samples) == 2 and len(steps) == 3
    check_midi(samples + steps, name)


@pytest.mark.parametrize(
    ("name", "wrong", "holds"),
    [
        ("cat-mel_2bar_big", "cat-drums_2bar_small", "a melody model"),
        ("hierdec-mel_16bar", "groovae_4bar_hierdec", "a melody model"),
        ("cat-drums_2bar_small", "nade-drums_2bar_full", "a drums model"),
        ("nade-drums_2bar_full", "cat-mel_2bar_big", "a drum_roll model"),
    ],
)
def test_a_config_of_another_family_is_one_line(name, wrong, holds, tars, tmp_path, capsys):
    out = tmp_path / "x.pt"
    assert main(["import-magenta", str(tars[name]), "--config", wrong, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tars[name]}: holds {holds} (") and err.count("\n") == 1
    assert f"as config {wrong!r} describes" in err and not out.exists()
    argv = ["generate", "--checkpoint", str(tars[name]), "--config", wrong,
            "--output-dir", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tars[name]}: holds {holds} (") and err.count("\n") == 1


@pytest.mark.slow
def test_a_published_size_checkpoint_imports_with_its_shapes_and_samples(tmp_path, capsys):
    """``cat-drums_2bar_small`` at Magenta's sizes (z 256, encoder [512], decoder [256, 256]):
    every variable Magenta's graph has, by name and shape, in a real bundle in a .tar."""
    name = "cat-drums_2bar_small"
    prefix = exported(name, None, tmp_path / "bundle")
    tar = pack(prefix, tmp_path / f"{name}.lokl.tar", name)
    torch.manual_seed(0)  # exported()'s seed: the weights that were written
    source = build_model(get_config(name))
    shapes = {k: (v.shape, "float32") for k, v in variable_map(source).items()}
    assert list_variables(tar) == {**shapes, "global_step": ((), "int64")}
    assert shapes["encoder/mu/kernel"][0] == (1024, 256)  # 2 x 512 -> z 256
    assert shapes["decoder/output_projection/kernel"][0] == (256, 512)  # 2^9 drum patterns
    out = tmp_path / "imported.pt"
    assert main(["import-magenta", str(tar), "-o", str(out)]) == 0
    parameters = sum(p.numel() for p in source.parameters())
    assert capsys.readouterr().out == (
        f"imported {len(shapes)} variables ({parameters:,} parameters, step 42) from {tar} "
        f"as {name} (guessed from its variables) -> {out}\n"
    )
    model = load(out)
    assert model.config.hparams == get_config(name).hparams  # the published sizes, read back
    ours, theirs = model.model.state_dict(), source.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    with single_torch_thread():
        argv = ["generate", "--checkpoint", str(tar), "--output-dir", str(tmp_path / "s"),
                "--num-outputs", "2", "--seed", "0", "--no-png"]  # fmt: skip
        assert main(argv) == 0
    check_midi(_mids(tmp_path / "s"), name)


@pytest.mark.slow
def test_import_peak_memory_stays_under_twice_the_model():
    """A published-size ``nade-drums_2bar_full`` (55 MiB of float32), imported in a child
    process from its .tar: the peak RSS above the child's baseline, under twice the model."""
    script = ROOT / "benchmarks" / "import_magenta.py"
    argv = [sys.executable, str(script), "--config", "nade-drums_2bar_full", "--form", "tar"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert 50 < report["model_float32_mib"] < 60
    run = report["runs"]["tar/load"]
    assert 0.9 < run["ratio"] < 2.0, report
