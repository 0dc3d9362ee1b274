"""End to end: the studio page in real headless Chromium (Playwright) against a live server."""

from __future__ import annotations

import itertools
import math
import re
import shutil
import time

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if CHROMIUM is None:
    pytest.skip("no chromium binary (apt-get install chromium)", allow_module_level=True)

GMD_FILE = "drummer1/session1/1_funk_80_beat_4-4.mid"


@pytest.fixture(scope="module")
def server(studio_models):
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    with BackgroundServer(create_app(studio_models)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server + "/")
    sync_api.expect(page.locator("#model-info")).to_contain_text("4-bar grooves")
    yield page
    context.close()
    assert errors == []


def _groups(page):
    return page.locator("#results .group")


def test_the_tabs_are_the_servers_tool_list(page):
    """The tab bar is /api/info's tool list, in its order, and each tab opens its own panel."""
    expect = sync_api.expect
    listed = page.request.get(page.url + "api/info").json()["tool_list"]
    tabs = page.locator(".tabs button")
    expect(tabs).to_have_text([t["label"] for t in listed])
    assert [t["label"] for t in listed] == [
        "Generate",
        "Interpolate",
        "Groove",
        "Drumify",
        "Similar",
        "Continue",
    ]
    assert tabs.evaluate_all("els => els.map(e => [e.dataset.tool, e.title])") == [
        [t["name"], t["description"]] for t in listed
    ]
    expect(page.locator(".tabs button.active")).to_have_text("Generate")
    for t in reversed(listed):
        page.click(f'.tabs button[data-tool="{t["name"]}"]')
        expect(page.locator(".tabs button.active")).to_have_text(t["label"])
        expect(page.locator(".tool:not([hidden])")).to_have_attribute("data-tool", t["name"])


def test_the_tabs_follow_the_table_and_the_models(browser, studio_models, monkeypatch):
    """A table with Similar first, labelled "Variations", and a studio without a tap model: the
    tabs in the table's order and words, Drumify struck through with the reason as its tooltip."""
    import dataclasses

    from musicvae.web import tools as table
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    similar = dataclasses.replace(table.tool("similar"), label="Variations")
    others = tuple(t for t in table.TOOLS if t.name != "similar")
    monkeypatch.setattr(table, "TOOLS", (similar, *others))
    expect = sync_api.expect
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    models = {"generate": studio_models["generate"], "groove": studio_models["groove"]}
    with BackgroundServer(create_app(models)) as url:
        page.goto(url + "/")
        tabs = page.locator(".tabs button")
        expect(tabs).to_have_text(
            ["Variations", "Generate", "Interpolate", "Groove", "Drumify", "Continue"]
        )
        # The first tab is not the open one: the page still opens on Generate.
        expect(page.locator(".tabs button.active")).to_have_text("Generate")
        struck = page.locator(".tabs button.unavailable")
        expect(struck).to_have_count(1)
        expect(struck).to_have_attribute("data-tool", "drumify")
        expect(struck).to_have_attribute(
            "title", re.compile(r"^no model for this tool: start the studio with --drumify")
        )
        page.click("text=Variations")
        expect(page.locator(".tool:not([hidden])")).to_have_attribute("data-tool", "similar")
        struck.click()
        expect(page.locator("#drumify-run")).to_be_disabled()
        expect(page.locator("#tool-note")).to_contain_text("--drumify-checkpoint")
    context.close()
    assert errors == []


def test_generate_edit_interpolate_download(page, tmp_path):
    from musicvae.data.midi import read_midi

    expect = sync_api.expect
    page.fill("#gen-n", "4")
    page.click("#gen-run")
    group = _groups(page).first
    expect(group.locator("h2")).to_have_text("Generate")
    expect(group.locator(".groove-card .grid")).to_have_count(4)
    # Every grid is 9 rows x 64 steps of cells.
    expect(group.locator(".groove-card").first.locator(".cell")).to_have_count(9 * 64)

    cell = group.locator(".groove-card").first.locator('.cell[data-row="1"][data-step="5"]')

    def is_on() -> bool:
        return cell.evaluate("el => el.classList.contains('on') && !!el.querySelector('.hit')")

    was_on = is_on()
    cell.click()
    assert is_on() != was_on
    cell.click()
    assert is_on() == was_on

    page.click("#play")
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    page.click("#stop")
    expect(page.locator(".groove-card.playing")).to_have_count(0)

    cards = group.locator(".groove-card")
    cards.nth(0).locator(".to-a").click()
    cards.nth(1).locator(".to-b").click()
    expect(page.locator("#slot-a")).to_have_class(re.compile(r"\bfilled\b"))
    page.fill("#interp-steps", "6")
    page.click("#interp-run")
    expect(_groups(page).first.locator("h2")).to_have_text("Interpolate")
    expect(_groups(page).first.locator(".groove-card")).to_have_count(6)

    with page.expect_download() as info:
        _groups(page).first.locator(".groove-card").nth(2).locator(".dl").click()
    download = info.value
    assert download.suggested_filename == "Step_3_6.mid"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    ns = read_midi(path)
    assert len(ns) > 0 and ns.is_drum.all()
    page.screenshot(path=str(tmp_path / "studio.png"), full_page=True)


