"""What the query path does for a model under a rollout (docs/rollouts.md): the :class:`Split` the snapshot makes
of each active rollout record, the per-version :class:`VersionCounters` (the step's, which the load report
publishes for the controller, and the totals, which ``/metrics`` exports), and the shadow comparison
(:func:`agrees`; the mirroring itself is ``serving.shadow``).

Nothing here runs for a model without an active rollout: the query path checks ``snapshot.splits`` (an empty
dict) once per request.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from clipper_core.metrics import LATENCY_BUCKETS, FastHistogram
from clipper_core.rollouts.figures import StepFigures
from clipper_core.rollouts.record import Rollout
from clipper_core.rollouts.split import BASIS_POINTS, point, to_basis_points
from clipper_core.serving.app_runtime import as_json_value

__all__ = ["Split", "VersionCounters", "agrees"]


@dataclass(frozen=True)
class Split:
    """An active rollout as the query path applies it to the model's queries that name no version."""

    model: str
    candidate: str
    baseline: str
    mirror: bool
    """Shadow mode: the current version answers; the share is mirrored to the candidate."""
    points: int
    """The candidate's share in basis points (``rollouts.split``)."""
    salt: int
    step_id: int
    tolerance: float
    reward: str
    rewarded: bool
    """The rollout guards the feedback reward: the versions' answers are remembered for the feedback on them."""
    slow_s: float
    """Outputs later than this count as slow (``max_p99_ms``; infinite without that guard)."""

    @classmethod
    def of(cls, rollout: Rollout) -> Split:
        s = rollout.settings
        slow = s.max_p99_ms / 1000.0 if s.max_p99_ms is not None else math.inf
        return cls(rollout.model, rollout.candidate, rollout.baseline, s.mode == "shadow",
                   to_basis_points(rollout.share), rollout.salt, rollout.step_id, s.agreement_tolerance, s.reward,
                   s.min_feedback_reward is not None, slow)

    def takes(self, uid: int, query_id: int) -> bool:
        """Whether this query goes to (or, mirroring, is mirrored to) the candidate."""
        return self.points >= BASIS_POINTS or point(self.salt, uid, query_id) < self.points


class VersionCounters:
    """A version's rollout counts: those of the current step of the current rollout (``rollout_id``, its salt,
    and ``step_id``; published for the controller) and the totals since this frontend started counting the
    version (``/metrics``)."""

    __slots__ = ("latency", "rollout_id", "slow_s", "step", "step_id", "total")

    def __init__(self, rollout_id: int, step_id: int, slow_s: float = math.inf) -> None:
        self.rollout_id, self.step_id, self.slow_s = rollout_id, step_id, slow_s
        self.step = StepFigures()
        self.total = StepFigures()
        self.latency = FastHistogram()
        """The totals' latency histogram (``/metrics``; its buckets are ``total.latency``'s)."""

    def new_step(self, rollout_id: int, step_id: int, slow_s: float = math.inf) -> None:
        """Count for this step of this rollout (from zero when either changed)."""
        self.slow_s = slow_s
        if (rollout_id, step_id) != (self.rollout_id, self.step_id):
            self.rollout_id, self.step_id, self.step = rollout_id, step_id, StepFigures()

    def answered(self, latency_s: float, n: int = 1) -> None:
        """``n`` outputs, each ``latency_s`` late (a shadow candidate counts a batch at once)."""
        if n <= 0:
            return
        index = bisect_left(LATENCY_BUCKETS, latency_s)
        slow = n if latency_s > self.slow_s else 0
        for counts in (self.step, self.total):
            counts.queries += n
            counts.latency[index] += n
            counts.slow += slow
        self.latency.observe_many(latency_s, n)

    def failed(self, n: int = 1) -> None:
        for counts in (self.step, self.total):
            counts.queries += n
            counts.errors += n

    def missed(self, n: int = 1) -> None:
        """No output in time."""
        for counts in (self.step, self.total):
            counts.queries += n
            counts.defaults += n

    def dropped(self, n: int = 1) -> None:
        """Mirrored inputs not taken (shadow work is dropped first)."""
        for counts in (self.step, self.total):
            counts.dropped += n

    def compared(self, agree: int, disagree: int) -> None:
        """Shadow outputs equal (numbers within the tolerance) or not to the current version's."""
        for counts in (self.step, self.total):
            counts.agree += agree
            counts.disagree += disagree

    def rewarded(self, reward: float) -> None:
        for counts in (self.step, self.total):
            counts.reward_sum += reward
            counts.reward_n += 1

    def report(self) -> dict[str, float]:
        """The step's counts for the load report (``StepFigures.flat``)."""
        return self.step.flat(self.rollout_id, self.step_id)


def agrees(a: Any, b: Any, tolerance: float) -> bool:
    """Whether two outputs agree: equal, or numbers (as Clipper reads strings: JSON) within ``tolerance``
    (absolute, or relative to the larger), element by element for lists."""
    if a == b:
        return True
    return _close(as_json_value(a), as_json_value(b), tolerance)


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tolerance) for k in a)
    return bool(a == b)
