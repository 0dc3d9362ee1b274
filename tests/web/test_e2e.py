"""End to end: the studio page in real headless Chromium (Playwright) against a live server."""

from __future__ import annotations

import itertools
import math
import re
import shutil
import time
import wave

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


# ---------------------------------------------------------------- melodies


@pytest.fixture(scope="module")
def mixed_server(studio_models, melody_models):
    """The drum models and, beside them, a 2-bar and a 16-bar melody model."""
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    with BackgroundServer(create_app({**studio_models, **melody_models})) as url:
        yield url


@pytest.fixture
def mixed_page(browser, mixed_server):
    errors: list[str] = []
    context, page = _open_with(
        browser,
        mixed_server,
        FAKE_MIDI,
        errors,
        viewport={"width": 1400, "height": 1000},
        accept_downloads=True,
    )
    sync_api.expect(page.locator("#model-info")).to_contain_text("2-bar melodies")
    yield page
    context.close()
    assert errors == []


def _melody_cards(page):
    return _groups(page).first.locator(".groove-card.melody")


def _generate_melodies(page, n: int, program: str = "0") -> None:
    page.click('.tabs button[data-tool="melody_generate"]')
    page.select_option("#mgen-program", program)
    page.fill("#mgen-n", str(n))
    page.click("#mgen-run")
    sync_api.expect(_groups(page).first.locator("h2")).to_have_text("Generate melodies")
    sync_api.expect(_melody_cards(page)).to_have_count(n)


def _click_roll(card, pitch: int, step: int) -> None:
    """A click on the piano roll's cell of ``pitch`` at ``step``."""
    roll = card.locator(".roll")
    hi, steps = card.evaluate(
        "el => { const g = state.grooves.get(+el.dataset.id); return [g.hi, g.steps]; }"
    )
    box = roll.bounding_box()
    assert box is not None
    roll.click(position={"x": (step + 0.5) * box["width"] / steps, "y": (hi - pitch + 0.5) * 7})


def _notes(card) -> list[list[int]]:
    return card.evaluate(
        "el => state.grooves.get(+el.dataset.id).notes.map(n => [n.pitch, n.start, n.end])"
    )


def test_the_tabs_group_drums_and_melodies(mixed_page):
    page, expect = mixed_page, sync_api.expect
    expect(page.locator(".tabs .tab-group")).to_have_text(["Drums", "Melody"])
    melody_tabs = page.locator('.tabs button[data-kind="melody"]')
    expect(melody_tabs).to_have_text(["Generate", "Interpolate", "Continue"])
    expect(page.locator('.tabs button[data-kind="drums"]')).to_have_count(6)
    expect(page.locator("#mix")).to_be_visible()
    # The header names the models as people say them; their configs are in its tooltip.
    expect(page.locator("#model-info")).to_have_text(
        "4-bar grooves · 4-bar grooves for Groove · 4-bar grooves for Drumify · "
        "2-bar melodies · 16-bar melodies"
    )
    assert "debug-mel_2bar" in page.get_attribute("#model-info", "title")
    # Every sampling tool starts at the command line's default temperature.
    assert page.input_value("#gen-temp") == page.input_value("#mgen-temp") == "0.5"
    melody_tabs.first.click()
    expect(page.locator(".tool:not([hidden])")).to_have_attribute("data-panel", "generate-melody")
    expect(page.locator("#mgen-bars")).to_be_visible()
    assert page.locator("#mgen-bars option").all_inner_texts() == ["2", "16 (hierdec-mel_16bar)"]


def test_melody_generate_play_edit_and_export(mixed_page, tmp_path):
    from musicvae.data.midi import read_midi

    page, expect = mixed_page, sync_api.expect
    _generate_melodies(page, 2, program="40")  # strings
    card = _melody_cards(page).first
    expect(card.locator(".roll")).to_be_visible()
    assert card.locator(".note").count() == len(_notes(card))
    assert card.locator("select.program").input_value() == "40"

    # Play: the card plays on the Web Audio graph, its notes on the melodic voice.
    card.locator(".play").click()
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    page.wait_for_function("drums.ctx && drums.ctx.state === 'running' && synth.played > 0")
    page.click("#stop")
    expect(page.locator(".groove-card.playing")).to_have_count(0)

    # Edit: a click adds a note (an 8th, up to the next one), a second click takes it away.
    before = _notes(card)
    _click_roll(card, 62, 5)
    expect(card.locator('.note[data-pitch="62"][data-start="5"]')).to_have_count(1)
    assert [62, 5] in [n[:2] for n in _notes(card)]
    _click_roll(card, 62, 5)
    expect(card.locator('.note[data-pitch="62"][data-start="5"]')).to_have_count(0)
    _click_roll(card, 62, 5)
    edited = _notes(card)
    assert edited != before and [62, 5] in [n[:2] for n in edited]

    # Export: the MIDI file holds the edited melody on its voice, at the page's tempo.
    with page.expect_download() as info:
        card.locator(".dl").click()
    download = info.value
    assert download.suggested_filename == "Melody_1.mid"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    ns = read_midi(path)
    step = 60 / 120 / 4
    got = sorted((n.pitch, round(n.start / step), round(n.end / step)) for n in ns.notes)
    assert got == sorted(tuple(n) for n in edited)
    assert set(ns.program) == {40} and not ns.is_drum.any()
    with page.expect_download() as info:
        card.locator(".wav").click()
    assert info.value.suggested_filename == "Melody_1.wav"
    wav = tmp_path / "m.wav"
    info.value.save_as(wav)
    assert wav.read_bytes()[:4] == b"RIFF"
    # The WAV menu's loop: exactly the melody's steps at the page's tempo, for a DAW.
    page.select_option("#wav-loop", "fold")
    with page.expect_download() as info:
        card.locator(".wav").click()
    info.value.save_as(tmp_path / "loop.wav")
    steps = card.evaluate("el => state.grooves.get(+el.dataset.id).steps")
    with wave.open(str(tmp_path / "loop.wav")) as w:
        assert w.getnframes() == round(steps * 60 / 120 / 4 * 44_100) > 0
    page.select_option("#wav-loop", "")
    page.screenshot(path=str(tmp_path / "melodies.png"), full_page=True)