def test_groove_from_uploaded_gmd_file(page, groove_dir, tmp_path):
    expect = sync_api.expect
    page.click('.tabs button[data-tool="groove"]')
    page.set_input_files("#slot-groove input[type=file]", str(groove_dir / GMD_FILE))
    uploaded = _groups(page).first
    expect(uploaded.locator("h2")).to_have_text("Uploaded 1_funk_80_beat_4-4.mid")
    expect(page.locator("#slot-groove")).to_have_class(re.compile(r"\bfilled\b"))
    assert page.input_value("#tempo") == "80"
    page.click("#groove-run")
    result = _groups(page).first
    expect(result.locator("h2")).to_have_text("Groove")
    expect(result.locator(".groove-card .grid")).to_have_count(1)
    assert result.locator(".cell.on").count() > 0
    page.screenshot(path=str(tmp_path / "groove.png"), full_page=True)


def test_drumify_from_keyboard_taps(page):
    """Taps on the keyboard become a one-pattern tap groove, then a drum groove."""
    expect = sync_api.expect
    page.fill("#tempo", "240")  # one 4-bar pattern of the debug model then lasts 4 s
    page.click('.tabs button[data-tool="drumify"]')
    page.focus("#tap-pad")
    pressed = []
    for _ in range(6):
        page.keyboard.press("j")
        pressed.append(time.monotonic())
        page.wait_for_timeout(250)
    expect(page.locator("#tap-pad")).to_have_class(re.compile(r"\brecording\b"))
    taps = page.locator(".group", has=page.locator("h2", has_text="Taps"))
    expect(taps.locator(".groove-card")).to_have_count(1, timeout=10_000)
    # Six taps a quarter note apart at 240 bpm: one hit every 4 steps, on the tap row.
    steps = taps.locator('.cell.on[data-row="2"]').evaluate_all(
        "els => els.map(e => +e.dataset.step)"
    )
    assert len(steps) == 6 and steps[0] == 0
    # Each tap lands where it was played: the gaps between hits are the gaps between key presses
    # (a 16th is 62.5 ms at 240 bpm; a busy machine delays a press by a step or two).
    played = [(b - a) / 0.0625 for a, b in itertools.pairwise(pressed)]
    gaps = [b - a for a, b in itertools.pairwise(steps)]
    assert all(abs(g - p) <= 3 for g, p in zip(gaps, played, strict=True)), (gaps, played)
    result = _groups(page).first
    expect(result.locator("h2")).to_have_text("Drumify")
    expect(result.locator(".groove-card .grid")).to_have_count(1)


def test_bad_upload_and_missing_model_are_shown(browser, groove_dir, tmp_path):
    """A non-MIDI file and a tool without a model give messages on the page, not silence."""
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    bogus = tmp_path / "notes.mid"
    bogus.write_text("not a midi file")
    context = browser.new_context()
    page = context.new_page()
    with BackgroundServer(create_app({"generate": None}, host="0.0.0.0")) as url:
        page.goto(url + "/")
        expect = sync_api.expect
        expect(page.locator("#exposed-banner")).to_be_visible()
        expect(page.locator("#tool-note")).to_contain_text("no model for this tool")
        page.click('.tabs button[data-tool="groove"]')
        page.set_input_files("#slot-groove input[type=file]", str(bogus))
        expect(page.locator(".toast.error")).to_contain_text("notes.mid: not a MIDI file")
    context.close()


