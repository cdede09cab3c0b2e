"""Regression ensembles: the (weighted) mean of the outputs that arrived."""

from __future__ import annotations

from typing import Any, ClassVar

from clipper_core.interfaces import Query
from clipper_core.state import Application
from clipper_policy_ensemble.base import Ensemble
from clipper_policy_ensemble.weights import fixed_weights

__all__ = ["Mean"]


class Mean(Ensemble):
    """The mean of the numeric outputs that arrived, weighted by ``weights`` ({model: w ≥ 0}, default 1 each);
    outputs that are not numbers are left out. Config ``weights``."""

    name: ClassVar[str] = "mean"
    config_keys: ClassVar[tuple[str, ...]] = ("weights",)

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.fixed = fixed_weights(self.name, self.config)

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        return {m: self.fixed.get(m, 1.0) for m in models}

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        return self.weighted_mean(state, predictions)
