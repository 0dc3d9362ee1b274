"""The drum-grid PNG shows what the studio's grid shows: the same rows top to bottom, labelled as
``/api/info`` labels them, and bars, beats and shaded beats where the page draws them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from musicvae.plotting.drum_grid import drum_grid_figure
from musicvae.web.app import STATIC, create_app

STEPS = 64  # the studio's 4-bar grooves


@pytest.fixture(scope="module")
def studio_labels(studio_models):
    with TestClient(create_app(studio_models)) as c:
        return c.get("/api/info").json()["drum_labels"]


@pytest.fixture(scope="module")
def page_grid():
    """The studio's step lines and shading, read from the page script that draws the cells."""
    js = (STATIC / "app.js").read_text()
    lines = re.search(r's % (\d+) === (\d+) \? " bar" : s % (\d+) === (\d+) \? " beat"', js)
    shade = re.search(r'Math\.floor\(s / (\d+)\) % 2 \? " shade"', js)
    assert lines and shade, "the studio's cell classes changed: update this test"
    bar, bar_last, beat, beat_last = map(int, lines.groups())
    # A cell's right border marks the line, so the last step of a bar or beat carries it.
    assert (bar_last, beat_last) == (bar - 1, beat - 1)
    return {"bar": bar, "beat": beat, "shade": int(shade.group(1))}


def _figure(steps_per_bar=16, steps_per_beat=4):
    g = np.zeros((STEPS, 27), np.float32)
    g[0, 0] = g[4, 1] = 1.0  # a kick on the downbeat, a snare on beat 2
    g[:, 9:18] = 0.8
    return drum_grid_figure(g, steps_per_bar=steps_per_bar, steps_per_beat=steps_per_beat)


def _top_to_bottom(ax) -> list[str]:
    labels = [(ax.transData.transform((0, y))[1], t.get_text())
              for y, t in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)]  # fmt: skip
    return [text for _, text in sorted(labels, reverse=True)]  # display y grows upwards


def test_rows_run_top_to_bottom_in_the_studios_order_with_its_labels(studio_labels):
    ax = _figure().axes[0]
    assert _top_to_bottom(ax) == studio_labels
    assert studio_labels[0] == "Kick" and studio_labels[-1] == "Ride"
    # The hits sit in those rows: the kick's box above the snare's, as on the page.
    from matplotlib.collections import PatchCollection

    (boxes,) = [c for c in ax.collections if isinstance(c, PatchCollection)]
    corners = sorted((p.vertices.min(axis=0) for p in boxes.get_paths()), key=lambda v: v[0])
    kick, snare = corners  # lower-left corners in data units, by step
    assert (kick[0], snare[0]) == (0.05, 4.05)
    assert ax.transData.transform((0, kick[1]))[1] > ax.transData.transform((0, snare[1]))[1]


def test_bars_beats_and_shading_fall_where_the_studio_draws_them(page_grid):
    ax = _figure(page_grid["bar"], page_grid["beat"]).axes[0]
    ticks = list(ax.get_xticks())
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == list(range(0, STEPS, page_grid["beat"]))
    assert labels == [f"{b}" if i == 1 else f"{b}.{i}" for b in range(1, 5) for i in range(1, 5)]
    bold = [t for t, lab in zip(ticks, ax.get_xticklabels(), strict=True)
            if lab.get_fontweight() == "bold"]  # fmt: skip
    assert bold == list(range(0, STEPS, page_grid["bar"]))
    # The page shades step s when floor(s / 4) is odd; so does the picture.
    to_data = ax.transData.inverted()
    shaded = set()
    for p in ax.patches:
        if p.get_zorder() == 0:
            (x0, _), (x1, _) = to_data.transform(p.get_window_extent().get_points())
            shaded |= set(range(round(x0), round(x1)))
    assert shaded == {s for s in range(STEPS) if (s // page_grid["shade"]) % 2}
