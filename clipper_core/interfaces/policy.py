"""SelectionPolicy: which linked models answer a query, how their outputs combine, what feedback teaches.

Lifecycle, in call order (the query path resolves the class once when an app is loaded; pluggy is never on the
request path)::

    policy = PolicyClass(app, config)           # once per app (and again when the app changes)
    state = policy.initial_state(models)        # per (app, uid), when nothing is stored yet
    chosen = policy.select(state, query, models)            # per query: subset of linked models
    output, is_default, why = policy.combine(state, query, predictions)   # when results are in or at the SLO
    state = policy.observe(state, query, feedback, predictions)           # per accepted feedback

A minimal policy plugin is two files::

    # acme_policy/__init__.py
    from clipper_core.interfaces import SelectionPolicy
    class FirstModel(SelectionPolicy):
        name = "first"
        def select(self, state, query, models): return models[:1]
        def combine(self, state, query, predictions):
            for p in predictions.values(): return p, False, ""
            return self.app.default_output, True, "No connected models found for query"

    # acme_policy/hooks.py
    from clipper_core import hookimpl
    @hookimpl
    def clipper_register_policies(): from acme_policy import FirstModel; return [FirstModel]

and ``[project.entry-points.clipper] acme = "acme_policy.hooks"`` in its pyproject.toml.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from clipper_core.state.records import Application

__all__ = ["Query", "SelectionPolicy"]


@dataclass(slots=True)
class Query:
    """What a policy sees of one query."""

    app: str
    uid: int
    input: Any
    query_id: int


class SelectionPolicy(abc.ABC):
    name: ClassVar[str]
    max_models: ClassVar[int | None] = 1
    """How many models an app using this policy may link; None = any number."""
    needs_state: ClassVar[bool] = False
    """False lets the query path skip loading/saving per-user state on the request path."""

    def __init__(self, app: Application, config: dict[str, Any] | None = None) -> None:
        self.app = app
        self.config = dict(config or {})

    def initial_state(self, models: list[str]) -> Any:
        return None

    @abc.abstractmethod
    def select(self, state: Any, query: Query, models: list[str]) -> list[str]:
        """Return the linked models (names) to query."""

    @abc.abstractmethod
    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        """``predictions`` maps model name to output for the models that answered in time.

        Return (output, is_default, default_explanation)."""

    def observe(self, state: Any, query: Query, feedback: Any, predictions: dict[str, Any]) -> Any:
        """Learn from feedback; return the new state (default: unchanged)."""
        return state

    def describe_state(self, state: Any, models: list[str]) -> dict[str, dict[str, float]]:
        """What ``state`` has learned, per model: named figures a person reads (a bandit's selection probability
        or pulls and mean reward). A dashboard calls it, never the request path; the default, nothing to
        show, has it show the state's JSON instead."""
        return {}

    def dumps_state(self, state: Any) -> bytes:
        import json

        return json.dumps(state).encode()

    def loads_state(self, data: bytes) -> Any:
        import json

        return json.loads(data)