def test_melody_interpolate_between_an_upload_and_a_drawn_melody(mixed_page, tmp_path):
    """A: a melody uploaded as MIDI on the A slot; B: drawn on an empty roll."""
    from musicvae.data.midi import sequence_to_score
    from musicvae.data.sequence import NoteSequence

    page, expect = mixed_page, sync_api.expect
    notes = [(60, 100, 0.0, 0.5), (62, 100, 0.5, 1.0), (64, 100, 1.0, 2.0), (67, 100, 2.0, 4.0)]
    upload = tmp_path / "tune.mid"
    upload.write_bytes(
        sequence_to_score(NoteSequence.from_notes(notes, qpm=120, is_drum=False)).dumps_midi()
    )
    page.click('.tabs button[data-tool="melody_interpolate"]')
    page.set_input_files("#slot-ma input[type=file]", str(upload))
    expect(_groups(page).first.locator("h2")).to_have_text("Uploaded tune.mid")
    expect(page.locator("#slot-ma")).to_have_class(re.compile(r"\bfilled\b"))
    assert _notes(_melody_cards(page).first) == [[60, 0, 4], [62, 4, 8], [64, 8, 16], [67, 16, 32]]

    page.locator(".tool:not([hidden]) button.new-melody").click()
    drawn = _melody_cards(page).first
    expect(drawn.locator(".name")).to_have_text("Drawn melody")
    expect(page.locator("#slot-mb")).to_have_class(re.compile(r"\bfilled\b"))
    for pitch, step in ((72, 0), (71, 4), (67, 8), (64, 12)):
        _click_roll(drawn, pitch, step)
    assert _notes(drawn) == [[72, 0, 2], [71, 4, 6], [67, 8, 10], [64, 12, 14]]
    page.fill("#minterp-steps", "4")
    page.click("#minterp-run")
    group = _groups(page).first
    expect(group.locator("h2")).to_have_text("Interpolate melodies")
    expect(group.locator(".groove-card.melody")).to_have_count(4)
    expect(group.locator(".meta")).to_contain_text("tune.mid bars 1-2 → Drawn melody")
    # Both ends are the inputs' own means decoded: one of the model's melodies each.
    assert all(len(_notes(c)) > 0 for c in group.locator(".groove-card").all())


def test_a_melody_only_page_shows_only_the_melody_tools(browser, melody_models):
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    expect = sync_api.expect
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with BackgroundServer(create_app(melody_models["melody"])) as url:
        page.goto(url + "/")
        expect(page.locator("#model-info")).to_have_text("2-bar melodies")
        expect(page.locator(".tabs button")).to_have_text(["Generate", "Interpolate", "Continue"])
        expect(page.locator(".tabs .tab-group")).to_have_count(0)
        expect(page.locator(".tabs button.unavailable")).to_have_count(0)
        expect(page.locator("#mix")).to_be_hidden()
        panel = page.locator(".tool:not([hidden])")
        expect(panel).to_have_attribute("data-panel", "generate-melody")
        expect(panel).to_have_attribute("data-tool", "generate")
        page.fill("#mgen-n", "1")
        page.click("#mgen-run")
        expect(_melody_cards(page)).to_have_count(1)
        _melody_cards(page).first.locator(".name").click()
        page.click('.tabs button[data-tool="continue"]')
        expect(page.locator(".tool:not([hidden])")).to_have_attribute(
            "data-panel", "continue-melody"
        )
        page.fill("#mcont-bars", "2")
        page.fill("#mcont-n", "2")
        page.click("#mcont-run")
        group = _groups(page).first
        expect(group.locator("h2")).to_have_text("Continue melody")
        expect(group.locator(".groove-card.melody")).to_have_count(2)
        assert (
            group.locator(".roll").first.evaluate("e => e.style.getPropertyValue('--steps')")
            == "64"
        )
    context.close()
    assert errors == []


