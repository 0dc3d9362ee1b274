"""Studio request latency: Generate (4 grooves or melodies) against a real uvicorn on 127.0.0.1.

Serves ``create_app`` under uvicorn in a separate process (as ``musicvae studio`` does) on a free
loopback port, then 4 client threads (one keep-alive connection each) send 50 requests in all,
each as soon as its previous answer arrived. Reports
p50/p95/max latency and throughput as JSON. ``--family groove`` (the default) posts to
/api/generate with the bundled groovae_4bar when installed, else a freshly initialised
groovae_4bar (same architecture, so the same cost); ``--family melody`` posts to
/api/melody/generate with the bundled mel_2bar when installed, else a freshly initialised
cat-mel_2bar_small (its config). Target: p95 < 150 ms.

``--first-paint`` also times the page: after the requests it serves, in a second server
process, the models ``musicvae studio`` serves by default (each role's bundle where installed,
loaded on first use as the command loads them; the groove and melody roles an untrained
stand-in where their bundle is missing, so both kinds are always on the page), and opens the
page in headless Chromium (Playwright; ``chromium`` on PATH, else Playwright's own) in a fresh
browser context ``--first-paint-runs`` times (default 10), each until the header shows the
models' names. The first visit, which loads the models, is reported apart (``cold``); the JSON's
``first_paint`` gives the others' first-paint and first-contentful-paint p50 and max in ms
(the browser's ``paint`` entries), the header's text, and whether first paint's max met the
target: under 1000 ms.

    .venv/bin/python benchmarks/studio.py [--family groove|melody] [--requests 50] [--clients 4]
        [--n 4] [--checkpoint P] [--first-paint [--first-paint-runs 10]]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import threading
import time
from urllib.parse import urlsplit

from musicvae.cpu import tune_environment

tune_environment()  # as the musicvae command does, before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402

from musicvae.errors import MusicVAEError  # noqa: E402

TARGET_P95_MS = 150.0
TARGET_FIRST_PAINT_MS = 1000.0
# Per family: the studio role that serves it, its Generate route, its bundle and the config of
# the untrained stand-in.
FAMILIES = {
    "groove": ("generate", "/api/generate", "groovae_4bar", "groovae_4bar"),
    "melody": ("melody", "/api/melody/generate", "mel_2bar", "cat-mel_2bar_small"),
}


def load_model(checkpoint: str | None, family: str = "groove"):
    from musicvae.configs import get_config
    from musicvae.generation.api import BUNDLED_MODELS, TrainedModel, bundled_path, load
    from musicvae.models import build_model

    _, _, bundle, config_name = FAMILIES[family]
    name = checkpoint or (bundle if bundle in BUNDLED_MODELS else bundled_path(bundle))
    try:
        return load(name), "trained"
    except MusicVAEError:
        if checkpoint is not None:
            raise
    config = get_config(config_name)
    torch.manual_seed(0)
    return TrainedModel(build_model(config), config, source=f"untrained {config.name}"), "untrained"


def serve(checkpoint: str | None, threads: int | None, port_out, family: str = "groove") -> None:
    """Server process: load the model, bind a free loopback port, report it, serve forever."""
    if threads:
        torch.set_num_threads(threads)
    from musicvae.web.app import create_app
    from musicvae.web.server import listen, serve

    model, weights = load_model(checkpoint, family)
    sock = listen("127.0.0.1", 0)
    port_out.put((sock.getsockname()[1], model.config.name, weights, torch.get_num_threads()))
    serve(create_app({FAMILIES[family][0]: model}), sock)


def load_bundled(name: str):
    """The bundled model ``name``, also one that ``load`` does not list yet (as the studio)."""
    from musicvae.generation.api import BUNDLED_MODELS, bundled_path, load

    return load(name if name in BUNDLED_MODELS else bundled_path(name))


def studio_models() -> tuple[dict, dict[str, str]]:
    """What ``musicvae studio`` serves without flags: each role's bundle where installed, as a
    loader called on first use; the groove and melody roles' untrained stand-ins where their
    bundles are missing. Also each role's weights ("trained" or "untrained")."""
    from musicvae.generation.api import bundled_available
    from musicvae.web import tools as table

    stand_ins = {role: family for family, (role, *_) in FAMILIES.items()}
    models: dict = {}
    weights: dict[str, str] = {}
    for row in table.ROLES:
        if bundled_available(row.bundle):
            models[row.name] = functools.partial(load_bundled, row.bundle)
            weights[row.name] = "trained"
        elif row.name in stand_ins:
            models[row.name], weights[row.name] = load_model(None, stand_ins[row.name])
    return models, weights


def serve_studio(threads: int | None, port_out) -> None:
    """Server process for the page: the default studio's models, on a free loopback port."""
    if threads:
        torch.set_num_threads(threads)
    from musicvae.web.app import create_app
    from musicvae.web.server import listen, serve

    models, weights = studio_models()
    sock = listen("127.0.0.1", 0)
    port_out.put((sock.getsockname()[1], weights))
    serve(create_app(models, allowed_hosts=["127.0.0.1"]), sock)


