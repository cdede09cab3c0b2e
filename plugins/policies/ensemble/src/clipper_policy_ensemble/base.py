"""What every ensemble here shares: ask every linked model, combine what arrived by the SLO deadline."""

from __future__ import annotations

from typing import Any, ClassVar

from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.policies.config import check_keys
from clipper_core.policies.rewards import number_or_none
from clipper_core.state import Application

__all__ = ["Ensemble", "vote_key"]


def vote_key(value: Any) -> str:
    """Votes compare outputs as text, numbers numerically (``"1"`` and ``1.0`` are one vote)."""
    number = number_or_none(value)
    return repr(number) if number is not None else str(value)


class Ensemble(SelectionPolicy):
    """Selects every linked model. ``combine`` sees the outputs that arrived in time: a model slower than the SLO
    is left out, and the router's answer lists the contributors under ``models``."""

    max_models: ClassVar[int | None] = None
    config_keys: ClassVar[tuple[str, ...]] = ()
    """The config keys this policy reads; any other key is rejected."""

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        super().__init__(app, config)
        check_keys(self.name, self.config, self.config_keys)

    def select(self, state: Any, query: Query, models: list[str]) -> list[str]:
        return list(models)

    def weights(self, state: Any, models: list[str]) -> dict[str, float]:
        return dict.fromkeys(models, 1.0)

    def tally(self, state: Any, predictions: dict[str, Any]) -> list[tuple[str, float, Any]]:
        """(vote key, weight, first output with that key), heaviest first; ties keep the linked order."""
        weights = self.weights(state, list(predictions))
        votes: dict[str, list[Any]] = {}
        for model, output in predictions.items():
            entry = votes.setdefault(vote_key(output), [0.0, output])
            entry[0] += weights[model]
        ranked = sorted(votes.items(), key=lambda kv: -kv[1][0])  # stable: ties stay in arrival order
        return [(key, weight, output) for key, (weight, output) in ranked]

    def weighted_mean(self, state: Any, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        """The weighted mean of the numeric outputs; the default output when none is a number."""
        weights = self.weights(state, list(predictions))
        total = value = 0.0
        ignored = []
        for model, output in predictions.items():
            number = number_or_none(output)
            if number is None:
                ignored.append(model)
                continue
            total += weights[model]
            value += weights[model] * number
        if len(ignored) == len(predictions):
            return self.app.default_output, True, f"no model answered with a number ({', '.join(ignored)})"
        if total <= 0:  # every weight that arrived is 0: fall back to the plain mean
            numbers = [n for n in map(number_or_none, predictions.values()) if n is not None]
            return sum(numbers) / len(numbers), False, ""
        return value / total, False, ""
