"""The studio's files: MIDI uploads read into the page's music, and its music as MIDI and WAV.

Each kind of music has an upload route that reads a MIDI file into it, through the converter
its models read it with, and two downloads (``DOWNLOADS``): a MIDI file and a WAV rendered on
the built-in voices. Grooves have ``/api/midi``, ``/api/midi/export`` and ``/api/audio``;
melodies, trios and multi-track performances the same under ``/api/melody``, ``/api/trio`` and
``/api/multiperf``, the page's names for them. An upload must parse as MIDI within caps on
its tracks and meta events, and only its first windows are converted, so a note hours into a
file costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, cast
from urllib.parse import quote

import numpy as np
from fastapi import HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from musicvae.configs import get_config
from musicvae.data.converters import build_converter
from musicvae.data.converters.multiperf import MultiPerformanceConverter
from musicvae.data.midi import MidiError, read_midi_bytes, sequence_to_score
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from musicvae.web.grooves import Groove, split_windows, studio_converter, upload_grid
from musicvae.web.melodies import Melody, main_program
from musicvae.web.music import Made, Music
from musicvae.web.performances import Performance
from musicvae.web.trios import Trio

# Most windows one upload returns (a GMD file is up to a few hundred bars).
MAX_UPLOAD_WINDOWS = 16
# Bars of an upload a multi-track model's converter reads at most (it skips bars it cannot
# read, so more than the windows returned).
MAX_UPLOAD_BARS = 4 * MAX_UPLOAD_WINDOWS
# Costly-to-convert uploads are refused before conversion (a GMD file has 1 track, 1 tempo
# and 1 time signature; at these caps a file converts in about 10 ms).
MAX_UPLOAD_TRACKS = 256
MAX_UPLOAD_META_EVENTS = 1000
WINDOWS = "windows in the whole file (at most 16 are returned)"


class Grooves(BaseModel):
    grooves: list[Groove]


class Melodies(BaseModel):
    melodies: list[Melody]


class Trios(BaseModel):
    trios: list[Trio]


class Performances(BaseModel):
    performances: list[Performance]


Answer = Grooves | Melodies | Trios | Performances


def answer(out: Made) -> Answer:
    """A tool's results as the response of their kind."""
    if out and isinstance(out[0], Melody):
        return melodies(out)
    if out and isinstance(out[0], Trio):
        return Trios(trios=[t for t in out if isinstance(t, Trio)])
    if out and isinstance(out[0], Performance):
        return Performances(performances=[p for p in out if isinstance(p, Performance)])
    return Grooves(grooves=[g for g in out if isinstance(g, Groove)])


def melodies(out: Made) -> Melodies:
    return Melodies(melodies=[m for m in out if isinstance(m, Melody)])


class Upload(Grooves):
    filename: str
    qpm: float
    windows: int = Field(description=WINDOWS)


class MelodyUpload(Melodies):
    filename: str
    qpm: float
    program: int = Field(description="the General MIDI program the melody plays on")
    windows: int = Field(description=WINDOWS)


class TrioUpload(Trios):
    filename: str
    qpm: float
    windows: int = Field(description=WINDOWS)


class PerformanceUpload(Performances):
    filename: str
    qpm: float
    windows: int = Field(
        description=f"windows a multi-track model reads in the file's first {MAX_UPLOAD_BARS} "
        "bars (at most 16 are returned)"
    )


def safe_name(name: str | None, default: str = "upload.mid") -> str:
    """A label for a user-supplied file name: its last component, printable, short."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .")[:80]
    return base or default


def attachment(filename: str) -> str:
    """A Content-Disposition for any file name: headers are Latin-1, so a name beyond ASCII
    goes as RFC 5987 ``filename*`` (UTF-8, percent-encoded) beside an ASCII ``filename``."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    if ascii_name == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# The studio's grid: GrooVAE's 16th-note drum grid as the 4-bar model's converter makes it.
_CONVERTER = studio_converter()
# The studio's melodies: Magenta's one-hot melody converter, as its melody models read them
# (the 16-bar models' settings: a melody on any program is read).
_MELODY_CONVERTER = build_converter(get_config("flat-mel_16bar"), "infer")
# The studio's trios: Magenta's trio converter, as its trio models read them.
_TRIO_CONVERTER = build_converter(get_config("hierdec-trio_16bar"), "infer")
# The studio's multi-track performances: Magenta's converter, as its multiperf models read them
# (the chord models read the same tokens, beside chords inferred from the notes).
_PERFORMANCE_CONVERTER = cast(
    MultiPerformanceConverter, build_converter(get_config("hier-multiperf_vel_1bar_med"), "infer")
)


def read_upload(data: bytes, name: str) -> NoteSequence:
    try:
        return read_midi_bytes(
            data,
            filename=name,
            max_tracks=MAX_UPLOAD_TRACKS,
            max_meta_events=MAX_UPLOAD_META_EVENTS,
        )
    except MidiError as e:
        raise HTTPException(422, str(e)) from None


