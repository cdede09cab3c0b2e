"""ε-greedy: mostly the model with the best mean reward so far, sometimes a random one."""

from __future__ import annotations

from typing import Any, ClassVar

from clipper_core.interfaces import Query
from clipper_core.policies.config import number
from clipper_core.state import Application
from clipper_policy_bandits.base import Bandit

__all__ = ["EpsilonGreedy"]


class EpsilonGreedy(Bandit):
    """Untried models first; then with probability ε (``epsilon``, 0.1) a random model, else the best mean
    reward (ties go to the earliest-linked model)."""

    name: ClassVar[str] = "epsilon-greedy"
    config_keys: ClassVar[tuple[str, ...]] = (*Bandit.config_keys, "epsilon")

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.epsilon = number(self.name, self.config, "epsilon", 0.1, low=0, high=1)

    def choose(self, arms: dict[str, Any], query: Query, models: list[str]) -> str:
        for model in models:
            if arms[model]["n"] == 0:
                return model
        if self.rng.random() < self.epsilon:
            return self.rng.choice(models)
        return max(models, key=lambda m: self.mean(arms[m]))
