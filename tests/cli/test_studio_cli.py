"""``musicvae studio``: flags, model loading and the exposure warning (the server itself is
exercised in tests/web)."""

from __future__ import annotations

import argparse
import functools

import pytest

from musicvae.cli import main as cli
from musicvae.cli import studio
from musicvae.errors import MusicVAEError
from musicvae.web import tools as table


@pytest.fixture(autouse=True)
def torch_threads(monkeypatch):
    """Records ``torch.set_num_threads`` calls instead of changing the test process."""
    calls: list[int] = []
    monkeypatch.setattr("torch.set_num_threads", calls.append)
    return calls


def _args(*argv):
    return cli.build_parser().parse_args(["studio", *argv])


def test_defaults_are_local_port_8000():
    args = _args()
    assert (args.host, args.port, args.checkpoint, args.device) == ("127.0.0.1", 8000, None, "cpu")


def _studio_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["studio"]


def _studio_options() -> dict[str, argparse.Action]:
    return {a.option_strings[0]: a for a in _studio_parser()._actions if a.option_strings}


def test_the_model_flags_are_the_tables_roles():
    options = _studio_options()
    flags = [f for f in options if f.endswith("-checkpoint") or f == "--checkpoint"]
    assert flags == [
        "--checkpoint",
        "--long-checkpoint",
        "--groove-checkpoint",
        "--drumify-checkpoint",
        "--melody-checkpoint",
        "--long-melody-checkpoint",
    ]
    for role in table.ROLES:
        action = options[role.flag]
        assert (action.dest, action.help, action.metavar) == (role.dest, role.help, "PATH")
    assert options["--groove-checkpoint"].help == (
        "humanize model for Groove, trained with e.g. config groovae_2bar_humanize "
        "(default: the bundled groovae_2bar_humanize, where installed)"
    )
    description = _studio_parser().description
    assert "(Generate, Interpolate, Groove, Drumify, Similar and Continue)" in description


def test_a_role_added_to_the_table_is_a_flag_and_a_model(monkeypatch, tmp_path):
    fills = table.ModelRole("fills", "--fills-checkpoint", "groovae_4bar", "model for Fills")
    monkeypatch.setattr(table, "ROLES", (*table.ROLES, fills))
    assert _studio_options()["--fills-checkpoint"].help == "model for Fills"
    args = _args("--fills-checkpoint", str(tmp_path / "fills.safetensors"), "--untrained")
    assert args.fills_checkpoint == str(tmp_path / "fills.safetensors")
    assert studio._models(args)["fills"].config.name == "debug"


@pytest.mark.parametrize("installed", [False, True])
def test_defaults_are_the_tables_bundles(monkeypatch, installed):
    monkeypatch.setattr("musicvae.generation.api.bundled_available", lambda name: installed)
    models = studio._models(_args())
    # The required role always gets its default (the page says if it is missing); the others
    # only where this install ships theirs.
    expected = [r for r in table.ROLES if installed or r.required]
    assert list(models) == [r.name for r in expected]
    for role in expected:
        loader = models[role.name]
        assert isinstance(loader, functools.partial)
        assert (loader.args, loader.keywords) == ((role.bundle,), {"device": "cpu"})


def test_untrained_models_fill_every_role():
    models = studio._models(_args("--untrained"))
    assert sorted(models) == ["drumify", "generate", "groove", "long", "long_melody", "melody"]
    assert models["groove"].config.data.humanize and models["drumify"].config.data.tapify
    assert (models["generate"].num_bars, models["long"].num_bars) == (4, 16)
    assert (models["melody"].num_bars, models["long_melody"].num_bars) == (2, 16)
    assert models["melody"].family.name == models["long_melody"].family.name == "melody"


def test_a_named_checkpoint_loads_now_and_a_bad_one_fails(tmp_path, capsys):
    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    config = get_config("debug", "humanize=True")
    path = TrainedModel(build_model(config), config).save(tmp_path / "humanize.safetensors")
    models = studio._models(_args("--groove-checkpoint", str(path)))
    assert models["groove"].config.data.humanize
    assert callable(models["generate"])  # the bundled default loads lazily
    assert "groove: TrainedModel(config='debug'" in capsys.readouterr().out
    code = cli.main(
        ["studio", "--checkpoint", str(tmp_path / "missing.safetensors"), "--port", "0"]
    )
    assert code == 1
    assert "missing.safetensors: no such model bundle" in capsys.readouterr().err


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_address_is_printed_and_exposure_warned(monkeypatch, capsys, torch_threads, host, warned):
    served = {}
    monkeypatch.setattr(
        "musicvae.web.server.serve", lambda app, sock: served.update(app=app, sock=sock)
    )
    assert cli.main(["studio", "--untrained", "--host", host, "--port", "0"]) == 0
    out = capsys.readouterr()
    port = served["sock"].getsockname()[1]
    served["sock"].close()
    assert f"MusicVAE Studio: http://{host}:{port}/" in out.out
    assert ("WARNING: the studio listens on 0.0.0.0" in out.err) == warned
    assert torch_threads == [1]


