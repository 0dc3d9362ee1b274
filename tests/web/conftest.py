"""Fixtures for the studio tests: untrained debug-size models of each role and family."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@pytest.fixture(scope="session")
def studio_models():
    """{"generate": debug, "groove": debug + humanize, "drumify": debug + tapify} TrainedModels."""
    import torch

    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(0)
    configs = {
        "generate": get_config("debug"),
        "groove": get_config("debug", "humanize=True"),
        "drumify": get_config("debug", "tapify=True,fixed_velocities=True"),
    }
    return {
        role: TrainedModel(build_model(c), c, source=f"test-{role}") for role, c in configs.items()
    }


# The 16-bar melody model's tiny stand-in: hierdec-mel_16bar's layout at debug sizes.
LONG_MELODY_OVERRIDES = "z_size=8,enc_rnn_size=[16,16],dec_rnn_size=[16,16],batch_size=4"


@pytest.fixture(scope="session")
def melody_models():
    """{"melody": debug-mel_2bar, "long_melody": a tiny hierdec-mel_16bar} TrainedModels."""
    import torch

    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(0)
    configs = {
        "melody": get_config("debug-mel_2bar"),
        "long_melody": get_config("hierdec-mel_16bar", LONG_MELODY_OVERRIDES),
    }
    return {
        role: TrainedModel(build_model(c), c, source=f"test-{role}") for role, c in configs.items()
    }


# A trio model's tiny stand-in: hierdec-trio_16bar's layout at debug sizes.
TRIO_OVERRIDES = "z_size=8,enc_rnn_size=[16,16],dec_rnn_size=[16,16],batch_size=4"


def _untrained(name: str, overrides: str, source: str):
    """An untrained TrainedModel of config ``name`` with ``overrides``, seeded."""
    import torch

    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model

    torch.manual_seed(0)
    config = get_config(name, overrides)
    return TrainedModel(build_model(config), config, source=source)


@pytest.fixture(scope="session")
def trio_model():
    """An untrained tiny hierdec-trio_16bar TrainedModel (melody, bass and drums)."""
    return _untrained("hierdec-trio_16bar", TRIO_OVERRIDES, "test-trio")


# A multi-track performance model's tiny stand-in: hier-multiperf_vel_1bar_med's layout (a
# hierarchical encoder over 8 slots of 64 tokens, a conductor over the slots) at debug sizes.
MULTIPERF_OVERRIDES = "z_size=8,enc_rnn_size=[16],dec_rnn_size=[16,16,16],batch_size=4"


@pytest.fixture(scope="session")
def multiperf_model():
    """An untrained tiny hier-multiperf_vel_1bar_med TrainedModel (one bar of up to 8 tracks)."""
    return _untrained("hier-multiperf_vel_1bar_med", MULTIPERF_OVERRIDES, "test-multiperf")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for a module of end-to-end tests; sound may start without a gesture."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield b
        b.close()


@contextmanager
def studio_page(browser: Any, url: str, models: str, script: str) -> Iterator[Any]:
    """The studio at ``url`` in a new browser context that runs ``script`` first (a fake Web
    MIDI), once its header names the ``models``; no page or console error by the end."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.add_init_script(script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/")
    expect(page.locator("#model-info")).to_have_text(models)
    yield page
    context.close()
    assert errors == []
