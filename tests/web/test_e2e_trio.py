"""End to end: the studio page started with a trio model, in real headless Chromium.

A trio is three lanes on one card (the melody's and the bass's piano rolls, the drums' grid),
played on one transport: the melody and the bass on the melodic synth by their programs, the
drums on the kit, and out to Web MIDI with the drums on channel 10 and the melody and the bass on
the channels chosen. It downloads as a three-track MIDI file and a WAV, and interpolates.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.web.conftest import studio_page
from tests.web.test_e2e import FAKE_MIDI

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect
# The untrained model's first decode is slow (seconds); later ones take a fraction of one.
MODEL_TIMEOUT = 60_000


@pytest.fixture(scope="module")
def trio_server(trio_model):
    from musicvae.web.app import create_app
    from musicvae.web.server import BackgroundServer

    with BackgroundServer(create_app(trio_model)) as url:
        yield url


@pytest.fixture
def page(browser, trio_server):
    with studio_page(browser, trio_server, "16-bar trios", FAKE_MIDI) as page:
        yield page


def _groups(page):
    return page.locator("#results .group")


def _trio(card) -> dict:
    """The page's trio of a card: lanes' programs and notes, drum hits."""
    return card.evaluate(
        """el => { const g = state.grooves.get(+el.dataset.id);
          const lane = (l) => ({ program: l.program, notes: l.notes.map(n => [n.pitch, n.start, n.end]) });
          return { steps: g.steps, melody: lane(g.lanes.melody), bass: lane(g.lanes.bass), hits: g.hits }; }"""
    )


def _generate(page, n: int, voice: str = "24") -> None:
    page.fill("#tgen-n", str(n))
    page.select_option("#tgen-program", voice)
    page.click("#tgen-run")
    expect(_groups(page).first.locator("h2")).to_have_text("Generate trios", timeout=MODEL_TIMEOUT)
    expect(_groups(page).first.locator(".groove-card.trio")).to_have_count(n)


def test_a_trio_page_shows_three_lanes_and_plays(page):
    """Only the trio tools; each generated trio is a card of three lanes, with as many notes
    and hits drawn as it has; it plays on the Web Audio graph (melodic voices and the kit) and
    goes out to Web MIDI: the melody on channel 3 on its program, the bass on channel 5 on
    program 33 and the drums on channel 10, each note at its step at the page's tempo."""
    expect(page.locator(".tabs button")).to_have_text(["Generate", "Interpolate", "Continue"])
    expect(page.locator(".tabs .tab-group")).to_have_count(0)
    expect(page.locator(".tool:not([hidden])")).to_have_attribute("data-panel", "generate-trio")
    expect(page.locator("#mix")).to_be_hidden()
    # Magenta's trio models read melodies on programs 0-31 back from a file.
    assert page.locator("#tgen-program option").all_inner_texts() == [
        "Piano",
        "Vibraphone",
        "Organ",
        "Guitar",
    ]
    _generate(page, 1)
    card = page.locator(".groove-card.trio").first
    lanes = card.locator(".lane")
    expect(lanes).to_have_count(3)
    assert [lane.get_attribute("data-lane") for lane in lanes.all()] == ["melody", "bass", "drums"]
    trio = _trio(card)
    assert trio["steps"] == 256 and trio["melody"]["program"] == 24
    assert trio["bass"]["program"] == 33
    for part in ("melody", "bass"):
        lane = card.locator(f'.lane[data-lane="{part}"]')
        expect(lane.locator(".roll")).to_have_count(1)
        expect(lane.locator(".note")).to_have_count(len(trio[part]["notes"]))
    drums = card.locator('.lane[data-lane="drums"]')
    expect(drums.locator(".cell")).to_have_count(9 * 256)
    expect(drums.locator(".cell.on")).to_have_count(int(np.sum(trio["hits"])))
    assert card.locator(".lane .program").evaluate_all("els => els.map(e => e.value)") == [
        "24",
        "33",
    ]
    # The lanes scroll together: one box, its three areas as wide as each other.
    widths = card.locator(".roll, .grid").evaluate_all("els => els.map(e => e.scrollWidth)")
    assert len(set(widths)) == 1 and widths[0] >= 8 * 256

    page.click("#midi-connect")
    expect(page.locator("#midi-ports")).to_be_visible()
    expect(page.locator("#midi-bass-row")).to_be_visible()
    page.select_option("#midi-out", "out-1")
    page.select_option("#midi-channel", "3")
    page.select_option("#midi-bass-channel", "5")
    page.fill("#tempo", "240")
    card.locator(".play").click()
    expect(page.locator(".groove-card.playing")).to_have_count(1)
    expect(card.locator(".playhead")).to_have_count(3)
    page.wait_for_function("drums.ctx && drums.ctx.state === 'running' && synth.played > 20")
    page.wait_for_timeout(500)
    page.click("#stop")
    expect(page.locator(".groove-card.playing")).to_have_count(0)

    sent = page.evaluate("window.fakeMidi.sent")
    assert [0xC2, 24] in [m["data"] for m in sent]  # program changes on channels 3 and 5
    assert [0xC4, 33] in [m["data"] for m in sent]
    statuses = {m["data"][0] for m in sent}
    assert {0x92, 0x82, 0x94, 0x84, 0x99, 0x89} <= statuses
    assert statuses <= {0x92, 0x82, 0x94, 0x84, 0x99, 0x89, 0xC2, 0xC4}
    sd = 60 / 240 / 4 * 1000
    melody = {(p, s) for p, s, _ in trio["melody"]["notes"]}
    first = min(trio["melody"]["notes"], key=lambda n: n[1])
    ons = [m for m in sent if m["data"][0] == 0x92]
    t0 = ons[0]["timestamp"] - first[1] * sd
    drum_pitches = page.evaluate("state.info.drum_pitches")
    checked = 0
    for m in sent:
        status, pitch = m["data"][:2]
        if status not in (0x92, 0x94, 0x99):  # note-ons; drum note-offs come half a step late
            continue
        step = round((m["timestamp"] - t0) / sd)
        assert abs(m["timestamp"] - t0 - step * sd) < 2, m  # on the grid: no micro-timing
        if status == 0x92:
            assert (pitch, step % 256) in melody, m
        elif status == 0x94:
            assert (pitch, step % 256) in {(p, s) for p, s, _ in trio["bass"]["notes"]}, m
        else:
            assert trio["hits"][drum_pitches.index(pitch)][step % 256], m
        checked += 1
    assert checked > 20


