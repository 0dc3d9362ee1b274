"""The studio's one table of tools and the model roles behind them.

A ``Tool`` is what the page shows as a tab and the API serves at ``/api/<name>``; a ``ModelRole``
is a model the studio holds, which ``musicvae studio`` fills from a flag or a bundled default.
``service.Studio`` loads its models per role and checks them against it, ``cli/studio.py`` adds
one flag per role, and ``/api/info`` lists both, from which the page builds its tabs. Which
model families back a tool is their ``studio_tools`` in ``musicvae.families``. Adding a
tool is a row in ``TOOLS``, its name in the families that back it, its route and ``Studio``
method, and its panel (a ``section.tool``
in ``index.html`` and its call in ``app.js``'s ``tools``).

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
    # An extra model: tools work without it, and a single model given to the studio never
    # fills it (that is the 4-bar model, not a second length).
    extra: bool = False
    # The data-config field a model must have been trained with to serve this role, and what
    # it then does (for the error when it lacks it).
    needs: str | None = None
    verb: str = ""
    untrained: str = ""  # overrides of the tiny "debug" config for ``--untrained``

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

    @property
    def endpoint(self) -> str:
        return f"/api/{self.name}"

    def info(self) -> dict[str, str]:
        """The tool as ``/api/info``'s ``tool_list`` gives it."""
        return {
            "name": self.name,
            "label": self.label,
            "role": self.role,
            "endpoint": self.endpoint,
            "description": self.description,
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
    """The tools' labels as a sentence's list: "Generate, ..., Similar and Continue"."""
    labels = [t.label for t in TOOLS]
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
    for kind, seen in (("role", roles), ("tool", names)):
        if len(set(seen)) != len(seen):
            raise ValueError(f"{kind} names must be unique: {seen}")


check()
