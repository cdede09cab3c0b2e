"""What every bandit here shares: one model per query, per-user state, rewards from feedback, forgetting."""

from __future__ import annotations

import abc
import random
from typing import Any, ClassVar

import orjson

from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.policies.combine import first_output
from clipper_core.policies.config import check_keys, number
from clipper_core.policies.rewards import REWARDS, reward
from clipper_core.state import Application

__all__ = ["Bandit"]


class Bandit(SelectionPolicy):
    """Selects one linked model per query and learns from ``observe`` which one earns the most reward.

    The state of one (app, uid) is ``{"policy": name, "arms": {model: statistics}}``; a model linked later gets
    fresh statistics the first time it is seen, and a state written by another policy (the app's policy was
    changed) is replaced by a fresh one. Config shared by all bandits:

    * ``reward``: ``match`` (classification, default), ``abs_error`` or ``squared_error`` (regression);
    * ``reward_scale`` (1.0): regression rewards are exp(-error / scale);
    * ``discount`` (1.0): 0 < d ≤ 1; every feedback multiplies the statistics by d first, so old evidence
      fades (memory ≈ 1 / (1 - d) feedbacks) and the policy follows a model whose quality changes;
    * ``seed``: seeds the policy's random choices (reproducible runs).
    """

    max_models: ClassVar[int | None] = None
    needs_state: ClassVar[bool] = True
    config_keys: ClassVar[tuple[str, ...]] = ("reward", "reward_scale", "discount", "seed")
    """The config keys this policy reads; any other key is rejected."""

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        check_keys(self.name, self.config, self.config_keys)
        kind = self.config.get("reward", "match")
        if kind not in REWARDS:
            raise ValueError(f"policy '{self.name}': config 'reward' must be one of {list(REWARDS)}, got {kind!r}")
        self.reward_kind: str = kind
        self.reward_scale = number(self.name, self.config, "reward_scale", 1.0, low=0, low_open=True)
        self.discount = number(self.name, self.config, "discount", 1.0, low=0, high=1, low_open=True)
        self.rng = random.Random(self.config.get("seed"))

    # -- state ----------------------------------------------------------------------------------------
    def initial_state(self, models: list[str]) -> Any:
        return {"policy": self.name, "arms": {model: self.new_arm() for model in models}}

    def dumps_state(self, state: Any) -> bytes:
        return orjson.dumps(state)

    def describe_state(self, state: Any, models: list[str]) -> dict[str, dict[str, float]]:
        """Per model: ``pulls`` (feedback it learned from, discounted) and ``mean_reward``."""
        arms = self.arms(state, models)
        return {m: {"pulls": float(arms[m]["n"]), "mean_reward": self.mean(arms[m])} for m in models}

    def loads_state(self, data: bytes) -> Any:
        state = orjson.loads(data)
        if not isinstance(state, dict) or state.get("policy") != self.name or not isinstance(state.get("arms"), dict):
            return self.initial_state([])  # written by the app's previous policy: learning starts afresh
        return state

    def arms(self, state: Any, models: list[str]) -> dict[str, Any]:
        """Per-model statistics, created for models linked after the state was."""
        arms: dict[str, Any] = state["arms"]
        for model in models:
            if model not in arms:
                arms[model] = self.new_arm()
        return arms

    def new_arm(self) -> dict[str, Any]:
        return {"n": 0.0, "total": 0.0}

    # -- the query path ---------------------------------------------------------------------------------
    def select(self, state: Any, query: Query, models: list[str]) -> list[str]:
        if not models:
            return []
        return [self.choose(self.arms(state, models), query, models)]

    @abc.abstractmethod
    def choose(self, arms: dict[str, Any], query: Query, models: list[str]) -> str:
        """The one model (of ``models``) to ask; ``arms`` holds statistics for each of them."""

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        return first_output(self.app, predictions)

    # -- feedback ---------------------------------------------------------------------------------------
    def observe(self, state: Any, query: Query, feedback: Any, predictions: dict[str, Any]) -> Any:
        """``predictions`` usually holds the one model that answered the query; after a re-query (nothing
        remembered for that query) it holds every linked model, and each of them learns from its reward."""
        self.arms(state, list(predictions))
        rewards = {m: reward(self.reward_kind, out, feedback, self.reward_scale) for m, out in predictions.items()}
        self.learn(state, query, rewards)
        return state

    def learn(self, state: Any, query: Query, rewards: dict[str, float]) -> None:
        arms = state["arms"]
        if self.discount < 1:
            for arm in arms.values():
                self.decay(arm)
        for model, r in rewards.items():
            self.update(arms[model], r, query)

    def decay(self, arm: dict[str, Any]) -> None:
        arm["n"] *= self.discount
        arm["total"] *= self.discount

    def update(self, arm: dict[str, Any], r: float, query: Query) -> None:
        arm["n"] += 1.0
        arm["total"] += r

    @staticmethod
    def mean(arm: dict[str, Any]) -> float:
        return float(arm["total"] / arm["n"]) if arm["n"] > 0 else 0.0
