"""The studio's tools on top of ``TrainedModel``: which model serves which tool, and the calls.

The model roles and the tools they serve are the one table in ``musicvae.web.tools``; as in
Magenta Studio, each tool has its own model: ``generate`` (Generate, Interpolate, Similar,
Continue: the main model, of any family), ``long`` (an optional second length), ``groove`` (a
humanize model), ``drumify`` (a tap model), ``melody`` and ``long_melody`` (melody models beside
the drum ones). A role is given a ``TrainedModel`` or a zero-argument loader, called on first use
so the server starts at once. What a tool answers follows its model's family: grooves for a
GrooVAE, drum patterns on the same grid for Magenta's one-hot and NADE drum models,
:class:`~musicvae.web.melodies.Melody` notes for a melody model,
:class:`~musicvae.web.trios.Trio` lanes for a trio model and
:class:`~musicvae.web.performances.Performance` tracks for another multi-track model; a tool
the family does not back (``musicvae.families``) is absent, and a request for it answers why
(what each kind of model reads and makes is ``musicvae.web.music``). Each model has a lock:
torch modules are not safe to call from two threads, and the web app runs every call in a
worker thread so the event loop stays free. The lock is granted in arrival order
(:class:`~musicvae.web.locks.FairLock`) and a long job takes it once per slice of at most
``SLICE_ROWS`` decoded windows, so a heavy request (Similar, 32 variations of a 32-bar groove)
delays a light one queued behind it by one slice, not by the whole job.

Grooves from the page are grids (``Groove``), not files, so their length is the grid's, not the
span of their notes: a pattern whose last bars are empty is still a full window. Inputs are padded
to whole windows (a 1-bar sketch for a 2-bar model is encoded as 2 bars, the second empty) and
longer grooves are cut into windows and stitched back, like ``TrainedModel``'s transforms.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from musicvae.errors import MusicVAEError
from musicvae.generation.api import TrainedModel
from musicvae.generation.chunks import stitch
from musicvae.generation.continuation import continue_categorical_tensors, continue_tensors
from musicvae.generation.latent import slerp_path
from musicvae.web import music
from musicvae.web import tools as table
from musicvae.web.grooves import MAX_STEPS, Groove
from musicvae.web.locks import Batcher, FairLock
from musicvae.web.melodies import Melody
from musicvae.web.music import Made, Music
from musicvae.web.trios import Trio

T = TypeVar("T")


ModelSource = TrainedModel | Callable[[], TrainedModel] | None
# Windows decoded per hold of a model's lock: a light request's whole job (a few tens of ms
# for groovae_4bar on one CPU thread), so light requests are never cut.
SLICE_ROWS = 16


class Unavailable(MusicVAEError):
    """The loaded models cannot do what was asked (the web API answers 501). ``absent``: no
    loaded model's family backs the tool at all, so the page leaves it out."""

    def __init__(self, message: str, *, absent: bool = False) -> None:
        super().__init__(message)
        self.absent = absent


@dataclass
class _Slot:
    source: ModelSource
    model: TrainedModel | None = None
    error: str | None = None
    lock: FairLock = field(default_factory=FairLock)  # shared per source by Studio