def _sent(page) -> list[dict]:
    return page.evaluate("window.fakeMidi.sent")


def _connect_midi(page, channel: str | None = None) -> None:
    page.click("#midi-connect")
    sync_api.expect(page.locator("#midi-ports")).to_be_visible()
    page.select_option("#midi-out", "out-1")
    if channel is not None:
        page.select_option("#midi-channel", channel)


def test_midi_out_sends_a_melody_on_the_chosen_channel(mixed_page):
    """A melody played once goes out on the chosen channel (3): its program, then each note as
    note-on and note-off at its steps at the page's tempo; no drum channel message."""
    page, expect = mixed_page, sync_api.expect
    _generate_melodies(page, 1)
    card = _melody_cards(page).first
    assert page.locator("#midi-channel option").all_inner_texts() == [
        str(c) for c in range(1, 17) if c != 10
    ]
    _connect_midi(page, "3")
    card.locator("select.program").select_option("73")  # flute
    page.fill("#tempo", "240")
    page.uncheck("#loop")
    card.locator(".play").click()
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    expect(page.locator(".groove-card.playing")).to_have_count(0, timeout=15_000)  # 2 bars: 2 s
    sent = _sent(page)
    notes = sorted(_notes(card), key=lambda n: n[1])
    assert notes
    assert sent[0]["data"] == [0xC2, 73]  # program change on channel 3
    ons = [m for m in sent if m["data"][0] == 0x92]
    offs = [m for m in sent if m["data"][0] == 0x82]
    assert len(sent) == 1 + len(ons) + len(offs)  # nothing on the drum channel
    assert [m["data"] for m in ons] == [[0x92, p, 80] for p, _, _ in notes]
    assert [m["data"] for m in offs] == [[0x82, p, 0] for p, _, _ in notes]
    sd = 60 / 240 / 4 * 1000
    t0 = ons[0]["timestamp"] - notes[0][1] * sd
    for on, off, (_, start, end) in zip(ons, offs, notes, strict=True):
        assert abs(on["timestamp"] - t0 - start * sd) < 2
        assert abs(off["timestamp"] - t0 - end * sd) < 2


def test_mix_plays_a_groove_and_a_melody_on_one_transport(mixed_page):
    """A 4-bar groove and a 2-bar melody in the Mix: one loop of the groove plays the melody
    twice, the drums on channel 10 and the melody on channel 1, on one clock."""
    page, expect = mixed_page, sync_api.expect
    _generate_melodies(page, 1)
    melody_id = _melody_cards(page).first.get_attribute("data-id")
    melody = page.locator(f'.groove-card[data-id="{melody_id}"]')
    page.click('.tabs button[data-tool="generate"]')
    page.fill("#gen-n", "1")
    page.click("#gen-run")
    expect(_groups(page).first.locator("h2")).to_have_text("Generate")
    groove = page.locator(".groove-card.drums")
    expect(groove).to_have_count(1)
    groove.locator(".to-mix").click()
    melody.locator(".to-mix").click()
    expect(page.locator("#mix-drums")).to_have_text("Sample 1")
    expect(page.locator("#mix-melody")).to_have_text("Melody 1")
    _connect_midi(page)
    page.fill("#tempo", "240")
    page.uncheck("#loop")
    page.click("#mix-play")
    expect(page.locator(".groove-card.playing")).to_have_count(2)
    page.wait_for_function("synth.played > 0")
    expect(page.locator(".groove-card.playing")).to_have_count(0, timeout=15_000)  # 4 s
    sent = _sent(page)
    hits = groove.evaluate(
        "el => state.grooves.get(+el.dataset.id).hits.flat().filter(Boolean).length"
    )
    notes = sorted(_notes(melody), key=lambda n: n[1])
    drum_ons = [m for m in sent if m["data"][0] == 0x99]
    melody_ons = [m for m in sent if m["data"][0] == 0x90]
    assert len(drum_ons) == hits and len(melody_ons) == 2 * len(notes)
    # The melody's second pass starts two bars (32 steps) after its first, on the drums' clock.
    sd = 60 / 240 / 4 * 1000
    first, second = melody_ons[0]["timestamp"], melody_ons[len(notes)]["timestamp"]
    assert abs(second - first - 32 * sd) < 2
    t0 = first - notes[0][1] * sd
    first_hit = groove.evaluate(
        "el => { const h = state.grooves.get(+el.dataset.id).hits;"
        " return h[0].findIndex((_, s) => h.some((row) => row[s])); }"
    )
    assert first_hit >= 0 and abs(drum_ons[0]["timestamp"] - t0 - first_hit * sd) < sd
