"""The studio's tool and model-role table: its rows, its checks, and that it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from musicvae.web import tools as table
from musicvae.web.tools import ModelRole, Tool


def test_the_tools_in_tab_order_with_their_roles_and_endpoints():
    assert [(t.name, t.label, t.role, t.endpoint) for t in table.TOOLS] == [
        ("generate", "Generate", "generate", "/api/generate"),
        ("interpolate", "Interpolate", "generate", "/api/interpolate"),
        ("groove", "Groove", "groove", "/api/groove"),
        ("drumify", "Drumify", "drumify", "/api/drumify"),
        ("similar", "Similar", "generate", "/api/similar"),
        ("continue", "Continue", "generate", "/api/continue"),
        ("melody_generate", "Generate", "melody", "/api/melody/generate"),
        ("melody_interpolate", "Interpolate", "melody", "/api/melody/interpolate"),
        ("melody_continue", "Continue", "melody", "/api/melody/continue"),
    ]
    # The melody tools do what the main model's do, on the melody model: the same panels.
    assert [t.verb for t in table.TOOLS] == [
        *("generate", "interpolate", "groove", "drumify", "similar", "continue"),
        *("generate", "interpolate", "continue"),
    ]
    # The 16-bar models: a second length for two tools each.
    assert [t.name for t in table.TOOLS if t.lengths_from == "long"] == ["generate", "interpolate"]
    assert [t.name for t in table.TOOLS if t.lengths_from == "long_melody"] == [
        "melody_generate",
        "melody_interpolate",
    ]
    # Each label once: the description of `musicvae studio`.
    assert table.tool_labels() == "Generate, Interpolate, Groove, Drumify, Similar and Continue"


def test_the_roles_flags_and_bundled_defaults_are_the_generation_apis():
    from musicvae.generation.api import DEFAULT_BUNDLE, HUMANIZE_BUNDLE, LONG_BUNDLE, TAP_BUNDLE

    assert [(r.name, r.flag, r.dest, r.bundle) for r in table.ROLES] == [
        ("generate", "--checkpoint", "checkpoint", DEFAULT_BUNDLE),
        ("long", "--long-checkpoint", "long_checkpoint", LONG_BUNDLE),
        ("groove", "--groove-checkpoint", "groove_checkpoint", HUMANIZE_BUNDLE),
        ("drumify", "--drumify-checkpoint", "drumify_checkpoint", TAP_BUNDLE),
        # The melody bundles are being trained: their names, taken where installed.
        ("melody", "--melody-checkpoint", "melody_checkpoint", "mel_2bar"),
        ("long_melody", "--long-melody-checkpoint", "long_melody_checkpoint", "mel_16bar"),
    ]
    for r in table.ROLES:
        assert r.bundle in r.help  # the flag's help names its default
    assert [r.name for r in table.ROLES if r.required] == ["generate"]
    # A single model fills none of these: the main model serves melodies itself.
    assert [r.name for r in table.ROLES if r.extra] == ["long", "melody", "long_melody"]
    assert [r.name for r in table.ROLES if r.kind == "melody"] == ["melody", "long_melody"]
    assert [(r.name, r.needs) for r in table.ROLES if r.needs] == [
        ("groove", "humanize"),
        ("drumify", "tapify"),
    ]


def test_rows_are_found_by_name():
    assert table.tool("similar").description == "Variations sampled near a groove's latent mean"
    assert table.role("drumify").verb == "turn taps into drums"
    with pytest.raises(KeyError, match="no studio tool 'fills'"):
        table.tool("fills")
    with pytest.raises(KeyError, match="no model role 'bass'"):
        table.role("bass")


def test_info_rows_are_what_api_info_lists():
    assert table.tool("continue").info() == {
        "name": "continue",
        "label": "Continue",
        "role": "generate",
        "endpoint": "/api/continue",
        "description": "The groove, then more bars in its own feel",
        "action": "continue",
    }
    assert table.role("groove").info() == {
        "name": "groove",
        "flag": "--groove-checkpoint",
        "bundle": "groovae_2bar_humanize",
        "help": table.role("groove").help,
    }


@pytest.mark.parametrize(
    ("tools", "roles", "message"),
    [
        ((Tool("fills", "Fills", "fill", "x"),), None, "tool 'fills': no model role 'fill'"),
        ((Tool("x", "X", "generate", "x", lengths_from="longer"),), None, "no model role 'longer'"),
        ((*table.TOOLS, table.TOOLS[0]), None, "tool names must be unique"),
        (None, (*table.ROLES, ModelRole("long", "--l", "b", "h")), "role names must be unique"),
    ],
)
def test_a_bad_row_is_caught(monkeypatch, tools, roles, message):
    monkeypatch.setattr(table, "TOOLS", tools or table.TOOLS)
    monkeypatch.setattr(table, "ROLES", roles or table.ROLES)
    with pytest.raises(ValueError, match=message):
        table.check()


def test_the_table_imports_neither_torch_nor_fastapi():
    code = (
        "import sys, musicvae.web.tools, musicvae.cli.studio; "
        "print(sorted(m for m in ('torch', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
