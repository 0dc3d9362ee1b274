"""Model configurations, registered under Magenta's names.

A ``Config`` is a frozen dataclass made of three parts that mirror Magenta's ``Config`` tuple:
the model layout (which encoder and decoder), the training ``HParams`` and the ``GrooveConverter``
options (``DataConfig``). ``get_config("groovae_4bar", "batch_size=64,z_size=128")`` returns a
registered config with ``key=value`` overrides applied; keys are field names of any part.
Every part checks its fields' types and ranges when it is made (:mod:`musicvae.validation`).
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from musicvae.errors import ConfigError
from musicvae.validation import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    Range,
    check_fields,
)

ClipMode = Literal["global_norm", "value"]
SamplingSchedule = Literal["constant", "exponential", "inverse_sigmoid"]
Windowing = Literal["bars", "file"]
ConductorInput = Literal["zeros", "z"]
EncoderName = Literal["bidirectional_lstm", "hierarchical_lstm"]
# "multi_out_categorical": one categorical per part of a concatenated one-hot (the trio).
DecoderName = Literal[
    "groove_lstm", "hierarchical", "categorical_lstm", "nade", "multi_out_categorical"
]
# The decoder under a hierarchical one's conductor (Magenta's core_decoder).
# "split_multi_out": one categorical LSTM per part (a trio's melody, bass and drums).
CoreDecoderName = Literal["groove_lstm", "categorical_lstm", "split_multi_out"]
ConverterName = Literal["groove", "melody", "drums", "trio", "multiperf"]
# Magenta's drum pitch maps for DrumsConverter: note_seq's 9 reduced classes, or 61 classes of
# one pitch each (FULL_DRUM_PITCH_CLASSES). GrooveConverter keeps its own Roland map.
DrumPitchClasses = Literal["reduced", "full"]
# note_seq's chord encodings (musicvae.data.chords): TriadChordOneHotEncoding (49 classes),
# MajorMinorChordOneHotEncoding (25) and the PitchChordsEncoderDecoder input (37 values).
ChordEncodingName = Literal["triad", "major_minor", "pitch"]


@dataclass(frozen=True)
class HParams:
    """Training and architecture hyperparameters, with Magenta's names and defaults."""

    max_seq_len: int = 64
    z_size: int = 256
    free_bits: float = 48.0
    max_beta: float = 0.2
    beta_rate: float = 0.0
    batch_size: int = 512
    grad_clip: float = 1.0
    clip_mode: ClipMode = "global_norm"
    grad_norm_clip_to_zero: float = 10000.0
    learning_rate: float = 1e-3
    decay_rate: float = 0.9999
    min_learning_rate: float = 1e-5
    conditional: bool = True
    enc_rnn_size: tuple[int, ...] = (512,)
    dec_rnn_size: tuple[int, ...] = (256, 256)
    dropout_keep_prob: float = 0.3
    sampling_schedule: SamplingSchedule = "constant"
    sampling_rate: float = 0.0
    residual_encoder: bool = False
    residual_decoder: bool = False
    # MultiLabelRnnNadeDecoder only: the NADE's hidden units.
    nade_num_hidden: int = 128
    # Hierarchical decoder only: the conductor's layer sizes (Magenta reuses dec_rnn_size).
    conductor_rnn_size: tuple[int, ...] | None = None
    # Magenta keeps the conductor's input dropout on at inference (its cells are built without
    # is_training), which makes hierarchical decoding random. Off by default; True copies Magenta.
    conductor_dropout_at_inference: bool = False
    # What the conductor reads at each bar. Magenta's is a constant zero, so z reaches the bars
    # only through the conductor's initial state, which an LSTM fed a constant forgets within a
    # few steps. "z" (ours) feeds z at every bar, as the flat decoder feeds it at every step.
    conductor_input: ConductorInput = "zeros"
    # Ours, off in every Magenta config: velocity and offset losses only where a hit is played,
    # so those heads learn a hit's loudness and timing rather than loudness x P(hit).
    hit_conditioned: bool = False
    # Ours, off everywhere: training-time augmentation of drum windows (musicvae.data.augment).
    # The largest relative change of a window's velocities, the chance that one of its drum
    # classes is silenced, and the largest shift of its timing in steps.
    augment_velocity: float = 0.0
    augment_drop_class: float = 0.0
    augment_shift: float = 0.0
    # Ours, off in every Magenta config: in training, the chance that a decoder step's
    # teacher-forced input (the previous event) is replaced by zeros, Bowman et al.'s word
    # dropout, against decoders that learn to ignore a z that is still noise early in training.
    # At 0.5 it did not stop the 16-bar melody conductor's encoder from collapsing (a flat
    # encoder via --init-parts encoder did: docs/hierarchical-decoder.md).
    word_dropout: float = 0.0

    @property
    def augments(self) -> bool:
        """Whether training augments its windows (any ``augment_*`` set)."""
        return bool(self.augment_velocity or self.augment_drop_class or self.augment_shift)

    def __post_init__(self) -> None:
        check_fields(self, _HPARAM_RANGES, "hparam")
        check_fields(self, _HPARAM_MAXIMA, "hparam")


