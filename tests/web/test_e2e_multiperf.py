"""End to end: ``musicvae studio --checkpoint`` of a multi-track performance model, in real
headless Chromium.

The checkpoint is a tiny untrained ``hier-multiperf_vel_1bar_med`` saved here; the studio is
built from it as the command builds it. A performance is one lane per track on one card (each a
piano roll on the 24-steps-a-quarter grid), played on one transport: pitched tracks on the
melodic synth by their programs, drum tracks on the kit, and out to Web MIDI with the drums on
channel 10 and the pitched tracks from the melody channel on. It downloads as a MIDI file of its
tracks and a WAV, and interpolates with an uploaded file's bar.
"""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import MULTIPERF_OVERRIDES, studio_page
from tests.web.test_e2e import FAKE_MIDI

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect
MODEL_TIMEOUT = 60_000
STEPS = 96  # a bar at 24 steps a quarter


@pytest.fixture(scope="module")
def multiperf_server(tmp_path_factory):
    import torch

    from musicvae.cli import main as cli
    from musicvae.cli import studio
    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    torch.manual_seed(0)
    config = get_config("hier-multiperf_vel_1bar_med", MULTIPERF_OVERRIDES)
    path = tmp_path_factory.mktemp("multiperf") / "multiperf.safetensors"
    TrainedModel(build_model(config), config).save(path)
    args = cli.build_parser().parse_args(["studio", "--checkpoint", str(path)])
    with BackgroundServer(create_app(studio._models(args))) as url:
        yield url


@pytest.fixture
def page(browser, multiperf_server):
    with studio_page(
        browser, multiperf_server, "1-bar multi-track performances", FAKE_MIDI
    ) as page:
        yield page


def _groups(page):
    return page.locator("#results .group")


def _performance(card) -> dict:
    """The page's performance of a card: its lanes' programs, drum flags and notes."""
    return card.evaluate(
        """el => { const g = state.grooves.get(+el.dataset.id);
          return { steps: g.steps, spq: g.spq, lanes: Object.values(g.lanes).map(l => ({
            part: l.part, program: l.program, drum: l.drum, channel: l.channel,
            notes: l.notes.map(n => [n.pitch, n.start, n.end]) })) }; }"""
    )


def _generate(page, n: int) -> None:
    page.fill("#pgen-n", str(n))
    page.click("#pgen-run")
    group = _groups(page).first
    expect(group.locator("h2")).to_have_text("Generate performances", timeout=MODEL_TIMEOUT)
    expect(group.locator(".groove-card.multiperf")).to_have_count(n)


