"""The studio's one table of tools and the model roles behind them.

A ``Tool`` is what the page shows as a tab and the API serves at its ``endpoint``; a ``ModelRole``
is a model the studio holds, which ``musicvae studio`` fills from a flag or a bundled default.
What a tool makes depends on the family of the model that serves it: the main model's Generate,
Interpolate and Continue answer grooves for a drum model and melodies for a melody model, and the
melody role's tools are the melody model's beside a drum one. A tool that its role's model does
not back (``studio_tools`` in ``musicvae.families``) is absent from the page.
``service.Studio`` loads its models per role and checks them against it, ``cli/studio.py`` adds
one flag per role, and ``/api/info`` lists both, from which the page builds its tabs. Which
model families back a tool is their ``studio_tools`` in ``musicvae.families``. Adding a
tool is a row in ``TOOLS``, its name in the families that back it, its route and ``Studio``
method, and its panel: a ``section.tool`` in ``index.html`` whose ``data-panel`` is its action
and kind ("generate-melody"), and its call in ``app.js``'s ``runners`` (a tool that does what
another does on another model, as ``melody_generate``, reuses that panel through ``action``).

This module imports nothing heavy: the CLI reads it to build its parser, and ``--help`` stays
fast. The bundled names are ``musicvae.generation.api``'s (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from musicvae.configs import Config


@dataclass(frozen=True)
class ModelRole:
    """A model the studio holds, and how ``musicvae studio`` fills it."""

    name: str
    flag: str  # the CLI flag that names its model
    bundle: str  # the bundled model it takes when the flag is not given
    help: str  # the flag's help text
    # Every studio has this model: with no flag, its bundled default is tried even where this
    # install lacks it, so the page says which bundle is missing. Other roles take their
    # default only where it is installed, and their tools say which flag to start with.
    required: bool = False
    # An extra model: a single model given to the studio never fills it (that is the 4-bar
    # model, not a second length; or the main model, which serves melodies itself).
    extra: bool = False
    # The data-config field a model must have been trained with to serve this role, and what
    # it then does (for the error when it lacks it).
    needs: str | None = None
    verb: str = ""
    untrained: str = ""  # overrides of the tiny ``untrained_config`` for ``--untrained``
    untrained_config: str = "debug"
    # What its default model makes ("drums" or "melody"): a role without a model is shown, its
    # tools struck through, only beside a loaded model of its kind.
    kind: str = "drums"

    @property
    def dest(self) -> str:
        """The flag's attribute on argparse's namespace."""
        return self.flag.removeprefix("--").replace("-", "_")

    def info(self) -> dict[str, str]:
        """The role as ``/api/info`` lists it."""
        return {"name": self.name, "flag": self.flag, "bundle": self.bundle, "help": self.help}


@dataclass(frozen=True)
class Tool:
    """One of the studio's tools: a tab on the page and a route under ``/api``."""

    name: str  # the tab's and panel's data-tool, the key in /api/info's tools
    label: str  # the tab's text
    role: str  # the model role that serves it
    description: str  # one line: the route's summary, the tab's tooltip
    # A second role whose length the tool also offers; a request picks one by its bar count.
    lengths_from: str | None = None
    # What the tool does, whatever its model plays: the page's panel for it ("generate" for
    # melody_generate). Default: its name.
    action: str = ""
    path: str = ""  # its route under /api (default: its name)

    @property
    def endpoint(self) -> str:
        return f"/api/{self.path or self.name}"

    @property
    def verb(self) -> str:
        return self.action or self.name

    def info(self) -> dict[str, str]:
        """The tool as ``/api/info``'s ``tool_list`` gives it."""
        return {
            "name": self.name,
            "label": self.label,
            "role": self.role,
            "endpoint": self.endpoint,
            "description": self.description,
            "action": self.verb,
        }