def test_a_taken_port_is_a_clear_error(capsys):
    from musicvae.web.server import listen

    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        assert cli.main(["studio", "--untrained", "--port", str(port)]) == 1
    finally:
        sock.close()
    assert f"127.0.0.1:{port}: cannot listen" in capsys.readouterr().err


def _saved(tmp_path, name, overrides=None):
    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    config = get_config(name, overrides)
    return TrainedModel(build_model(config), config).save(tmp_path / f"{name}.safetensors")


def test_a_melody_checkpoint_serves_its_melodies_alone(tmp_path, monkeypatch, capsys):
    """--checkpoint of a melody model: the main model, and no bundled drum models beside it."""
    monkeypatch.setattr("musicvae.generation.api.bundled_available", lambda name: True)
    path = _saved(tmp_path, "debug-mel_2bar")
    models = studio._models(_args("--checkpoint", str(path)))
    assert list(models) == ["generate"] and models["generate"].family.name == "melody"
    code = cli.main(
        ["studio", "--checkpoint", str(path), "--melody-checkpoint", str(path), "--port", "0"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "leave out --melody-checkpoint" in err and len(err.splitlines()) == 1


def test_melody_flags_take_melody_models_and_drums_keep_their_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr("musicvae.generation.api.bundled_available", lambda name: True)
    melody = _saved(tmp_path, "debug-mel_2bar")
    models = studio._models(_args("--melody-checkpoint", str(melody)))
    assert models["melody"].family.name == "melody"
    assert callable(models["generate"]) and callable(models["long_melody"])
    drums = _saved(tmp_path, "debug")
    with pytest.raises(MusicVAEError, match=r"debug\.safetensors: config 'debug' is a groove"):
        studio._models(_args("--melody-checkpoint", str(drums)))


def _published(magenta_dir, tmp_path, monkeypatch, run: str, config: str) -> dict:
    """The models ``studio --checkpoint`` serves for Magenta's tiny run ``run`` of ``config``
    packed as its published .tar (the .tar's path under "tar"), every bundle installed."""
    from tests.interop.test_published_checkpoints import pack

    monkeypatch.setattr("musicvae.generation.api.bundled_available", lambda name: True)
    tar = pack(magenta_dir / run / "model.ckpt-5", tmp_path / f"{config}.tar", config)
    return {"tar": tar, **studio._models(_args("--checkpoint", str(tar)))}


def test_a_trio_checkpoint_serves_its_trios_alone(magenta_dir, tmp_path, monkeypatch, capsys):
    """--checkpoint of a trio model (Magenta's tiny hierdec-trio_16bar packed as its published
    .tar): the main model alone, Generate, Interpolate and Continue in its family; beside a
    melody model, or as one, it is refused in one line."""
    models = _published(
        magenta_dir, tmp_path, monkeypatch, "hierdec_trio_tiny", "hierdec-trio_16bar"
    )
    tar = models.pop("tar")
    assert list(models) == ["generate"] and models["generate"].family.name == "trio"
    config = models["generate"].config
    assert [
        t for t in ("generate", "interpolate", "continue") if table.tool_problem(t, config)
    ] == []
    melody = _saved(tmp_path, "debug-mel_2bar")
    argv = ["studio", "--checkpoint", str(tar), "--melody-checkpoint", str(melody), "--port", "0"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert (
        "is a trio model, which serves the trio tools itself; leave out --melody-checkpoint" in err
    )
    assert len(err.splitlines()) == 1
    assert cli.main(["studio", "--melody-checkpoint", str(tar), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "config 'hierdec-trio_16bar' is a trio model" in err and len(err.splitlines()) == 1


def test_a_multiperf_checkpoint_serves_its_performances_alone(magenta_dir, tmp_path, monkeypatch):
    """--checkpoint of a multi-track performance model (Magenta's tiny
    hier-multiperf_vel_1bar_med packed as its published .tar): the main model alone, serving
    its family's Generate and Interpolate, one performance a bar, no Continue."""
    from fastapi.testclient import TestClient

    from musicvae.web.app import create_app

    models = _published(
        magenta_dir, tmp_path, monkeypatch, "multiperf_tiny", "hier-multiperf_vel_1bar_med"
    )
    del models["tar"]
    assert list(models) == ["generate"] and models["generate"].family.name == "multiperf"
    with TestClient(create_app(models)) as client:
        info = client.get("/api/info").json()
        assert list(info["tools"]) == ["generate", "interpolate"]
        r = client.post("/api/generate", json={"n": 1, "seed": 0})
        assert r.status_code == 200, r.text
        (made,) = r.json()["performances"]
        assert made["steps"] == 96 and made["steps_per_quarter"] == 24
