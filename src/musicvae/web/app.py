"""The studio's web app: the page under ``/`` and a JSON API under ``/api`` (schema at ``/docs``).

``create_app(models)`` takes a ``TrainedModel``, a loader, or a mapping from role ("generate",
"long", "groove", "drumify", "melody", "long_melody") to either (see ``service.Studio``). The
main model's tools answer grooves, melodies or trios as its family makes them; the melody tools,
the melody upload and the melody downloads live under ``/api/melody``, the trio upload and
downloads under ``/api/trio``. Each tool's route is ``tools.tool(name).endpoint``, summarised by
its row's description, and ``/api/info`` lists the tool and role tables for the page to build
its tabs from. Safety rules: request bodies are capped
(1 MB uploads); uploads must parse as MIDI; nothing in a request names a server path (static files
come from the package folder through Starlette's checked ``StaticFiles``); model calls run in
worker threads under a per-model lock; every error is a JSON ``{"detail": message}``, and an
unexpected one is a 500 that leaves the server running.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import fastapi_offline
import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Discriminator, Field, Tag
from starlette.middleware.trustedhost import TrustedHostMiddleware

from musicvae.configs import get_config
from musicvae.data.converters import build_converter
from musicvae.data.midi import MidiError, read_midi_bytes, sequence_to_score
from musicvae.data.sequence import NoteSequence
from musicvae.errors import MusicVAEError
from musicvae.families import DEFAULT_TEMPERATURE
from musicvae.web import tools as table
from musicvae.web.grooves import (
    DRUM_LABELS,
    DRUM_NAMES,
    DRUM_PITCHES,
    Groove,
    split_windows,
    studio_converter,
    upload_grid,
)
from musicvae.web.limits import BodyLimit, ClientLimit, SameOrigin
from musicvae.web.melodies import Melody, main_program
from musicvae.web.service import ModelSource, Studio, Unavailable
from musicvae.web.trios import Trio

STATIC = Path(__file__).parent / "static"
# Swagger UI's files, as the fastapi-offline package ships them: /docs works offline.
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
MAX_UPLOAD_BYTES = 1 << 20
# Most windows one upload returns (a GMD file is up to a few hundred bars).
MAX_UPLOAD_WINDOWS = 16
# Costly-to-convert uploads are refused before conversion (a GMD file has 1 track, 1 tempo
# and 1 time signature; at these caps a file converts in about 10 ms).
MAX_UPLOAD_TRACKS = 256
MAX_UPLOAD_META_EVENTS = 1000
log = logging.getLogger("musicvae.web")
INTERNAL_ERROR = "internal error (the studio's log has the details)"

Temperature = Field(DEFAULT_TEMPERATURE, gt=0.0, le=5.0, description="sampling temperature (> 0)")
Seed = Field(None, ge=0, le=2**32 - 1, description="fixes the random draws")
Program = Field(0, ge=0, le=127, description="General MIDI program of the melodies made")


def _kind(value: Any) -> str:
    """Which of a groove, a melody or a trio a request's music is: a melody has notes, a trio
    a melody and drums."""
    if isinstance(value, dict):
        if "melody" in value or "drums" in value:
            return "trio"
        return "melody" if "notes" in value or "steps" in value else "drums"
    return "melody" if isinstance(value, Melody) else "trio" if isinstance(value, Trio) else "drums"


# A groove, a melody or a trio: the main model's tools read whichever its family reads.
Music = Annotated[
    Annotated[Groove, Tag("drums")]
    | Annotated[Melody, Tag("melody")]
    | Annotated[Trio, Tag("trio")],
    Discriminator(_kind),
]


Bars = Field(
    None,
    ge=1,
    le=64,
    description="groove length in bars, one of the tool's `bars` in /api/info (default: the first)",
)


class GenerateRequest(BaseModel):
    n: int = Field(4, ge=1, le=32, description="number of grooves (or melodies)")
    temperature: float = Temperature
    seed: int | None = Seed
    qpm: float = Field(120.0, ge=20.0, le=400.0)
    bars: int | None = Bars
    program: int = Program


class InterpolateRequest(BaseModel):
    a: Music
    b: Music
    steps: int = Field(5, ge=2, le=32, description="results from a to b, both ends included")
    temperature: float = Temperature
    seed: int | None = Seed
    bars: int | None = Bars


class MelodyInterpolateRequest(InterpolateRequest):
    a: Melody
    b: Melody


class TransformRequest(BaseModel):
    groove: Groove
    temperature: float = Temperature
    seed: int | None = Seed
    n: int = Field(1, ge=1, le=8, description="results: the best guess, then variations")


class SimilarRequest(TransformRequest):
    n: int = Field(4, ge=1, le=32)
    spread: float = Field(0.5, ge=0.0, le=5.0, description="std of the noise added to z = mu")


class ContinueRequest(BaseModel):
    groove: Music = Field(description="the groove (or, for a melody or trio model, its music)")
    bars: int = Field(4, ge=1, le=32, description="new bars after the groove")
    n: int = Field(1, ge=1, le=8, description="results: the best guess, then variations")
    temperature: float = Temperature
    seed: int | None = Seed


class MelodyContinueRequest(BaseModel):
    melody: Melody
    bars: int = Field(2, ge=1, le=32, description="new bars after the melody")
    n: int = Field(1, ge=1, le=8, description="results: the best guess, then variations")
    temperature: float = Temperature
    seed: int | None = Seed


class Grooves(BaseModel):
    grooves: list[Groove]


class Melodies(BaseModel):
    melodies: list[Melody]


class Trios(BaseModel):
    trios: list[Trio]


Made = list[Groove] | list[Melody] | list[Trio]


def _answer(out: Made) -> Grooves | Melodies | Trios:
    """A tool's results as the response of their kind."""
    if out and isinstance(out[0], Melody):
        return _melodies(out)
    if out and isinstance(out[0], Trio):
        return Trios(trios=[t for t in out if isinstance(t, Trio)])
    return Grooves(grooves=[g for g in out if isinstance(g, Groove)])


