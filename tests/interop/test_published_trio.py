"""Magenta's published ``hierdec-trio_16bar`` checkpoint: its variables at the published size,
and the tiny run of its layout packed as the published ``.tar``, through every command.

The published file (z 512, a two-layer bidirectional encoder of 2048, a conductor and three
core decoders of two 1024-unit layers: 231 M parameters, 881 MiB of float32) cannot be
downloaded here. Its variables are written down from Magenta's graph (:func:`magenta_shapes`:
the rules proven equal, name by name and shape by shape, to Magenta's own tiny run in
``../shared/data/magenta/hierdec_trio_tiny``), and the model built from the config on the
``meta`` device (shapes, no memory) must ask for exactly those at the published size, and be
recognised from them. The import's peak memory at that size is ``benchmarks/import_magenta.py
--config hierdec-trio_16bar`` (1.05 times the model; docs/magenta.md). The tiny run itself,
packed as Magenta packs its files, goes through ``import-magenta``, ``generate --checkpoint
X.tar`` (sample and interpolate 16-bar trios) and ``music_vae_generate --checkpoint_file``:
each MIDI file has three tracks, the melody on its program, the bass on program 33 and the
drums on channel 10.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import symusic
import torch

from musicvae.cli.generate import magenta_main
from musicvae.cli.main import main
from musicvae.configs import get_config
from musicvae.data.converters.trio import BASS_PROGRAM, BASS_PROGRAMS, MELODY_PROGRAMS
from musicvae.generation import load
from musicvae.interop.magenta import fit_sizes, guess_config_name, variable_map
from tests.generation.helpers import single_torch_thread
from tests.interop.test_published_checkpoints import pack

NAME = "hierdec-trio_16bar"
TINY = "hierdec_trio_tiny"
DEPTHS = (90, 90, 512)  # melody, bass and drum-pattern classes
STEPS = 256  # 16 bars of 16th notes
INPUTS = ("01.mid", "03.mid")  # three-instrument files of 17 and 20 bars


def magenta_shapes(
    z: int, enc: tuple[int, ...], dec: tuple[int, ...], depths: tuple[int, ...] = DEPTHS
) -> dict[str, tuple[int, ...]]:
    """Every model variable of Magenta's ``hierdec-trio_16bar`` graph at sizes ``z``, ``enc``
    and ``dec``, by name, as its ``Saver`` writes them: ``LSTMBlockCell`` kernels ``[in + h,
    4h]``, dense kernels ``[in, out]``, states of ``2 * sum(dec)`` (c and h per layer)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def lstm(scope: str, n_in: int, h: int) -> None:
        shapes[f"{scope}/lstm_cell/kernel"] = (n_in + h, 4 * h)
        shapes[f"{scope}/lstm_cell/bias"] = (4 * h,)

    def dense(scope: str, n_in: int, n_out: int) -> None:
        shapes[f"{scope}/kernel"] = (n_in, n_out)
        shapes[f"{scope}/bias"] = (n_out,)

    n_in = sum(depths)  # the encoder reads the 692-wide steps
    for k, h in enumerate(enc):  # one bidirectional layer per scope, fw and bw
        for way in ("fw", "bw"):
            lstm(f"encoder/cell_{k}/bidirectional_rnn/{way}/multi_rnn_cell/cell_0", n_in, h)
        n_in = 2 * h
    dense("encoder/mu", 2 * enc[-1], z)
    dense("encoder/sigma", 2 * enc[-1], z)
    state = 2 * sum(dec)
    dense("decoder/hierarchical_level_0/initial_state", z, state)
    n_in = 1  # the conductor's input is a zero of width 1
    for k, h in enumerate(dec):
        lstm(f"decoder/hierarchical_level_0/cell_{k}", n_in, h)
        n_in = h
    embedding = dec[-1]  # the conductor's output for a bar
    for i, depth in enumerate(depths):  # each part reads only its own previous output
        scope = f"core_decoder/core_decoder_{i}/decoder"
        dense(f"{scope}/z_to_initial_state", embedding, state)
        n_in = depth + embedding
        for k, h in enumerate(dec):
            lstm(f"{scope}/multi_rnn_cell/cell_{k}", n_in, h)
            n_in = h
        dense(f"{scope}/output_projection", dec[-1], depth)
    return shapes


class _Spec:
    """A variable's shape, as a checkpoint's index gives it."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


def test_the_rules_are_magentas_graph(magenta_dir):
    """At the tiny run's sizes the rules give exactly its 42 model variables."""
    info = json.loads((magenta_dir / TINY / "variables.json").read_text())
    assert info["stock_config"] == NAME
    theirs = {
        v["name"]: tuple(v["shape"]) for v in info["variables"] if v["kind"] == "model_weight"
    }
    hp = info["hparams"]
    ours = magenta_shapes(hp["z_size"], tuple(hp["enc_rnn_size"]), tuple(hp["dec_rnn_size"]))
    assert len(theirs) == 42
    assert ours == theirs