@dataclass(frozen=True)
class DataConfig:
    """GrooveConverter options (Magenta's constructor arguments) and how examples are windowed."""

    split_bars: int | None = 4
    steps_per_quarter: int = 4
    quarters_per_bar: int = 4
    # Window hop in steps; None means hop = window, as in Magenta.
    hop_size: int | None = None
    max_tensors_per_notesequence: int | None = 20
    humanize: bool = False
    tapify: bool = False
    add_instruments: tuple[int, ...] = ()
    fixed_velocities: bool = False
    hits_as_controls: bool = False
    max_note_dropout_probability: float | None = None
    # Ours: the share of training windows whose encoder input loses its velocities (as with
    # fixed_velocities), so that one tap model reads played taps and fixed-velocity ones alike.
    # Training only: inference reads a groove of equal velocities as fixed-velocity taps.
    velocity_dropout_probability: float | None = None
    # Ours: a tap model's decoder also reads, at every step, whether that step and the next are
    # tapped and how early or late the tap is (and its encoder reads them beside the taps), so
    # it chooses each step's drums knowing where the taps are rather than recalling it from z.
    taps_as_controls: bool = False
    # How a dataset file becomes examples. "bars": slide split_bars-bar windows one bar at a time
    # over each file (what TFDS groove/4bar-midionly, the published model's data, does).
    # "file": the whole file through the converter with hop = window (Magenta's tfrecord route).
    windowing: Windowing = "bars"
    # Melody and drum converters (Magenta's OneHotMelodyConverter and DrumsConverter).
    # The instrument programs a melody is read from (None: every program); Magenta's 2-bar
    # melody configs keep MEL_PROGRAMS, 0-31, and its 16-bar ones read every program.
    valid_programs: tuple[int, ...] | None = None
    # Magenta's training-time transposition of each melody by a random number of semitones
    # in this range (its NoteSequenceAugmenter); None or (0, 0): none.
    transpose_range: tuple[int, ...] | None = None
    # DrumsConverter: which pitch map, and whether the decoder's targets are a multi-hot roll
    # (NADE drums) rather than one of 2^classes one-hot patterns (categorical drums).
    drum_pitch_classes: DrumPitchClasses = "reduced"
    roll_output: bool = False
    # Chord conditioning: each step's chord (annotated, else inferred as note_seq does) as
    # controls in this encoding; None: no chords.
    chord_encoding: ChordEncodingName | None = None
    # TrioConverter: how many silent bars of one part a window may hold on each side of its
    # notes (Magenta's gap_bars); None: the converter's default, Magenta's 2.
    gap_bars: int | None = None
    # MultiInstrumentPerformanceConverter: velocity bins of its performance events (0: no
    # VELOCITY events), and the instrument slots of a window and the rows (program, events,
    # end token) of each, Magenta's max_num_instruments and max_events_per_instrument.
    num_velocity_bins: int = 0
    max_num_instruments: int = 8
    max_events_per_instrument: int = 64

    def __post_init__(self) -> None:
        check_fields(self, _DATA_RANGES, "hparam")
        if self.transpose_range is not None and (
            len(self.transpose_range) != 2 or self.transpose_range[0] > self.transpose_range[1]
        ):
            raise ConfigError(
                f"hparam transpose_range {list(self.transpose_range)}: expected [low, high] "
                "with low <= high"
            )
        if self.hop_size is not None and self.split_bars is None:
            raise ConfigError("hparam hop_size needs split_bars")
        if self.taps_as_controls and not self.tapify:
            raise ConfigError("hparam taps_as_controls needs tapify=true")
        if self.taps_as_controls and self.hits_as_controls:
            raise ConfigError("hparams taps_as_controls and hits_as_controls exclude each other")
        if self.taps_as_controls and self.max_note_dropout_probability is not None:
            # Note dropout is re-drawn per batch, and the controls are drawn once.
            raise ConfigError("hparam taps_as_controls does not work with note dropout")

    @property
    def transforms_input(self) -> bool:
        """Whether the encoder reads a transformed copy of the target (humanize, tap, an added
        instrument, fixed velocities or note dropout) rather than the groove itself."""
        return bool(
            self.humanize
            or self.tapify
            or self.add_instruments
            or self.fixed_velocities
            or self.max_note_dropout_probability is not None
            or self.velocity_dropout_probability is not None
        )