def test_a_performance_is_a_lane_per_track_and_plays(page):
    """Only Generate and Interpolate; a generated performance is a card with a lane per track,
    as many notes drawn as it has; it plays on the Web Audio graph and goes out to Web MIDI:
    each pitched track on its own channel from the melody channel on, with its program, the
    drums on channel 10, each note at its step of the 24-steps-a-quarter grid."""
    expect(page.locator(".tabs button")).to_have_text(["Generate", "Interpolate"])
    expect(page.locator(".tool:not([hidden])")).to_have_attribute(
        "data-panel", "generate-multiperf"
    )
    expect(page.locator("#pgen-chords")).to_be_hidden()  # a model without chords
    expect(page.locator("#mix")).to_be_hidden()
    _generate(page, 1)
    card = page.locator(".groove-card.multiperf").first
    perf = _performance(card)
    assert perf["steps"] == STEPS and perf["spq"] == 24
    assert perf["lanes"] and any(lane["notes"] for lane in perf["lanes"])
    lanes = card.locator(".lane")
    expect(lanes).to_have_count(len(perf["lanes"]))
    for i, lane in enumerate(perf["lanes"]):
        box = lanes.nth(i)
        assert box.get_attribute("data-lane") == lane["part"] == f"track{i + 1}"
        expect(box.locator(".roll")).to_have_count(1)
        expect(box.locator(".note")).to_have_count(len(lane["notes"]))
        expect(box.locator(".lane-name")).to_have_text(
            "Drums" if lane["drum"] else f"Track {i + 1}"
        )
        if not lane["drum"]:
            assert box.locator(".program").input_value() == str(lane["program"])
    # The lanes share one time line: every roll as wide, four beats of 24 steps a bar.
    widths = card.locator(".roll").evaluate_all("els => els.map(e => e.scrollWidth)")
    assert len(set(widths)) == 1 and widths[0] >= 8 * STEPS
    expect(card.locator(".lane").first.locator(".roll-beat")).to_have_count(3)

    page.click("#midi-connect")
    expect(page.locator("#midi-ports")).to_be_visible()
    page.select_option("#midi-out", "out-1")
    page.select_option("#midi-channel", "3")
    page.fill("#tempo", "240")
    card.locator(".play").click()
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    page.wait_for_function("drums.ctx && drums.ctx.state === 'running'")
    page.wait_for_timeout(1500)  # a bar at 240 bpm is a second
    page.click("#stop")
    expect(page.locator(".groove-card.playing")).to_have_count(0)

    # Pitched lane k goes out on channel 3 + k (channel 10 skipped), the drums on 10.
    others = [c for c in range(16) if c != 9]
    channel = {
        others[(2 + lane["channel"]) % 15]: lane for lane in perf["lanes"] if not lane["drum"]
    }
    drums = [lane for lane in perf["lanes"] if lane["drum"]]
    sent = page.evaluate("window.fakeMidi.sent")
    for ch, lane in channel.items():
        if lane["notes"]:
            assert [0xC0 | ch, lane["program"]] in [m["data"] for m in sent]
    ons = [m for m in sent if m["data"][0] & 0xF0 == 0x90]
    assert ons
    sd = 60 / 240 / 24 * 1000
    first = min(n[1] for lane in perf["lanes"] for n in lane["notes"])
    t0 = min(m["timestamp"] for m in ons) - first * sd
    for m in ons:
        status, pitch = m["data"][:2]
        step = round((m["timestamp"] - t0) / sd)
        assert abs(m["timestamp"] - t0 - step * sd) < 2, m  # on the grid
        lanes_here = drums if status == 0x99 else [channel[status & 0x0F]]
        assert any(
            (pitch, step % STEPS) in {(p, s) for p, s, _ in lane["notes"]} for lane in lanes_here
        ), m
    if any(not lane["drum"] and lane["notes"] for lane in perf["lanes"]):
        assert page.evaluate("synth.played") > 0


def test_download_and_interpolate_performances(page, magenta_dir, tmp_path):
    """The MIDI download holds every track of the card; the WAV is a sound file; a bar of an
    uploaded three-instrument file and a generated performance interpolate into performances."""
    from musicvae.data.midi import read_midi

    _generate(page, 2)
    cards = _groups(page).first.locator(".groove-card.multiperf")
    card = cards.first
    perf = _performance(card)
    with page.expect_download() as info:
        card.locator(".dl").click()
    download = info.value
    assert download.suggested_filename == "Performance_1.mid"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    ns = read_midi(path)
    step = 60 / 120 / 24
    tracks: dict = {}
    for n in ns.notes:
        key = "drums" if n.is_drum else n.program
        tracks.setdefault(key, set()).add((int(n.pitch), round(n.start / step)))
    want = {
        ("drums" if lane["drum"] else lane["program"]): {(p, s) for p, s, _ in lane["notes"]}
        for lane in perf["lanes"]
        if lane["notes"]
    }
    assert tracks == want
    with page.expect_download() as info:
        card.locator(".wav").click()
    assert info.value.suggested_filename == "Performance_1.wav"
    wav = tmp_path / "p.wav"
    info.value.save_as(wav)
    assert wav.read_bytes()[:4] == b"RIFF"

    second = cards.nth(1).get_attribute("data-id")
    page.click('.tabs button[data-tool="interpolate"]')
    page.set_input_files(
        "#slot-pa input[type=file]", str(magenta_dir / "trio" / "midis" / "01.mid")
    )
    expect(_groups(page).first.locator("h2")).to_have_text("Uploaded 01.mid")
    uploaded = _groups(page).first.locator(".groove-card.multiperf")
    expect(uploaded.locator(".lane")).to_have_count(3)
    page.locator(f'.groove-card[data-id="{second}"] .to-b').click()
    expect(page.locator(".tool:not([hidden])")).to_have_attribute(
        "data-panel", "interpolate-multiperf"
    )
    expect(page.locator("#slot-pa")).to_have_class(re.compile(r"\bfilled\b"))
    expect(page.locator("#slot-pb")).to_have_class(re.compile(r"\bfilled\b"))
    page.fill("#pinterp-steps", "3")
    page.click("#pinterp-run")
    group = _groups(page).first
    expect(group.locator("h2")).to_have_text("Interpolate performances", timeout=MODEL_TIMEOUT)
    expect(group.locator(".groove-card.multiperf")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "performances.png"), full_page=True)
