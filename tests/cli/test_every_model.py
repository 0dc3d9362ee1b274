"""Every command with every registered config: it works, or refuses in one ``error:`` line.

Each config is trained for two steps, at tiny sizes, from a folder of MIDI files of its own kind
(GMD drum files, or the 24 folk melodies), through ``musicvae convert`` and ``musicvae train``.
Then ``generate`` in every mode (``--audio`` when sampling), ``evaluate`` (and ``--protocol haki2022``),
``export`` (and ``--spread-from``), ``plot``, ``explain`` and ``studio`` (its page's tools and
Generate) run on the run folder.
What the family table (``musicvae.families``) says a model can do must succeed and write real
output; everything else must fail with one line on stderr that names the config, never a
traceback.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from musicvae.cli.main import main
from musicvae.configs import CONFIGS, Config
from musicvae.data.midi import read_midi, write_midi
from musicvae.families import ALL_MODES, family_of
from musicvae.web import tools as studio_tools
from tests.generation.helpers import single_torch_thread

# 16-bar configs read their inputs' first 16 bars; these files have them.
MELODY_FILE = "01.mid"  # 5 windows of 16 bars, 19 of 2
GMD_FILES = (
    "drummer1/session1/126_funk-fast_125_beat_4-4.mid",
    "drummer1/session1/100_neworleans-secondline_94_beat_4-4.mid",
    "drummer1/session1/1_funk_80_beat_4-4.mid",
)
INPUT_BARS = 16  # the longest window of a registered config


def _cropped(path, out):
    """The first ``INPUT_BARS`` bars of a MIDI file (4/4): long enough for every model, short
    enough to render quickly."""
    ns = read_midi(path)
    keep = ns.start < INPUT_BARS * 240.0 / ns.qpm
    cropped = ns.select(keep)
    write_midi(cropped, out)
    return out


def tiny(config: Config) -> str:
    """Overrides that shrink ``config`` to 16-unit layers and an 8-d latent, keeping its shape
    (layer counts, lengths, data settings)."""
    hp = config.hparams

    def layers(sizes: tuple[int, ...]) -> str:
        return "[" + ",".join("16" for _ in sizes) + "]"

    out = [
        "z_size=8",
        "batch_size=4",
        f"enc_rnn_size={layers(hp.enc_rnn_size)}",
        f"dec_rnn_size={layers(hp.dec_rnn_size)}",
        "nade_num_hidden=8",
    ]
    if hp.conductor_rnn_size:
        out.append(f"conductor_rnn_size={layers(hp.conductor_rnn_size)}")
    return ",".join(out)


def _one_line_error(err: str, name: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err


@pytest.fixture(scope="module")
def sources(groove_dir, magenta_dir, tmp_path_factory):
    """A folder of MIDI files per kind of input, and each as a dataset file."""
    root = tmp_path_factory.mktemp("sources")
    drums = root / "drums"
    for rel in GMD_FILES:
        (drums / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(groove_dir / rel, drums / rel)
    melodies = root / "melodies"
    shutil.copytree(magenta_dir / "melody" / "melodies", melodies)
    trios = root / "trios"  # melody, bass and drums: for the multi-track families
    shutil.copytree(magenta_dir / "trio" / "midis", trios, ignore=shutil.ignore_patterns("*.json"))
    inputs = {
        "drums": (drums / GMD_FILES[0], drums / GMD_FILES[1]),
        "program": (melodies / MELODY_FILE, melodies / "08.mid"),
        "tracks": (trios / "01.mid", trios / "03.mid"),  # 17 and 20 bars
    }
    out = {}
    for kind, folder in (("drums", drums), ("program", melodies), ("tracks", trios)):
        dataset = root / f"{kind}.parquet"
        assert main(["convert", str(folder), "--output", str(dataset)]) == 0
        first, second = inputs[kind]
        first = _cropped(first, root / f"{kind}_1.mid")
        second = _cropped(second, root / f"{kind}_2.mid")
        out[kind] = (dataset, first, second)
    return out


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def run(request, sources, tmp_path_factory):
    """``(config, run folder, its family's inputs)`` after two training steps."""
    config = CONFIGS[request.param]
    dataset, first, second = sources[family_of(config).voice]
    run_dir = tmp_path_factory.mktemp("runs") / config.name
    argv = ["train", "--config", config.name, "--run-dir", str(run_dir),
            "--examples", str(dataset), "--num-steps", "2", "--hparams", tiny(config),
            "--eval-every", "0", "--checkpoint-every", "2", "--log-every", "1",
            "--threads", "1", "--seed", "0", "--no-progress"]  # fmt: skip
    with single_torch_thread():
        assert main(argv) == 0
    return config, run_dir, first, second


def test_train_on_a_folder_of_midi_files(run):
    config, run_dir, *_ = run
    assert list((run_dir / "train").glob("*.pt")), config.name


def _expect_mode(config: Config, mode: str) -> bool:
    """Whether ``generate --mode`` must work for ``config`` (the family table, and the data
    settings a transform mode needs)."""
    family, d = family_of(config), config.data
    if mode not in family.modes:
        return False
    if mode == "humanize":
        return d.humanize
    if mode == "tap2drum":
        return d.tapify
    controls = d.hits_as_controls or d.taps_as_controls
    if mode == "continue":
        return not d.transforms_input and not controls and not d.chord_encoding
    if mode in ("sample", "interpolate"):
        return not controls  # the prior has no hits or taps to decode under; chords are given
    return True


@pytest.mark.parametrize("mode", ALL_MODES)
def test_generate_every_mode(run, mode, tmp_path, capsys):
    config, run_dir, first, second = run
    out = tmp_path / "out"
    audio = mode == "sample"  # every family's voices, heard once (rendering is the slow part)
    argv = ["generate", "--checkpoint", str(run_dir), "--mode", mode, "--output-dir", str(out),
            "--num-outputs", "2" if mode == "interpolate" else "1", "--seed", "0"]  # fmt: skip
    # Sound and pictures once per family, when sampling; the other modes write MIDI only.
    argv.append("--audio" if audio else "--no-png")
    if mode != "sample":
        argv += ["--input-midi-1", str(first)]
    if mode == "interpolate":
        argv += ["--input-midi-2", str(second)]
    if config.data.chord_encoding and mode in ("sample", "interpolate"):
        argv += ["--chords", "C G Am F"]
    capsys.readouterr()
    with single_torch_thread():
        code = main(argv)
    err = capsys.readouterr().err
    if not _expect_mode(config, mode):
        assert code == 1
        _one_line_error(err, config.name)
        assert config.name in err
        return
    assert code == 0, err
    mids = sorted(out.glob("*.mid"))
    assert len(mids) == (2 if mode == "interpolate" else 1)
    assert len(list(out.glob("*.wav"))) == (len(mids) if audio else 0)
    family = family_of(config)
    # A picture beside every file, when asked: a drum grid for grooves, a piano roll otherwise.
    assert [p.with_suffix(".png").exists() for p in mids] == [audio] * len(mids)
    for path in mids:
        ns = read_midi(path)
        if not len(ns):
            continue  # an untrained model may sample silence
        if family.voice == "drums":
            assert ns.is_drum.all(), path
        elif family.voice == "program":
            assert not ns.is_drum.any(), path
        else:  # several tracks, each on its program, drums on channel 10
            assert not ns.is_drum.all(), path


def test_evaluate(run, sources, tmp_path, capsys):
    config, run_dir, *_ = run
    dataset = sources[family_of(config).voice][0]
    report = tmp_path / "report.json"
    argv = ["evaluate", "--checkpoint", str(run_dir), "--examples", str(dataset),
            "--split", "train", "--batch-size", "8", "--num-prior-samples", "4",
            "--output", str(report)]  # fmt: skip
    with single_torch_thread():
        assert main(argv) == 0, capsys.readouterr().err
    assert report.exists()
    import json

    r = json.loads(report.read_text())
    # Every family reports how much of z its encoder uses, and prints it.
    assert 0 <= r["latent"]["active_units"] <= r["latent"]["z_size"] > 0
    assert "latent dimensions in use:" in capsys.readouterr().out
    if family_of(config).metrics != "groove":
        assert r["family"] == family_of(config).name
        assert 0.0 <= r["teacher_forced"]["accuracy"] <= 1.0
        assert np.isfinite(r["elbo"]["r_loss"]) and r["num_windows"] > 0


def test_evaluate_protocol(run, sources, capsys):
    config, run_dir, *_ = run
    dataset = sources[family_of(config).voice][0]
    argv = ["evaluate", "--checkpoint", str(run_dir), "--examples", str(dataset),
            "--protocol", "haki2022"]  # fmt: skip
    capsys.readouterr()
    with single_torch_thread():
        code = main(argv)
    err = capsys.readouterr().err
    # A groove model runs the protocol; these files have no GMD info.csv, so it names that.
    assert code == 1
    _one_line_error(err, config.name)
    if "haki2022" not in family_of(config).protocols:
        assert "needs a GrooVAE model" in err


@pytest.mark.parametrize("spread", [False, True])
def test_export(run, sources, spread, tmp_path, capsys):
    config, run_dir, *_ = run
    out = tmp_path / "model.safetensors"
    argv = ["export", str(run_dir), "-o", str(out)]
    if spread:
        argv += ["--spread-from", str(sources[family_of(config).voice][0])]
    capsys.readouterr()
    with single_torch_thread():
        code = main(argv)
    err = capsys.readouterr().err
    if not spread:
        assert code == 0 and out.exists(), err
        return
    # Only grooves have a spread; these datasets have no validation split to measure it on.
    assert code == 1 and not out.exists()
    _one_line_error(err, config.name)


def test_plot(run, tmp_path, capsys):
    config, run_dir, *_ = run
    out = tmp_path / "curves.png"
    assert main(["plot", str(run_dir), "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain(run, capsys):
    config, run_dir, *_ = run
    capsys.readouterr()
    with single_torch_thread():
        assert main(["explain", "--checkpoint", str(run_dir)]) == 0
    assert family_of(config).output_layout in capsys.readouterr().out


class _Socket:
    """What ``studio`` listens on, here: a port it prints, and nothing bound."""

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 0)


def test_studio(run, monkeypatch, capsys):
    """``musicvae studio --checkpoint RUN`` serves every family: its page lists the tools of
    its family the model can do, and Generate answers its family's music (over chords, for a
    chord model); a tool the model cannot do is absent, and asking for it is a 501."""
    from fastapi.testclient import TestClient

    config, run_dir, *_ = run
    family = family_of(config)
    served: dict = {}
    monkeypatch.setattr("musicvae.web.server.serve", lambda app, sock: served.update(app=app))
    # The run's model alone: no bundled model beside it.
    monkeypatch.setattr("musicvae.generation.api.bundled_available", lambda name: False)
    monkeypatch.setattr("musicvae.web.server.listen", lambda host, port: _Socket())
    capsys.readouterr()
    with single_torch_thread():
        code = main(["studio", "--checkpoint", str(run_dir), "--port", "0"])
    if not family.studio_tools:  # a family the studio does not serve is refused in one line
        assert code == 1
        _one_line_error(capsys.readouterr().err, config.name)
        return
    assert code == 0, capsys.readouterr().err
    # The loopback host the command allows (it refuses others: DNS rebinding).
    with TestClient(
        served["app"], base_url="http://127.0.0.1", raise_server_exceptions=False
    ) as client:
        tools = client.get("/api/info").json()["tools"]
        kind = studio_tools.kind_of(config)
        assert {t["kind"] for t in tools.values() if t["available"]} == {kind}
        for name in ("generate", "interpolate"):
            if studio_tools.tool_problem(name, config) is None:
                assert tools[name]["available"] and tools[name]["model"] == config.name
        chords = {"chords": "C G Am F"} if config.data.chord_encoding else {}
        with single_torch_thread():
            r = client.post("/api/generate", json={"n": 1, "seed": 0, **chords})
        if studio_tools.tool_problem("generate", config) is None:
            assert r.status_code == 200, r.text
            (made,) = r.json().values()
            assert len(made) == 1
        else:
            assert r.status_code == 501 and "generate" not in tools, r.text


def test_a_config_of_another_family_does_not_borrow_the_bundled_model(tmp_path, capsys):
    """With no --checkpoint the bundled drum model plays; --config naming a melody model is
    refused rather than writing drums under a melody model's name."""
    code = main(["generate", "--config", "cat-mel_2bar_small", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "give --checkpoint" in err
    _one_line_error(err, "cat-mel_2bar_small")
    assert not list(tmp_path.iterdir())