def _melodies(out: Made) -> Melodies:
    return Melodies(melodies=[m for m in out if isinstance(m, Melody)])


class Upload(Grooves):
    filename: str
    qpm: float
    windows: int = Field(description="windows in the whole file (at most 16 are returned)")


class MelodyUpload(Melodies):
    filename: str
    qpm: float
    program: int = Field(description="the General MIDI program the melody plays on")
    windows: int = Field(description="windows in the whole file (at most 16 are returned)")


class TrioUpload(Trios):
    filename: str
    qpm: float
    windows: int = Field(description="windows in the whole file (at most 16 are returned)")


# An absolute path in a message: POSIX (not a URL's or a fraction's slash) or Windows.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.:/~])(?:/|~/|[A-Za-z]:[\\/])(?:[^\s'\"(),;:/\\]+[/\\])*([^\s'\"(),;:/\\]*)"
)


def no_paths(text: str) -> str:
    """``text`` with each absolute path cut to its last part (``/srv/m/x.pt: ...`` ->
    ``x.pt: ...``): what the studio answers names no folder of the server."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


def shown_without_paths(value: Any, key: str = "") -> Any:
    """``value`` (JSON-like) with each model's ``source`` (a checkpoint, run folder or bundled
    file) cut to its name, and :func:`no_paths` on each ``reason`` (why a model did not load)."""
    if isinstance(value, dict):
        return {k: shown_without_paths(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shown_without_paths(v) for v in value]
    if isinstance(value, str) and key == "source":
        return re.split(r"[/\\]", value.rstrip("/\\"))[-1] or value
    if isinstance(value, str) and key == "reason":
        return no_paths(value)
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MB" if n >= 1 << 20 else f"{n / 1024:g} KB"


def _safe_name(name: str | None, default: str = "upload.mid") -> str:
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


def _offline_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI on files served from here, not from a CDN (no ReDoc: its page
    fetches its logo from one)."""
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-assets/favicon.png",
        )


