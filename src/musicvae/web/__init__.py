"""MusicVAE Studio: a local web page and JSON API for the tools of every model family.

``create_app(models)`` builds the FastAPI app; ``musicvae studio`` serves it on 127.0.0.1. The
app is imported on first use: the CLI reads ``musicvae.web.tools`` to build its parser, and that
must not pull in FastAPI and torch for ``--help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from musicvae.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from musicvae.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
