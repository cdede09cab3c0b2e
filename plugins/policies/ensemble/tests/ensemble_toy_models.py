"""Toy models for the end-to-end ensemble tests (pickled by value by the closure deployer). For the
classifiers the label of input x is 1 when x[0] > 0, else 0."""

from __future__ import annotations

import time
from typing import Any


def label_of(x: Any) -> int:
    return 1 if x[0] > 0 else 0


def one(xs: Any) -> list[str]:
    return ["1.0" for _ in xs]


def three(xs: Any) -> list[str]:
    return ["3.0" for _ in xs]


def slower_than_the_slo(xs: Any) -> list[str]:
    time.sleep(1.0)
    return ["100.0" for _ in xs]


def right(xs: Any) -> list[str]:
    return [str(label_of(x)) for x in xs]


def wrong(xs: Any) -> list[str]:
    return [str(1 - label_of(x)) for x in xs]
