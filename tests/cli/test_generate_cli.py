"""``musicvae generate`` and ``music_vae_generate``: file names (sortable ones, and Magenta's for
``music_vae_generate``), PNGs, exit codes."""

from __future__ import annotations

import dataclasses
import re

import pytest

from musicvae.cli import generate as gen_cli
from musicvae.cli.main import build_parser, main
from musicvae.data.midi import read_midi, write_midi
from musicvae.errors import MusicVAEError
from tests.generation.helpers import debug_run, groove, single_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with single_torch_thread():
        yield


STAMP = r"\d{4}-\d\d-\d\d_\d{6}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return debug_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("midi")
    write_midi(groove(4, qpm=96.0), d / "a.mid")
    write_midi(groove(8, qpm=96.0).select(groove(8).pitch != 42), d / "b.mid")
    write_midi(groove(16, qpm=110.0), d / "long.mid")
    write_midi(groove(8, time_signature=(3, 4)), d / "waltz.mid")
    (d / "bad.mid").write_bytes(b"definitely not midi")
    return d


def names(folder, suffix):
    return sorted(p.name for p in folder.iterdir() if p.suffix == suffix)


def test_sample(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--checkpoint", str(run_dir), "--output-dir", str(out)]
    assert main([*args, "--num-outputs", "3", "--seed", "1"]) == 0
    mids = names(out, ".mid")
    assert len(mids) == 3
    for i, name in enumerate(mids):
        assert name == f"sample_debug_{i:03d}_seed1.mid"
    assert [n.replace(".png", ".mid") for n in names(out, ".png")] == mids
    ns = read_midi(out / mids[0])
    assert len(ns) > 0 and ns.start.max() < 8.0  # 4 bars at 120 BPM
    assert "wrote 3 MIDI file(s)" in capsys.readouterr().out


def test_sample_tempo_and_no_png(run_dir, tmp_path):
    out = tmp_path / "out"
    argv = [
        "generate",
        "--checkpoint",
        str(run_dir),
        "--output-dir",
        str(out),
        "--num-outputs",
        "1",
        "--tempo",
        "90",
        "--no-png",
    ]
    assert main(argv) == 0
    assert names(out, ".png") == []
    (mid,) = names(out, ".mid")
    assert read_midi(out / mid).qpm == pytest.approx(90.0)


def test_interpolate(run_dir, midi_dir, tmp_path):
    out = tmp_path / "out"
    argv = [
        "generate",
        "--mode",
        "interpolate",
        "--checkpoint",
        str(run_dir),
        "--output-dir",
        str(out),
        "--num-outputs",
        "4",
        "--input-midi-1",
        str(midi_dir / "a.mid"),
        "--input-midi-2",
        str(midi_dir / "b.mid"),
        "--config",
        "groovae_4bar",
    ]
    assert main(argv) == 0
    mids = names(out, ".mid")
    # No seed: a suffix drawn for the run, the same on each of its files.
    suffix = mids[0].removeprefix("interpolate_groovae_4bar_000_noseed")
    assert re.fullmatch(r"-[0-9a-f]{4}\.mid", suffix), mids[0]
    assert mids == [f"interpolate_groovae_4bar_{i:03d}_noseed{suffix}" for i in range(4)]
    assert read_midi(out / mids[0]).qpm == pytest.approx(96.0)  # the first input's tempo


def test_reconstruct_keeps_every_bar(run_dir, midi_dir, tmp_path):
    out = tmp_path / "out"
    argv = [
        "generate",
        "--mode",
        "reconstruct",
        "--checkpoint",
        str(run_dir),
        "--output-dir",
        str(out),
        "--num-outputs",
        "1",
        "--input-midi-1",
        str(midi_dir / "long.mid"),
        "--seed",
        "0",
    ]
    assert main(argv) == 0
    (mid,) = names(out, ".mid")
    ns = read_midi(out / mid)
    bar = 4 * 60.0 / 110.0
    assert ns.qpm == pytest.approx(110.0)
    assert ns.start.max() > 15 * bar  # notes in bar 16 (a random model fills every bar)
    assert ns.start.max() < 16 * bar


def test_continue_writes_the_input_then_the_new_bars(run_dir, tmp_path):
    out = tmp_path / "out"
    one_bar = tmp_path / "one.mid"
    write_midi(groove(1, qpm=100.0), one_bar)  # shorter than the model's 4-bar window
    argv = ["generate", "--mode", "continue", "--checkpoint", str(run_dir), "--output-dir",
            str(out), "--input-midi-1", str(one_bar), "--bars", "3", "--num-outputs", "2",
            "--seed", "0"]  # fmt: skip
    assert main(argv) == 0
    mids = names(out, ".mid")
    assert mids == [f"continue_debug_{i:03d}_seed0.mid" for i in range(2)]
    assert len(names(out, ".png")) == 2
    bar = 4 * 60.0 / 100.0
    for m in mids:
        ns = read_midi(out / m)
        assert ns.qpm == pytest.approx(100.0)
        # The input's bar comes back as it was: its kick on beat 1 and its snare on beat 2.
        first = ns.start < bar - 1e-6
        assert {36, 38} <= set(ns.pitch[first].tolist())
        assert ns.start.max() < 4 * bar  # 1 + 3 bars


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "reconstruct", "--input-midi-1", "{m}/bad.mid"], r"bad\.mid: not a MIDI file"),
        (["--mode", "reconstruct", "--input-midi-1", "{m}/missing.mid"], "input MIDI not found"),
        (
            ["--mode", "reconstruct", "--input-midi-1", "{m}/waltz.mid"],
            r"waltz\.mid: no 4/4 window",
        ),
        (["--mode", "reconstruct"], "--input-midi-1 is required"),
        (["--mode", "continue"], "--input-midi-1 is required"),
        (["--mode", "continue", "--input-midi-1", "{m}/waltz.mid"], "no 4/4 grid to continue"),
        (["--mode", "interpolate", "--input-midi-1", "{m}/a.mid"], "--input-midi-2 is required"),
        (["--mode", "humanize", "--input-midi-1", "{m}/a.mid"], "not trained to humanize"),
        (["--checkpoint", "{m}/no_such_run"], "no such checkpoint"),
        (["--temperature", "0"], "--temperature must be positive"),
        (["--num-outputs", "0"], "--num-outputs must be at least 1"),
        (["--playing", "1.5"], "--playing must be 0 to 1"),
        (["--playing", "nan"], "--playing must be 0 to 1"),
        (
            ["--mode", "continue", "--input-midi-1", "{m}/a.mid", "--playing", "1"],
            "for --mode sample",
        ),
    ],
)
def test_errors_are_one_line(run_dir, midi_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    extra = [e.replace("{m}", str(midi_dir)) for e in extra]
    argv = ["generate", "--checkpoint", str(run_dir), "--output-dir", str(out), *extra]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert not out.exists() or names(out, ".mid") == []


def test_humanize_keeps_the_input_hits_unless_told(midi_dir, tmp_path, capsys):
    from musicvae.generation import load
    from musicvae.generation.chunks import stitch

    run = debug_run(tmp_path / "h", "humanize=True")
    model = load(run)

    def hits(path):
        prep = model.prepare(read_midi(path))
        return stitch(prep.outputs, prep.starts, prep.total_steps)[:, :9]

    base = ["generate", "--checkpoint", str(run), "--mode", "humanize", "--seed", "0"]
    base += ["--num-outputs", "1"]
    base += ["--input-midi-1", str(midi_dir / "b.mid")]
    assert main([*base, "--output-dir", str(tmp_path / "kept")]) == 0
    (kept,) = (tmp_path / "kept").glob("*.mid")
    assert (hits(kept) == hits(midi_dir / "b.mid")).all()
    assert main([*base, "--no-keep-hits", "--output-dir", str(tmp_path / "free")]) == 0
    (free,) = (tmp_path / "free").glob("*.mid")
    assert not (hits(free) == hits(midi_dir / "b.mid")).all()

    tapper = debug_run(tmp_path / "t", "tapify=True,fixed_velocities=True")
    argv = ["generate", "--checkpoint", str(tapper), "--mode", "tap2drum", "--seed", "0"]
    argv += ["--input-midi-1", str(midi_dir / "a.mid"), "--num-outputs", "1"]
    assert main([*argv, "--output-dir", str(tmp_path / "x")]) == 0
    (drums,) = (tmp_path / "x").glob("*.mid")
    tapped = hits(midi_dir / "a.mid").max(axis=1) > 0.5
    played = hits(drums).max(axis=1) > 0.5
    # By default the drums play on every tapped step and nowhere else.
    assert tapped.any() and (played == tapped).all()
    assert main([*argv, "--no-keep-hits", "--output-dir", str(tmp_path / "y")]) == 0
    (free,) = (tmp_path / "y").glob("*.mid")
    assert not ((hits(free).max(axis=1) > 0.5) == tapped).all()  # an untrained model's guess


def test_magenta_flags(run_dir, midi_dir, tmp_path):
    out = tmp_path / "gen"
    argv = [
        "--config=groovae_4bar",
        f"--run_dir={run_dir}",
        "--mode=sample",
        "--num_outputs=2",
        f"--output_dir={out}",
        "--temperature=0.5",
    ]
    assert gen_cli.magenta_main(argv) == 0
    mids = names(out, ".mid")
    assert len(mids) == 2
    assert re.fullmatch(rf"groovae_4bar_sample_{STAMP}-000-of-002\.mid", mids[0])
    ckpt = next((run_dir / "train").glob("*.pt"))
    argv = [
        "--config=groovae_4bar",
        f"--checkpoint_file={ckpt}",
        "--mode=interpolate",
        "--num_outputs=3",
        f"--output_dir={out}",
        f"--input_midi_1={midi_dir / 'a.mid'}",
        f"--input_midi_2={midi_dir / 'b.mid'}",
        "--no_png",
    ]
    assert gen_cli.magenta_main(argv) == 0
    assert len([n for n in names(out, ".mid") if "_interpolate_" in n]) == 3


def test_magenta_flag_errors(run_dir, tmp_path, capsys):
    both = ["--config=groovae_4bar", f"--run_dir={run_dir}", f"--checkpoint_file={run_dir}"]
    assert gen_cli.magenta_main(both) == 1
    assert "exactly one of --run_dir or --checkpoint_file" in capsys.readouterr().err
    assert gen_cli.magenta_main(["--config=nope", f"--run_dir={run_dir}"]) == 1
    assert "invalid config name: nope" in capsys.readouterr().err
    assert (
        gen_cli.magenta_main(["--config=groovae_4bar", f"--run_dir={run_dir}", "--mode=humanize"])
        == 1
    )
    assert "invalid value for --mode" in capsys.readouterr().err


def test_audio_beside_each_midi_and_no_partial_set(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "set"
    argv = ["generate", "--checkpoint", str(run_dir), "--output-dir", str(out),
            "--num-outputs", "2", "--seed", "1", "--audio", "--no-png"]  # fmt: skip
    assert main(argv) == 0
    mids = names(out, ".mid")
    assert len(mids) == 2 and [m.replace(".mid", ".wav") for m in mids] == names(out, ".wav")
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # the scratch folder is gone
    # A failure half-way through the set leaves nothing behind.
    import musicvae.audio

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(musicvae.audio, "write_wav", fail)
    again = tmp_path / "again"
    assert main([*argv[:4], str(again), *argv[5:]]) == 1
    assert not again.exists() or list(again.iterdir()) == []
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no scratch left


def test_both_forms_build_the_same_options(run_dir, tmp_path):
    out = tmp_path / "out"
    args = ["generate", "--checkpoint", str(run_dir / "train"), "--config", "groovae_4bar",
            "--output-dir", str(out), "--num-outputs", "2", "--seed", "1", "--no-png"]  # fmt: skip
    ours = gen_cli._options(build_parser().parse_args(args))
    flags = ["--config=groovae_4bar", f"--run_dir={run_dir}", f"--output_dir={out}",
             "--num_outputs=2", "--seed=1", "--no_png"]  # fmt: skip
    magenta = gen_cli._magenta_options(gen_cli.magenta_parser().parse_args(flags))
    assert magenta.magenta_names and not ours.magenta_names  # each form names files its way
    assert dataclasses.replace(magenta, magenta_names=False) == ours
    assert ours == gen_cli.GenerateOptions(
        mode="sample", output_dir=out, num_outputs=2, checkpoint=str(run_dir / "train"),
        config="groovae_4bar", seed=1, png=False,
    )  # fmt: skip
    assert (ours.temperature, ours.device, ours.which, ours.bars) == (0.5, "cpu", "latest", 4)
    with pytest.raises(MusicVAEError, match="--num-outputs must be at least 2 in interpolate"):
        gen_cli.GenerateOptions(mode="interpolate", output_dir=out, num_outputs=1)
    with pytest.raises(MusicVAEError, match="--tempo 500.0: expected a tempo between 20 and 400"):
        gen_cli.GenerateOptions(mode="sample", output_dir=out, tempo=500.0)
