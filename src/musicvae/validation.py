"""Checks a frozen settings dataclass against its type annotations and value ranges.

A config is checked when it is made, so ``batch_size=-8`` or ``learning_rate=nan`` is one clear
line at ``--hparams`` time instead of a hang or a traceback at step 1. Types come from the
annotations (``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``tuple[int, ...]`` and
``X | None``); ranges from a table of :class:`Range` per field. Ints are accepted for floats and
lists for tuples, and stored converted.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from typing import Any, Literal, Union, get_args, get_origin

from musicvae.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """``lo <= x <= hi`` (``<`` where the end is open); each end optional."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, x: float) -> bool:
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return not (self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi))

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{'<' if self.hi_open else '<='} {self.hi:g}"


POSITIVE = Range(0, None, lo_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
PROBABILITY = Range(0, 1)

# Seeds: what torch.manual_seed takes, the same range on the command line and in the API. Seeds
# derived from one (seed + 1 for a second draw) wrap around inside it.
SEED_SPACE = 2**64
MAX_SEED = SEED_SPACE - 1


def check_seed(seed: object) -> int | None:
    """``seed`` as an int (None stays None): an integer 0 to :data:`MAX_SEED`, else one
    :class:`MusicVAEError` line."""
    import numbers

    from musicvae.errors import MusicVAEError

    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise MusicVAEError(f"seed {seed!r}: expected an integer 0 to {MAX_SEED:,}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise MusicVAEError(f"seed {seed}: out of range; expected 0 to {MAX_SEED:,} (64 bits)")
    return int(seed)


def derive_seed(seed: int | None, offset: int) -> int | None:
    """A further seed drawn from ``seed`` (e.g. ``seed + 1`` for a second draw), inside the seed
    range; None stays None."""
    return None if seed is None else (int(seed) + offset) % SEED_SPACE


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}s"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(ok, converted)`` of ``value`` for annotation ``tp``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _convert_union(value, tp)
    if origin is Literal:
        return value in get_args(tp) and isinstance(value, str), value
    if origin is tuple:
        if not isinstance(value, tuple | list):
            return False, value
        item = get_args(tp)[0]
        converted = [_convert(v, item) for v in value]
        return all(ok for ok, _ in converted), tuple(v for _, v in converted)
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return math.isfinite(value), float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    return True, value


def _convert_union(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(ok, converted)`` for an optional or union annotation: the first member that fits."""
    if value is None and type(None) in get_args(tp):
        return True, None
    for arg in get_args(tp):
        if arg is not type(None):
            ok, out = _convert(value, arg)
            if ok:
                return True, out
    return False, value


def check_fields(obj: Any, ranges: dict[str, Range], owner: str) -> None:
    """Raise :class:`ConfigError` naming the first field of ``obj`` whose value has the wrong type
    or is out of range; converts ints to floats and lists to tuples in place."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        tp = hints[f.name]
        ok, converted = _convert(value, tp)
        if not ok:
            raise ConfigError(f"{owner} {f.name}={value!r}: expected {_type_name_full(tp)}")
        if converted is not value:
            object.__setattr__(obj, f.name, converted)
        rule = ranges.get(f.name)
        if rule is None or converted is None:
            continue
        items = converted if isinstance(converted, tuple) else (converted,)
        bad = [v for v in items if not rule.holds(v)]
        if bad:
            raise ConfigError(f"{owner} {f.name}={value!r}: must be {rule}")


_FRIENDLY = {"int": "an integer", "float": "a finite number", "bool": "true or false",
             "str": "a string"}  # fmt: skip


def _type_name_full(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        names = [_type_name_full(a) for a in get_args(tp) if a is not type(None)]
        none = " or None" if type(None) in get_args(tp) else ""
        return " or ".join(names) + none
    name = _type_name(tp)
    return _FRIENDLY.get(name, name)
