"""Losses in [0, 1] from a model's output and the feedback label (config keys ``reward``, ``reward_scale``).

The same vocabulary as clipper-policy-bandits (``match``, ``abs_error``, ``squared_error``); kept here so the
two distributions do not depend on each other."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["REWARDS", "loss", "number_or_none"]

REWARDS = ("match", "abs_error", "squared_error")


def number_or_none(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def loss(kind: str, output: Any, label: Any, scale: float = 1.0) -> float:
    """``match``: 0 when the output equals the label (a numeric output counts as its nearest integer when the
    label is a whole number), else 1. ``abs_error`` / ``squared_error``: 1 - exp(-error / scale). An output that
    is not a number loses 1 under the regression losses."""
    out, lab = number_or_none(output), number_or_none(label)
    if kind == "match":
        if out is None or lab is None:
            return 0.0 if str(output) == str(label) else 1.0
        if lab == round(lab):
            return 0.0 if round(out) == lab else 1.0
        return 0.0 if abs(out - lab) < 1e-9 else 1.0
    if out is None or lab is None:
        return 1.0
    error = abs(out - lab) if kind == "abs_error" else (out - lab) ** 2
    return 1.0 - math.exp(-error / scale)
