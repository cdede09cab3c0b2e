"""Toy models for the end-to-end bandit tests. The label of input x is 1 when x[0] > 0, else 0: ``right`` is
always right, ``ones`` only for positive inputs, ``zeros`` only for negative ones. The closure deployer
pickles these by value (this module is not installed)."""

from __future__ import annotations

from typing import Any


def label_of(x: Any) -> int:
    return 1 if x[0] > 0 else 0


def right(xs: Any) -> list[str]:
    return [str(float(label_of(x))) for x in xs]


def ones(xs: Any) -> list[str]:
    return ["1.0" for _ in xs]


def zeros(xs: Any) -> list[str]:
    return ["0.0" for _ in xs]
