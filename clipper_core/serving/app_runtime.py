"""What the query path keeps per application: the app record, its policy instance, links and counters."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from clipper_core.interfaces import SelectionPolicy
from clipper_core.metrics import FastHistogram
from clipper_core.serving.tenancy import Guard
from clipper_core.state import Application

__all__ = ["AppRuntime", "as_json_value"]


def as_json_value(output: Any) -> Any:
    """Clipper re-parses string outputs as JSON ("1.0" → 1.0, "[1,2]" → [1, 2]); others pass through."""
    if output.__class__ is str:
        try:
            return orjson.loads(output)
        except orjson.JSONDecodeError:
            return output
    return output


@dataclass
class AppRuntime:
    app: Application
    policy: SelectionPolicy | None
    linked: list[str]
    default_output: Any
    slo: float
    policy_error: str = ""
    states: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    """Recently used per-user policy states (bounded; the store has them all)."""
    state_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    latency: FastHistogram = field(default_factory=FastHistogram)
    predictions: int = 0
    defaults: int = 0
    guard: Guard | None = None
    """Its API keys, limits and priority class (:mod:`.tenancy`); None: it has none (one test a query)."""