def test_edit_download_and_interpolate_trios(page, magenta_dir, tmp_path):
    """A click adds a bass note and a drum hit; the MIDI download holds the edited trio in
    three tracks and the WAV is a sound file; an uploaded trio and a generated one interpolate
    into trios."""
    from musicvae.data.midi import read_midi

    _generate(page, 2, voice="16")
    cards = _groups(page).first.locator(".groove-card.trio")
    card = cards.first
    roll = card.locator('.lane[data-lane="bass"] .roll')
    hi, lo = card.evaluate(
        "el => { const l = state.grooves.get(+el.dataset.id).lanes.bass; return [l.hi, l.lo]; }"
    )
    pitch = (hi + lo) // 2
    box = roll.bounding_box()
    assert box is not None
    before = _trio(card)["bass"]["notes"]
    roll.click(position={"x": 8.5 * box["width"] / 256, "y": (hi - pitch + 0.5) * 7})
    after = _trio(card)["bass"]["notes"]
    assert [pitch, 8] in [n[:2] for n in after] and after != before
    cell = card.locator('.lane[data-lane="drums"] .cell[data-row="1"][data-step="3"]')
    was_on = cell.evaluate("e => e.classList.contains('on')")
    cell.click()
    assert cell.evaluate("e => e.classList.contains('on')") != was_on
    edited = _trio(card)

    with page.expect_download() as info:
        card.locator(".dl").click()
    download = info.value
    assert download.suggested_filename == "Trio_1.mid"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    ns = read_midi(path)
    step = 60 / 120 / 4
    tracks = {}
    for n in ns.notes:
        key = "drums" if n.is_drum else n.program
        tracks.setdefault(key, set()).add((int(n.pitch), round(n.start / step)))
    assert set(tracks) == {16, 33, "drums"}
    assert tracks[33] == {(p, s) for p, s, _ in edited["bass"]["notes"]}
    assert tracks[16] == {(p, s) for p, s, _ in edited["melody"]["notes"]}
    hits = np.array(edited["hits"])
    assert len(tracks["drums"]) == int(hits.sum())
    snare = page.evaluate("state.info.drum_pitches[1]")
    assert ((snare, 3) in tracks["drums"]) == bool(hits[1][3]) != was_on
    with page.expect_download() as info:
        card.locator(".wav").click()
    assert info.value.suggested_filename == "Trio_1.wav"
    wav = tmp_path / "t.wav"
    info.value.save_as(wav)
    assert wav.read_bytes()[:4] == b"RIFF"

    # A: a three-instrument MIDI file dropped on the slot; B: the second generated trio.
    second = cards.nth(1).get_attribute("data-id")
    page.click('.tabs button[data-tool="interpolate"]')
    page.set_input_files(
        "#slot-ta input[type=file]", str(magenta_dir / "trio" / "midis" / "01.mid")
    )
    expect(_groups(page).first.locator("h2")).to_have_text("Uploaded 01.mid")
    uploaded = _groups(page).first.locator(".groove-card.trio")
    expect(uploaded.locator(".lane")).to_have_count(3)
    assert _trio(uploaded)["melody"]["notes"] and _trio(uploaded)["bass"]["program"] == 33
    page.locator(f'.groove-card[data-id="{second}"] .to-b').click()
    expect(page.locator(".tool:not([hidden])")).to_have_attribute("data-panel", "interpolate-trio")
    expect(page.locator("#slot-ta")).to_have_class(re.compile(r"\bfilled\b"))
    expect(page.locator("#slot-tb")).to_have_class(re.compile(r"\bfilled\b"))
    page.fill("#tinterp-steps", "3")
    page.click("#tinterp-run")
    group = _groups(page).first
    expect(group.locator("h2")).to_have_text("Interpolate trios", timeout=MODEL_TIMEOUT)
    expect(group.locator(".groove-card.trio")).to_have_count(3)
    expect(group.locator(".lane")).to_have_count(9)
    page.screenshot(path=str(tmp_path / "trios.png"), full_page=True)
