"""The rollout controller's decision, a plain function of (rollout, the candidate's step figures, clock):
:func:`decide` says what to do, :func:`apply` does it to the record. Tested with a fake clock.

* A guard is checked as soon as the step has ``min_queries_per_step`` queries (the feedback reward once it has
  ``min_feedback`` rewards), so a bad candidate is rolled back within its first step; the guard that tripped and
  its figures are the reason.
* A step is passed when it lasted ``step_seconds``, had ``min_queries_per_step`` queries (and ``min_feedback``
  rewards when the reward is guarded) and every guard holds: the next step starts (its figures from zero); after
  the last, a canary is promoted and a shadow rollout has passed.
* A paused rollout does not advance; its guards still roll it back.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipper_core.rollouts.figures import StepFigures
from clipper_core.rollouts.record import Rollout

__all__ = ["Verdict", "apply", "decide", "tripped_guard"]


@dataclass(frozen=True)
class Verdict:
    action: str
    """``hold``, ``advance``, ``promote`` (canary, after its last step), ``pass`` (shadow, after its last step)
    or ``rollback``."""
    reason: str


def tripped_guard(rollout: Rollout, f: StepFigures) -> str | None:
    """The first guard the candidate's figures break, said with the figures; None when all hold (or too few
    queries to judge)."""
    s = rollout.settings
    where = f"in step {rollout.step + 1} ({s.steps[rollout.step]:g}%)"
    if f.queries >= s.min_queries_per_step:
        if s.max_error_rate is not None and f.error_rate > s.max_error_rate:
            return (f"max_error_rate: {f.errors} of {f.queries} queries failed ({f.error_rate:.1%} > "
                    f"{s.max_error_rate:.1%}) {where}")
        if s.max_default_rate is not None and f.default_rate > s.max_default_rate:
            return (f"max_default_rate: {f.defaults} of {f.queries} queries got no output in time "
                    f"({f.default_rate:.1%} > {s.max_default_rate:.1%}) {where}")
        if s.max_p99_ms is not None and f.slow_rate > 0.01:
            return (f"max_p99_ms: {f.slow} of {f.answered} outputs took longer than {s.max_p99_ms:g} ms "
                    f"({f.slow_rate:.1%} > 1%: the p99 is above it) {where}")
        agreement = f.agreement
        if s.min_agreement is not None and agreement is not None and agreement < s.min_agreement:
            return (f"min_agreement: {f.agree} of {f.agree + f.disagree} outputs agree with the current version's "
                    f"({agreement:.1%} < {s.min_agreement:.1%}) {where}")
    reward = f.mean_reward
    if s.min_feedback_reward is not None and reward is not None and f.reward_n >= s.min_feedback \
            and reward < s.min_feedback_reward:
        return (f"min_feedback_reward: mean reward {reward:.3f} < {s.min_feedback_reward:g} over {f.reward_n} "
                f"feedback {where}")
    return None


def decide(rollout: Rollout, f: StepFigures, now: float) -> Verdict:
    """What to do now (``now``: wall-clock seconds, as ``step_started_at``)."""
    if not rollout.active:
        return Verdict("hold", rollout.reason)
    s = rollout.settings
    guard = tripped_guard(rollout, f)
    if guard is not None:
        return Verdict("rollback", f"rolled back: {guard}")
    step = f"step {rollout.step + 1} of {len(s.steps)} ({s.steps[rollout.step]:g}%)"
    if rollout.state == "paused":
        return Verdict("hold", f"paused at {step}")
    elapsed = now - rollout.step_started_at
    if elapsed < s.step_seconds:
        return Verdict("hold", f"{step}: {elapsed:.0f} s of {s.step_seconds:g} s, {f.queries} queries")
    if f.queries < s.min_queries_per_step:
        return Verdict("hold", f"{step}: waiting for queries ({f.queries} of {s.min_queries_per_step})")
    if s.min_feedback_reward is not None and f.reward_n < s.min_feedback:
        return Verdict("hold", f"{step}: waiting for feedback ({f.reward_n} of {s.min_feedback})")
    passed = f"{step} passed with {f.queries} queries"
    if not rollout.last_step:
        return Verdict("advance", f"{passed}; on to {s.steps[rollout.step + 1]:g}%")
    if s.mode == "canary":
        return Verdict("promote", f"{passed}; {rollout.candidate} promoted to the current version")
    return Verdict("pass", f"{passed}; the shadow rollout passed")


def apply(rollout: Rollout, verdict: Verdict, f: StepFigures, now: float) -> bool:
    """Change ``rollout`` as ``verdict`` says (a new step, or its end); whether it changed. The controller
    makes the version flip of a promotion itself (``set_model_version``), before it stores the record."""
    if verdict.action == "hold":
        rollout.reason = verdict.reason  # live only: a hold is not worth a store write (and a snapshot reload)
        return False
    summary = f.summary()
    if verdict.action == "advance":
        rollout.note("advance", now, verdict.reason, summary)
        rollout.step += 1
        rollout.step_id += 1
        rollout.step_started_at = now
        return True
    rollout.note(verdict.action, now, verdict.reason, summary)  # (with the share it ended at)
    rollout.state = {"promote": "promoted", "pass": "passed", "rollback": "rolled_back"}[verdict.action]
    rollout.ended_at = now
    return True
