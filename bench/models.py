"""The benchmark models. ``noop`` is the sum of its inputs; ``batchy`` costs 5 ms + 0.05 ms per item, the way
a vectorised model on an accelerator does (the sleep releases the GIL, like a BLAS or CUDA call)."""

from __future__ import annotations

import time
from typing import Any


def noop(xs: Any) -> list[float]:
    return [float(x.sum()) for x in xs]


def batchy(xs: Any) -> list[float]:
    time.sleep(0.005 + 0.00005 * len(xs))
    return [float(x.sum()) for x in xs]


def capped(xs: Any) -> list[float]:
    """4 ms per input whatever the batch: a model whose capacity batching cannot raise (250 inputs/s)."""
    time.sleep(0.004 * len(xs))
    return [float(x.sum()) for x in xs]