# DataConfig options that only some converters read, and which: set on another converter they
# would silently do nothing, so a config that sets them is refused when built.
_GROOVE_OPTIONS = ("groove",)
DATA_OPTION_OWNERS: dict[str, tuple[str, ...]] = {
    "humanize": _GROOVE_OPTIONS,
    "tapify": _GROOVE_OPTIONS,
    "add_instruments": _GROOVE_OPTIONS,
    "fixed_velocities": _GROOVE_OPTIONS,
    "hits_as_controls": _GROOVE_OPTIONS,
    "max_note_dropout_probability": _GROOVE_OPTIONS,
    "velocity_dropout_probability": _GROOVE_OPTIONS,
    "taps_as_controls": _GROOVE_OPTIONS,
    "hop_size": _GROOVE_OPTIONS,
    "valid_programs": ("melody",),
    "transpose_range": ("melody",),
    "drum_pitch_classes": ("drums",),
    "roll_output": ("drums",),
    "chord_encoding": ("melody", "multiperf"),
    "gap_bars": ("trio",),
    "num_velocity_bins": ("multiperf",),
    "max_num_instruments": ("multiperf",),
    "max_events_per_instrument": ("multiperf",),
}
_DATA_DEFAULTS = {f.name: f.default for f in fields(DataConfig)}


@dataclass(frozen=True)
class Config:
    """A registered model: layout, hyperparameters and data converter settings."""

    name: str
    converter: ConverterName = "groove"  # musicvae.data.converters.build_converter's key
    encoder: EncoderName = "bidirectional_lstm"
    decoder: DecoderName = "groove_lstm"
    # Hierarchical decoder: steps per level, outermost first (e.g. 4 bars of 16 steps).
    level_lengths: tuple[int, ...] | None = None
    # Hierarchical decoder: the decoder each conductor output drives.
    core_decoder: CoreDecoderName = "groove_lstm"
    # Hierarchical encoder: steps per level, outermost first (Magenta's [16, 16]: a
    # bidirectional LSTM over each bar's 16 steps, then one over the 16 bar summaries).
    encoder_level_lengths: tuple[int, ...] | None = None
    hparams: HParams = field(default_factory=HParams)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"config name {self.name!r}: expected a non-empty string")
        if not isinstance(self.hparams, HParams) or not isinstance(self.data, DataConfig):
            raise ConfigError(f"config {self.name!r}: hparams and data must be HParams, DataConfig")
        check_fields(
            self, {"level_lengths": AT_LEAST_ONE, "encoder_level_lengths": AT_LEAST_ONE}, "hparam"
        )
        if self.converter != "groove" and self.hparams.augments:
            raise ConfigError(
                f"config {self.name!r}: augmentation works on drum grooves, "
                f"not the {self.converter} converter"
            )
        unused = [k for k, owners in DATA_OPTION_OWNERS.items()
                  if self.converter not in owners and getattr(self.data, k) != _DATA_DEFAULTS[k]]  # fmt: skip
        if unused:
            raise ConfigError(
                f"config {self.name!r}: the {self.converter} converter does not read "
                f"{', '.join(unused)}"
            )
        self._check_outputs()

    def _check_outputs(self) -> None:
        """The decoder must fit what the converter's outputs are (a categorical decoder reads
        one class a step, a NADE a multi-hot roll, GrooVAE's hits, velocities and offsets)."""
        full = self.converter == "drums" and self.data.drum_pitch_classes == "full"
        if full and not self.data.roll_output:
            raise ConfigError(
                f"config {self.name!r}: one-hot outputs of the 61 full-map drum classes "
                "would need 2^61 classes; the full map needs roll_output=true"
            )
        leaf = self.core_decoder if self.decoder == "hierarchical" else self.decoder
        if self.converter == "groove":
            fits = leaf == "groove_lstm"
        elif self.converter == "drums" and self.data.roll_output:
            fits = leaf == "nade"
        elif self.converter == "trio":  # melody | bass | drums one-hots, one categorical each
            fits = leaf in ("multi_out_categorical", "split_multi_out")
        else:
            fits = leaf == "categorical_lstm"
        if not fits:
            raise ConfigError(
                f"config {self.name!r}: decoder {leaf!r} does not read the {self.converter} "
                f"converter's outputs"
                + (" (roll_output)" if self.converter == "drums" and self.data.roll_output else "")
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Config:
        """The config a :meth:`to_dict` wrote; unknown keys and bad values are errors."""

        def build(cls: type, values: object, where: str) -> Any:
            if not isinstance(values, dict):
                raise ConfigError(f"config{where}: expected a mapping, got {type(values).__name__}")
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ConfigError(f"config{where}: unknown keys {', '.join(unknown)}")
            out = {}
            for f in fields(cls):
                if f.name not in values:
                    continue
                v = values[f.name]
                if isinstance(v, list):
                    v = tuple(v)
                out[f.name] = v
            return cls(**out)

        if not isinstance(d, dict):
            raise ConfigError(f"config: expected a mapping, got {type(d).__name__}")
        top = {k: v for k, v in d.items() if k not in ("hparams", "data")}
        return build(
            Config,
            {
                **top,
                "hparams": build(HParams, d.get("hparams", {}), " hparams"),
                "data": build(DataConfig, d.get("data", {}), " data"),
            },
            "",
        )

    def override(self, overrides: str | dict[str, Any] | None) -> Config:
        """A copy with ``key=value`` overrides (a comma-separated string or a dict) applied."""
        items = parse_overrides(overrides) if isinstance(overrides, str | None) else overrides
        hp: dict[str, Any] = {}
        data: dict[str, Any] = {}
        top: dict[str, Any] = {}
        for key, raw in items.items():
            for section, target in ((HParams, hp), (DataConfig, data), (Config, top)):
                f = {f.name: f for f in fields(section)}.get(key)
                if f is not None and key not in ("hparams", "data", "name"):
                    target[key] = _coerce(key, raw, getattr(_defaults(section), key))
                    break
            else:
                raise ConfigError(
                    f"unknown hparam {key!r}; known: {', '.join(sorted(known_keys()))}"
                )
        return replace(
            self, hparams=replace(self.hparams, **hp), data=replace(self.data, **data), **top
        )

    @property
    def steps_per_bar(self) -> int:
        return self.data.steps_per_quarter * self.data.quarters_per_bar


def _defaults(section: type) -> Any:
    if section is Config:
        return Config(name="_")
    return section()


def known_keys() -> set[str]:
    keys = {f.name for f in fields(HParams)} | {f.name for f in fields(DataConfig)}
    return keys | {f.name for f in fields(Config)} - {"hparams", "data", "name"}


def parse_overrides(text: str | None) -> dict[str, str]:
    """Split ``a=1,b=[16,16],c=x`` into a dict, keeping commas inside brackets."""
    out: dict[str, str] = {}
    if not text:
        return out
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    for part in parts:
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ConfigError(f"bad hparam {part!r}: expected key=value")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _literal(raw: Any) -> Any:
    """An override's Python value (a list as a tuple); a bare word stays a string."""
    if not isinstance(raw, str):
        value = raw
    else:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw  # a bare word such as a schedule name
    if isinstance(value, list):
        value = tuple(value)
    return value


def _coerce(key: str, raw: Any, default: Any) -> Any:
    """Turn an override value into the type of the field's default."""
    value = _literal(raw)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                value = {"true": True, "false": False}[value.lower()]
            return bool(value)
        if isinstance(default, int) and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, int):
                value = (value,)
            return tuple(int(v) for v in value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError, KeyError):
        raise ConfigError(
            f"bad value for hparam {key!r}: {raw!r} (expected {type(default).__name__})"
        ) from None
    return value  # Optional fields whose default is None take the parsed literal


