"""Checks of one setting's value, shared by the settings objects that the admin API validates (autoscaling,
rollouts): each failure is an ``InvalidInput`` naming the setting, what it was and what is expected."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from clipper_core.errors import InvalidInput

__all__ = ["check_integer", "check_number", "known_settings"]


def check_integer(key: str, value: Any, low: int, high: int) -> int:
    """``value`` as an integer in [low, high] (a bool is not one)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"'{key}' is {type(value).__name__}; expected an integer")
    if not low <= value <= high:
        raise InvalidInput(f"'{key}' is {value}; expected {low} to {high}")
    return value


def check_number(key: str, value: Any, low: float, high: float, open_low: bool = False) -> float:
    """``value`` as a finite number in [low, high] (or (low, high] with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"'{key}' is {value!r}; expected a number")
    if value < low or value > high or (open_low and value == low):
        bound = f"above {low:g}" if open_low else f"at least {low:g}"
        raise InvalidInput(f"'{key}' is {value:g}; expected a number {bound} and at most {high:g}")
    return float(value)


def known_settings(label: str, data: Any, known: Iterable[str],
                   expected: str = "an object of settings") -> dict[str, Any]:
    """``data`` as a dict of settings, each one of ``known`` (``label``: how the messages name it, e.g.
    ``'autoscaling'``)."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{label} is {type(data).__name__}; expected {expected}")
    names = set(known)
    unknown = sorted(set(data) - names)
    if unknown:
        raise InvalidInput(f"{label} has the unknown setting(s) {', '.join(map(repr, unknown))}; expected some of "
                           f"{', '.join(sorted(names))}")
    return dict(data)