def test_generate_offers_16_bars_when_a_long_model_is_served(browser, studio_models):
    """With a 16-bar model beside the 4-bar one, Generate shows a Bars choice and draws what the
    choice asks for; with one model the choice stays hidden."""
    import torch

    from musicvae.configs import get_config
    from musicvae.generation.api import TrainedModel
    from musicvae.models import build_model
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    torch.manual_seed(2)
    config = get_config("debug", "split_bars=16,max_seq_len=256")
    long = TrainedModel(build_model(config), config, source="test-long")
    expect = sync_api.expect
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    with BackgroundServer(create_app({**studio_models, "long": long})) as url:
        page.goto(url + "/")
        expect(page.locator("#gen-bars")).to_be_visible()
        assert page.locator("#gen-bars option").all_inner_texts() == ["4", "16 (debug)"]
        page.select_option("#gen-bars", "16")
        page.fill("#gen-n", "1")
        page.click("#gen-run")
        card = page.locator("#results .group").first.locator(".groove-card")
        expect(card.locator(".cell")).to_have_count(9 * 256)
        expect(page.locator("#results .group").first).to_contain_text("16 bars")
    with BackgroundServer(create_app(studio_models)) as url:
        page.goto(url + "/")
        expect(page.locator("#model-info")).to_contain_text("4-bar grooves")
        expect(page.locator("#gen-bars")).to_be_hidden()
    context.close()


