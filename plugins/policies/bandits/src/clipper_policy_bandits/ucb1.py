"""UCB1 (Auer et al. 2002): optimism in the face of uncertainty."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from clipper_core.interfaces import Query
from clipper_core.policies.config import number
from clipper_core.state import Application
from clipper_policy_bandits.base import Bandit

__all__ = ["UCB1"]


class UCB1(Bandit):
    """Untried models first; then the largest upper confidence bound mean_i + c·sqrt(2·ln N / n_i), N = Σ n_i
    (``c``, 1.0). With ``discount`` the counts fade, so a model not asked for a while is tried again
    (discounted UCB)."""

    name: ClassVar[str] = "ucb1"
    config_keys: ClassVar[tuple[str, ...]] = (*Bandit.config_keys, "c")

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.c = number(self.name, self.config, "c", 1.0, low=0)

    def choose(self, arms: dict[str, Any], query: Query, models: list[str]) -> str:
        for model in models:
            if arms[model]["n"] == 0:
                return model
        log_total = 2 * math.log(max(sum(arms[m]["n"] for m in models), 1.0))
        c = self.c
        best, best_score = models[0], -math.inf
        for model in models:
            arm = arms[model]
            score = arm["total"] / arm["n"] + c * math.sqrt(log_total / arm["n"])
            if score > best_score:
                best, best_score = model, score
        return best