def parse_melody_upload(data: bytes, name: str, bars: int) -> MelodyUpload:
    ns = read_upload(data, name)
    melodic = ns.select(~ns.is_drum)
    steps = bars * _MELODY_CONVERTER.steps_per_bar
    step_seconds = 60.0 / ns.qpm / _MELODY_CONVERTER.data.steps_per_quarter
    kept = melodic.select(melodic.start < (MAX_UPLOAD_WINDOWS * steps - 0.5) * step_seconds)
    grid = _MELODY_CONVERTER.sequence_grid(kept)
    if not len(melodic) or not len(grid):
        raise HTTPException(
            422,
            f"{name}: no melody found (it needs pitched notes, not drums, on a piano's range, "
            "one tempo and a 4/4 time signature throughout)",
        )
    whole = np.asarray(grid.outputs[0])
    last = float(melodic.start.max())
    windows = int(last / step_seconds) // steps + 1
    program = main_program(melodic)
    parts = split_windows(whole, steps, MAX_UPLOAD_WINDOWS)
    melodies = []
    for i, p in enumerate(parts):  # padded steps are all zero: argmax 0, no event
        label = f"{name} bars {i * bars + 1}-{(i + 1) * bars}"
        melodies.append(Melody.from_array(p, qpm=ns.qpm, name=label, program=program))
    return MelodyUpload(
        melodies=melodies,
        filename=name,
        qpm=ns.qpm,
        program=program,
        windows=max(windows, len(parts)),
    )


def parse_trio_upload(data: bytes, name: str, bars: int) -> TrioUpload:
    ns = read_upload(data, name)
    steps = bars * _TRIO_CONVERTER.steps_per_bar
    step_seconds = 60.0 / ns.qpm / _TRIO_CONVERTER.data.steps_per_quarter
    kept = ns.select(ns.start < (MAX_UPLOAD_WINDOWS * steps - 0.5) * step_seconds)
    grid = _TRIO_CONVERTER.sequence_grid(kept)
    if not len(grid):
        raise HTTPException(
            422,
            f"{name}: no trio found (it needs a melody on programs 0-31, a bass on programs "
            "32-39 and drums, one tempo and a 4/4 time signature throughout)",
        )
    last = float(ns.start.max())
    windows = int(last / step_seconds) // steps + 1
    pitched = ns.select(~ns.is_drum)
    melody = main_program(pitched.select(pitched.program < 32))
    bass = main_program(pitched.select((pitched.program >= 32) & (pitched.program < 40)))
    parts = split_windows(np.asarray(grid.outputs[0]), steps, MAX_UPLOAD_WINDOWS)
    trios = []
    for i, p in enumerate(parts):  # padded steps are all zero: no event and no hits
        label = f"{name} bars {i * bars + 1}-{(i + 1) * bars}"
        trios.append(Trio.from_array(p, qpm=ns.qpm, name=label, program=melody, bass_program=bass))
    return TrioUpload(trios=trios, filename=name, qpm=ns.qpm, windows=max(windows, len(parts)))


def parse_upload(data: bytes, name: str, bars: int) -> Upload:
    ns = read_upload(data, name)
    if ns.is_drum.any() and not ns.is_drum.all():
        # A song with a drum track: the drums are the groove; a file with no drum channel at
        # all (a rhythm tapped on a keyboard) is taken whole.
        ns = ns.select(ns.is_drum)
    steps = bars * _CONVERTER.steps_per_bar
    # Only the returned windows are gridded: a note hours into the file must not cost memory.
    step_seconds = 60.0 / ns.qpm / _CONVERTER.data.steps_per_quarter
    last = float(ns.start.max()) if len(ns) else 0.0
    windows = int(last / step_seconds) // steps + 1
    kept = ns.select(ns.start < (MAX_UPLOAD_WINDOWS * steps - 0.5) * step_seconds)
    try:
        grid = upload_grid(kept, _CONVERTER)
    except MusicVAEError as e:
        raise HTTPException(422, str(e)) from None
    parts = split_windows(grid, steps, MAX_UPLOAD_WINDOWS)
    grooves = [
        Groove.from_array(p, qpm=ns.qpm, name=f"{name} bars {i * bars + 1}-{(i + 1) * bars}")
        for i, p in enumerate(parts)
    ]
    return Upload(grooves=grooves, filename=name, qpm=ns.qpm, windows=max(windows, len(parts)))