def test_the_published_size_variables_and_the_model_built_from_them():
    """The config at its own (published) sizes, built on the meta device: every variable
    Magenta's published checkpoint has, by name and shape; and from those shapes alone,
    ``guess_config`` names the config and ``fit_sizes`` reads the published sizes back."""
    from musicvae.interop.magenta import _meta_model

    config = get_config(NAME)
    hp = config.hparams
    assert (hp.z_size, hp.enc_rnn_size, hp.dec_rnn_size) == (512, (2048, 2048), (1024, 1024))
    published = magenta_shapes(512, (2048, 2048), (1024, 1024))
    model = _meta_model(config)
    ours = {name: var.shape for name, var in variable_map(model).items()}
    assert ours == published
    assert published[
        "encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel"
    ] == (
        692 + 2048,
        4 * 2048,
    )
    assert published[
        "core_decoder/core_decoder_2/decoder/multi_rnn_cell/cell_0/lstm_cell/kernel"
    ] == (
        512 + 1024 + 1024,
        4 * 1024,
    )
    parameters = sum(p.numel() for p in model.parameters())
    # Our LSTMs keep a second (zero) bias per layer: the only parameters TF does not store.
    extra = sum(p.numel() for n, p in model.named_parameters() if "bias_hh" in n)
    assert parameters - extra == sum(torch.Size(s).numel() for s in published.values())
    assert 880 < 4 * parameters / (1 << 20) < 885  # MiB of float32: the import's yardstick
    specs = {name: _Spec(shape) for name, shape in published.items()}
    specs["global_step"] = _Spec(())
    assert guess_config_name(specs) == NAME
    fitted = fit_sizes(specs, get_config(NAME, "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16]"))
    got = fitted.hparams
    assert (got.z_size, got.enc_rnn_size, got.dec_rnn_size) == (512, (2048, 2048), (1024, 1024))
    assert got.conductor_rnn_size in (None, (1024, 1024))  # None: the decoder's layers


@pytest.fixture(scope="module")
def trio_tar(magenta_dir, tmp_path_factory) -> Path:
    """The tiny run packed as Magenta publishes ``hierdec-trio_16bar.tar``."""
    root = tmp_path_factory.mktemp("published_trio")
    return pack(magenta_dir / TINY / "model.ckpt-5", root / f"{NAME}.tar", NAME)


@pytest.fixture(scope="module")
def trios(magenta_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("trios")
    return tuple(shutil.copy(magenta_dir / "trio" / "midis" / f, root / f) for f in INPUTS)


def check_trios(paths: list[Path]) -> None:
    """Each file: 16 bars at most of three tracks, the melody on a melody program (0-31; the
    model's own, 0), the bass on program 33 and the drums on the drum channel."""
    assert paths
    for path in paths:
        score = symusic.Score(str(path))
        tracks = {(t.is_drum, t.program): len(t.notes) for t in score.tracks}
        assert len(score.tracks) == 3 and all(tracks.values()), (path, tracks)
        melody = [p for drum, p in tracks if not drum and p != BASS_PROGRAM]
        assert len(melody) == 1 and melody[0] in MELODY_PROGRAMS, (path, tracks)
        assert (False, BASS_PROGRAM) in tracks and BASS_PROGRAM in BASS_PROGRAMS
        assert any(drum for drum, _ in tracks), (path, tracks)
        quarter = score.ticks_per_quarter
        assert score.end() <= STEPS // 4 * quarter, path  # 16 bars of 4/4


@pytest.mark.slow
def test_import_magenta_with_and_without_config(trio_tar, tmp_path, capsys):
    given, guessed = tmp_path / "given.pt", tmp_path / "guessed.pt"
    assert main(["import-magenta", str(trio_tar), "--config", NAME, "-o", str(given)]) == 0
    assert capsys.readouterr().out.endswith(f" as {NAME} -> {given}\n")
    assert main(["import-magenta", str(trio_tar), "-o", str(guessed)]) == 0
    assert capsys.readouterr().out.endswith(
        f" as {NAME} (guessed from its variables) -> {guessed}\n"
    )
    a, b = load(given), load(guessed)
    assert a.config.name == b.config.name == NAME and a.step == 5
    assert a.family.name == "trio" and a.config.hparams.z_size == 8
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
@pytest.mark.parametrize("with_config", [True, False], ids=["config", "guessed"])
def test_generate_samples_and_interpolates_16_bar_trios(
    with_config, trio_tar, trios, tmp_path, capsys
):
    base = ["generate", "--checkpoint", str(trio_tar), "--seed", "0", "--no-png"]
    base += ["--config", NAME] if with_config else []
    with single_torch_thread():
        assert main([*base, "--output-dir", str(tmp_path / "s"), "--num-outputs", "2"]) == 0
        assert main([*base, "--output-dir", str(tmp_path / "i"), "--num-outputs", "3",
                     "--mode", "interpolate", "--input-midi-1", str(trios[0]),
                     "--input-midi-2", str(trios[1])]) == 0  # fmt: skip
    assert "Traceback" not in capsys.readouterr().err
    samples, steps = sorted((tmp_path / "s").glob("*.mid")), sorted((tmp_path / "i").glob("*.mid"))
    assert len(samples) == 2 and len(steps) == 3
    assert all(NAME in p.name for p in samples + steps)  # the config's name in each file's
    check_trios(samples + steps)


@pytest.mark.slow
def test_music_vae_generate_checkpoint_file_tar(trio_tar, trios, tmp_path, capsys):
    base = [f"--config={NAME}", f"--checkpoint_file={trio_tar}", "--seed=0", "--no_png"]
    with single_torch_thread():
        assert magenta_main([*base, "--mode=sample", "--num_outputs=2",
                             f"--output_dir={tmp_path / 's'}"]) == 0  # fmt: skip
        assert magenta_main([*base, "--mode=interpolate", "--num_outputs=3",
                             f"--input_midi_1={trios[0]}", f"--input_midi_2={trios[1]}",
                             f"--output_dir={tmp_path / 'i'}"]) == 0  # fmt: skip
    capsys.readouterr()
    check_trios(sorted((tmp_path / "s").glob("*.mid")) + sorted((tmp_path / "i").glob("*.mid")))
