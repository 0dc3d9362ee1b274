"""``musicvae studio``: serve the browser studio and its tools (``musicvae.web.tools``).

The model flags come from the table's roles, one flag each with its help text and bundled
default. ``--checkpoint`` takes a model of any family the studio serves: a drum model (the
other drum roles and the melody models then take their bundled defaults, where installed), a
melody model (the studio then serves that model's melodies, and only what other flags name), a
trio model (its trios, each as three lanes: melody, bass and drums) or a multi-track performance
model (its one-bar performances, one lane per instrument).
Listens on 127.0.0.1 by default; another ``--host`` exposes the studio to the network,
which the command and the page both warn about. Models load on first use, so the page opens at
once; a tool without a suitable model explains on the page what to start the studio with.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from musicvae.cli import args as types
from musicvae.errors import MusicVAEError
from musicvae.web import tools as table

if TYPE_CHECKING:
    from musicvae.generation.api import TrainedModel

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "studio",
        help="serve the studio web page (drums, melodies and multi-track music) and JSON API",
        description=f"Serve a local web page with the studio's tools ({table.tool_labels()}) "
        "for drum grooves, melodies, trios and multi-track performances, with Web Audio playback "
        "and Web MIDI out, plus a JSON API under /api (schema at /docs).",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; "
        "anything else exposes the studio to the network)",
    )
    p.add_argument(
        "--port",
        type=types.bounded_int(0, 65535),
        default=8000,
        help="port to listen on, 1-65535 (default 8000; 0 = any free port)",
    )
    for role in table.ROLES:
        p.add_argument(role.flag, dest=role.dest, metavar="PATH", help=role.help)
    p.add_argument(
        "--device",
        type=types.device,
        default="cpu",
        help=f"device for the models: {types.DEVICE_HELP} (default cpu)",
    )
    p.add_argument(
        "--threads",
        type=types.threads,
        default=1,
        help="torch threads per model call (default 1: these small LSTMs gain little from more, "
        "and concurrent requests are batched instead)",
    )
    p.add_argument(
        "--untrained",
        action="store_true",
        help="serve untrained models of the tiny "
        "'debug' config instead (to try the page without any checkpoint)",
    )
    p.set_defaults(func=run)


def _models(args: argparse.Namespace) -> dict:
    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel, bundled_available, load
    from musicvae.models import build_model

    if args.untrained:
        configs = {
            role.name: get_config(role.untrained_config, role.untrained or None)
            for role in table.ROLES
        }
        return {
            role: TrainedModel(build_model(c), c, source=f"untrained {c.name}")
            for role, c in configs.items()
        }
    models: dict[str, TrainedModel | Callable[[], TrainedModel]] = {}
    for role in table.ROLES:
        path = getattr(args, role.dest)
        if path is not None:
            # A checkpoint the user named must load: fail now rather than on the page.
            model = load(path, device=args.device)
            problem = table.family_problem(role.name, model.config)
            if problem:
                raise MusicVAEError(f"{path}: {problem}")
            models[role.name] = model
            print(f"{role.name}: {model}")
    main = models.get(table.ROLES[0].name)
    if isinstance(main, TrainedModel) and table.kind_of(main.config) != "drums":
        # A melody (or trio) model as the main one serves the melody (trio) tools itself.
        beside = [r.flag for r in table.ROLES if r.kind != "drums" and r.name in models]
        if beside:
            raise MusicVAEError(
                f"{args.checkpoint} is a {main.family.name} model, which serves the "
                f"{table.kind_of(main.config)} tools itself; leave out {' and '.join(beside)} "
                "or give --checkpoint a drum model"
            )
        return models
    for role in table.ROLES:
        if role.name not in models and (role.required or bundled_available(role.bundle)):
            # A required role's bundle may be missing from this install: the page then says so.
            models[role.name] = functools.partial(_load_bundled, role.bundle, device=args.device)
    return models


def _load_bundled(name: str, *, device: str) -> TrainedModel:
    """The bundled model ``name``, also one that this version's ``load`` does not list yet
    (the melody bundles, while they are being trained)."""
    from musicvae.generation.api import BUNDLED_MODELS, bundled_path, load

    return load(name if name in BUNDLED_MODELS else bundled_path(name), device=device)


def run(args: argparse.Namespace) -> int:
    import torch

    from musicvae.device import resolve_device
    from musicvae.web.app import create_app, is_loopback
    from musicvae.web.server import listen, serve

    if args.threads < 1:
        raise MusicVAEError(f"--threads must be at least 1, got {args.threads}")
    resolve_device(args.device)  # a device this machine lacks fails now, not on the first request
    torch.set_num_threads(args.threads)
    sock = listen(args.host, args.port)
    exposed = not is_loopback(args.host)
    app = create_app(
        _models(args), host=args.host, allowed_hosts=None if exposed else LOOPBACK_NAMES
    )
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if exposed:
        bar = "!" * 72
        print(
            f"{bar}\nWARNING: the studio listens on {args.host}: anyone who can reach this "
            "machine\ncan use it (no password, no TLS). Leave out --host to keep it local.\n"
            f"{bar}",
            file=sys.stderr,
        )
    print(f"MusicVAE Studio: http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs)")
    print("press Ctrl+C to stop", flush=True)
    serve(app, sock)
    return 0