def parse_performance_upload(data: bytes, name: str) -> PerformanceUpload:
    """The windows of a file a multi-track model reads, each as its converter decodes it back
    (so as the model sees it: at most 8 tracks, events within the bar's limits)."""
    ns = read_upload(data, name)
    conv = _PERFORMANCE_CONVERTER
    bars = conv.split_bars
    bar_seconds = 60.0 / ns.qpm * conv.data.quarters_per_bar
    kept = ns.select(ns.start < (MAX_UPLOAD_BARS - 0.01) * bar_seconds)
    found: list[tuple[int, np.ndarray]] = []
    first = 1  # the number of a piece's first bar (pieces split on tempo changes)
    for piece in conv.bars(kept):
        for i, bar in enumerate(piece):
            if bar.chunks is not None:
                found.append(
                    (first + i * bars, conv.encode_slots(conv.window_tokens(bar.chunks))[0])
                )
        first += len(piece) * bars
    if not found:
        raise HTTPException(
            422,
            f"{name}: no bar a multi-track model reads (a bar needs 2 to 8 instruments, not too "
            "many notes on any of them, and a 4/4 time signature)",
        )
    steps = bars * conv.time_steps_per_bar
    performances = []
    for number, window in found[:MAX_UPLOAD_WINDOWS]:
        (decoded,) = conv.from_tensors(window, qpm=ns.qpm)
        label = f"{name} bar {number}" if bars == 1 else f"{name} bars {number}-{number + bars - 1}"
        performances.append(
            Performance.from_sequence(
                decoded, steps=steps, steps_per_quarter=conv.steps_per_quarter, name=label
            )
        )
    return PerformanceUpload(
        performances=performances, filename=name, qpm=ns.qpm, windows=len(found)
    )


WavLoop = Annotated[
    Literal["fold", "cut"] | None,
    Query(
        description="a loop to drop into a DAW: exactly as long as the music's steps (4 bars at "
        "120 BPM: 8.000 s), what rings past the end added to the start (fold) or dropped (cut); "
        "without it the WAV runs on while the last notes ring"
    ),
]


# Per kind of music: its routes' folder under /api ("" for grooves), its file name when it has
# none, and the two downloads' summaries.
DOWNLOADS: tuple[tuple[str, type[Music], str, str, str], ...] = (
    ("", Groove, "groove", "A groove as a MIDI file", "A groove as a WAV on the studio's kit"),
    (
        "melody",
        Melody,
        "melody",
        "A melody as a MIDI file, on its program",
        "A melody as a WAV on the built-in voice of its program",
    ),
    (
        "trio",
        Trio,
        "trio",
        "A trio as a MIDI file: melody and bass on their programs, drums on channel 10",
        "A trio as a WAV: each track on its own voice, the drums on the kit",
    ),
    (
        "multiperf",
        Performance,
        "performance",
        "A multi-track performance as a MIDI file: each track on its program, drums on channel 10",
        "A multi-track performance as a WAV: each track on its own voice, the drums on the kit",
    ),
)


def downloads() -> list[tuple[str, str, str, Callable[..., Awaitable[Response]]]]:
    """The download routes: ``(path, summary, media type, endpoint)`` for each kind's MIDI file
    and WAV."""
    out = []
    for folder, body, default, midi_summary, wav_summary in DOWNLOADS:
        base = f"/api/{folder}/" if folder else "/api/"
        out.append(
            (base + "midi/export", midi_summary, "audio/midi", _download(body, default, ".mid"))
        )
        out.append((base + "audio", wav_summary, "audio/wav", _download(body, default, ".wav")))
    return out


def _download(body: type[Music], default: str, suffix: str) -> Callable[..., Awaitable[Response]]:
    """An endpoint that sends ``music`` as a MIDI file or a WAV (``suffix``), named after it
    (``default`` when it has no name); a WAV's takes ``?loop=fold|cut``."""
    media = "audio/wav" if suffix == ".wav" else "audio/midi"

    def send(g: Music, data: bytes) -> Response:
        name = safe_name(g.name, default).replace(" ", "_").removesuffix(".mid") + suffix
        return Response(data, media_type=media, headers={"Content-Disposition": attachment(name)})

    async def send_file(g: Music) -> Response:
        return send(g, await run_in_threadpool(to_midi, g))

    async def send_wav(g: Music, loop: WavLoop = None) -> Response:
        return send(g, await run_in_threadpool(to_wav, g, loop))

    endpoint = send_wav if suffix == ".wav" else send_file
    endpoint.__annotations__["g"] = body  # FastAPI reads the body's type from the annotation
    return endpoint


def _sequence(g: Music) -> NoteSequence:
    if isinstance(g, Groove):
        return g.to_sequence(_CONVERTER)
    return g.to_sequence()


def to_wav(g: Music, loop: str | None = None) -> bytes:
    """The music as a WAV; with ``loop`` ("fold" or "cut"), exactly its steps long."""
    from musicvae.audio import as_loop, render, wav_bytes

    samples = render(_sequence(g))
    if loop is not None:
        per_quarter = (
            g.steps_per_quarter if isinstance(g, Performance) else _CONVERTER.data.steps_per_quarter
        )
        seconds = g.steps * 60.0 / g.qpm / per_quarter
        samples = as_loop(samples, seconds, loop)
    return wav_bytes(samples)


def to_midi(g: Music) -> bytes:
    return sequence_to_score(_sequence(g)).dumps_midi()
