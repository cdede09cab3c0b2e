"""Reading a selection policy's ``policy_config`` (for policy plugins): unknown keys and out-of-range values
fail when the app is added or loaded, with a message that names the policy, the key and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_keys", "number"]


def check_keys(policy: str, config: dict[str, Any], known: Iterable[str]) -> None:
    """Reject keys the policy does not read (a typo such as ``gama`` would otherwise be ignored silently)."""
    allowed = sorted(known)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"policy '{policy}' has no config key(s) {unknown}; it reads {allowed}")


def number(policy: str, config: dict[str, Any], key: str, default: float, *, low: float | None = None,
           high: float | None = None, low_open: bool = False) -> float:
    """``config[key]`` as a float in [low, high] (``(low, high]`` with ``low_open``), else ``default``."""
    raw = config.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"policy '{policy}': config '{key}' must be a number, got {raw!r}")
    value = float(raw)
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        left = "(" if low_open else "["
        raise ValueError(f"policy '{policy}': config '{key}' must be in {left}{low}, {high}], got {value}")
    return value
