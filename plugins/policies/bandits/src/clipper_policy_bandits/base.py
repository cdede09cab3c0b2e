"""What every bandit here shares: one model per query, per-user JSON state, rewards from feedback."""

from __future__ import annotations

import random
from typing import Any, ClassVar

from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.state import Application
from clipper_policy_bandits.rewards import reward

__all__ = ["Bandit"]


class Bandit(SelectionPolicy):
    """Selects one linked model per query; learns from ``observe`` which one earns the most reward.

    Config: ``reward`` (``match`` | ``abs_error`` | ``squared_error``, default ``match``), ``reward_scale``
    (1.0), ``seed`` (for reproducible selection), ``discount`` (0 < d ≤ 1, default 1: statistics decay by
    ``d`` per feedback so the policy follows a model whose quality changes).
    """

    max_models: ClassVar[int | None] = None
    needs_state: ClassVar[bool] = True

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.reward_kind = str(self.config.get("reward", "match"))
        self.reward_scale = float(self.config.get("reward_scale", 1.0))
        self.discount = float(self.config.get("discount", 1.0))
        if not 0 < self.discount <= 1:
            raise ValueError("discount must be in (0, 1]")
        self.rng = random.Random(self.config.get("seed"))

    def initial_state(self, models: list[str]) -> Any:
        return {"arms": {}}

    def arms(self, state: Any, models: list[str]) -> dict[str, Any]:
        """Per-model statistics, created for models linked after the state was."""
        arms: dict[str, Any] = state.setdefault("arms", {})
        for model in models:
            if model not in arms:
                arms[model] = self.new_arm()
        return arms

    def new_arm(self) -> dict[str, float]:
        return {"n": 0.0, "total": 0.0}

    def select(self, state: Any, query: Query, models: list[str]) -> list[str]:
        if not models:
            return []
        return [self.choose(state, query, models)]

    def choose(self, state: Any, query: Query, models: list[str]) -> str:
        raise NotImplementedError

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        for output in predictions.values():
            return output, False, ""
        return self.app.default_output, True, "No connected models found for query"

    def observe(self, state: Any, query: Query, feedback: Any, predictions: dict[str, Any]) -> Any:
        arms = self.arms(state, list(predictions))
        if self.discount < 1:
            for arm in arms.values():
                self.decay(arm)
        for model, output in predictions.items():
            self.update(arms[model], reward(self.reward_kind, output, feedback, self.reward_scale), state, model,
                        query)
        return state

    def decay(self, arm: dict[str, float]) -> None:
        arm["n"] *= self.discount
        arm["total"] *= self.discount

    def update(self, arm: dict[str, float], r: float, state: Any, model: str, query: Query) -> None:
        arm["n"] += 1
        arm["total"] += r

    @staticmethod
    def mean(arm: dict[str, float]) -> float:
        return arm["total"] / arm["n"] if arm["n"] > 0 else 0.0
