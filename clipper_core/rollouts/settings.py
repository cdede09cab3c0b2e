"""A rollout's settings: what ``/admin/start_rollout``, ``ClipperConnection.start_rollout`` and ``clipper rollout
start`` accept, validated once here (every problem an ``InvalidInput`` naming the setting, what was wrong and what
is expected), and kept in the rollout's record as a plain dict.

* ``mode``: ``canary`` (the candidate answers a share of the queries, growing step by step, then becomes the
  current version) or ``shadow`` (a share of the queries is mirrored to the candidate; the current version answers
  every query; the rollout ends ``passed`` when the candidate held every guard over every step);
* ``steps``: the shares in percent, increasing, each in (0, 100];
* ``step_seconds`` and ``min_queries_per_step``: a step is passed once it lasted that long **and** the candidate
  answered that many queries in it, every guard holding;
* the guards, on the candidate's figures in the step (None: not checked), checked as soon as the step has
  ``min_queries_per_step`` queries, so a bad candidate is rolled back at once:
  ``max_error_rate`` (its failed predictions / its queries), ``max_p99_ms`` (its query latency), ``max_default_rate``
  (its queries that got no output in time), ``min_feedback_reward`` (the mean reward of the feedback on its answers,
  ``reward``: ``match``, ``abs_error`` or ``squared_error``, as the learning policies compute it; checked once the
  step has ``min_feedback`` of it) and, in shadow mode, ``min_agreement`` (its outputs equal to the current
  version's, numbers within ``agreement_tolerance``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clipper_core.errors import InvalidInput
from clipper_core.settings_checks import check_integer, check_number, known_settings

__all__ = ["MODES", "REWARD_KINDS", "RolloutSettings"]

MODES = ("canary", "shadow")
REWARD_KINDS = ("match", "abs_error", "squared_error")
"""The rewards of ``clipper_core.policies.rewards`` (the learning policies')."""
_MAX_STEPS = 20
_MAX_STEP_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class RolloutSettings:
    mode: str = "canary"
    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    step_seconds: float = 60.0
    min_queries_per_step: int = 100
    max_error_rate: float | None = 0.01
    max_p99_ms: float | None = None
    max_default_rate: float | None = 0.05
    min_feedback_reward: float | None = None
    min_feedback: int = 20
    reward: str = "match"
    min_agreement: float | None = None
    agreement_tolerance: float = 1e-6

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutSettings:
        """Validate ``data`` (omitted keys take the defaults; the shadow mode's default steps are ``[100]``)."""
        values = known_settings("the rollout", data, (f.name for f in dataclasses.fields(cls)))
        if values.get("mode") == "shadow" and "steps" not in values:
            values["steps"] = [100.0]
        if "steps" in values:
            steps = values["steps"]
            if not isinstance(steps, (list, tuple)) or not steps:
                raise InvalidInput(f"'steps' is {steps!r}; expected a non-empty list of percentages, e.g. "
                                   "[5, 25, 50, 100]")
            values["steps"] = tuple(steps)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"'mode' is {self.mode!r}; expected one of {', '.join(MODES)}")
        if len(self.steps) > _MAX_STEPS:
            raise InvalidInput(f"'steps' has {len(self.steps)} steps; expected at most {_MAX_STEPS}")
        previous = 0.0
        for step in self.steps:
            value = check_number("steps", step, 0.0, 100.0, open_low=True)
            if value < 0.01:
                raise InvalidInput(f"'steps' has {value:g}%; expected steps of at least 0.01% (one in 10 000)")
            if value <= previous:
                raise InvalidInput(f"'steps' is {list(self.steps)}; expected increasing percentages")
            previous = value
        check_number("step_seconds", self.step_seconds, 0.0, _MAX_STEP_S)
        check_integer("min_queries_per_step", self.min_queries_per_step, 1, 10**9)
        check_integer("min_feedback", self.min_feedback, 1, 10**9)
        for key in ("max_error_rate", "max_default_rate", "min_feedback_reward", "min_agreement"):
            value = getattr(self, key)
            if value is not None:
                check_number(key, value, 0.0, 1.0)
        if self.max_p99_ms is not None:
            check_number("max_p99_ms", self.max_p99_ms, 0.0, 3_600_000.0, open_low=True)
        if self.reward not in REWARD_KINDS:
            raise InvalidInput(f"'reward' is {self.reward!r}; expected one of {', '.join(REWARD_KINDS)}")
        if self.min_feedback_reward is not None and self.mode == "shadow":
            raise InvalidInput("'min_feedback_reward' cannot guard a shadow rollout: feedback is about the answers "
                               "users got, which come from the current version; expected mode 'canary'")
        if self.min_agreement is not None and self.mode != "shadow":
            raise InvalidInput("'min_agreement' is a shadow rollout's guard; expected mode 'shadow' or no "
                               "'min_agreement'")
        check_number("agreement_tolerance", self.agreement_tolerance, 0.0, 1e9)

    def share(self, step: int) -> float:
        """The candidate's share of the queries (0..1) at ``step``."""
        return self.steps[step] / 100.0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["steps"] = list(self.steps)
        return data
