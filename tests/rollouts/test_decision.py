"""The rollout controller's decision on a fake clock: guards roll back at once with the guard named, steps advance
only after their time and queries, the last step promotes (canary) or passes (shadow), a pause holds, and the
sticky split keeps users on their version as the share grows."""

from __future__ import annotations

import pytest

from clipper_core.errors import InvalidInput
from clipper_core.metrics import LATENCY_BUCKETS
from clipper_core.rollouts.decision import apply, decide
from clipper_core.rollouts.figures import StepFigures
from clipper_core.rollouts.record import Rollout
from clipper_core.rollouts.settings import RolloutSettings
from clipper_core.rollouts.split import BASIS_POINTS, point, to_basis_points

T0 = 1_000_000.0


def _rollout(**settings: object) -> Rollout:
    return Rollout("m", "2", "1", RolloutSettings.from_dict({"step_seconds": 10, "min_queries_per_step": 20,
                                                             **settings}),
                   step_started_at=T0, started_at=T0)


def _figures(queries: int = 0, errors: int = 0, defaults: int = 0, latency_s: float = 0.005, **kw: int) -> StepFigures:
    latency = [0] * (len(LATENCY_BUCKETS) + 1)
    answered = queries - errors - defaults
    latency[next(i for i, b in enumerate(LATENCY_BUCKETS) if b >= latency_s)] = answered
    return StepFigures(queries=queries, errors=errors, defaults=defaults, latency=latency, **kw)


def test_a_failing_candidate_is_rolled_back_as_soon_as_the_step_has_enough_queries() -> None:
    rollout = _rollout()
    assert decide(rollout, _figures(queries=10, errors=2), T0 + 1).action == "hold"  # too few to judge
    verdict = decide(rollout, _figures(queries=50, errors=10), T0 + 1)
    assert verdict.action == "rollback"
    assert "max_error_rate" in verdict.reason and "10 of 50" in verdict.reason and "step 1 (5%)" in verdict.reason
    assert apply(rollout, verdict, _figures(queries=50, errors=10), T0 + 1)
    assert rollout.state == "rolled_back" and rollout.share == 0.0 and rollout.ended_at == T0 + 1
    assert rollout.history[-1]["figures"]["error_rate"] == 0.2
    assert decide(rollout, _figures(queries=500), T0 + 100).action == "hold"  # ended: nothing more


def test_steps_advance_after_their_time_and_queries_then_the_canary_is_promoted() -> None:
    rollout = _rollout(steps=[10, 50, 100])
    good = _figures(queries=40)
    hold = decide(rollout, good, T0 + 5)
    assert hold.action == "hold" and not apply(rollout, hold, good, T0 + 5)  # half the step's time: no write
    assert decide(rollout, _figures(queries=5), T0 + 11).reason.endswith("waiting for queries (5 of 20)")
    now = T0 + 11
    for share in (0.5, 1.0):
        verdict = decide(rollout, good, now)
        assert verdict.action == "advance", verdict
        step_id = rollout.step_id
        apply(rollout, verdict, good, now)
        assert rollout.share == share and rollout.step_id == step_id + 1 and rollout.step_started_at == now
        assert decide(rollout, good, now + 5).action == "hold"  # a new step waits its time again
        now += 11
    verdict = decide(rollout, good, now)
    assert verdict.action == "promote" and "2 promoted" in verdict.reason
    apply(rollout, verdict, good, now)
    assert rollout.state == "promoted" and rollout.view()["weights"] == {"2": 1.0, "1": 0.0}


