"""The bandits: exp3, epsilon-greedy, UCB1, Thompson sampling (Bernoulli, Gaussian) and LinUCB."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from clipper_core.interfaces import Query
from clipper_policy_bandits.base import Bandit

__all__ = ["UCB1", "EpsilonGreedy", "Exp3", "LinUCB", "ThompsonBernoulli", "ThompsonGaussian"]


class Exp3(Bandit):
    """Exp3: pick model i with probability p_i = (1-γ)·w_i/Σw + γ/K; on reward r for the picked model,
    w_i ← w_i·exp(γ·r / (p_i·K)). Weights are kept as logs. Config ``gamma`` (0.1)."""

    name: ClassVar[str] = "exp3"

    def new_arm(self) -> dict[str, float]:
        return {"logw": 0.0}

    def probabilities(self, arms: dict[str, Any], models: list[str]) -> list[float]:
        gamma = float(self.config.get("gamma", 0.1))
        top = max(arms[m]["logw"] for m in models)
        weights = [math.exp(arms[m]["logw"] - top) for m in models]
        total = sum(weights)
        return [(1 - gamma) * w / total + gamma / len(models) for w in weights]

    def choose(self, state: Any, query: Query, models: list[str]) -> str:
        arms = self.arms(state, models)
        return self.rng.choices(models, weights=self.probabilities(arms, models))[0]

    def decay(self, arm: dict[str, float]) -> None:
        arm["logw"] *= self.discount

    def update(self, arm: dict[str, float], r: float, state: Any, model: str, query: Query) -> None:
        gamma = float(self.config.get("gamma", 0.1))
        models = list(state["arms"])
        p = self.probabilities(state["arms"], models)[models.index(model)]
        arm["logw"] += gamma * r / (p * len(models))


class EpsilonGreedy(Bandit):
    """With probability ε (``epsilon``, 0.1) a random model, else the best mean reward so far."""

    name: ClassVar[str] = "epsilon-greedy"

    def choose(self, state: Any, query: Query, models: list[str]) -> str:
        arms = self.arms(state, models)
        untried = [m for m in models if arms[m]["n"] == 0]
        if untried:
            return untried[0]
        if self.rng.random() < float(self.config.get("epsilon", 0.1)):
            return self.rng.choice(models)
        return max(models, key=lambda m: self.mean(arms[m]))


class UCB1(Bandit):
    """The best upper confidence bound: mean + c·sqrt(2·ln N / n_i) (``c``, 1.0); untried models first."""

    name: ClassVar[str] = "ucb1"

    def choose(self, state: Any, query: Query, models: list[str]) -> str:
        arms = self.arms(state, models)
        untried = [m for m in models if arms[m]["n"] < 1]
        if untried:
            return untried[0]
        total = sum(arms[m]["n"] for m in models)
        c = float(self.config.get("c", 1.0))
        return max(models, key=lambda m: self.mean(arms[m]) + c * math.sqrt(2 * math.log(total) / arms[m]["n"]))


class ThompsonBernoulli(Bandit):
    """Thompson sampling with Beta(1 + successes, 1 + failures) posteriors (rewards in {0, 1})."""

    name: ClassVar[str] = "thompson"

    def choose(self, state: Any, query: Query, models: list[str]) -> str:
        arms = self.arms(state, models)
        return max(models, key=lambda m: self.rng.betavariate(1 + arms[m]["total"],
                                                              1 + arms[m]["n"] - arms[m]["total"]))


class ThompsonGaussian(Bandit):
    """Thompson sampling with a Gaussian posterior on each model's mean reward: N(mean, σ²/(n+1)) with
    ``sigma`` (0.5)."""

    name: ClassVar[str] = "thompson-gaussian"

    def choose(self, state: Any, query: Query, models: list[str]) -> str:
        arms = self.arms(state, models)
        sigma = float(self.config.get("sigma", 0.5))
        return max(models, key=lambda m: self.rng.gauss(self.mean(arms[m]), sigma / math.sqrt(arms[m]["n"] + 1)))


class LinUCB(Bandit):
    """Contextual: per model a ridge regression of reward on the query's feature vector x (the numeric input,
    or ``features``: [start, stop] of it, plus a bias term); pick argmax θᵀx + α·sqrt(xᵀA⁻¹x) (``alpha``, 1.0)."""

    name: ClassVar[str] = "linucb"

    def context(self, query: Query) -> np.ndarray[Any, Any]:
        x = np.asarray(query.input, dtype=np.float64).ravel()
        window = self.config.get("features")
        if window:
            x = x[int(window[0]):int(window[1])]
        return np.append(x, 1.0)

    def new_arm(self) -> dict[str, Any]:
        return {"A": None, "b": None}

    def _matrices(self, arm: dict[str, Any], d: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        if arm["A"] is None or len(arm["b"]) != d:
            return np.eye(d), np.zeros(d)
        return np.asarray(arm["A"]), np.asarray(arm["b"])

    def choose(self, state: Any, query: Query, models: list[str]) -> str:
        arms = self.arms(state, models)
        x = self.context(query)
        alpha = float(self.config.get("alpha", 1.0))
        best, best_score = models[0], -math.inf
        for m in models:
            a, b = self._matrices(arms[m], len(x))
            a_inv = np.linalg.inv(a)
            score = float(a_inv @ b @ x + alpha * math.sqrt(float(x @ a_inv @ x)))
            if score > best_score:
                best, best_score = m, score
        return best

    def decay(self, arm: dict[str, Any]) -> None:
        if arm["A"] is not None:
            d = len(arm["b"])
            arm["A"] = (np.eye(d) + self.discount * (np.asarray(arm["A"]) - np.eye(d))).tolist()
            arm["b"] = (self.discount * np.asarray(arm["b"])).tolist()

    def update(self, arm: dict[str, Any], r: float, state: Any, model: str, query: Query) -> None:
        x = self.context(query)
        a, b = self._matrices(arm, len(x))
        arm["A"] = (a + np.outer(x, x)).tolist()
        arm["b"] = (b + r * x).tolist()
