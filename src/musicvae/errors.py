"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero)."""


class MusicVAEError(Exception):
    """A problem with the user's input or environment; ``str(e)`` is the whole message."""