_HPARAM_RANGES: dict[str, Range] = {
    "max_seq_len": AT_LEAST_ONE,
    "z_size": AT_LEAST_ONE,
    "free_bits": NON_NEGATIVE,
    "max_beta": NON_NEGATIVE,
    "beta_rate": Range(0, 1, hi_open=True),
    "batch_size": AT_LEAST_ONE,
    "grad_clip": POSITIVE,
    "grad_norm_clip_to_zero": POSITIVE,
    "learning_rate": POSITIVE,
    "decay_rate": Range(0, 1, lo_open=True),
    "min_learning_rate": NON_NEGATIVE,
    "enc_rnn_size": AT_LEAST_ONE,
    "dec_rnn_size": AT_LEAST_ONE,
    "conductor_rnn_size": AT_LEAST_ONE,
    "dropout_keep_prob": Range(0, 1, lo_open=True),
    "sampling_rate": NON_NEGATIVE,
    "nade_num_hidden": AT_LEAST_ONE,
    "augment_velocity": Range(0, 1, hi_open=True),
    "augment_drop_class": PROBABILITY,
    "augment_shift": Range(0, 0.5),
    "word_dropout": Range(0, 1, hi_open=True),
}
# Upper bounds far above any published MusicVAE (batch 512, z 512, LSTMs of 2048), low enough
# that a typo (batch_size=1e9, z_size=1000000000) is refused, not an hour of swapping or a crash.
_SIZE_MAX = Range(None, 8192)
_HPARAM_MAXIMA: dict[str, Range] = {
    "max_seq_len": Range(None, 65536),
    "z_size": _SIZE_MAX,
    "batch_size": Range(None, 65536),
    "enc_rnn_size": _SIZE_MAX,
    "dec_rnn_size": _SIZE_MAX,
    "conductor_rnn_size": _SIZE_MAX,
    "nade_num_hidden": _SIZE_MAX,
}
_DATA_RANGES: dict[str, Range] = {
    "split_bars": AT_LEAST_ONE,
    "steps_per_quarter": AT_LEAST_ONE,
    "quarters_per_bar": AT_LEAST_ONE,
    "hop_size": AT_LEAST_ONE,
    "max_tensors_per_notesequence": AT_LEAST_ONE,
    "add_instruments": Range(0, 8),
    "max_note_dropout_probability": PROBABILITY,
    "velocity_dropout_probability": PROBABILITY,
    "valid_programs": Range(0, 127),
    "transpose_range": Range(-24, 24),
    "gap_bars": NON_NEGATIVE,
    "num_velocity_bins": Range(0, 127),
    "max_num_instruments": AT_LEAST_ONE,
    "max_events_per_instrument": Range(3, None),
}