def page_paints(browser, url: str) -> tuple[dict[str, float], str, float]:
    """Open the page in a fresh context until its header names the models: the paint entries'
    start times (ms), the header's text and the ms until it showed."""
    context = browser.new_context()
    try:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(url + "/")
        page.wait_for_function(
            "document.querySelector('#model-info').textContent !== 'loading model…'",
            timeout=300_000,
        )
        shown = (time.perf_counter() - t0) * 1000
        info = page.locator("#model-info").text_content() or ""
        paints = page.evaluate(
            "performance.getEntriesByType('paint').map(e => [e.name, e.startTime])"
        )
    finally:
        context.close()
    if info in ("no models", "model unavailable"):
        raise RuntimeError(f"the page shows {info!r} instead of the models' names")
    return {name: float(ms) for name, ms in paints}, info, shown


def first_paint(threads: int | None, runs: int) -> dict:
    """Serve the default studio and time ``runs`` warm visits of its page (plus a cold one)."""
    from playwright.sync_api import sync_playwright

    ctx = multiprocessing.get_context("spawn")
    port_out = ctx.Queue()
    server = ctx.Process(target=serve_studio, args=(threads, port_out), daemon=True)
    server.start()
    try:
        port, weights = port_out.get(timeout=300)
        url = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                args=["--no-sandbox"],
            )
            try:
                cold, info, cold_shown = page_paints(browser, url)
                visits = [page_paints(browser, url) for _ in range(runs)]
            finally:
                browser.close()
    finally:
        server.terminate()
        server.join(10)

    def ms(name: str, paints: dict[str, float]) -> float | None:
        return round(paints[name], 1) if name in paints else None

    out: dict = {"runs": runs}
    for name in ("first-paint", "first-contentful-paint"):
        got = [v[0][name] for v in visits if name in v[0]]
        key = name.replace("-", "_")
        out[f"{key}_p50_ms"] = round(float(np.percentile(got, 50)), 1) if got else None
        out[f"{key}_max_ms"] = round(max(got), 1) if got else None
        out[f"{key}_missing"] = runs - len(got)
    worst = out["first_paint_max_ms"]
    out.update(
        {
            "models_shown_p50_ms": round(float(np.percentile([v[2] for v in visits], 50)), 1),
            "target_first_paint_ms": TARGET_FIRST_PAINT_MS,
            "meets_target": worst is not None
            and out["first_paint_missing"] == 0
            and worst < TARGET_FIRST_PAINT_MS,
            "cold": {
                "first_paint_ms": ms("first-paint", cold),
                "first_contentful_paint_ms": ms("first-contentful-paint", cold),
                "models_shown_ms": round(cold_shown, 1),
            },
            "model_info": info,
            "weights": weights,
        }
    )
    return out


def run_clients(
    url: str, body: bytes, requests: int, clients: int, path: str = "/api/generate"
) -> tuple[list[float], float]:
    """Latencies (ms) of ``requests`` POSTs spread over ``clients`` threads, and the wall time."""
    parts = urlsplit(url)
    left = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        start.wait()
        while True:
            with lock:
                if next(left, None) is None:
                    break
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except OSError as e:
                with lock:
                    errors.append(repr(e))
                break
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(ms)
                if resp.status != 200:
                    errors.append(f"{resp.status}: {data[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return latencies, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50, help="requests in all (default 50)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="groove", help="what to make")
    ap.add_argument("--n", type=int, default=4, help="grooves or melodies a request (default 4)")
    ap.add_argument(
        "--checkpoint", help="model to serve (default: the family's bundle, else an untrained one)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="server torch threads (default 1, as musicvae studio)",
    )
    ap.add_argument(
        "--first-paint",
        action="store_true",
        help="also time the default studio page's first paint in headless Chromium",
    )
    ap.add_argument(
        "--first-paint-runs",
        type=int,
        default=10,
        help="page visits timed, each in a fresh browser context (default 10)",
    )
    args = ap.parse_args()
    if args.first_paint_runs < 1:
        ap.error("--first-paint-runs must be at least 1")

    ctx = multiprocessing.get_context("spawn")
    port_out = ctx.Queue()
    server = ctx.Process(
        target=serve, args=(args.checkpoint, args.threads, port_out, args.family), daemon=True
    )
    path = FAMILIES[args.family][1]
    server.start()
    try:
        port, config_name, weights, threads = port_out.get(timeout=120)
        url = f"http://127.0.0.1:{port}"
        body = json.dumps({"n": args.n}).encode()  # at the studio's default temperature
        run_clients(url, body, 2 * args.clients, args.clients, path)  # warm-up: first calls
        latencies, wall = run_clients(url, body, args.requests, args.clients, path)
    finally:
        server.terminate()
        server.join(10)
    paint = first_paint(args.threads, args.first_paint_runs) if args.first_paint else None
    ms = np.array(latencies)
    p95 = float(np.percentile(ms, 95))
    report = {
        "benchmark": f"studio generate ({args.family})",
        "endpoint": f"POST {path}",
        "per_request": args.n,
        "requests": args.requests,
        "clients": args.clients,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(float(ms.max()), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "requests_per_s": round(args.requests / wall, 1),
        "target_p95_ms": TARGET_P95_MS,
        "meets_target": p95 < TARGET_P95_MS,
        "model": config_name,
        "weights": weights,
        "server_torch_threads": threads,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if paint is not None:
        report["first_paint"] = paint
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
