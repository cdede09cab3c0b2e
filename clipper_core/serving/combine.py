"""Turning what the models said about one input into its :class:`Prediction`: the outputs that arrived in time,
the policy's combine, and the default output (with Clipper's explanations) when nothing usable arrived."""

from __future__ import annotations

import asyncio
from typing import Any

from clipper_core.interfaces import Query
from clipper_core.serving.app_runtime import AppRuntime, as_json_value
from clipper_core.serving.model_runtime import ItemFailed, ModelFailed
from clipper_core.serving.prediction import NO_MODELS, SLO_MISSED, Prediction, ScalingFromZero
from clipper_core.serving.queue import DeadlineExpired
from clipper_core.serving.recent import RecentPredictions

__all__ = ["arrived", "combine"]

_MISSING = object()


def arrived(plan: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The outputs that arrived in time (by model name), and what went wrong with the others."""
    predictions: dict[str, Any] = {}
    failures: list[str] = []
    for name, value in plan.items():
        if isinstance(value, asyncio.Future):
            if not value.done():
                continue
            exc = value.exception()
            if exc is None:
                predictions[name] = value.result()
            elif isinstance(exc, (ModelFailed, ItemFailed)):
                failures.append(f"model '{name}' failed: {exc}")
            elif isinstance(exc, ScalingFromZero):
                failures.append(str(exc))
            elif not isinstance(exc, DeadlineExpired):
                failures.append(f"model '{name}' failed: {type(exc).__name__}: {exc}")
        else:
            predictions[name] = value
    return predictions, failures


def combine(rt: AppRuntime, state: Any, query: Query, plan: dict[str, Any],
            recent: RecentPredictions) -> Prediction:
    """The policy's answer for one query (remembered for feedback when the policy learns), or the default."""
    if not plan:
        return default(rt, query, NO_MODELS)
    predictions, failures = arrived(plan)
    if not predictions:
        return default(rt, query, "; ".join(failures) if failures else SLO_MISSED)
    policy = rt.policy
    assert policy is not None
    if policy.needs_state:
        recent.remember(query, predictions)
    output, is_default, why = policy.combine(state, query, predictions)
    if is_default:
        return default(rt, query, why, output)
    models = sorted(predictions) if policy.max_models != 1 else None
    return Prediction(query.query_id, as_json_value(output), False, "", models)


def default(rt: AppRuntime, query: Query, why: str, output: Any = _MISSING) -> Prediction:
    rt.defaults += 1
    value = rt.default_output if output is _MISSING else as_json_value(output)
    return Prediction(query.query_id, value, True, why)
