"""Classification ensembles: majority and weighted vote over the outputs that arrived."""

from __future__ import annotations

from typing import Any, ClassVar

from clipper_core.interfaces import Query
from clipper_core.state import Application
from clipper_policy_ensemble.base import Ensemble
from clipper_policy_ensemble.weights import fixed_weights

__all__ = ["MajorityVote", "WeightedVote"]


class MajorityVote(Ensemble):
    """The most common output; ties go to the output of the earliest-linked model among them."""

    name: ClassVar[str] = "majority-vote"

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        return self.tally(state, predictions)[0][2], False, ""


class WeightedVote(MajorityVote):
    """The output with the most weight (``weights``: {model: w ≥ 0}, default 1 each)."""

    name: ClassVar[str] = "weighted-vote"
    config_keys: ClassVar[tuple[str, ...]] = ("weights",)

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        self.fixed = fixed_weights(self.name, self.config)

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        return {m: self.fixed.get(m, 1.0) for m in models}
