"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero)."""


class MusicVAEError(Exception):
    """A problem with the user's input or environment; ``str(e)`` is the whole message."""


class ConfigError(MusicVAEError, ValueError):
    """A setting with the wrong type or out of range, found when the config is made."""