ROLES: tuple[ModelRole, ...] = (
    ModelRole(
        "generate",
        "--checkpoint",
        "groovae_4bar",
        "model for Generate, Interpolate and Similar: "
        "a bundle, .pt checkpoint, run folder, Magenta checkpoint or bundled name "
        "(default: the bundled groovae_4bar)",
        required=True,
    ),
    ModelRole(
        "long",
        "--long-checkpoint",
        "groovae_16bar_hierdec",
        "a second, longer model for Generate and Interpolate, which then offer both lengths "
        "(default: the bundled 16-bar groovae_16bar_hierdec, where installed)",
        extra=True,
        untrained="split_bars=16,max_seq_len=256",
    ),
    ModelRole(
        "groove",
        "--groove-checkpoint",
        "groovae_2bar_humanize",
        "humanize model for Groove, trained with e.g. config groovae_2bar_humanize "
        "(default: the bundled groovae_2bar_humanize, where installed)",
        needs="humanize",
        verb="humanize",
        untrained="humanize=True",
    ),
    ModelRole(
        "drumify",
        "--drumify-checkpoint",
        "groovae_2bar_tap_fixed_velocity",
        "tap model for Drumify, trained with e.g. config groovae_2bar_tap_fixed_velocity "
        "(default: the bundled groovae_2bar_tap_fixed_velocity, where installed)",
        needs="tapify",
        verb="turn taps into drums",
        untrained="tapify=True,fixed_velocities=True",
    ),
    ModelRole(
        "melody",
        "--melody-checkpoint",
        "mel_2bar",
        "melody model for the melody tools (Generate, Interpolate and Continue melodies beside "
        "the drums), e.g. config cat-mel_2bar_small (default: the bundled mel_2bar, where "
        "installed)",
        extra=True,
        kind="melody",
        untrained_config="debug-mel_2bar",
    ),
    ModelRole(
        "long_melody",
        "--long-melody-checkpoint",
        "mel_16bar",
        "a second, longer melody model, e.g. config hierdec-mel_16bar: melody Generate and "
        "Interpolate then offer both lengths (default: the bundled mel_16bar, where installed)",
        extra=True,
        kind="melody",
        untrained_config="hierdec-mel_16bar",
        untrained="z_size=8,enc_rnn_size=[16,16],dec_rnn_size=[16,16],batch_size=4",
    ),
)

# In the page's tab order.
TOOLS: tuple[Tool, ...] = (
    Tool("generate", "Generate", "generate", "Sample grooves from the prior", lengths_from="long"),
    Tool(
        "interpolate",
        "Interpolate",
        "generate",
        "Grooves along the slerp between two grooves' means",
        lengths_from="long",
    ),
    Tool("groove", "Groove", "groove", "Humanize: add velocities and micro-timing to a pattern"),
    Tool("drumify", "Drumify", "drumify", "Turn a tapped rhythm into a full drum groove"),
    Tool("similar", "Similar", "generate", "Variations sampled near a groove's latent mean"),
    # Continue stays on the 4-bar model even beside a 16-bar one: measured on the test split,
    # the 4-bar one's continuations match what drummers played next better (hit F1 0.62
    # against 0.53 for the 16-bar hierarchical model; docs/hierarchical-decoder.md).
    Tool("continue", "Continue", "generate", "The groove, then more bars in its own feel"),
    Tool(
        "melody_generate",
        "Generate",
        "melody",
        "Sample melodies from the prior",
        lengths_from="long_melody",
        action="generate",
        path="melody/generate",
    ),
    Tool(
        "melody_interpolate",
        "Interpolate",
        "melody",
        "Melodies along the slerp between two melodies' means",
        lengths_from="long_melody",
        action="interpolate",
        path="melody/interpolate",
    ),
    Tool(
        "melody_continue",
        "Continue",
        "melody",
        "The melody, then more bars from the model",
        action="continue",
        path="melody/continue",
    ),
)


def tool(name: str) -> Tool:
    """The row of tool ``name`` (looked up in ``TOOLS`` as it is now, so a test may add one)."""
    for t in TOOLS:
        if t.name == name:
            return t
    raise KeyError(f"no studio tool {name!r}")


