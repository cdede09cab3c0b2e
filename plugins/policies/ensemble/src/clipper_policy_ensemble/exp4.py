"""Exp4-style learned ensemble: per-user model weights from feedback (exponential weights, full information)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import orjson

from clipper_core.interfaces import Query
from clipper_core.policies.config import number
from clipper_core.policies.rewards import REWARDS, reward
from clipper_core.state import Application
from clipper_policy_ensemble.base import Ensemble

__all__ = ["Exp4"]


class Exp4(Ensemble):
    """Every model answers, so each one's loss is known on every feedback: w_i ← w_i·exp(-η·loss_i) (the
    expert-advice update of Exp4 / Hedge). Answers with the weighted vote (``reward: match``, classification)
    or the weighted mean (``abs_error`` / ``squared_error``, regression) of the outputs that arrived.

    Each feedback first multiplies the log weights by ``discount`` d, so they settle at about -η·L_i / (1 - d),
    L_i being model i's recent loss rate: a clearly better model dominates, models of similar quality keep
    similar weights and the vote keeps the benefit of their independent errors (with d = 1 the weights collapse
    onto the single best model), and a model that improves regains trust.

    State per (app, uid): ``{"policy": "exp4", "logw": {model: log weight}}``, the largest kept at 0; a model
    linked later starts at the mean log weight. Config: ``eta`` (0.1), ``discount`` (0.98), ``reward``
    (``match``), ``reward_scale`` (1.0; regression loss = 1 - exp(-error / scale)).
    """

    name: ClassVar[str] = "exp4"
    needs_state: ClassVar[bool] = True
    config_keys: ClassVar[tuple[str, ...]] = ("eta", "reward", "reward_scale", "discount")

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.eta = number(self.name, self.config, "eta", 0.1, low=0, low_open=True)
        kind = self.config.get("reward", "match")
        if kind not in REWARDS:
            raise ValueError(f"policy 'exp4': config 'reward' must be one of {list(REWARDS)}, got {kind!r}")
        self.reward_kind: str = kind
        self.reward_scale = number(self.name, self.config, "reward_scale", 1.0, low=0, low_open=True)
        self.discount = number(self.name, self.config, "discount", 0.98, low=0, high=1, low_open=True)

    def initial_state(self, models: list[str]) -> Any:
        return {"policy": self.name, "logw": dict.fromkeys(models, 0.0)}

    def dumps_state(self, state: Any) -> bytes:
        return orjson.dumps(state)

    def loads_state(self, data: bytes) -> Any:
        state = orjson.loads(data)
        if not isinstance(state, dict) or state.get("policy") != self.name or not isinstance(state.get("logw"), dict):
            return self.initial_state([])  # written by the app's previous policy: learning starts afresh
        return state

    @staticmethod
    def _logw(state: Any, models: list[str]) -> dict[str, float]:
        logw: dict[str, float] = state["logw"]
        missing = [m for m in models if m not in logw]
        if missing:
            start = sum(logw.values()) / len(logw) if logw else 0.0
            for model in missing:
                logw[model] = start
        return logw

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        logw = self._logw(state, models)
        top = max(logw[m] for m in models)
        return {m: math.exp(logw[m] - top) for m in models}

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        if self.reward_kind == "match":
            return self.tally(state, predictions)[0][2], False, ""
        return self.weighted_mean(state, predictions)

    def observe(self, state: Any, query: Query, feedback: Any, predictions: dict[str, Any]) -> Any:
        """Models that did not answer this query (stragglers) keep their weight."""
        logw = self._logw(state, list(predictions))
        if self.discount < 1:
            for model in logw:
                logw[model] *= self.discount
        for model, output in predictions.items():
            logw[model] -= self.eta * (1.0 - reward(self.reward_kind, output, feedback, self.reward_scale))
        top = max(logw.values())
        for model in logw:
            logw[model] -= top
        return state
