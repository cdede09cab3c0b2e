"""Thompson sampling: pick the model whose sampled mean reward is highest (Bernoulli and Gaussian rewards)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from clipper_core.interfaces import Query
from clipper_core.policies.config import number
from clipper_core.state import Application
from clipper_policy_bandits.base import Bandit

__all__ = ["ThompsonBernoulli", "ThompsonGaussian"]


class ThompsonBernoulli(Bandit):
    """Rewards in {0, 1} (``reward: match``): each model's success rate has a Beta(1 + successes, 1 + failures)
    posterior; sample one value per model and pick the largest. Fractional rewards count fractionally."""

    name: ClassVar[str] = "thompson"

    def choose(self, arms: dict[str, Any], query: Query, models: list[str]) -> str:
        beta = self.rng.betavariate
        best, best_sample = models[0], -1.0
        for model in models:
            arm = arms[model]
            sample = beta(1.0 + arm["total"], 1.0 + max(arm["n"] - arm["total"], 0.0))
            if sample > best_sample:
                best, best_sample = model, sample
        return best


class ThompsonGaussian(Bandit):
    """Real-valued rewards: each model's mean reward has a N((Σr + prior) / (n + 1), σ² / (n + 1)) posterior
    (one pseudo-observation at ``prior``, 0.5, so a new model looks promising); pick the largest sample.
    Config ``sigma`` (0.5), ``prior``."""

    name: ClassVar[str] = "thompson-gaussian"
    config_keys: ClassVar[tuple[str, ...]] = (*Bandit.config_keys, "sigma", "prior")

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.sigma = number(self.name, self.config, "sigma", 0.5, low=0, low_open=True)
        self.prior = number(self.name, self.config, "prior", 0.5)

    def choose(self, arms: dict[str, Any], query: Query, models: list[str]) -> str:
        gauss = self.rng.gauss
        best, best_sample = models[0], -math.inf
        for model in models:
            arm = arms[model]
            n = arm["n"] + 1.0
            sample = gauss((arm["total"] + self.prior) / n, self.sigma / math.sqrt(n))
            if sample > best_sample:
                best, best_sample = model, sample
        return best