_GROOVE_2BAR_HP = HParams(max_seq_len=32)
_GROOVE_2BAR_DATA = DataConfig(split_bars=2)

CONFIGS: dict[str, Config] = {}


def register(config: Config) -> Config:
    CONFIGS[config.name] = config
    return config


register(Config(name="groovae_4bar"))
register(
    Config(
        name="groovae_2bar_humanize",
        hparams=_GROOVE_2BAR_HP,
        data=replace(_GROOVE_2BAR_DATA, humanize=True),
    )
)
register(
    Config(
        name="groovae_2bar_tap_fixed_velocity",
        hparams=_GROOVE_2BAR_HP,
        data=replace(_GROOVE_2BAR_DATA, tapify=True, fixed_velocities=True),
    )
)
register(
    Config(
        name="groovae_2bar_tap_fixed_velocity_note_dropout",
        hparams=_GROOVE_2BAR_HP,
        data=replace(
            _GROOVE_2BAR_DATA, tapify=True, fixed_velocities=True, max_note_dropout_probability=0.8
        ),
    )
)
register(
    Config(
        name="groovae_2bar_add_closed_hh",
        hparams=_GROOVE_2BAR_HP,
        data=replace(_GROOVE_2BAR_DATA, add_instruments=(2,)),
    )
)
register(
    Config(
        name="groovae_2bar_hits_control",
        hparams=_GROOVE_2BAR_HP,
        data=replace(_GROOVE_2BAR_DATA, hits_as_controls=True),
    )
)
# Ours: the MusicVAE paper's conductor over GrooVAE, one conductor step per bar.
register(Config(name="groovae_4bar_hierdec", decoder="hierarchical", level_lengths=(4, 16)))
# Ours: 16-bar grooves, flat and hierarchical, on the same encoder and budget. Magenta's 16-bar
# recipes (mel_16bar, hierdec-mel_16bar) use z_size 512 and 256 free bits with 2048-wide LSTMs;
# scaled to drums on a CPU, the LSTMs keep GrooVAE's sizes (encoder 512, decoder 256 x 2) and
# the latent takes Magenta's 16-bar z_size and free bits. The conductor reuses dec_rnn_size, as
# Magenta's does, and runs one step per bar.
# Both 16-bar configs are ours, so they take the hit-conditioned heads of the bundles.
_GROOVE_16BAR_HP = HParams(max_seq_len=256, z_size=512, free_bits=256.0, hit_conditioned=True)
_GROOVE_16BAR_DATA = DataConfig(split_bars=16)
register(Config(name="groovae_16bar", hparams=_GROOVE_16BAR_HP, data=_GROOVE_16BAR_DATA))
# Its conductor reads z at every bar (conductor_input="z") rather than Magenta's zeros: with
# zeros, the posterior collapsed at a CPU budget (z was worth no F1 at all, and interpolations
# changed no hit), while fed z it carries the window (docs/hierarchical-decoder.md measures both).
register(
    Config(
        name="groovae_16bar_hierdec",
        decoder="hierarchical",
        level_lengths=(16, 16),
        hparams=replace(_GROOVE_16BAR_HP, conductor_input="z"),
        data=_GROOVE_16BAR_DATA,
    )
)
# Ours: Magenta's GrooVAE configs with hit-conditioned velocity and offset heads (the bundles).
for _base in ("groovae_4bar", "groovae_2bar_humanize", "groovae_2bar_tap_fixed_velocity"):
    register(
        replace(
            CONFIGS[_base],
            name=f"{_base}_hitcond",
            hparams=replace(CONFIGS[_base].hparams, hit_conditioned=True),
        )
    )