def test_docs_work_offline(browser, server):
    """/docs renders the operation list with every request outside the studio refused."""
    context = browser.new_context()
    outside: list[str] = []

    def local_only(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.goto(server + "/docs")
    expect = sync_api.expect
    expect(page.locator(".opblock-summary-path", has_text="/api/generate")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/midi/export")).to_be_visible()
    expect(page.locator(".opblock-summary-description").first).to_be_visible()
    assert outside == []
    context.close()


def test_continue_extends_the_selected_groove(page):
    expect = sync_api.expect
    page.fill("#gen-n", "1")
    page.click("#gen-run")
    expect(page.locator("#results .group").first.locator(".groove-card")).to_have_count(1)
    page.locator("#results .group").first.locator(".groove-card .name").first.click()
    page.click('.tabs button[data-tool="continue"]')
    page.fill("#cont-bars", "2")
    page.fill("#cont-n", "2")
    page.click("#cont-run")
    group = page.locator("#results .group").first
    expect(group.locator("h2")).to_have_text("Continue")
    cards = group.locator(".groove-card")
    expect(cards).to_have_count(2)
    # The 4-bar groove, then 2 new bars: 6 bars of 16 steps.
    expect(cards.first.locator(".cell")).to_have_count(9 * 96)


def test_phone_width_has_no_horizontal_overflow(browser, server, groove_dir, tmp_path):
    """At 390 x 844 (a phone) the page is no wider than the screen; grids scroll in their cards
    and every tool stays usable."""
    expect = sync_api.expect
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = context.new_page()
    page.goto(server + "/")
    expect(page.locator("#model-info")).to_contain_text("4-bar grooves")

    def page_width() -> int:
        return page.evaluate("document.documentElement.scrollWidth")

    assert page_width() <= 390
    page.fill("#gen-n", "2")
    page.click("#gen-run")
    expect(page.locator(".groove-card .grid")).to_have_count(2)
    page.click('.tabs button[data-tool="groove"]')
    page.set_input_files("#slot-groove input[type=file]", str(groove_dir / GMD_FILE))
    expect(_groups(page)).to_have_count(2)
    page.click("#groove-run")
    expect(_groups(page)).to_have_count(3)
    assert page_width() <= 390, page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > 391)
            .slice(0, 8).map(e => e.tagName + '.' + e.className)"""
    )
    # Every tab, button and input of the tools fits on the screen.
    for tab in page.locator(".tabs button").all():
        tab.click()
        tool = page.locator(".tool:not([hidden])")
        for el in tool.locator(":is(button, input, select, .slot):visible").all():
            box = el.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, el.evaluate(
                "e => e.outerHTML.slice(0, 80)"
            )
    for el in page.locator("header :is(button, input, select):visible").all():
        box = el.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, el.evaluate("e => e.id")
    # A grid wider than its card scrolls inside it, and its last step can still be clicked.
    card = page.locator(".groove-card").last
    wrap = card.locator(".grid-wrap")
    assert wrap.evaluate("e => e.scrollWidth > e.clientWidth")
    cell = card.locator('.cell[data-row="0"][data-step="63"]')
    was_on = cell.evaluate("e => e.classList.contains('on')")
    cell.click()
    assert cell.evaluate("e => e.classList.contains('on')") != was_on
    assert page_width() <= 390
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    context.close()


# A stand-in for the browser's Web MIDI: one output that records send(data, timestamp) and one
# input whose onmidimessage the test drives through window.fakeMidi.receive(bytes, timeStamp).
FAKE_MIDI = """
window.fakeMidi = { sent: [] };
const output = { id: "out-1", name: "Fake drum module", type: "output", state: "connected",
  send(data, timestamp) { window.fakeMidi.sent.push({ data: Array.from(data), timestamp }); } };
const input = { id: "in-1", name: "Fake DAW", type: "input", state: "connected", onmidimessage: null };
window.fakeMidi.receive = (data, timeStamp = performance.now()) =>
  input.onmidimessage && input.onmidimessage({ data: new Uint8Array(data), timeStamp });
const access = { inputs: new Map([[input.id, input]]), outputs: new Map([[output.id, output]]),
  sysexEnabled: false, onstatechange: null };
Object.defineProperty(Navigator.prototype, "requestMIDIAccess", {
  configurable: true, value: async () => access });
"""


def _open_with(browser, url, script, errors, **options):
    """A new context and studio page with ``script`` run before the page's own scripts."""
    context = browser.new_context(**options)
    context.add_init_script(script)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    sync_api.expect(page.locator("#model-info")).to_contain_text("4-bar grooves")
    return context, page


@pytest.fixture
def midi_page(browser, server):
    errors: list[str] = []
    context, page = _open_with(
        browser, server, FAKE_MIDI, errors, viewport={"width": 1400, "height": 1000}
    )
    expect = sync_api.expect
    page.click("#midi-connect")
    expect(page.locator("#midi-ports")).to_be_visible()
    assert page.locator("#midi-out option").all_inner_texts() == ["none", "Fake drum module"]
    assert page.locator("#midi-in option").all_inner_texts() == ["none", "Fake DAW"]
    yield page
    context.close()
    assert errors == []


def test_midi_out_sends_the_playing_groove_on_channel_10(midi_page, groove_dir):
    """Playing an uploaded GMD groove once sends each hit as note-on/off on channel 10 at the
    drum's General MIDI pitch and the groove's velocity, timestamped at its step times plus
    micro-timing at the page's tempo."""
    from musicvae.data.converters.groove import REDUCED_DRUM_PITCH_CLASSES

    page, expect = midi_page, sync_api.expect
    path = groove_dir / GMD_FILE
    upload = page.request.post(
        page.url + "api/midi",
        multipart={
            "file": {"name": path.name, "mimeType": "audio/midi", "buffer": path.read_bytes()}
        },
    )
    groove = upload.json()["grooves"][0]
    page.click('.tabs button[data-tool="groove"]')
    page.set_input_files("#slot-groove input[type=file]", str(path))
    expect(_groups(page)).to_have_count(1)
    page.select_option("#midi-out", "out-1")
    page.fill("#tempo", "240")
    page.uncheck("#loop")
    page.evaluate(
        """document.querySelector("#play").addEventListener("click",
          () => { window.fakeMidi.playedAt = performance.now(); })"""
    )
    page.click("#play")
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    expect(page.locator(".groove-card.playing")).to_have_count(0, timeout=15_000)  # 4 bars: 4 s
    sent, played_at = page.evaluate("[window.fakeMidi.sent, window.fakeMidi.playedAt]")

    pitches = [c[0] for c in REDUCED_DRUM_PITCH_CLASSES]
    sd = 60 / 240 / 4 * 1000  # ms per 16th note
    expected = [
        (
            pitches[r],
            max(1, min(127, math.floor(groove["velocities"][r][s] * 127 + 0.5))),
            (s - groove["offsets"][r][s] / 2) * sd,
        )
        for s in range(len(groove["hits"][0]))
        for r in range(9)
        if groove["hits"][r][s]
    ]
    assert len(expected) > 20
    assert any(o for row in groove["offsets"] for o in row)  # a played groove: micro-timing
    assert len(sent) == 2 * len(expected)
    ons, offs = sent[0::2], sent[1::2]
    assert [(m["data"][0], m["data"][1], m["data"][2]) for m in ons] == [
        (0x99, pitch, velocity) for pitch, velocity, _ in expected
    ]
    assert [m["data"] for m in offs] == [[0x89, pitch, 0] for pitch, _, _ in expected]
    t0, e0 = ons[0]["timestamp"], expected[0][2]
    late = [
        (i, m["timestamp"] - t0, t - e0)
        for i, (m, (_, _, t)) in enumerate(zip(ons, expected, strict=True))
        if abs((m["timestamp"] - t0) - (t - e0)) > 2
    ]
    assert late == []
    assert all(
        abs(off["timestamp"] - on["timestamp"] - sd / 2) < 0.01
        for on, off in zip(ons, offs, strict=True)
    )
    # Timestamps are performance.now() times: the groove starts just after the click on Play
    # (the transport starts 80 ms ahead, plus the audio output's latency).
    assert 0 < t0 - e0 - played_at < 500


def test_midi_clock_runs_the_transport_and_notes_tap_for_drumify(midi_page):
    page, expect = midi_page, sync_api.expect
    page.fill("#gen-n", "1")
    page.click("#gen-run")
    expect(page.locator(".groove-card")).to_have_count(1)
    page.select_option("#midi-in", "in-1")
    # Clock is ignored until the page is told to follow it.
    page.evaluate("window.fakeMidi.receive([0xFA])")
    page.wait_for_timeout(200)
    expect(page.locator("#play")).not_to_have_class(re.compile(r"\bon\b"))
    page.check("#midi-clock")
    page.evaluate("window.fakeMidi.receive([0xFA])")
    expect(page.locator("#play")).to_have_class(re.compile(r"\bon\b"))
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    # Two quarter notes of clock at 100 bpm: 24 clocks a quarter, 25 ms apart.
    page.evaluate(
        """() => { const t0 = performance.now();
          for (let i = 0; i <= 48; i++) window.fakeMidi.receive([0xF8], t0 + i * 25); }"""
    )
    assert abs(float(page.input_value("#tempo")) - 100) < 0.5
    page.evaluate("window.fakeMidi.receive([0xFC])")
    expect(page.locator("#play")).not_to_have_class(re.compile(r"\bon\b"))
    expect(page.locator(".groove-card.playing")).to_have_count(0)

    # Drumify: note-ons with velocity > 0 on the input are taps; note-offs and velocity 0 are not.
    page.fill("#tempo", "240")
    page.click('.tabs button[data-tool="drumify"]')
    for _ in range(6):
        page.evaluate(
            """() => { window.fakeMidi.receive([0x90, 60, 100]);
              window.fakeMidi.receive([0x80, 60, 0]); window.fakeMidi.receive([0x99, 60, 0]); }"""
        )
        page.wait_for_timeout(250)
    taps = page.locator(".group", has=page.locator("h2", has_text="Taps"))
    expect(taps.locator(".groove-card")).to_have_count(1, timeout=10_000)
    assert taps.locator('.cell.on[data-row="2"]').count() == 6
    expect(_groups(page).first.locator("h2")).to_have_text("Drumify")


@pytest.mark.parametrize("browser_midi", ["absent", "refused"])
def test_without_web_midi_the_page_says_so_and_works(browser, server, browser_midi):
    script = {
        "absent": "delete Navigator.prototype.requestMIDIAccess;",
        "refused": """Object.defineProperty(Navigator.prototype, "requestMIDIAccess", {
            configurable: true,
            value: async () => { throw new DOMException("Permission denied", "NotAllowedError"); } });""",
    }[browser_midi]
    errors: list[str] = []
    context, page = _open_with(browser, server, script, errors)
    expect = sync_api.expect
    if browser_midi == "absent":
        expect(page.locator("#midi-note")).to_contain_text("This browser has no Web MIDI")
        expect(page.locator("#midi-connect")).to_be_hidden()
    else:
        page.click("#midi-connect")
        expect(page.locator("#midi-note")).to_contain_text("MIDI access was refused")
    expect(page.locator("#midi-note")).to_contain_text("everything else works")
    expect(page.locator("#midi-ports")).to_be_hidden()
    page.fill("#gen-n", "2")
    page.click("#gen-run")
    expect(page.locator(".groove-card .grid")).to_have_count(2)
    page.click("#play")
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    page.click("#stop")
    context.close()
    assert errors == []