class Studio:
    """The models behind the page; every public method is blocking and thread-safe."""

    def __init__(self, models: ModelSource | Mapping[str, ModelSource]) -> None:
        if isinstance(models, Mapping):
            names = tuple(r.name for r in table.ROLES)
            unknown = set(models) - set(names)
            if unknown:
                raise ValueError(f"unknown model roles {sorted(unknown)}; choose from {names}")
            sources = {role: models.get(role) for role in names}
            self._named = set(models)
        else:
            # One model serves every role it was trained for; a loaded one can be checked now.
            sources = {r.name: None if r.extra else models for r in table.ROLES}
            self._named = {r.name for r in table.ROLES if not r.extra}
        self._slots = {role: _Slot(src) for role, src in sources.items()}
        # The same model object (or loader) in several roles shares one lock and one load.
        by_source: dict[int, FairLock] = {}
        for slot in self._slots.values():
            slot.lock = by_source.setdefault(id(slot.source), FairLock())
        self._load_lock = threading.Lock()
        self._batcher = Batcher()

    # ---------------------------------------------------------------- models

    def _load(self, role: str) -> TrainedModel:
        slot, row = self._slots[role], table.role(role)
        with self._load_lock:
            if slot.model is None and slot.error is None:
                src = slot.source
                if src is None:
                    slot.error = (
                        f"no model for this tool: start the studio with {row.flag} "
                        f"(e.g. a {row.bundle} model)"
                    )
                else:
                    try:
                        model = src if isinstance(src, TrainedModel) else src()
                    except MusicVAEError as e:
                        model, slot.error = None, str(e)
                    for other in self._slots.values():  # share one load between roles
                        if other.source is src and other.model is None and other.error is None:
                            other.model, other.error = model, slot.error
            needs, got = row.needs, slot.model
            if (
                needs
                and got is not None
                and slot.error is None
                and table.family_problem(role, got.config) is None
                and not getattr(got.config.data, needs)
            ):
                slot.error = (
                    f"model {got.config.name!r} cannot {row.verb}: it needs a model "
                    f"trained with {needs} (e.g. {row.bundle}); start the studio with {row.flag}"
                )
        if slot.error is not None:
            raise Unavailable(slot.error)
        assert slot.model is not None  # loaded whenever there is no error
        return slot.model

    def _serving(self, tool: str, role: str) -> TrainedModel:
        """The model of ``role``, if its family backs ``tool``."""
        m = self._load(role)
        problem = table.tool_problem(tool, m.config)
        if problem:
            raise Unavailable(problem, absent=True)
        return m

    def model(self, tool: str, bars: int | None = None) -> TrainedModel:
        """The model that serves ``tool`` (with music of ``bars`` bars, where the tool offers
        lengths), loading it if needed; ``Unavailable`` if there is none."""
        return self._serving(tool, self._role(tool, bars))

    def lengths(self, tool: str) -> list[int]:
        """The lengths in bars that ``tool`` offers, its main model's first."""
        row = table.tool(tool)
        main = self._serving(tool, row.role)
        found = [main.num_bars]
        second = row.lengths_from
        # The second length is offered only when its model is given, loads, backs the tool and
        # makes what the main one makes (a 16-bar melody is no second length of grooves).
        if second is not None and self._slots[second].source is not None:
            with contextlib.suppress(Unavailable):
                other = self._serving(tool, second)
                if table.kind_of(other.config) == table.kind_of(main.config):
                    found.append(other.num_bars)
        return list(dict.fromkeys(found))

    def _role(self, tool: str, bars: int | None) -> str:
        row = table.tool(tool)
        if bars is None:
            return row.role
        offered = self.lengths(tool)
        if bars not in offered:
            raise MusicVAEError(
                f"{tool}: no {bars}-bar model here; this studio offers "
                + " or ".join(f"{b} bars" for b in offered)
            )
        if row.lengths_from is None or self._load(row.role).num_bars == bars:
            return row.role
        return row.lengths_from

    def _call(self, tool: str, fn: Callable[[TrainedModel], T], bars: int | None = None) -> T:
        role = self._role(tool, bars)
        model = self._serving(tool, role)
        with self._slots[role].lock:
            return fn(model)

    def _sliced(
        self, tool: str, prepare: Callable, decode: Callable, slice_rows: int | None = None
    ) -> tuple[tuple, np.ndarray]:
        """A job in slices: ``prepare(model) -> (context, rows)``, then ``decode(model, context,
        rows_slice, k)`` for slices of at most ``slice_rows`` (default ``SLICE_ROWS``) rows,
        each under the model's lock on its own; returns the context and the slices
        concatenated. The first slice is decoded in the same hold as ``prepare``, so a light
        job takes the lock once."""
        size = slice_rows or SLICE_ROWS
        got: dict[str, Any] = {}

        def first(m: TrainedModel) -> np.ndarray:
            got["context"], got["rows"] = prepare(m)
            return decode(m, got["context"], slice(0, size), 0)

        parts = [self._call(tool, first)]
        context, rows = got["context"], int(got["rows"])
        for k, lo in enumerate(range(size, rows, size), start=1):

            def part(m: TrainedModel, k: int = k, lo: int = lo) -> np.ndarray:
                return decode(m, context, slice(lo, lo + size), k)

            parts.append(self._call(tool, part))
        return context, np.concatenate(parts)

    def kinds(self) -> set[str]:
        """What the models that load make ("drums", "melody")."""
        found = set()
        for role, slot in self._slots.items():
            if slot.source is not None:
                with contextlib.suppress(Unavailable):
                    found.add(table.kind_of(self._load(role).config))
        return found

    def info(self) -> dict:
        """Per tool: available or why not, its model's config, human name, kind (what it makes)
        and window length in steps. Tools come grouped by the role that serves them, in
        ``ROLES`` order (the order /api/info has always had); the page's tab order is
        ``TOOLS``'s. A tool is left out when the family of its model does not back it, or when
        its role has no model beside models of another kind (a drum studio lists no melody
        tools); a tool whose role lacks a model of the kind the studio serves is listed as
        unavailable, with the flag to start the studio with."""
        roles = [r.name for r in table.ROLES]
        kinds = self.kinds()
        tools: dict[str, dict[str, Any]] = {}
        for row in sorted(table.TOOLS, key=lambda t: roles.index(t.role)):
            tool = row.name
            try:
                m = self.model(tool)
            except Unavailable as e:
                role = table.role(row.role)
                missing = self._slots[row.role].source is None and row.role not in self._named
                # An extra role (a second length, the melody model beside the drums) is never
                # asked for; another, only beside models of its kind.
                if e.absent or (missing and (role.extra or (kinds and role.kind not in kinds))):
                    continue
                tools[tool] = {
                    "available": False,
                    "reason": str(e),
                    "model": None,
                    "steps": None,
                    "kind": role.kind,
                }
                continue
            tools[tool] = {
                "available": True,
                "reason": "",
                "model": m.config.name,
                "name": m.family.studio_name(m.num_bars),
                "kind": table.kind_of(m.config),
                "steps": m.window_steps,
                "source": m.source,
                "bars": self.lengths(tool),
                # A chord model's Generate takes chords (the request's "chords").
                "chords": bool(m.config.data.chord_encoding),
            }
            if len(tools[tool]["bars"]) > 1 and row.lengths_from is not None:
                long = self._load(row.lengths_from)
                tools[tool]["long_model"] = long.config.name
                tools[tool]["long_name"] = long.family.studio_name(long.num_bars)
        return tools

    def models(self) -> list[dict[str, str]]:
        """The models that load, once each, in ``ROLES`` order: role, human-readable name,
        config and source (the page's header)."""
        out: list[dict[str, str]] = []
        seen: set[int] = set()
        for role, slot in self._slots.items():
            if slot.source is None:
                continue
            try:
                m = self._load(role)
            except Unavailable:
                continue
            if id(m) in seen or table.family_problem(role, m.config):
                continue
            seen.add(id(m))
            name = m.family.studio_name(m.num_bars)
            if table.role(role).needs:  # "2-bar grooves for Drumify"
                name += f" for {table.role_tools(role)[0].label}"
            out.append(
                {
                    "role": role,
                    "name": name,
                    "config": m.config.name,
                    "source": m.source,
                }
            )
        return out

    # ---------------------------------------------------------------- tools

    def generate(
        self,
        n: int,
        temperature: float,
        seed: int | None,
        qpm: float,
        bars: int | None = None,
        *,
        tool: str = "generate",
        program: int = 0,
        chords: str | None = None,
    ) -> Made:
        """``n`` grooves, melodies, trios or performances (as the model's family makes) from
        the prior; a chord model's over ``chords`` ("C G Am F"; default: no chord)."""
        role = self._role(tool, bars)
        model = self._serving(tool, role)
        controls = music.chord_controls(model, chords)
        if seed is not None or controls is not None:  # drawn alone: reproducible, own chords
            with self._slots[role].lock:
                out = model.sample_tensors(n, temperature, seed, controls)
        else:
            out = self._batcher.sample(model, self._slots[role].lock, n, temperature)
        return music.results(model, out, qpm, program=program)

    def interpolate(
        self,
        a: Music,
        b: Music,
        steps: int,
        temperature: float,
        seed: int | None,
        bars: int | None = None,
        *,
        tool: str = "interpolate",
    ) -> Made:
        def run(m: TrainedModel) -> tuple[TrainedModel, np.ndarray]:
            (ia, ca), (ib, cb) = (music.first_window(m, x, tool) for x in (a, b))
            # Magenta interpolates whole sequences of one window: the first window of each.
            _, mu, _ = m.encode_tensors(np.stack([ia, ib]), np.stack([ca, cb]))
            z = slerp_path(mu[0], mu[1], steps).astype(np.float32)
            z[0], z[-1] = mu[0], mu[1]
            return m, m.decode_tensors(z, temperature, seed, np.repeat(ca[None], steps, 0))

        model, out = self._call(tool, run, bars)
        return music.results(model, out, a.qpm, program=music.program_of(a))

    def similar(
        self, g: Groove, n: int, spread: float, temperature: float, seed: int | None
    ) -> list[Groove]:
        """``n`` grooves decoded from ``mu + spread * N(0, I)``, window by window."""

        def prepare(m: TrainedModel) -> tuple[tuple, int]:
            inputs, controls, starts, total = music.groove_windows(m, g)
            _, mu, _ = m.encode_tensors(inputs, controls)
            rng = np.random.default_rng(seed)
            z = mu[None] + spread * rng.standard_normal((n, *mu.shape))  # (n, windows, Z)
            flat = z.reshape(-1, mu.shape[-1]).astype(np.float32)
            return (flat, np.tile(controls, (n, 1, 1)), starts, total), len(flat)

        def decode(m: TrainedModel, context: tuple, rows: slice, k: int) -> np.ndarray:
            flat, ctrl = context[:2]
            return m.decode_tensors(flat[rows], temperature, _slice_seed(seed, k), ctrl[rows])

        (_, _, starts, total), dec = self._sliced("similar", prepare, decode)
        dec = dec.reshape(n, len(starts), *dec.shape[1:])
        return [Groove.from_array(stitch(d, starts, total), qpm=g.qpm) for d in dec]

    def extend(
        self,
        g: Music,
        bars: int,
        n: int,
        temperature: float,
        seed: int | None,
        *,
        tool: str = "continue",
    ) -> Made:
        """Continue: ``n`` grooves (melodies, trios) of ``g`` followed by ``bars`` new bars."""

        def run(m: TrainedModel) -> tuple[TrainedModel, np.ndarray]:
            music.check_kind(m, g, tool)
            spb = m.converter.steps_per_bar
            whole = -(-g.steps // spb) * spb
            if whole + bars * spb > MAX_STEPS:
                raise MusicVAEError(
                    f"{tool}: {whole // spb} + {bars} bars is longer than the studio's "
                    f"{MAX_STEPS // spb}-bar {music.WANTS[type(g)].removeprefix('drum ')}"
                )
            if isinstance(g, Melody | Trio):
                prompt = (
                    music.melody_array(m, g, whole)
                    if isinstance(g, Melody)
                    else music.trio_array(g, whole)
                )
                return m, continue_categorical_tensors(m, prompt, bars, n, temperature, seed)
            if not isinstance(g, Groove):  # a performance: no family continues one yet
                raise MusicVAEError(f"{tool}: {music.IS[type(g)]} cannot be continued")
            arr = g.array()
            prompt = np.zeros((whole, arr.shape[1]), np.float32)
            prompt[: len(arr)] = arr
            return m, continue_tensors(m, prompt, bars, n, temperature, seed)

        model, out = self._call(tool, run)
        return music.results(model, out, g.qpm, program=music.program_of(g))

    def transform(
        self, tool: str, g: Groove, temperature: float, seed: int | None, n: int = 1
    ) -> list[Groove]:
        """Groove (humanize) or Drumify: encode each window's transformed input and decode. The
        first result decodes the posterior mean; variations 2..n decode posterior samples and
        play velocities and timing with the model's spread."""

        def prepare(m: TrainedModel) -> tuple[tuple, int]:
            inputs, controls, starts, total = music.groove_windows(m, g)
            # Groove plays the user's pattern as it is: only velocities and timing change.
            fixed = m.input_hits(inputs) if tool == "groove" else None
            # Drumify plays drums on the tapped steps, and only there.
            taps = m.input_taps(inputs) if tool == "drumify" else None
            _, mu, sigma = m.encode_tensors(inputs, controls)  # once: only z varies below
            return (controls, fixed, taps, mu, sigma, starts, total), n

        def decode(m: TrainedModel, context: tuple, _: slice, i: int) -> np.ndarray:
            # A slice is one variation here (at most MAX_STEPS / window rows): seeds per variation.
            controls, fixed, taps, mu, sigma = context[:5]
            s = None if seed is None else seed + 7919 * i
            z = mu
            if i:
                z = mu + sigma * np.random.default_rng(s).standard_normal(mu.shape)
            # The first variation is the model's best guess, played with a drummer's range;
            # the others draw around it.
            out = m.decode_tensors(
                z,
                temperature,
                _dec_seed(s),
                controls,
                fixed,
                spread=i > 0,
                taps=taps,
                expressive=i == 0,
            )
            return out[None]

        (*_, starts, total), dec = self._sliced(tool, prepare, decode, slice_rows=1)
        return [Groove.from_array(stitch(d, starts, total), qpm=g.qpm) for d in dec]


def _dec_seed(seed: int | None) -> int | None:
    # TrainedModel's transforms decode with seed + 1 (the seed itself draws z): same results here.
    return None if seed is None else seed + 1


def _slice_seed(seed: int | None, k: int) -> int | None:
    """The decoding seed of slice ``k``: slice 0 decodes as one whole call would (so light
    requests are unchanged); later slices draw their own noise, not a copy of slice 0's."""
    return None if seed is None else seed + 1 + 104_729 * k  # _dec_seed(seed) + 104_729 k