# Ours: Drumify from played taps. Magenta's tap configs keep only when a tap falls; this one also
# keeps how hard and how early or late (the loudest hit of each step on one channel), the
# "performed monotonic groove" Haki et al. (NIME 2022) give their transformer. Half of its
# training windows lose their velocities, so taps of one velocity (a mouse, a computer keyboard)
# still read as Magenta's fixed-velocity taps.
register(
    replace(
        CONFIGS["groovae_2bar_tap_fixed_velocity_hitcond"],
        name="groovae_2bar_tap_hitcond",
        data=replace(_GROOVE_2BAR_DATA, tapify=True, velocity_dropout_probability=0.5),
    )
)
# Ours: the bundled Drumify model with the taps also fed to the decoder at each step.
register(
    replace(
        CONFIGS["groovae_2bar_tap_fixed_velocity_hitcond"],
        name="groovae_2bar_tap_controls",
        data=replace(CONFIGS["groovae_2bar_tap_fixed_velocity"].data, taps_as_controls=True),
    )
)
# Ours, a GrooVAE config of Magenta's newer CONFIG_MAP: groovae_2bar_hits_control trained from
# TFDS's groove/2bar-midionly. The converter is the same, and the data source is a flag here.
register(replace(CONFIGS["groovae_2bar_hits_control"], name="groovae_2bar_hits_control_tfds"))

