"""Rewards in [0, 1] from a model's output and the feedback label (config key ``reward``)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["reward"]


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def reward(kind: str, output: Any, label: Any, scale: float = 1.0) -> float:
    """``match`` (classification): 1 when the output equals the label (numerically if both are numbers);
    ``abs_error`` / ``squared_error`` (regression): exp(-error / scale), so 1 is perfect and 0 is far off."""
    out, lab = _number(output), _number(label)
    if kind == "match":
        if out is not None and lab is not None:
            return 1.0 if abs(out - lab) < 1e-9 else 0.0
        return 1.0 if str(output) == str(label) else 0.0
    if out is None or lab is None:
        return 0.0
    error = abs(out - lab) if kind == "abs_error" else (out - lab) ** 2
    return math.exp(-error / max(scale, 1e-12))
