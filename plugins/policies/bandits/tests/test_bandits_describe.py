"""``describe_state``: what a bandit has learned, per model, as figures a dashboard shows. After a stream where one
model is right most often, that model stands out in every bandit's figures."""

from __future__ import annotations

import random

import pytest
from bandit_streams import ACCURACY, CONFIGS, MODELS, Stream, make

from clipper_core.default_plugins.default_policy import DefaultPolicy
from clipper_core.inputs import InputType
from clipper_core.state import Application


@pytest.mark.parametrize("name", list(CONFIGS))
def test_each_bandit_describes_every_model_and_the_best_stands_out(name: str) -> None:
    stream = Stream(make(name, seed=5), random.Random(6))
    fresh = stream.policy.describe_state(stream.state, MODELS)
    assert set(fresh) == set(MODELS)
    stream.run(ACCURACY, 2000)
    learned = stream.policy.describe_state(stream.state, MODELS)
    assert set(learned) == set(MODELS)
    assert all(isinstance(v, float) for figures in learned.values() for v in figures.values())
    if name == "exp3":
        assert sum(f["probability"] for f in learned.values()) == pytest.approx(1.0)
        assert max(learned, key=lambda m: learned[m]["probability"]) == "m-good"
        assert [f["probability"] for f in fresh.values()] == pytest.approx([1 / len(MODELS)] * len(MODELS))
    else:
        assert max(learned, key=lambda m: learned[m]["pulls"]) == "m-good", learned
        assert sum(f["pulls"] for f in learned.values()) == pytest.approx(2000)
        assert all(f["pulls"] == 0 for f in fresh.values())
    if name not in ("exp3", "linucb"):
        assert learned["m-good"]["mean_reward"] > learned["m-bad"]["mean_reward"]


def test_a_model_linked_after_the_state_was_made_is_described_from_scratch() -> None:
    policy = make("exp3", seed=1)
    state = policy.initial_state(["a"])
    described = policy.describe_state(state, ["a", "b"])
    assert described == {m: {"probability": pytest.approx(0.5), "log_weight": 0.0} for m in ("a", "b")}


def test_a_policy_that_learns_nothing_describes_nothing() -> None:
    policy = DefaultPolicy(Application("app", InputType.DOUBLES, "0", 1000))
    assert policy.describe_state(None, ["m"]) == {}
