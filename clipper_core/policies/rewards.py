"""Rewards in [0, 1] from a model's output and the feedback label, for learning policies (their config keys
``reward`` and ``reward_scale``); a loss is ``1 - reward``."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["REWARDS", "number_or_none", "reward"]

REWARDS = ("match", "abs_error", "squared_error")


def number_or_none(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def reward(kind: str, output: Any, label: Any, scale: float = 1.0) -> float:
    """``match`` (classification): 1 when the output equals the label; a numeric output counts as its nearest
    integer when the label is a whole number (a score of 0.8 matches class 1), strings compare as text.
    ``abs_error`` / ``squared_error`` (regression): exp(-error / scale), 1 when exact, towards 0 when far off.
    An output that is not a number earns 0 under the regression rewards."""
    out, lab = number_or_none(output), number_or_none(label)
    if kind == "match":
        if out is None or lab is None:
            return 1.0 if str(output) == str(label) else 0.0
        if lab == round(lab):
            return 1.0 if round(out) == lab else 0.0
        return 1.0 if abs(out - lab) < 1e-9 else 0.0
    if out is None or lab is None:
        return 0.0
    error = abs(out - lab) if kind == "abs_error" else (out - lab) ** 2
    return math.exp(-error / scale)