# Magenta's melody VAEs (its configs.py): 90-class one-hot melodies, a categorical decoder,
# dropout off. The 2-bar ones read programs 0-31 (MEL_PROGRAMS), keep no free bits, anneal the
# KL weight and use inverse-sigmoid scheduled sampling; each training melody is transposed by
# -5..5 semitones.
_MEL_PROGRAMS = tuple(range(32))
_MEL_2BAR_HP = HParams(
    max_seq_len=32,
    z_size=256,
    free_bits=0.0,
    max_beta=0.2,
    beta_rate=0.99999,
    enc_rnn_size=(512,),
    dec_rnn_size=(256, 256),
    dropout_keep_prob=1.0,
    sampling_schedule="inverse_sigmoid",
    sampling_rate=1000.0,
)
_MEL_2BAR_DATA = DataConfig(
    split_bars=2,
    max_tensors_per_notesequence=5,
    windowing="file",
    valid_programs=_MEL_PROGRAMS,
    transpose_range=(-5, 5),
)
_MELODY: dict[str, Any] = {"converter": "melody", "decoder": "categorical_lstm"}
register(Config(name="cat-mel_2bar_small", hparams=_MEL_2BAR_HP, data=_MEL_2BAR_DATA, **_MELODY))
register(
    Config(
        name="cat-mel_2bar_big",
        hparams=replace(
            _MEL_2BAR_HP,
            z_size=512,
            enc_rnn_size=(2048,),
            dec_rnn_size=(2048, 2048, 2048),
            max_beta=0.5,
        ),
        data=_MEL_2BAR_DATA,
        **_MELODY,
    )
)
# The 16-bar melody models share one converter object in Magenta (mel_16bar_converter): every
# program, no augmentation. 256 free bits, teacher forcing throughout. Sharing an object only
# shares its mutable mode there (TrainedModel switching it to 'infer' switches all three); the
# settings are equal, so building one converter per config here gives the same tensors.
_MEL_16BAR_HP = HParams(
    max_seq_len=256,
    z_size=512,
    free_bits=256.0,
    max_beta=0.2,
    beta_rate=0.0,
    enc_rnn_size=(2048, 2048),
    dec_rnn_size=(2048, 2048, 2048),
    dropout_keep_prob=1.0,
)
_MEL_16BAR_DATA = DataConfig(split_bars=16, max_tensors_per_notesequence=5, windowing="file")
register(Config(name="flat-mel_16bar", hparams=_MEL_16BAR_HP, data=_MEL_16BAR_DATA, **_MELODY))
_HIERDEC_MEL: dict[str, Any] = {
    "converter": "melody",
    "decoder": "hierarchical",
    "core_decoder": "categorical_lstm",
    "level_lengths": (16, 16),
    "data": _MEL_16BAR_DATA,
}
register(
    Config(
        name="hierdec-mel_16bar",
        hparams=replace(_MEL_16BAR_HP, dec_rnn_size=(1024, 1024)),
        **_HIERDEC_MEL,
    )
)
register(
    Config(
        name="hier-mel_16bar",
        encoder="hierarchical_lstm",
        encoder_level_lengths=(16, 16),
        hparams=replace(_MEL_16BAR_HP, enc_rnn_size=(1024,), dec_rnn_size=(1024, 1024)),
        **_HIERDEC_MEL,
    )
)
# Ours: the paper's flat-versus-hierarchical comparison on melodies at a CPU budget. Magenta's
# 16-bar models have 2048-wide encoders (minutes per CPU step); these keep its latent (z 512,
# 256 free bits, beta 0.2), its data and its conductor over 16 bars of 16 steps, and shrink the
# LSTMs to 256 units so both train on a laptop. They differ only in the decoder, as in the paper.
_MEL_16BAR_CPU_HP = replace(
    _MEL_16BAR_HP, batch_size=64, enc_rnn_size=(256,), dec_rnn_size=(256, 256)
)
register(Config(name="mel_16bar_flat", hparams=_MEL_16BAR_CPU_HP, data=_MEL_16BAR_DATA, **_MELODY))
register(Config(name="mel_16bar_hierdec", hparams=_MEL_16BAR_CPU_HP, **_HIERDEC_MEL))
# Magenta's drum VAEs on DrumsConverter: 9 reduced drum classes (note_seq's map, not GrooVAE's
# Roland one) read as a roll of class hits plus a "no hit" bit. The categorical decoder
# predicts one of 2^9 hit patterns per step; the NADE one the 9 (or 61, full map) hits jointly.
_DRUMS_2BAR_HP = HParams(
    max_seq_len=32,
    z_size=256,
    free_bits=48.0,
    max_beta=0.2,
    enc_rnn_size=(512,),
    dec_rnn_size=(256, 256),
    dropout_keep_prob=1.0,
    sampling_schedule="inverse_sigmoid",
    sampling_rate=1000.0,
)
_DRUMS_2BAR_DATA = DataConfig(split_bars=2, max_tensors_per_notesequence=5, windowing="file")
_CAT_DRUMS: dict[str, Any] = {"converter": "drums", "decoder": "categorical_lstm"}
register(
    Config(name="cat-drums_2bar_small", hparams=_DRUMS_2BAR_HP, data=_DRUMS_2BAR_DATA, **_CAT_DRUMS)
)
register(
    Config(
        name="cat-drums_2bar_big",
        hparams=replace(
            _DRUMS_2BAR_HP, z_size=512, enc_rnn_size=(2048,), dec_rnn_size=(2048, 2048, 2048)
        ),
        data=_DRUMS_2BAR_DATA,
        **_CAT_DRUMS,
    )
)
_NADE_DRUMS_HP = replace(
    _DRUMS_2BAR_HP, enc_rnn_size=(1024,), dec_rnn_size=(512, 512), nade_num_hidden=128
)
register(
    Config(
        name="nade-drums_2bar_reduced",
        converter="drums",
        decoder="nade",
        hparams=_NADE_DRUMS_HP,
        data=replace(_DRUMS_2BAR_DATA, roll_output=True),
    )
)
register(
    Config(
        name="nade-drums_2bar_full",
        converter="drums",
        decoder="nade",
        hparams=_NADE_DRUMS_HP,
        data=replace(_DRUMS_2BAR_DATA, roll_output=True, drum_pitch_classes="full"),
    )
)
# Magenta's 16-bar trios on TrioConverter: each step a melody one-hot (90), a bass one-hot (90)
# and a drum pattern one-hot (512), concatenated (692). The three configs share one converter
# (trio_16bar_converter: 16-bar slices, 2 gap bars). lstm_models' defaults otherwise: dropout
# off, teacher forcing throughout; the flat one keeps no free bits and a KL weight of 1.
_TRIO_16BAR_HP = HParams(
    batch_size=256,
    max_seq_len=256,
    z_size=512,
    free_bits=0.0,
    max_beta=1.0,
    beta_rate=0.0,
    enc_rnn_size=(2048, 2048),
    dec_rnn_size=(2048, 2048, 2048),
    dropout_keep_prob=1.0,
)
_TRIO_16BAR_DATA = DataConfig(
    split_bars=16, max_tensors_per_notesequence=5, windowing="file", gap_bars=2
)
register(
    Config(
        name="flat-trio_16bar",
        converter="trio",
        decoder="multi_out_categorical",
        hparams=_TRIO_16BAR_HP,
        data=_TRIO_16BAR_DATA,
    )
)
_HIER_TRIO: dict[str, Any] = {
    "converter": "trio",
    "decoder": "hierarchical",
    "core_decoder": "split_multi_out",
    "level_lengths": (16, 16),
    "data": _TRIO_16BAR_DATA,
}
register(
    Config(
        name="hierdec-trio_16bar",
        hparams=replace(_TRIO_16BAR_HP, dec_rnn_size=(1024, 1024), free_bits=256.0, max_beta=0.2),
        **_HIER_TRIO,
    )
)
register(
    Config(
        name="hier-trio_16bar",
        encoder="hierarchical_lstm",
        encoder_level_lengths=(16, 16),
        hparams=replace(
            _TRIO_16BAR_HP,
            enc_rnn_size=(1024,),
            dec_rnn_size=(1024, 1024),
            free_bits=256.0,
            max_beta=0.2,
        ),
        **_HIER_TRIO,
    )
)
# Magenta's multi-track performances (hier-multiperf_vel_1bar_*): one bar of up to 8 tracks,
# each a program token, performance events (note-on/off, time shifts at 24 steps per quarter,
# 8 velocity bins) and an end token, in 8 slots of 64 rows (MultiInstrumentPerformanceConverter,
# one-bar hops, no window cap). A hierarchical encoder (64 rows, then 8 slots) and a conductor
# with a categorical core per slot; lstm_models' defaults otherwise (no free bits, KL weight 1,
# dropout off, teacher forcing). _med and _big build equal converters, as in Magenta.
# Magenta also transposes each training sequence by -3..3 semitones (its NoteSequenceAugmenter);
# transpose_range stays unset here: our transposition moves one-hot melody classes, and
# performance tokens (pitched tracks only, drums kept) have no such shift yet.
_MULTIPERF_HP = HParams(
    batch_size=256,
    max_seq_len=512,
    z_size=512,
    free_bits=0.0,
    max_beta=1.0,
    beta_rate=0.0,
    enc_rnn_size=(1024,),
    dec_rnn_size=(512, 512, 512),
    dropout_keep_prob=1.0,
)
_MULTIPERF_DATA = DataConfig(
    split_bars=1,
    steps_per_quarter=24,
    max_tensors_per_notesequence=None,
    windowing="file",
    num_velocity_bins=8,
    max_num_instruments=8,
    max_events_per_instrument=64,
)
_MULTIPERF: dict[str, Any] = {
    "converter": "multiperf",
    "encoder": "hierarchical_lstm",
    "encoder_level_lengths": (64, 8),
    "decoder": "hierarchical",
    "core_decoder": "categorical_lstm",
    "level_lengths": (8, 64),
    "data": _MULTIPERF_DATA,
}
register(Config(name="hier-multiperf_vel_1bar_med", hparams=_MULTIPERF_HP, **_MULTIPERF))
register(
    Config(
        name="hier-multiperf_vel_1bar_big",
        hparams=replace(_MULTIPERF_HP, enc_rnn_size=(2048,), dec_rnn_size=(1024, 1024, 1024)),
        **_MULTIPERF,
    )
)
# The chord-conditioned ones: each token row also reads its event's chord (annotated, else
# inferred two a 4/4 bar) in note_seq's TriadChordOneHotEncoding (49 classes) as controls.
for _size in ("med", "big"):
    register(
        replace(
            CONFIGS[f"hier-multiperf_vel_1bar_{_size}"],
            name=f"hier-multiperf_vel_1bar_{_size}_chords",
            data=replace(_MULTIPERF_DATA, chord_encoding="triad"),
        )
    )
