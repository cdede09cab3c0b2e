"""Ensembles: query every linked model, combine what arrived by the SLO deadline (stragglers are left out and
the answer lists the contributors), optionally learn per-model weights from feedback (exp4)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from clipper_core.interfaces import Query, SelectionPolicy

__all__ = ["Exp4", "KAgree", "MajorityVote", "Mean", "WeightedVote"]


def _number(value: Any) -> float:
    return float(value)


def _key(value: Any) -> str:
    """Votes compare outputs as text, numbers numerically ("1" and 1.0 are one vote)."""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


class Ensemble(SelectionPolicy):
    max_models: ClassVar[int | None] = None

    def select(self, state: Any, query: Query, models: list[str]) -> list[str]:
        return list(models)

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        configured = self.config.get("weights", {})
        return {m: float(configured.get(m, 1.0)) for m in models}

    def vote(self, state: Any, predictions: dict[str, Any]) -> tuple[Any, float, float]:
        """The weighted winner, its weight, and the total weight."""
        weights = self.weights(state, list(predictions))
        tally: dict[str, float] = {}
        first: dict[str, Any] = {}
        for model, output in predictions.items():
            key = _key(output)
            tally[key] = tally.get(key, 0.0) + weights[model]
            first.setdefault(key, output)
        key, top = max(tally.items(), key=lambda kv: (kv[1], -list(first).index(kv[0])))
        return first[key], top, sum(tally.values())


class Mean(Ensemble):
    """Regression: the (weighted, ``weights``) mean of the outputs that arrived."""

    name: ClassVar[str] = "mean"

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        weights = self.weights(state, list(predictions))
        total = sum(weights.values())
        return sum(_number(v) * weights[m] for m, v in predictions.items()) / total, False, ""


class MajorityVote(Ensemble):
    """Classification: the most common output (ties go to the first linked model's output)."""

    name: ClassVar[str] = "majority-vote"

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        return dict.fromkeys(models, 1.0)

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        return self.vote(state, predictions)[0], False, ""


class WeightedVote(Ensemble):
    """Classification with fixed per-model ``weights`` ({model: weight}, default 1)."""

    name: ClassVar[str] = "weighted-vote"

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        return self.vote(state, predictions)[0], False, ""


class KAgree(Ensemble):
    """Answer only when at least ``k`` (2) models agree on the output; otherwise the app's default output with
    an explanation. A confidence rule: disagreement is a reason not to answer."""

    name: ClassVar[str] = "k-agree"

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        return dict.fromkeys(models, 1.0)

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        k = int(self.config.get("k", 2))
        output, agreeing, total = self.vote(state, predictions)
        if agreeing < k:
            return (self.app.default_output, True,
                    f"only {int(agreeing)} of {int(total)} models agree on the output; {k} must agree")
        return output, False, ""


class Exp4(Ensemble):
    """Exp4-style weighted ensemble learned from feedback: combine by weighted vote (``task``:
    ``classification``, default) or weighted mean (``regression``); on feedback each model's weight is
    multiplied by exp(-η·loss) (``eta``, 0.5), loss = 0/1 mismatch or the absolute error clipped to 1."""

    name: ClassVar[str] = "exp4"
    needs_state: ClassVar[bool] = True

    def initial_state(self, models: list[str]) -> Any:
        return {"logw": dict.fromkeys(models, 0.0)}

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        logw = state.setdefault("logw", {})
        top = max((logw.get(m, 0.0) for m in models), default=0.0)
        return {m: math.exp(logw.get(m, 0.0) - top) for m in models}

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        if self.config.get("task", "classification") == "regression":
            weights = self.weights(state, list(predictions))
            total = sum(weights.values())
            return sum(_number(v) * weights[m] for m, v in predictions.items()) / total, False, ""
        return self.vote(state, predictions)[0], False, ""

    def observe(self, state: Any, query: Query, feedback: Any, predictions: dict[str, Any]) -> Any:
        eta = float(self.config.get("eta", 0.5))
        logw = state.setdefault("logw", {})
        for model, output in predictions.items():
            if self.config.get("task", "classification") == "regression":
                loss = min(1.0, abs(_number(output) - _number(feedback)))
            else:
                loss = 0.0 if _key(output) == _key(feedback) else 1.0
            logw[model] = logw.get(model, 0.0) - eta * loss
        return state
