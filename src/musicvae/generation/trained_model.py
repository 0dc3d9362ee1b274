"""``TrainedModel``: sampling, encoding, decoding, interpolation and the GrooVAE transforms.

Behaves as Magenta's ``TrainedModel`` (converter in 'infer' mode, interpolation by spherical
interpolation of the posterior means) and adds reconstruct, humanize, tap-to-drums and
add-instrument. Inputs longer than the model's window are cut into windows and stitched back
(see ``windows``), so every bar of the input comes back, at the input's tempo.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.data.converters.groove import GrooveConverter
from musicvae.data.sequence import NoteSequence, TimeSignature
from musicvae.errors import MusicVAEError
from musicvae.families import Family, family_of
from musicvae.generation.chunks import Prepared, prepare, stitch
from musicvae.generation.expression import expression_array
from musicvae.generation.expression import expressive as expressive_grooves
from musicvae.generation.latent import check_steps, slerp_path
from musicvae.models.vae import MusicVAE
from musicvae.validation import check_seed, derive_seed

# Prior samples play with the drummers' whole spread of loudness and timing at any temperature:
# at temperature 0.5 that keeps bar-to-bar similarity (0.535 against 0.536) and brings the
# timing spread from 0.76 of the drummers' to 1.03 and the velocity W1 from 7.9 / 11.7 / 6.6 to
# 4.9 / 5.7 / 4.1 (kick / snare / hi-hat; 4-bar bundle against the GMD test split).
DEFAULT_PLAYING = 1.0


class TrainedModel:
    """A model ready for inference, with its config and 'infer'-mode converter.

    Latent vectors are numpy arrays (N, z_size); grooves are NoteSequences, or (N, T, 27) numpy
    arrays in the ``*_tensors`` methods. ``seed`` makes a call reproducible.
    """

    def __init__(
        self,
        model: MusicVAE,
        config: Config,
        *,
        device: str | torch.device = "cpu",
        source: str = "",
        step: int | None = None,
        metadata: dict[str, str] | None = None,
        kind: str = "checkpoint",
    ) -> None:
        from musicvae.data.converters import build_converter
        from musicvae.device import resolve_device

        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.source = source
        self.step = step
        self.metadata = dict(metadata or {})
        self.kind = kind  # "bundle", "checkpoint" or "magenta": where the weights came from
        self.converter = build_converter(config, "infer")
        if self.converter.window_steps is None:
            raise MusicVAEError(f"{source}: config {config.name!r} has no fixed window length")
        self.window_steps: int = self.converter.window_steps
        # What the velocity / offset heads leave out (musicvae export --spread-from): prior
        # samples are drawn around the heads' means with it.
        self.spread: dict | None = None
        if self.metadata.get("output_spread"):
            import json

            try:
                self.spread = json.loads(self.metadata["output_spread"])
            except ValueError:
                raise MusicVAEError(f"{source}: unreadable output_spread metadata") from None
        self.expression = expression_array(self.spread)
        self.z_size = config.hparams.z_size

    def __repr__(self) -> str:
        return (
            f"TrainedModel(config={self.config.name!r}, window={self.window_steps} steps, "
            f"z_size={self.z_size}, source={self.source!r})"
        )

    @property
    def family(self) -> Family:
        """The model's row of the family table: what it can be asked for."""
        return family_of(self.config)

    @property
    def num_bars(self) -> int:
        return self.window_steps // self.converter.steps_per_bar

    # ---------------------------------------------------------------- tensors

    def _generator(self, seed: int | None) -> torch.Generator | None:
        """A generator seeded with ``seed`` (checked: an integer 0 to 2^64 - 1, as on the
        command line), or None for an unseeded draw."""
        seed = check_seed(seed)
        if seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(seed)

    def _controls(self, controls: np.ndarray | None) -> torch.Tensor | None:
        if controls is None or self.converter.control_depth == 0:
            return None
        return torch.as_tensor(np.asarray(controls), dtype=torch.float32, device=self.device)

    def sample_tensors(
        self,
        n: int,
        temperature: float = 1.0,
        seed: int | None = None,
        controls: np.ndarray | None = None,
        spread: bool = True,
        playing: float | None = DEFAULT_PLAYING,
    ) -> np.ndarray:
        """``n`` grooves (n, T, 27) decoded from ``z ~ N(0, I)``; with ``spread`` (and a model
        that stores one) velocities and offsets are drawn around the heads' means, with
        ``playing`` of the drummers' spread (0: the means; 1, the default: all of it; None:
        follow the temperature, up to 1, the earlier default). The temperature then sets how
        adventurous the grooves are (lower ones repeat more from bar to bar), and ``playing``
        how loosely they are played."""
        from musicvae.models.decoder import GrooveDecoding, spread_tensor

        _check_temperature(temperature)
        if playing is not None and not (math.isfinite(playing) and 0.0 <= playing <= 1.0):
            raise MusicVAEError(f"sample: playing must be 0 to 1, got {playing}")
        drawn = spread_tensor(self.spread) if spread and playing != 0.0 else None
        if drawn is not None and playing is not None:
            # The decoder scales the spread by min(temperature, 1); this undoes it.
            drawn = drawn * (playing / min(float(temperature), 1.0))
        if not 1 <= n <= MAX_BATCH:  # the prior is sampled as one batch
            raise MusicVAEError(f"sample: n must be 1 to {MAX_BATCH:,}, got {n}")
        g = self._generator(seed)
        with torch.no_grad():
            out = self.model.sample(
                int(n),
                self.window_steps,
                temperature,
                self._controls(controls),
                g,
                None if drawn is None else GrooveDecoding(spread=drawn),
            )
        return out.cpu().numpy()

    def encode_tensors(
        self, inputs: np.ndarray, controls: np.ndarray | None = None, seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(z, mu, sigma)``, each (N, z_size), of (N, T, 27) encoder inputs; z ~ q(z|x)."""
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=self.device)
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64, device=self.device)
        with torch.no_grad():
            mu, sigma = self.model.encode(x, lengths, self._controls(controls))
            eps = torch.randn(mu.shape, generator=self._generator(seed), device=self.device)
            z = mu + sigma * eps
        return z.cpu().numpy(), mu.cpu().numpy(), sigma.cpu().numpy()

    def decode_tensors(
        self,
        z: np.ndarray,
        temperature: float = 1.0,
        seed: int | None = None,
        controls: np.ndarray | None = None,
        fixed_hits: np.ndarray | None = None,
        spread: bool = False,
        taps: np.ndarray | None = None,
        expressive: bool = False,
    ) -> np.ndarray:
        """Grooves (N, T, 27) from latent vectors (N, z_size); ``fixed_hits`` (N, T, 9), where
        not NaN, imposes the hits and leaves the model to play them; ``spread`` draws
        velocities and offsets around the heads' means (models that store a spread);
        ``expressive`` widens the heads' means to a drummer's range instead, by
        ``min(temperature, 1)`` of the stored gains (see ``generation.expression``)."""
        from musicvae.models.decoder import GrooveDecoding, spread_tensor

        _check_temperature(temperature)
        zt = torch.as_tensor(np.asarray(z), dtype=torch.float32, device=self.device)
        if zt.dim() != 2 or zt.shape[1] != self.z_size:
            raise MusicVAEError(f"z must have shape (N, {self.z_size}), got {tuple(zt.shape)}")
        if not torch.isfinite(zt).all():  # NaN logits would fail deep in the sampler
            raise MusicVAEError("z must hold finite numbers (it has NaN or infinite values)")
        options = None
        if fixed_hits is not None or taps is not None or (spread and self.spread):
            options = GrooveDecoding(
                None if fixed_hits is None else torch.as_tensor(np.asarray(fixed_hits)),
                spread_tensor(self.spread) if spread else None,
                None if taps is None else torch.as_tensor(np.asarray(taps)),
            )
        with torch.no_grad():
            out = self.model.decode(
                zt,
                self.window_steps,
                temperature,
                self._controls(controls),
                self._generator(seed),
                options,
            )
        grooves = out.cpu().numpy()
        if expressive and self.expression is not None:
            grooves = expressive_grooves(grooves, self.expression, min(temperature, 1.0))
        return grooves

    def to_sequences(
        self, grooves: np.ndarray, qpm: float = 120.0, program: int | None = None
    ) -> list[NoteSequence]:
        """(N, T, D) or (T, D) outputs as NoteSequences in 4/4 at ``qpm``, as the converter
        writes them (drums on channel 10; a melody on ``program``, 0 by default as in
        Magenta)."""
        if not (math.isfinite(qpm) and qpm > 0):  # 0 would divide by zero
            raise MusicVAEError(f"qpm {qpm}: expected a positive tempo")
        sequences = self.converter.from_tensors(grooves, qpm=float(qpm))
        for ns in sequences:
            if program is not None and self.family.voice == "program":
                ns.program = np.full(len(ns), program, ns.program.dtype)
            _in_four_four(ns)
        return sequences

    def prepare(self, ns: NoteSequence, *, name: str | None = None) -> Prepared:
        """``ns`` converted ('infer' mode) and cut into windows; see ``windows.prepare``."""
        if not isinstance(ns, NoteSequence):  # e.g. a path: read it with read_midi first
            raise MusicVAEError(
                f"expected a NoteSequence (musicvae.data.midi.read_midi reads a file), got "
                f"{type(ns).__name__}"
            )
        return prepare(ns, self.config, name=name)

    def transform_tensors(
        self,
        ns: NoteSequence,
        temperature: float = 1.0,
        seed: int | None = None,
        *,
        sample_z: bool = False,
        name: str | None = None,
        keep_hits: bool = False,
    ) -> tuple[np.ndarray, Prepared]:
        """Encode every window of ``ns`` (after the config's input transform), decode from the
        posterior mean (or a posterior sample with ``sample_z``) and stitch: (T_total, 27).

        ``keep_hits`` imposes the input's hits (all but the classes the config adds), so the
        model only decides how they are played."""
        if keep_hits and not self.family.keeps_hits:
            raise self.family.refuse("keep_hits", self.config.name, "a GrooVAE model (drum hits)")
        prep = self.prepare(ns, name=name)
        z, mu, _ = self.encode_tensors(prep.inputs, prep.controls, seed)
        # Separate seeds for z and decoding, so that sample_z does not change the hits drawn.
        dec_seed = derive_seed(check_seed(seed), 1)
        taps = None
        if keep_hits and self.config.data.tapify:  # a tap model keeps the tapped steps
            taps, fixed = self.input_taps(prep.inputs), None
        else:
            fixed = self.input_hits(prep.inputs) if keep_hits else None
        windows = self.decode_tensors(
            z if sample_z else mu,
            temperature,
            dec_seed,
            prep.controls,
            fixed,
            taps=taps,
            expressive=True,
        )
        return stitch(windows, prep.starts, prep.total_steps), prep

    def input_taps(self, inputs: np.ndarray) -> np.ndarray:
        """(N, T) bool: the steps a tap model's encoder inputs hold a tap on."""
        n = len(self.converter.class_names)
        return np.asarray(inputs)[..., :n].max(axis=-1) > 0.5

    def input_hits(self, inputs: np.ndarray) -> np.ndarray:
        """The hits to keep of (N, T, 27) encoder inputs: (N, T, 9), NaN (free) for the classes
        the config adds; a tap model's single input channel holds no drum hits to keep."""
        if self.config.data.tapify:
            raise MusicVAEError(
                f"config {self.config.name!r} reads taps, not drum hits: there are no hits to keep"
            )
        n = len(self.converter.class_names)
        fixed = (np.asarray(inputs)[..., :n] > 0.5).astype(np.float32)
        fixed[..., list(self.config.data.add_instruments)] = np.nan
        return fixed

    # ---------------------------------------------------------------- sequences

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        seed: int | None = None,
        qpm: float = 120.0,
        playing: float | None = DEFAULT_PLAYING,
    ) -> list[NoteSequence]:
        """``n`` grooves of the model's length from the prior (``playing``: see
        ``sample_tensors``)."""
        return self.to_sequences(self.sample_tensors(n, temperature, seed, playing=playing), qpm)

    def encode(
        self, sequences: list[NoteSequence] | NoteSequence, seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(z, mu, sigma)``, each (N, z_size): one row per sequence, from its first window
        (its first ``num_bars`` bars; Magenta requires inputs of exactly one window)."""
        if isinstance(sequences, NoteSequence):
            sequences = [sequences]
        if not sequences:
            raise MusicVAEError("encode: no sequences given")
        preps = [self.prepare(ns) for ns in sequences]
        inputs = np.stack([p.inputs[0] for p in preps])
        controls = np.stack([p.controls[0] for p in preps])
        return self.encode_tensors(inputs, controls, seed)

    def decode(
        self,
        z: np.ndarray,
        temperature: float = 1.0,
        qpm: float = 120.0,
        seed: int | None = None,
    ) -> list[NoteSequence]:
        """One groove per latent vector (N, z_size)."""
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        return self.to_sequences(self.decode_tensors(z, temperature, seed), qpm)

    def interpolate_tensors(
        self,
        a: NoteSequence,
        b: NoteSequence,
        num_steps: int,
        temperature: float = 1.0,
        seed: int | None = None,
        controls: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs (num_steps, T, D), z (num_steps, z_size))`` along the slerp of the two
        posterior means; the first and last z are exactly the inputs' means. A model that
        decodes under controls (chords) follows ``controls`` (T, C) all the way, by default
        the first input's."""
        check_steps(num_steps, least=2)  # before encoding: a path too long fails now
        _, mu, _ = self.encode([a, b])
        z = slerp_path(mu[0], mu[1], num_steps).astype(np.float32)
        z[0], z[-1] = mu[0], mu[1]
        if controls is None and self.converter.control_depth:
            controls = self.prepare(a).controls[0]
        return self.decode_tensors(z, temperature, seed, controls), z

    def interpolate(
        self,
        a: NoteSequence,
        b: NoteSequence,
        num_steps: int,
        temperature: float = 1.0,
        seed: int | None = None,
        qpm: float | None = None,
    ) -> list[NoteSequence]:
        """``num_steps`` grooves from ``a`` to ``b`` (endpoints included), at ``a``'s tempo unless
        ``qpm`` is given. Only each input's first window is used."""
        grooves, _ = self.interpolate_tensors(a, b, num_steps, temperature, seed)
        return self.to_sequences(grooves, a.qpm if qpm is None else qpm)

    def extend(
        self,
        ns: NoteSequence,
        bars: int,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        qpm: float | None = None,
    ) -> list[NoteSequence]:
        """``n`` continuations of ``ns``: its bars, then ``bars`` new ones in its own feel (the
        first from the posterior mean, then variations); see ``generation.continuation``."""
        from musicvae.generation.continuation import continue_tensors, prompt_grid

        _check_temperature(temperature)
        out = continue_tensors(self, prompt_grid(self, ns), bars, n, temperature, seed)
        return self.to_sequences(out, ns.qpm if qpm is None else qpm)

    def _transform(
        self,
        ns: NoteSequence,
        temperature: float,
        seed: int | None,
        sample_z: bool,
        qpm: float | None,
        keep_hits: bool = False,
    ) -> NoteSequence:
        groove, prep = self.transform_tensors(
            ns, temperature, seed, sample_z=sample_z, keep_hits=keep_hits
        )
        played_qpm = prep.qpm if qpm is None else qpm
        (out,) = self.to_sequences(groove, played_qpm)
        if (
            keep_hits
            and isinstance(self.converter, GrooveConverter)
            and not self.config.data.tapify
        ):
            # Every input note, not one per grid cell: a flam stays two hits (the grid's note
            # of a cell takes the model's timing and dynamics, the others follow it).
            out = _in_four_four(self.converter.replay(ns, groove, qpm=float(played_qpm)))
        return out

    def reconstruct(
        self,
        ns: NoteSequence,
        temperature: float = 1.0,
        seed: int | None = None,
        *,
        sample_z: bool = False,
        qpm: float | None = None,
        keep_hits: bool = False,
    ) -> NoteSequence:
        """Encode and decode ``ns`` window by window (all bars kept, input tempo kept);
        ``keep_hits`` keeps every input hit and re-plays them (new velocities and timing)."""
        return self._transform(ns, temperature, seed, sample_z, qpm, keep_hits)

    def require_transform(self, transform: str) -> None:
        """Raise ``MusicVAEError`` unless the model was trained for ``transform`` ("humanize",
        "tap_to_drums" or "add_instrument")."""
        flag, what = _TRANSFORMS[transform]
        if not getattr(self.config.data, flag):
            raise MusicVAEError(
                f"{self.source or 'model'}: config {self.config.name!r} was not trained to "
                f"{what} (needs {flag} in its data config, as in {_EXAMPLE_CONFIG[flag]})"
            )

    def humanize(
        self,
        ns: NoteSequence,
        temperature: float = 1.0,
        seed: int | None = None,
        *,
        sample_z: bool = False,
        qpm: float | None = None,
        keep_hits: bool = True,
    ) -> NoteSequence:
        """Add velocities and micro-timing to a quantised, flat-velocity drum pattern.

        With ``keep_hits`` (the default) every input hit is kept and no other is added; without
        it the model may also change the pattern, as Magenta's GrooVAE does."""
        self.require_transform("humanize")
        return self._transform(ns, temperature, seed, sample_z, qpm, keep_hits)

    def tap_to_drums(
        self,
        ns: NoteSequence,
        temperature: float = 1.0,
        seed: int | None = None,
        *,
        sample_z: bool = False,
        qpm: float | None = None,
        keep_taps: bool = True,
    ) -> NoteSequence:
        """Turn a tapped rhythm (any pitches, collapsed to one channel) into a drum groove.
        With ``keep_taps`` (the default) drums play on every tapped step and nowhere else; the
        model picks which drums and how they are played. Without it, Magenta's free decoding."""
        self.require_transform("tap_to_drums")
        return self._transform(ns, temperature, seed, sample_z, qpm, keep_taps)

    def add_instrument(
        self,
        ns: NoteSequence,
        temperature: float = 1.0,
        seed: int | None = None,
        *,
        sample_z: bool = False,
        qpm: float | None = None,
        keep_hits: bool = True,
    ) -> NoteSequence:
        """Add the config's missing instrument(s) (e.g. closed hi-hat) to a groove; with
        ``keep_hits`` (the default) the other instruments' hits stay exactly as given."""
        self.require_transform("add_instrument")
        return self._transform(ns, temperature, seed, sample_z, qpm, keep_hits)

    def save(
        self,
        path: str | os.PathLike,
        extra_metadata: dict | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Path:
        """Write this model as a ``.safetensors`` bundle (see ``bundle.save_bundle``)."""
        from musicvae.generation.bundle import save_bundle

        return save_bundle(self.model, self.config, path, extra_metadata, dtype)


_TRANSFORMS = {
    "humanize": ("humanize", "humanize"),
    "tap_to_drums": ("tapify", "turn taps into drums"),
    "add_instrument": ("add_instruments", "add instruments"),
}
_EXAMPLE_CONFIG = {
    "humanize": "groovae_2bar_humanize",
    "tapify": "groovae_2bar_tap_fixed_velocity",
    "add_instruments": "groovae_2bar_add_closed_hh",
}


# Grooves per call: as the CLI's --num-outputs (a few hundred MB at most).
MAX_BATCH = 10_000


def _in_four_four(ns: NoteSequence) -> NoteSequence:
    """``ns`` (a model's output) as a file holds it: in 4/4, no note before time 0."""
    ns.time_signatures = [TimeSignature(0.0, 4, 4)]
    # A hit played ahead of step 0 would start before the file does; MIDI has no negative
    # times, so it starts at 0 instead.
    ns.start = np.maximum(ns.start, 0.0)
    return ns


def _check_temperature(t: float) -> None:
    if not (math.isfinite(t) and t > 0):
        raise MusicVAEError(f"temperature must be positive and finite, got {t}")
