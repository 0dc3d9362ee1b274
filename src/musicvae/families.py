"""Model families: what each kind of MusicVAE can do, in the one table every command reads.

A family is the kind of music a model's tensors hold, and so what it can be asked for: GrooVAE's
expressive drum grooves, Magenta's one-hot melodies, its one-hot drum patterns (one of 2^9 hit
combinations a step) and its multi-hot NADE drum rolls. Each :class:`Family` row says which
``generate`` modes it has, which ``evaluate`` report and protocols, how its MIDI sounds (the drum
kit or an instrument's program), how ``plot`` and ``explain`` name its outputs and accuracy, and
which studio tools it backs. ``generate``, ``evaluate``, ``export``, ``plot``, ``explain``, the
audio and the studio derive from it, so a new family (as trios and multi-track performances were)
is one row here plus its converter and decoder, and every command either serves it or refuses in
one line.

This module imports nothing heavy: the CLI reads it to build its parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from musicvae.errors import MusicVAEError

if TYPE_CHECKING:
    from musicvae.configs import Config

# How evaluate scores a family: GrooVAE's hit F1 and velocity / timing errors, Magenta's
# per-step accuracy of a categorical output, or multi-label accuracy and F1 of a NADE's.
Metrics = Literal["groove", "categorical", "multilabel"]
# How its MIDI sounds: on the drum kit (channel 10), on the General MIDI program its notes carry
# (a melody's, 0 unless the input had one), or as several tracks, each on its own program and
# drums on channel 10 (a trio's melody, bass and drums).
Voice = Literal["drums", "program", "tracks"]

# Every generate mode, in the order the command line lists them.
ALL_MODES = ("sample", "interpolate", "reconstruct", "humanize", "tap2drum", "continue")
# The studio's tools (web.tools.TOOLS names), for the families that back them. The main
# model's Generate, Interpolate and Continue serve whichever family it is; the melody_* tools
# are the melody model's beside a drum one.
DRUM_STUDIO_TOOLS = ("generate", "interpolate", "groove", "drumify", "similar", "continue")
MELODY_STUDIO_TOOLS = (
    "generate",
    "interpolate",
    "continue",
    "melody_generate",
    "melody_interpolate",
    "melody_continue",
)
# One-hot and NADE drum patterns: sampled and interpolated on the studio's drum grid.
PATTERN_STUDIO_TOOLS = ("generate", "interpolate")
# Trios: the main model's tools, each trio shown as three lanes (melody and bass piano rolls,
# the drums on the grid).
TRIO_STUDIO_TOOLS = ("generate", "interpolate", "continue")
# Multi-track performances: sampled and interpolated, each shown as one lane per track (a piano
# roll on its program, the drums' on the kit).
MULTIPERF_STUDIO_TOOLS = ("generate", "interpolate")
# The sampling temperature generate and the studio use unless told otherwise (Magenta's
# music_vae_generate default; the README compares it with 1.0).
DEFAULT_TEMPERATURE = 0.5


@dataclass(frozen=True)
class Family:
    """One kind of model and everything the commands may ask of it."""

    name: str
    label: str  # what its outputs are, plural: "drum grooves", "melodies"
    input_kind: str  # what an input MIDI file must hold for it
    modes: tuple[str, ...]  # generate modes
    metrics: Metrics
    voice: Voice
    # The training summary's accuracy scalar and how plot labels it.
    accuracy_key: str
    accuracy_label: str
    # explain's words for one encoder input step and one decoder output step.
    input_layout: str
    output_layout: str
    protocols: tuple[str, ...] = ()  # evaluate --protocol names
    grid_picture: bool = False  # generate writes a drum-grid PNG beside each MIDI file
    keeps_hits: bool = False  # --keep-hits: decode with the input's hits imposed
    spread: bool = False  # velocity / offset spread (export --spread-from, generate --playing)
    studio_tools: tuple[str, ...] = ()
    # What the studio calls its outputs after their length: "4-bar grooves" (default: label).
    studio_label: str = ""

    def studio_name(self, bars: int) -> str:
        """A model's human-readable name in the studio: "16-bar melodies"."""
        return f"{bars}-bar {self.studio_label or self.label}"

    def check_mode(self, mode: str, config_name: str) -> None:
        """A one-line :class:`MusicVAEError` unless this family has generate mode ``mode``."""
        if mode not in self.modes:
            raise MusicVAEError(
                f"--mode {mode}: config {config_name!r} is a {self.name} model ({self.label}); "
                f"its modes are {', '.join(self.modes)}"
            )

    def refuse(self, what: str, config_name: str, needs: str) -> MusicVAEError:
        """The one-line error for ``what`` asked of a model of this family that lacks it."""
        return MusicVAEError(
            f"{what} needs {needs}; config {config_name!r} is a {self.name} model ({self.label})"
        )


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="groove",
            label="expressive drum grooves",
            input_kind="drums (General MIDI drum pitches on channel 10)",
            modes=ALL_MODES,
            metrics="groove",
            voice="drums",
            accuracy_key="hit_accuracy",
            accuracy_label="hit accuracy",
            input_layout="hits | velocities | offsets per drum class",
            output_layout="hit logits | velocities | offsets",
            protocols=("haki2022",),
            grid_picture=True,
            keeps_hits=True,
            spread=True,
            studio_tools=DRUM_STUDIO_TOOLS,
            studio_label="grooves",
        ),
        Family(
            name="melody",
            label="monophonic melodies",
            input_kind="a melody (pitched notes, not drums)",
            modes=("sample", "interpolate", "reconstruct"),
            metrics="categorical",
            voice="program",
            accuracy_key="accuracy",
            accuracy_label="step accuracy",
            input_layout="one-hot: no event | note off | 88 pitches",
            output_layout="class logits: no event | note off | 88 pitches",
            studio_tools=MELODY_STUDIO_TOOLS,
            studio_label="melodies",
        ),
        Family(
            name="drums",
            label="drum patterns, one of 2^classes hit combinations a step",
            input_kind="drums (General MIDI drum pitches on channel 10)",
            modes=("sample", "interpolate", "reconstruct"),
            metrics="categorical",
            voice="drums",
            accuracy_key="accuracy",
            accuracy_label="step accuracy",
            input_layout="each drum class hit | no hit at all",
            output_layout="class logits: one per combination of drum classes hit",
            studio_tools=PATTERN_STUDIO_TOOLS,
            studio_label="drum patterns",
        ),
        Family(
            name="drum_roll",
            label="drum patterns, each drum class hit or not (NADE)",
            input_kind="drums (General MIDI drum pitches on channel 10)",
            modes=("sample", "interpolate", "reconstruct"),
            metrics="multilabel",
            voice="drums",
            accuracy_key="accuracy",
            accuracy_label="step accuracy (all classes right)",
            input_layout="each drum class hit | no hit at all",
            output_layout="NADE biases: hidden (b_enc) | one per drum class (b_dec)",
            studio_tools=PATTERN_STUDIO_TOOLS,
            studio_label="drum patterns",
        ),
        Family(
            name="trio",
            label="three-instrument trios: melody, bass and drums",
            input_kind="a trio: a melody (programs 0-31), a bass (programs 32-39) and drums",
            modes=("sample", "interpolate", "reconstruct"),
            metrics="categorical",
            voice="tracks",
            accuracy_key="accuracy",
            accuracy_label="step accuracy",
            input_layout="one-hot melody (90) | one-hot bass (90) | one-hot drum pattern (512)",
            output_layout="class logits: melody (90) | bass (90) | drum pattern (512)",
            studio_tools=TRIO_STUDIO_TOOLS,
            studio_label="trios",
        ),
        Family(
            name="multiperf",
            label="multi-instrument performances",
            input_kind="2 to 8 instruments a bar (one program each, drums on channel 10)",
            modes=("sample", "interpolate", "reconstruct"),
            metrics="categorical",
            voice="tracks",
            accuracy_key="accuracy",
            accuracy_label="token accuracy",
            input_layout="one-hot token per row: program | note on/off, time shift, velocity | end",
            output_layout="class logits: 128 note-ons | 128 note-offs | time shifts | velocities "
            "| programs | end",
            studio_tools=MULTIPERF_STUDIO_TOOLS,
            studio_label="multi-track performances",
        ),
    )
}


def family_name(config: Config) -> str:
    """The name of ``config``'s family, from its converter (and the drum converter's output)."""
    if config.converter == "drums":
        return "drum_roll" if config.data.roll_output else "drums"
    if config.converter in FAMILIES:
        return config.converter
    raise MusicVAEError(f"config {config.name!r}: converter {config.converter!r} has no family")


def family_of(config: Config) -> Family:
    """``config``'s row of :data:`FAMILIES`."""
    return FAMILIES[family_name(config)]


def families_with_mode(mode: str) -> list[str]:
    """The families that have generate mode ``mode`` (for help texts and errors)."""
    return [f.name for f in FAMILIES.values() if mode in f.modes]