# Magenta's chord-conditioned melody VAE: each step's chord (inferred from the sequence, two a
# 4/4 bar, when it has none) as a 49-wide triad one-hot beside the melody, for the encoder and
# every decoder step. Unlike the 2-bar melody models it reads every program, transposes by -3..3
# and keeps lstm_models' defaults: no free bits, KL weight 1, teacher forcing, dropout off.
register(
    Config(
        name="cat-mel_2bar_med_chords",
        hparams=HParams(
            batch_size=512,
            max_seq_len=32,
            z_size=256,
            free_bits=0.0,
            max_beta=1.0,
            beta_rate=0.0,
            enc_rnn_size=(1024,),
            dec_rnn_size=(512, 512, 512),
            dropout_keep_prob=1.0,
            sampling_schedule="constant",
            sampling_rate=0.0,
        ),
        data=DataConfig(
            split_bars=2,
            max_tensors_per_notesequence=5,
            windowing="file",
            valid_programs=None,
            transpose_range=(-3, 3),
            chord_encoding="triad",
        ),
        **_MELODY,
    )
)
# Tiny and fast, for tests and smoke runs.
register(
    Config(
        name="debug",
        hparams=HParams(
            batch_size=8,
            z_size=8,
            enc_rnn_size=(16,),
            dec_rnn_size=(16, 16),
            free_bits=0.0,
            dropout_keep_prob=1.0,
        ),
        data=DataConfig(split_bars=4),
    )
)
register(
    Config(
        name="debug-mel_2bar",
        hparams=replace(
            _MEL_2BAR_HP, batch_size=8, z_size=8, enc_rnn_size=(16,), dec_rnn_size=(16, 16)
        ),
        data=_MEL_2BAR_DATA,
        **_MELODY,
    )
)


def get_config(name: str, overrides: str | dict[str, Any] | None = None) -> Config:
    """The registered config ``name`` with ``overrides`` applied."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown config {name!r}; choose from: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[name].override(overrides)
