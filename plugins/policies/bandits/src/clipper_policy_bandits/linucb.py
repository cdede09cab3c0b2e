"""LinUCB (Li et al. 2010): a contextual bandit; the query's feature vector decides which model to ask."""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import numpy as np
import orjson

from clipper_core.interfaces import Query
from clipper_core.policies.config import number
from clipper_core.state import Application
from clipper_policy_bandits.base import Bandit

__all__ = ["LinUCB"]

Vector = np.ndarray[Any, np.dtype[np.float64]]


@functools.lru_cache(maxsize=16)
def _upper(d: int) -> tuple[Any, Any]:
    """The indices of the upper triangle of a d×d matrix, row by row (the stored half of A⁻¹)."""
    return np.triu_indices(d)


class LinUCB(Bandit):
    """Per model a ridge regression of reward on the context x (the numeric query input, or the slice
    ``features: [start, stop]`` of it, plus a bias term): A = I + Σ x·xᵀ, b = Σ r·x, θ = A⁻¹b. Untried models
    first, then argmax θᵀx + α·sqrt(xᵀA⁻¹x) (``alpha``, 1.0). ``discount`` fades old evidence: A ← I + d·(A − I),
    b ← d·b.

    Each model keeps A⁻¹ (updated by Sherman–Morrison, so neither a query nor a feedback inverts a matrix unless
    ``discount`` < 1), b, θ and its feedback count n: numpy arrays in memory; the stored state holds n, b and
    the upper triangle of the symmetric A⁻¹ (row by row), about (d² + 3d) / 2 numbers per model. A context of
    another length (the input or ``features`` changed) restarts that model's statistics.
    """

    name: ClassVar[str] = "linucb"
    config_keys: ClassVar[tuple[str, ...]] = (*Bandit.config_keys, "alpha", "features")

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        if not app.input_type.is_numeric:
            raise ValueError(f"policy 'linucb' needs a numeric input type for its context; application "
                             f"'{app.name}' takes {app.input_type.value}")
        self.alpha = number(self.name, self.config, "alpha", 1.0, low=0)
        window = self.config.get("features")
        self.window: slice | None = None
        if window is not None:
            if (not isinstance(window, list) or len(window) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in window)):
                raise ValueError(f"policy 'linucb': config 'features' must be [start, stop] (two integers, a "
                                 f"slice of the input vector), got {window!r}")
            self.window = slice(window[0], window[1])

    def context(self, query: Query) -> Vector:
        x = np.asarray(query.input, dtype=np.float64).ravel()
        if self.window is not None:
            x = x[self.window]
        return np.append(x, 1.0)

    # -- state: numpy in memory, lists in the store -------------------------------------------------------
    def new_arm(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def _reset(arm: dict[str, Any], d: int) -> dict[str, Any]:
        arm.update(n=0.0, A_inv=np.eye(d), b=np.zeros(d), theta=np.zeros(d))
        return arm

    def _ready(self, arm: dict[str, Any], d: int) -> dict[str, Any]:
        b = arm.get("b")
        return arm if b is not None and len(b) == d else self._reset(arm, d)

    def dumps_state(self, state: Any) -> bytes:
        arms = {}
        for model, arm in state["arms"].items():
            if "b" in arm:
                upper = arm["A_inv"][_upper(len(arm["b"]))]
                arms[model] = {"n": arm["n"], "b": arm["b"], "A_inv": upper}
            else:
                arms[model] = {}
        return orjson.dumps({"policy": self.name, "arms": arms}, option=orjson.OPT_SERIALIZE_NUMPY)

    def loads_state(self, data: bytes) -> Any:
        state = super().loads_state(data)
        for arm in state["arms"].values():
            if "b" in arm:
                arm["b"] = b = np.asarray(arm["b"], dtype=np.float64)
                a_inv = np.empty((len(b), len(b)))
                rows, cols = _upper(len(b))
                a_inv[rows, cols] = a_inv[cols, rows] = arm["A_inv"]
                arm["A_inv"] = a_inv
                arm["theta"] = a_inv @ b
        return state

    def describe_state(self, state: Any, models: list[str]) -> dict[str, dict[str, float]]:
        """Per model: ``pulls`` and the learned coefficients ``theta[i]`` of its linear reward model (the last
        is the intercept)."""
        out: dict[str, dict[str, float]] = {}
        for model in models:
            arm = state["arms"].get(model, {})
            figures = {"pulls": float(arm.get("n", 0.0))}
            figures.update({f"theta[{i}]": float(v) for i, v in enumerate(arm.get("theta", ()))})
            out[model] = figures
        return out

    # -- select and learn ---------------------------------------------------------------------------------
    def choose(self, arms: dict[str, Any], query: Query, models: list[str]) -> str:
        x = self.context(query)
        d = len(x)
        alpha = self.alpha
        best, best_score = models[0], -math.inf
        for model in models:
            arm = self._ready(arms[model], d)
            if arm["n"] == 0:
                return model  # untried models first (an optimistic start for each)
            score = float(arm["theta"] @ x) + alpha * math.sqrt(max(float(x @ arm["A_inv"] @ x), 0.0))
            if score > best_score:
                best, best_score = model, score
        return best

    def learn(self, state: Any, query: Query, rewards: dict[str, float]) -> None:
        x = self.context(query)
        d = len(x)
        arms: dict[str, Any] = state["arms"]
        if self.discount < 1:  # fade every model's evidence: A ← I + d·(A − I), b ← d·b
            eye, discount = np.eye(d), self.discount
            for arm in arms.values():
                if "b" in arm and len(arm["b"]) == d:
                    a = eye + discount * (np.linalg.inv(arm["A_inv"]) - eye)
                    arm["A_inv"] = a_inv = np.linalg.inv(a)
                    arm["b"] = b = discount * arm["b"]
                    arm["theta"] = a_inv @ b
                    arm["n"] *= discount
        for model, r in rewards.items():
            arm = self._ready(arms[model], d)
            a_inv_x = arm["A_inv"] @ x  # Sherman–Morrison: (A + x·xᵀ)⁻¹ without inverting
            arm["A_inv"] = arm["A_inv"] - np.outer(a_inv_x, a_inv_x) / (1.0 + float(x @ a_inv_x))
            arm["b"] = arm["b"] + r * x
            arm["theta"] = arm["A_inv"] @ arm["b"]
            arm["n"] += 1.0
