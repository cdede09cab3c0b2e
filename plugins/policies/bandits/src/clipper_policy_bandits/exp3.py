"""Exp3 (Auer et al. 2002): exponential weights over the models, with γ-uniform exploration."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from clipper_core.interfaces import Query
from clipper_core.policies.config import number
from clipper_core.state import Application
from clipper_policy_bandits.base import Bandit

__all__ = ["Exp3"]


class Exp3(Bandit):
    """Pick model i with probability p_i = (1-γ)·w_i/Σw + γ/K. On reward r of the model that answered,
    w_i ← w_i·exp(γ·r / (p_i·K)) (r/p_i is an unbiased estimate of its mean reward); after a re-query, where
    every model answered, w_i ← w_i·exp(γ·r_i / K) for each. Weights are kept as logs, largest 0; ``discount``
    shrinks them towards uniform. Config ``gamma`` (0.1)."""

    name: ClassVar[str] = "exp3"
    config_keys: ClassVar[tuple[str, ...]] = (*Bandit.config_keys, "gamma")

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.gamma = number(self.name, self.config, "gamma", 0.1, low=0, high=1, low_open=True)

    def new_arm(self) -> dict[str, Any]:
        return {"logw": 0.0}

    def probabilities(self, arms: dict[str, Any], models: list[str]) -> list[float]:
        gamma = self.gamma
        logw = [arms[m]["logw"] for m in models]
        top = max(logw)
        weights = [math.exp(v - top) for v in logw]
        scale = (1 - gamma) / sum(weights)
        uniform = gamma / len(models)
        return [w * scale + uniform for w in weights]

    def describe_state(self, state: Any, models: list[str]) -> dict[str, dict[str, float]]:
        """Per model: ``probability`` of being selected next and its ``log_weight`` (largest 0)."""
        if not models:
            return {}
        arms = self.arms(state, models)
        chances = self.probabilities(arms, models)
        return {m: {"probability": p, "log_weight": float(arms[m]["logw"])} for m, p in zip(models, chances,
                                                                                             strict=True)}

    def choose(self, arms: dict[str, Any], query: Query, models: list[str]) -> str:
        return self.rng.choices(models, weights=self.probabilities(arms, models))[0]

    def learn(self, state: Any, query: Query, rewards: dict[str, float]) -> None:
        arms: dict[str, Any] = state["arms"]
        models = list(arms)
        k = len(models)
        if len(rewards) == 1:  # bandit feedback: importance-weight by the chance the model had of being picked
            probability = dict(zip(models, self.probabilities(arms, models), strict=True))
            gains = {m: r / probability[m] for m, r in rewards.items()}
        else:  # full information: every model's reward is known
            gains = dict(rewards)
        for model, arm in arms.items():
            arm["logw"] = arm["logw"] * self.discount + self.gamma * gains.get(model, 0.0) / k
        top = max(arm["logw"] for arm in arms.values())
        for arm in arms.values():
            arm["logw"] -= top
