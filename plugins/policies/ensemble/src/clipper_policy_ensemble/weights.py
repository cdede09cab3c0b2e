"""Fixed per-model weights from ``policy_config`` (``weights``: {model: w ≥ 0})."""

from __future__ import annotations

from typing import Any

__all__ = ["fixed_weights"]


def fixed_weights(policy: str, config: dict[str, Any]) -> dict[str, float]:
    raw = config.get("weights", {})
    if not isinstance(raw, dict):
        raise ValueError(f"policy '{policy}': config 'weights' must map model names to numbers, got {raw!r}")
    weights = {}
    for model, weight in raw.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"policy '{policy}': the weight of model '{model}' must be a number ≥ 0, got "
                             f"{weight!r}")
        weights[str(model)] = float(weight)
    return weights