def create_app(  # noqa: C901 - the routes are nested functions; the branches counted are theirs
    models: ModelSource | Mapping[str, ModelSource],
    *,
    host: str = "127.0.0.1",
    allowed_hosts: list[str] | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
) -> FastAPI:
    """The studio app. ``host`` is where it is served (the page warns when not loopback);
    ``allowed_hosts``, when given, rejects other Host headers (DNS-rebinding guard)."""
    studio = models if isinstance(models, Studio) else Studio(models)
    exposed = not is_loopback(host)
    app = FastAPI(
        title="MusicVAE Studio",
        summary="Generate, interpolate, humanize and drumify drum grooves with GrooVAE models, "
        "and generate, interpolate and continue melodies and trios with Magenta's models.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.studio = studio
    # Multipart framing adds a little to a max-size file; JSON grooves are far below this.
    app.add_middleware(
        BodyLimit,
        max_bytes=max_upload_bytes + 64 * 1024,
        message=f"request too large: uploads are limited to {_size(max_upload_bytes)}",
    )
    app.add_middleware(SameOrigin)
    if allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    # Outermost, so a request counts from its headers on, while its body is still coming.
    app.add_middleware(ClientLimit)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _offline_docs(app)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input back: a whole groove, and a NaN in it cannot even
        # be written as JSON. Where and what is enough.
        errors = [{k: err[k] for k in ("type", "loc", "msg") if k in err} for err in e.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, e: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": no_paths(str(e))}, status_code=501)

    @app.exception_handler(MusicVAEError)
    async def user_error(_: Request, e: MusicVAEError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception) -> JSONResponse:
        # The log has the traceback; the answer names nothing of the server's insides.
        log.exception("error in %s %s", request.method, request.url.path)
        return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)

    def tool_route(name: str) -> Callable[[Callable], Callable]:
        """A tool's POST route: at its table row's endpoint, summarised by its description."""
        row = table.tool(name)
        return app.post(row.endpoint, summary=row.description)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/info", summary="Models, tools and limits")
    async def info() -> dict:
        tools = await run_in_threadpool(studio.info)
        listed = [t.info() for t in table.TOOLS if t.name in tools]
        answer = {
            "tools": tools,
            "models": await run_in_threadpool(studio.models),
            "default_temperature": DEFAULT_TEMPERATURE,
            "drums": list(DRUM_NAMES),
            "drum_labels": list(DRUM_LABELS),
            "drum_pitches": list(DRUM_PITCHES),
            "exposed": exposed,
            "host": host,
            "max_upload_bytes": max_upload_bytes,
            # The tables themselves: the page's tabs (the tools these models back), in order,
            # and the models behind them.
            "tool_list": listed,
            "roles": [r.info() for r in table.ROLES],
        }
        # Model files by name only: a studio served with --host 0.0.0.0 shows this to anyone.
        return shown_without_paths(answer)

    def generate_route(tool: str) -> None:
        @tool_route(tool)
        async def generate(req: GenerateRequest) -> Grooves | Melodies | Trios:
            out = await run_in_threadpool(
                functools.partial(
                    studio.generate,
                    req.n,
                    req.temperature,
                    req.seed,
                    req.qpm,
                    req.bars,
                    tool=tool,
                    program=req.program,
                )
            )
            return _answer(out)

    generate_route("generate")

    async def interpolated(req: InterpolateRequest | MelodyInterpolateRequest, tool: str) -> Made:
        return await run_in_threadpool(
            functools.partial(
                studio.interpolate,
                req.a,
                req.b,
                req.steps,
                req.temperature,
                req.seed,
                req.bars,
                tool=tool,
            )
        )

    @tool_route("interpolate")
    async def interpolate(req: InterpolateRequest) -> Grooves | Melodies | Trios:
        return _answer(await interpolated(req, "interpolate"))

    @tool_route("groove")
    async def groove(req: TransformRequest) -> Grooves:
        out = await run_in_threadpool(
            studio.transform, "groove", req.groove, req.temperature, req.seed, req.n
        )
        return Grooves(grooves=out)

    @tool_route("drumify")
    async def drumify(req: TransformRequest) -> Grooves:
        out = await run_in_threadpool(
            studio.transform, "drumify", req.groove, req.temperature, req.seed, req.n
        )
        return Grooves(grooves=out)

    @tool_route("similar")
    async def similar(req: SimilarRequest) -> Grooves:
        out = await run_in_threadpool(
            studio.similar, req.groove, req.n, req.spread, req.temperature, req.seed
        )
        return Grooves(grooves=out)

    async def continued(
        music: Groove | Melody | Trio, req: ContinueRequest | MelodyContinueRequest, tool: str
    ) -> Made:
        return await run_in_threadpool(
            functools.partial(
                studio.extend, music, req.bars, req.n, req.temperature, req.seed, tool=tool
            )
        )

    @tool_route("continue")
    async def extend(req: ContinueRequest) -> Grooves | Melodies | Trios:
        return _answer(await continued(req.groove, req, "continue"))

    generate_route("melody_generate")

    @tool_route("melody_interpolate")
    async def melody_interpolate(req: MelodyInterpolateRequest) -> Melodies:
        return _melodies(await interpolated(req, "melody_interpolate"))

    @tool_route("melody_continue")
    async def melody_continue(req: MelodyContinueRequest) -> Melodies:
        return _melodies(await continued(req.melody, req, "melody_continue"))

    async def received(file: UploadFile) -> tuple[bytes, str]:
        """An upload's bytes and its file name, printable; 413 or 422 if too large or empty."""
        name = _safe_name(file.filename)
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"{name}: file is larger than {_size(max_upload_bytes)}")
        if not data:
            raise HTTPException(422, f"{name}: the file is empty")
        return data, name

    @app.post("/api/midi", summary="Parse an uploaded MIDI file into grooves")
    async def upload(
        file: Annotated[UploadFile, File(description="a drum MIDI file, at most 1 MB")],
        bars: Annotated[int, Query(ge=1, le=32, description="bars per returned groove")] = 4,
    ) -> Upload:
        return await run_in_threadpool(_parse_upload, *await received(file), bars)

    @app.post("/api/melody/midi", summary="Parse an uploaded MIDI file into melodies")
    async def upload_melody(
        file: Annotated[UploadFile, File(description="a MIDI file with a melody, at most 1 MB")],
        bars: Annotated[int, Query(ge=1, le=32, description="bars per returned melody")] = 2,
    ) -> MelodyUpload:
        return await run_in_threadpool(_parse_melody_upload, *await received(file), bars)

    @app.post("/api/trio/midi", summary="Parse an uploaded MIDI file into trios")
    async def upload_trio(
        file: Annotated[
            UploadFile,
            File(description="a MIDI file with a melody, a bass and drums, at most 1 MB"),
        ],
        bars: Annotated[int, Query(ge=1, le=32, description="bars per returned trio")] = 16,
    ) -> TrioUpload:
        return await run_in_threadpool(_parse_trio_upload, *await received(file), bars)

    for path, media, suffix, render, summary, body in (
        ("/api/midi/export", "audio/midi", ".mid", _to_midi, "A groove as a MIDI file", Groove),
        (
            "/api/audio",
            "audio/wav",
            ".wav",
            _to_wav,
            "A groove as a WAV on the studio's kit",
            Groove,
        ),
        (
            "/api/melody/midi/export",
            "audio/midi",
            ".mid",
            _to_midi,
            "A melody as a MIDI file, on its program",
            Melody,
        ),
        (
            "/api/melody/audio",
            "audio/wav",
            ".wav",
            _to_wav,
            "A melody as a WAV on the built-in voice of its program",
            Melody,
        ),
        (
            "/api/trio/midi/export",
            "audio/midi",
            ".mid",
            _to_midi,
            "A trio as a MIDI file: melody and bass on their programs, drums on channel 10",
            Trio,
        ),
        (
            "/api/trio/audio",
            "audio/wav",
            ".wav",
            _to_wav,
            "A trio as a WAV: each track on its own voice, the drums on the kit",
            Trio,
        ),
    ):
        app.post(
            path,
            summary=summary,
            response_class=Response,
            responses={200: {"content": {media: {}}}},
        )(_download(render, media, suffix, body))

    return app


