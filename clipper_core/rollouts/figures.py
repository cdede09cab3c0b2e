"""A model version's figures over one rollout step, as the query frontends count them and the controller judges
them: every frontend publishes its counts of the current step (``step_id``) in its load report, and the
controller adds the reports up (:meth:`StepFigures.add`).

The counts, per version (the candidate's, and the baseline's for comparison):

``queries``
    queries routed to the version (in shadow mode, for the candidate: the mirrored inputs it answered, failed or
    lost, ``serving.shadow``);
``errors``
    of those, the ones the model failed (the whole batch, or that input);
``defaults``
    the ones with no output in time (the SLO passed, no replica);
``latency``
    bucket counts (``metrics.LATENCY_BUCKETS``, one more beyond the last) of the seconds from the query's arrival
    to the version's output, for the outputs that arrived (a shadow candidate's: its batch's round trip);
``slow``
    of those outputs, the ones later than the rollout's ``max_p99_ms`` (counted exactly, not by bucket: the
    guard trips when more than 1% are);
``agree`` / ``disagree``
    shadow mode, the candidate: outputs equal (numbers within the tolerance) or not to the current version's;
``dropped``
    shadow mode, the candidate: mirrored inputs not taken because the mirror was full or the candidate had no
    replica (shadow work is dropped first);
``reward_sum`` / ``reward_n``
    the rewards of the feedback on the version's answers.

In a load report (whose figures are flat JSON numbers) they are :meth:`StepFigures.flat`: ``rollout.id`` (the
rollout's salt: a new rollout of the same version counts afresh), ``rollout.step_id``, ``rollout.<count>`` and
``rollout.latency.<i>``, beside the autoscaler's figures of the version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clipper_core.metrics import LATENCY_BUCKETS

__all__ = ["COUNTS", "FLAT_PREFIX", "StepFigures"]

COUNTS = ("queries", "errors", "defaults", "slow", "agree", "disagree", "dropped", "reward_n")
"""The integer counts of :class:`StepFigures` (besides ``latency`` and ``reward_sum``)."""
FLAT_PREFIX = "rollout."


@dataclass
class StepFigures:
    queries: int = 0
    errors: int = 0
    defaults: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    slow: int = 0
    agree: int = 0
    disagree: int = 0
    dropped: int = 0
    reward_sum: float = 0.0
    reward_n: int = 0

    @classmethod
    def total(cls, reports: Iterable[Mapping[str, Any]]) -> StepFigures:
        """The sum of several frontends' counts (their ``to_dict`` forms); malformed entries count as zero."""
        figures = cls()
        for report in reports:
            figures.add(report)
        return figures

    def add(self, report: Mapping[str, Any]) -> None:
        for key in COUNTS:
            value = report.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, key, getattr(self, key) + value)
        reward = report.get("reward_sum")
        if isinstance(reward, (int, float)) and not isinstance(reward, bool):
            self.reward_sum += float(reward)
        latency = report.get("latency")
        if isinstance(latency, list) and len(latency) == len(self.latency):
            self.latency = [a + (b if isinstance(b, int) else 0) for a, b in zip(self.latency, latency, strict=True)]

    def flat(self, rollout_id: int, step_id: int) -> dict[str, float]:
        """The counts as a load report carries them (see the module)."""
        flat = {f"{FLAT_PREFIX}{key}": float(getattr(self, key)) for key in COUNTS}
        flat[f"{FLAT_PREFIX}id"] = float(rollout_id)
        flat[f"{FLAT_PREFIX}step_id"] = float(step_id)
        flat[f"{FLAT_PREFIX}reward_sum"] = self.reward_sum
        for i, n in enumerate(self.latency):
            flat[f"{FLAT_PREFIX}latency.{i}"] = float(n)
        return flat

    def add_flat(self, figures: Mapping[str, Any], rollout_id: int, step_id: int) -> bool:
        """Add one frontend's counts from its load report's figures of the version, if they are of the rollout
        ``rollout_id`` (its salt) and its step ``step_id``; whether they were."""
        if figures.get(f"{FLAT_PREFIX}step_id") != step_id or figures.get(f"{FLAT_PREFIX}id") != rollout_id:
            return False
        report: dict[str, Any] = {key: int(figures.get(f"{FLAT_PREFIX}{key}") or 0) for key in COUNTS}
        report["reward_sum"] = float(figures.get(f"{FLAT_PREFIX}reward_sum") or 0.0)
        report["latency"] = [int(figures.get(f"{FLAT_PREFIX}latency.{i}") or 0) for i in range(len(self.latency))]
        self.add(report)
        return True

    # -- what the guards read ---------------------------------------------------------------------------
    @property
    def error_rate(self) -> float:
        return self.errors / self.queries if self.queries else 0.0

    @property
    def default_rate(self) -> float:
        return self.defaults / self.queries if self.queries else 0.0

    @property
    def answered(self) -> int:
        return sum(self.latency)

    @property
    def slow_rate(self) -> float:
        return self.slow / self.answered if self.answered else 0.0

    @property
    def p99_ms(self) -> float | None:
        """The 99th percentile latency in ms, as the upper bound of its bucket (10 s beyond the last); None
        without any output."""
        total = sum(self.latency)
        if not total:
            return None
        target, running = 0.99 * total, 0
        for bound, n in zip(LATENCY_BUCKETS, self.latency, strict=False):
            running += n
            if running >= target:
                return bound * 1000.0
        return LATENCY_BUCKETS[-1] * 1000.0

    @property
    def agreement(self) -> float | None:
        compared = self.agree + self.disagree
        return self.agree / compared if compared else None

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.reward_n if self.reward_n else None

    def to_dict(self) -> dict[str, Any]:
        return {"queries": self.queries, "errors": self.errors, "defaults": self.defaults,
                "latency": list(self.latency), "slow": self.slow, "agree": self.agree, "disagree": self.disagree,
                "dropped": self.dropped, "reward_sum": self.reward_sum, "reward_n": self.reward_n}

    def summary(self) -> dict[str, Any]:
        """What a person reads (``get_rollout``, ``clipper rollout status``): the counts and the rates."""
        return {"queries": self.queries, "errors": self.errors, "defaults": self.defaults,
                "error_rate": round(self.error_rate, 6), "default_rate": round(self.default_rate, 6),
                "p99_ms": self.p99_ms, "slow": self.slow, "agreement": self.agreement,
                "compared": self.agree + self.disagree,
                "dropped": self.dropped, "mean_reward": self.mean_reward, "feedback": self.reward_n}
