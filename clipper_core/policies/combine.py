"""Combine helpers that selection policies share (the built-in default policy and the bandit plugins)."""

from __future__ import annotations

from typing import Any

from clipper_core.state import Application

__all__ = ["NO_MODELS", "first_output"]

NO_MODELS = "No connected models found for query"
"""Clipper's default explanation when no linked model could answer."""


def first_output(app: Application, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
    """For policies that query one model: its output, or the app's default output with Clipper's explanation."""
    for output in predictions.values():
        return output, False, ""
    return app.default_output, True, NO_MODELS