# The studio's grid: GrooVAE's 16th-note drum grid as the 4-bar model's converter makes it.
_CONVERTER = studio_converter()
# The studio's melodies: Magenta's one-hot melody converter, as its melody models read them
# (the 16-bar models' settings: a melody on any program is read).
_MELODY_CONVERTER = build_converter(get_config("flat-mel_16bar"), "infer")
# The studio's trios: Magenta's trio converter, as its trio models read them.
_TRIO_CONVERTER = build_converter(get_config("hierdec-trio_16bar"), "infer")


def _read_upload(data: bytes, name: str) -> NoteSequence:
    try:
        return read_midi_bytes(
            data,
            filename=name,
            max_tracks=MAX_UPLOAD_TRACKS,
            max_meta_events=MAX_UPLOAD_META_EVENTS,
        )
    except MidiError as e:
        raise HTTPException(422, str(e)) from None


def _parse_melody_upload(data: bytes, name: str, bars: int) -> MelodyUpload:
    ns = _read_upload(data, name)
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


def _parse_trio_upload(data: bytes, name: str, bars: int) -> TrioUpload:
    ns = _read_upload(data, name)
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


def _parse_upload(data: bytes, name: str, bars: int) -> Upload:
    ns = _read_upload(data, name)
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


WavLoop = Annotated[
    Literal["fold", "cut"] | None,
    Query(
        description="a loop to drop into a DAW: exactly as long as the music's steps (4 bars at "
        "120 BPM: 8.000 s), what rings past the end added to the start (fold) or dropped (cut); "
        "without it the WAV runs on while the last notes ring"
    ),
]


