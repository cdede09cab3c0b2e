"""Toy models shared by the tests (one module, as STYLE §11 asks). Each is a plain function over a batch, so
the closure deployer can ship it; cloudpickle pickles them by value (this module is not installed)."""

from __future__ import annotations

import os
import time
from typing import Any


def feature_sum(xs: Any) -> list[str]:
    """The Clipper quickstart model."""
    return [str(sum(x)) for x in xs]


def float_sum(xs: Any) -> list[float]:
    """The sum of each input as a number (a V2 answer of FP64)."""
    return [float(x.sum()) for x in xs]


def noop(xs: Any) -> list[str]:
    return ["1" for _ in xs]


def version_one(xs: Any) -> list[str]:
    return ["1" for _ in xs]


def version_two(xs: Any) -> list[str]:
    return ["2" for _ in xs]


def batch_size_model(xs: Any) -> list[str]:
    """Answers with the size of the batch it received (the fixed-batch-size saturation test)."""
    time.sleep(0.002)
    return [str(len(xs)) for _ in xs]


def length_model(xs: Any) -> list[int]:
    return [len(x) for x in xs]


def slow_model(xs: Any) -> list[str]:
    time.sleep(0.5)
    return ["slow" for _ in xs]


def error_model(xs: Any) -> list[str]:
    raise ValueError("this model always fails")


def error_on_negative(xs: Any) -> list[Any]:
    return [ValueError(f"negative input {x[0]}") if x[0] < 0 else str(float(x[0])) for x in xs]


def crash_model(xs: Any) -> list[str]:
    os._exit(17)


def echo_strings(xs: Any) -> list[str]:
    return [s.upper() for s in xs]


def bytes_length(xs: Any) -> list[int]:
    return [len(b) for b in xs]


def slow_batch_size_model(xs: Any) -> list[str]:
    """Slow enough (20 ms a batch) that a burst of queries saturates the queue."""
    time.sleep(0.02)
    return [str(len(xs)) for _ in xs]


def crash_on_negative(xs: Any) -> list[str]:
    """Kills its own process (no cleanup, like a segfault) when it sees a negative input."""
    if any(x[0] < 0 for x in xs):
        os._exit(17)
    return [str(float(x[0])) for x in xs]


def four_second_model(xs: Any) -> list[str]:
    """Longer than the frontend's dead-replica timeout (3 x 0.5 s + 1.5 s): only heartbeats keep it alive."""
    time.sleep(4.0)
    return ["done" for _ in xs]


def slow_one_at_a_time(xs: Any) -> list[str]:
    time.sleep(0.2 * len(xs))
    return ["ok" for _ in xs]


def hang_on_negative(xs: Any) -> list[str]:
    """Never returns for a negative input (a deadlock), while its heartbeat thread keeps running."""
    if any(x[0] < 0 for x in xs):
        while True:
            time.sleep(1)
    return [str(float(x[0])) for x in xs]
