"""Clipper's default policy: one linked model; its output, or the app's default output."""

from __future__ import annotations

from typing import Any, ClassVar

from clipper_core.hookspecs import hookimpl
from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.policies.combine import first_output

__all__ = ["DefaultPolicy"]


class DefaultPolicy(SelectionPolicy):
    """Query the single linked model (``DefaultOutputSelectionPolicy`` in Clipper)."""

    name: ClassVar[str] = "default"
    max_models: ClassVar[int | None] = 1

    def select(self, state: Any, query: Query, models: list[str]) -> list[str]:
        return models[:1]

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        return first_output(self.app, predictions)


@hookimpl
def clipper_register_policies() -> list[type[SelectionPolicy]]:
    return [DefaultPolicy]