def _download(
    render: Callable[..., bytes],
    media: str,
    suffix: str,
    body: type[Groove] | type[Melody] | type[Trio],
) -> Callable[..., Awaitable[Response]]:
    """An endpoint that sends ``render(music)`` as a file named after the groove, melody or
    trio; a WAV's takes ``?loop=fold|cut`` (``render(music, loop)``)."""
    default = {Groove: "groove", Melody: "melody", Trio: "trio"}[body]

    def answer(g: Groove | Melody | Trio, data: bytes) -> Response:
        name = _safe_name(g.name, default).replace(" ", "_").removesuffix(".mid") + suffix
        return Response(data, media_type=media, headers={"Content-Disposition": attachment(name)})

    async def send_file(g: Groove | Melody | Trio) -> Response:
        return answer(g, await run_in_threadpool(render, g))

    async def send_wav(g: Groove | Melody | Trio, loop: WavLoop = None) -> Response:
        return answer(g, await run_in_threadpool(render, g, loop))

    send = send_wav if suffix == ".wav" else send_file
    send.__annotations__["g"] = body  # FastAPI reads the body's type from the annotation
    return send


def _sequence(g: Groove | Melody | Trio) -> NoteSequence:
    return g.to_sequence() if isinstance(g, Melody | Trio) else g.to_sequence(_CONVERTER)


def _to_wav(g: Groove | Melody | Trio, loop: str | None = None) -> bytes:
    """The music as a WAV; with ``loop`` ("fold" or "cut"), exactly its steps long."""
    from musicvae.audio import as_loop, render, wav_bytes

    samples = render(_sequence(g))
    if loop is not None:
        seconds = g.steps * 60.0 / g.qpm / _CONVERTER.data.steps_per_quarter
        samples = as_loop(samples, seconds, loop)
    return wav_bytes(samples)


def _to_midi(g: Groove | Melody | Trio) -> bytes:
    return sequence_to_score(_sequence(g)).dumps_midi()