def role(name: str) -> ModelRole:
    """The row of model role ``name``."""
    for r in ROLES:
        if r.name == name:
            return r
    raise KeyError(f"no model role {name!r}")


def role_tools(name: str) -> list[Tool]:
    """The tools model role ``name`` serves (as their own role, or as their second length)."""
    return [t for t in TOOLS if name in (t.role, t.lengths_from)]


def kind_of(config: Config) -> str:
    """What a model of ``config`` makes in the studio: "drums" (a drum grid), "melody" (a piano
    roll), or for a family of several tracks its family's name ("trio": two piano rolls and a
    drum grid; "multiperf": a piano roll per track)."""
    from musicvae.families import family_of

    family = family_of(config)
    return {"drums": "drums", "program": "melody"}.get(family.voice, family.name)


# The actions that decode without an input's notes beside them: a model that decodes under
# controls read from its input's hits or taps backs none of them. Continue steps on from the
# input's last bars and follows no chords either.
FROM_THE_PRIOR = ("generate", "interpolate", "continue")


def controls_problem(row: Tool, config: Config) -> str | None:
    """Why a model of ``config`` cannot do what tool ``row`` does under the controls it decodes
    with, or None (a chord model's Generate takes the request's chords, its Interpolate those
    of the first input)."""
    data = config.data
    read = "hits" if data.hits_as_controls else "taps" if data.taps_as_controls else None
    if read and row.verb in FROM_THE_PRIOR:
        return (
            f"config {config.name!r} decodes under its input's {read}, which the studio's "
            f"{row.label} cannot give"
        )
    if data.chord_encoding and row.verb == "continue":
        return (
            f"config {config.name!r} plays over chords, which the studio's Continue cannot follow"
        )
    return None


def tool_problem(tool_name: str, config: Config) -> str | None:
    """Why a model of ``config`` does not back tool ``tool_name``, or None when it does."""
    from musicvae.families import FAMILIES, family_of

    family, row = family_of(config), tool(tool_name)
    if row.name in family.studio_tools:
        return controls_problem(row, config)
    backing = [f.name for f in FAMILIES.values() if row.name in f.studio_tools]
    return (
        f"config {config.name!r} is a {family.name} model ({family.label}); the studio's "
        f"{row.label} takes {' or '.join(backing) or 'no'} models"
    )


def family_problem(role_name: str, config: Config) -> str | None:
    """Why a model of ``config`` cannot serve role ``role_name`` (its family backs none of the
    role's tools, ``musicvae.families``), or None when it can."""
    from musicvae.families import FAMILIES, family_of

    family = family_of(config)
    tools = role_tools(role_name)
    if any(t.name in family.studio_tools for t in tools):
        return None
    backing = [f.name for f in FAMILIES.values() if any(t.name in f.studio_tools for t in tools)]
    labels = ", ".join(t.label for t in tools)
    takes = f"take {' or '.join(backing)} models" if backing else "take no model family yet"
    return (
        f"config {config.name!r} is a {family.name} model ({family.label}); the studio's "
        f"{labels} {takes}"
    )


def tool_labels() -> str:
    """The tools' labels, each once, as a sentence's list: "Generate, ..., and Continue"."""
    labels = list(dict.fromkeys(t.label for t in TOOLS))
    return ", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else "".join(labels)


def check() -> None:
    """Raises ``ValueError`` for a row naming a role that is not in ``ROLES``, or a name used
    twice: a typo would otherwise surface as a ``KeyError`` on some request."""
    roles = [r.name for r in ROLES]
    for t in TOOLS:
        for name in (t.role, t.lengths_from):
            if name is not None and name not in roles:
                raise ValueError(f"tool {t.name!r}: no model role {name!r}")
    names = [t.name for t in TOOLS]
    for kind, seen in (("role", roles), ("tool", names), ("endpoint", [t.endpoint for t in TOOLS])):
        if len(set(seen)) != len(seen):
            raise ValueError(f"{kind} names must be unique: {seen}")


check()