def test_every_guard_names_itself() -> None:
    assert "max_default_rate" in decide(_rollout(), _figures(queries=40, defaults=4), T0).reason
    slow = _figures(queries=40, latency_s=0.2, slow=2)  # 2 of 40 outputs over the limit: more than 1%
    verdict = decide(_rollout(max_p99_ms=150), slow, T0)
    assert verdict.action == "rollback" and "max_p99_ms: 2 of 40 outputs took longer than 150 ms" in verdict.reason
    assert decide(_rollout(max_p99_ms=150), _figures(queries=40, latency_s=0.2), T0).action == "hold"  # none over
    shadow = _rollout(mode="shadow", min_agreement=0.9)
    assert "min_agreement" in decide(shadow, _figures(queries=40, agree=30, disagree=10), T0).reason
    rewarded = _rollout(min_feedback_reward=0.8, min_feedback=5)
    assert decide(rewarded, _figures(queries=40, reward_n=4), T0).action == "hold"  # too little feedback
    verdict = decide(rewarded, StepFigures(queries=40, reward_sum=2.0, reward_n=5), T0)
    assert verdict.action == "rollback" and "min_feedback_reward: mean reward 0.400" in verdict.reason
    assert decide(rewarded, _figures(queries=40, reward_n=0), T0 + 11).reason.endswith("waiting for feedback (0 of 5)")


def test_a_shadow_rollout_passes_and_a_paused_one_holds_but_still_rolls_back() -> None:
    shadow = _rollout(mode="shadow")
    assert shadow.settings.steps == (100.0,) and shadow.view()["weights"] == {"2": 0.0, "1": 1.0}
    verdict = decide(shadow, _figures(queries=40, agree=40), T0 + 11)
    assert verdict.action == "pass"
    apply(shadow, verdict, _figures(queries=40), T0 + 11)
    assert shadow.state == "passed"
    paused = _rollout()
    paused.state = "paused"
    assert decide(paused, _figures(queries=40), T0 + 100).reason == "paused at step 1 of 4 (5%)"
    assert decide(paused, _figures(queries=40, errors=5), T0 + 100).action == "rollback"


def test_the_record_round_trips_through_its_dict() -> None:
    rollout = _rollout(steps=[20, 100], max_p99_ms=80)
    rollout.note("start", T0, "started")
    again = Rollout.from_dict(rollout.to_dict())
    assert again == rollout
    with pytest.raises(InvalidInput, match="malformed"):
        Rollout.from_dict({"model": "m"})


@pytest.mark.parametrize(("settings", "message"), [
    ({"mode": "blue-green"}, "'mode' is 'blue-green'; expected one of canary, shadow"),
    ({"steps": [50, 20]}, "expected increasing percentages"),
    ({"steps": [0, 100]}, "'steps' is 0; expected a number above 0"),
    ({"steps": []}, "expected a non-empty list"),
    ({"steps": [5, 120]}, "at most 100"),
    ({"max_error_rate": 2}, "'max_error_rate' is 2"),
    ({"min_queries_per_step": 0}, "'min_queries_per_step' is 0; expected 1 to"),
    ({"reward": "precision"}, "'reward' is 'precision'"),
    ({"min_agreement": 0.9}, "'min_agreement' is a shadow rollout's guard"),
    ({"max_p99_ms": 0}, "'max_p99_ms' is 0"),
    ({"steps": [0.001, 100]}, "steps of at least 0.01%"),
    ({"mode": "shadow", "min_feedback_reward": 0.5}, "'min_feedback_reward' cannot guard a shadow rollout"),
    ({"colour": "red"}, "the rollout has the unknown setting(s) 'colour'"),
])
def test_bad_settings_are_refused_with_what_was_expected(settings: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        RolloutSettings.from_dict(settings)
    assert message in str(caught.value)


def test_the_split_is_sticky_per_user_and_spreads_anonymous_queries() -> None:
    salt = 12345
    users = range(1, 20_001)
    on_candidate = {share: {u for u in users if point(salt, u, 0) < to_basis_points(share)} for share in
                    (0.05, 0.25, 0.5, 1.0)}
    assert on_candidate[0.05] <= on_candidate[0.25] <= on_candidate[0.5] <= on_candidate[1.0] == set(users)
    assert abs(len(on_candidate[0.25]) / len(users) - 0.25) < 0.02
    assert all(point(salt, 7, q) == point(salt, 7, 0) for q in range(100))  # a user's queries go one way
    anonymous = [point(salt, 0, q) < BASIS_POINTS // 2 for q in range(10_000)]
    assert abs(sum(anonymous) / len(anonymous) - 0.5) < 0.03
    assert [point(1, u, 0) < 5000 for u in range(1, 200)] != [point(2, u, 0) < 5000 for u in range(1, 200)]
