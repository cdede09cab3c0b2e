"""A confidence rule: answer only when enough models agree."""

from __future__ import annotations

from typing import Any, ClassVar

from clipper_core.interfaces import Query
from clipper_core.state import Application
from clipper_policy_ensemble.base import Ensemble

__all__ = ["KAgree"]


class KAgree(Ensemble):
    """The most common output when at least ``k`` (2) of the answers agree on it; otherwise the app's default
    output, with an explanation that says how the answers split. Disagreement, or too few models answering by
    the SLO deadline, is a reason not to answer. Config ``k``."""

    name: ClassVar[str] = "k-agree"
    config_keys: ClassVar[tuple[str, ...]] = ("k",)

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        k = self.config.get("k", 2)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"policy 'k-agree': config 'k' must be an integer ≥ 1, got {k!r}")
        self.k = k

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        votes = self.tally(state, predictions)
        _, agreeing, output = votes[0]
        if agreeing >= self.k:
            return output, False, ""
        split = ", ".join(f"{value!r} ×{int(weight)}" for _, weight, value in votes)
        return (self.app.default_output, True,
                f"only {int(agreeing)} of {len(predictions)} answers agree ({split}); k-agree needs {self.k}")
