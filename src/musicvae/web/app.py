"""The studio's web app: the page under ``/`` and a JSON API under ``/api`` (schema at ``/docs``).

``create_app(models)`` takes a ``TrainedModel``, a loader, or a mapping from role ("generate",
"long", "groove", "drumify", "melody", "long_melody") to either (see ``service.Studio``). The
main model's tools answer grooves, melodies, trios or multi-track performances as its family
makes them; the melody tools live under ``/api/melody``, and each kind's upload and downloads
under its folder (``musicvae.web.files``). Each tool's route is ``tools.tool(name).endpoint``,
summarised by its row's description, and ``/api/info`` lists the tool and role tables for the
page to build its tabs from. Safety rules: request bodies are capped (1 MB uploads); uploads
must parse as MIDI; nothing in a request names a server path (static files come from the
package folder through Starlette's checked ``StaticFiles``); model calls run in worker threads
under a per-model lock; every error is a JSON ``{"detail": message}``, and an unexpected one is
a 500 that leaves the server running.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Discriminator, Field, Tag
from starlette.middleware.trustedhost import TrustedHostMiddleware

from musicvae.data.converters.groove import REDUCED_DRUM_PITCH_CLASSES
from musicvae.errors import MusicVAEError
from musicvae.families import DEFAULT_TEMPERATURE
from musicvae.web import files
from musicvae.web import tools as table
from musicvae.web.files import Answer, Grooves, Melodies, safe_name
from musicvae.web.grooves import DRUM_LABELS, DRUM_NAMES, DRUM_PITCHES, Groove
from musicvae.web.limits import BodyLimit, ClientLimit, SameOrigin
from musicvae.web.melodies import Melody
from musicvae.web.music import Made
from musicvae.web.performances import Performance
from musicvae.web.service import ModelSource, Studio, Unavailable
from musicvae.web.trios import Trio

STATIC = Path(__file__).parent / "static"
# Swagger UI's files, as the fastapi-offline package ships them: /docs works offline.
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
MAX_UPLOAD_BYTES = 1 << 20
log = logging.getLogger("musicvae.web")
INTERNAL_ERROR = "internal error (the studio's log has the details)"

Temperature = Field(DEFAULT_TEMPERATURE, gt=0.0, le=5.0, description="sampling temperature (> 0)")
Seed = Field(None, ge=0, le=2**32 - 1, description="fixes the random draws")
Program = Field(0, ge=0, le=127, description="General MIDI program of the melodies made")


def _kind(value: Any) -> str:
    """Which of a groove, a melody, a trio or a multi-track performance a request's music is: a
    performance has tracks, a trio a melody and drums, a melody notes."""
    if isinstance(value, dict):
        if "tracks" in value:
            return "multiperf"
        if "melody" in value or "drums" in value:
            return "trio"
        return "melody" if "notes" in value or "steps" in value else "drums"
    kinds: dict[type, str] = {Melody: "melody", Trio: "trio", Performance: "multiperf"}
    return kinds.get(type(value), "drums")


# A groove, a melody, a trio or a performance: the main model's tools read whichever its family
# reads (the tags are the page's names for them, as ``tools.kind_of`` gives them).
Music = Annotated[
    Annotated[Groove, Tag("drums")]
    | Annotated[Melody, Tag("melody")]
    | Annotated[Trio, Tag("trio")]
    | Annotated[Performance, Tag("multiperf")],
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
    chords: str | None = Field(
        None,
        max_length=500,
        description="a chord model's chords (its tool's \"chords\" in /api/info), spread evenly "
        'over its window, e.g. "C G Am F" (default: no chord)',
    )


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
            # Every General MIDI drum pitch of each row: a performance's drums play the kit.
            "drum_classes": [list(pitches) for pitches in REDUCED_DRUM_PITCH_CLASSES],
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
        async def generate(req: GenerateRequest) -> Answer:
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
                    chords=req.chords,
                )
            )
            return files.answer(out)

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
    async def interpolate(req: InterpolateRequest) -> Answer:
        return files.answer(await interpolated(req, "interpolate"))

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
        music: Groove | Melody | Trio | Performance,
        req: ContinueRequest | MelodyContinueRequest,
        tool: str,
    ) -> Made:
        return await run_in_threadpool(
            functools.partial(
                studio.extend, music, req.bars, req.n, req.temperature, req.seed, tool=tool
            )
        )

    @tool_route("continue")
    async def extend(req: ContinueRequest) -> Answer:
        return files.answer(await continued(req.groove, req, "continue"))

    generate_route("melody_generate")

    @tool_route("melody_interpolate")
    async def melody_interpolate(req: MelodyInterpolateRequest) -> Melodies:
        return files.melodies(await interpolated(req, "melody_interpolate"))

    @tool_route("melody_continue")
    async def melody_continue(req: MelodyContinueRequest) -> Melodies:
        return files.melodies(await continued(req.melody, req, "melody_continue"))

    async def received(file: UploadFile) -> tuple[bytes, str]:
        """An upload's bytes and its file name, printable; 413 or 422 if too large or empty."""
        name = safe_name(file.filename)
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
    ) -> files.Upload:
        return await run_in_threadpool(files.parse_upload, *await received(file), bars)

    @app.post("/api/melody/midi", summary="Parse an uploaded MIDI file into melodies")
    async def upload_melody(
        file: Annotated[UploadFile, File(description="a MIDI file with a melody, at most 1 MB")],
        bars: Annotated[int, Query(ge=1, le=32, description="bars per returned melody")] = 2,
    ) -> files.MelodyUpload:
        return await run_in_threadpool(files.parse_melody_upload, *await received(file), bars)

    @app.post("/api/trio/midi", summary="Parse an uploaded MIDI file into trios")
    async def upload_trio(
        file: Annotated[
            UploadFile,
            File(description="a MIDI file with a melody, a bass and drums, at most 1 MB"),
        ],
        bars: Annotated[int, Query(ge=1, le=32, description="bars per returned trio")] = 16,
    ) -> files.TrioUpload:
        return await run_in_threadpool(files.parse_trio_upload, *await received(file), bars)

    @app.post(
        "/api/multiperf/midi",
        summary="Parse an uploaded MIDI file into the bars a multi-track model reads",
    )
    async def upload_performance(
        file: Annotated[
            UploadFile,
            File(description="a MIDI file of 2 to 8 instruments, at most 1 MB"),
        ],
    ) -> files.PerformanceUpload:
        return await run_in_threadpool(files.parse_performance_upload, *await received(file))

    for path, summary, media, endpoint in files.downloads():
        app.post(
            path,
            summary=summary,
            response_class=Response,
            responses={200: {"content": {media: {}}}},
        )(endpoint)

    return app
