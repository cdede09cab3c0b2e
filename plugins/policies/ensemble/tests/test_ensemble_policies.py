"""Ensembles on simulated streams (seeded, fast): accuracy beyond the best single model when errors are
independent, exp4 learning per-user weights from feedback (state round-tripped through dumps/loads), k-agree
refusing to answer on disagreement or when too few answers arrive, and the config checks."""

from __future__ import annotations

import random
import statistics
from typing import Any

import numpy as np
import pytest
from clipper_policy_ensemble import Exp4, KAgree, MajorityVote, Mean, WeightedVote

from clipper_core.inputs import InputType
from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Application

APP = Application("app", InputType.DOUBLES, "-1", 100_000)
INDEPENDENT = [0.75, 0.7, 0.7, 0.7, 0.7]
"""Five classifiers that err independently; the best is right 75% of the time."""


def query(i: int = 0, uid: int = 0) -> Query:
    return Query("app", uid, np.array([0.0]), i)


def classifiers(rng: random.Random, truth: int, accuracies: list[float]) -> dict[str, str]:
    return {f"m{i}": str(truth if rng.random() < acc else 1 - truth) for i, acc in enumerate(accuracies)}


def accuracy_on_stream(policy: SelectionPolicy, accuracies: list[float], n: int, seed: int,
                       uid: int = 0, state: Any = None) -> tuple[float, float, Any]:
    """(ensemble accuracy, best single model's accuracy, state) over ``n`` queries with feedback after each."""
    rng = random.Random(seed)
    models = [f"m{i}" for i in range(len(accuracies))]
    state = policy.initial_state(models) if state is None and policy.needs_state else state
    right, single = 0, dict.fromkeys(models, 0)
    for i in range(n):
        truth = rng.randint(0, 1)
        predictions = classifiers(rng, truth, accuracies)
        assert policy.select(state, query(i, uid), models) == models
        output, is_default, _ = policy.combine(state, query(i, uid), predictions)
        right += int(not is_default and int(output) == truth)
        for model, out in predictions.items():
            single[model] += int(out) == truth
        if policy.needs_state:
            state = policy.loads_state(policy.dumps_state(policy.observe(state, query(i, uid), truth, predictions)))
    return right / n, max(single.values()) / n, state


def test_the_ensembles_are_registered_through_the_entry_point() -> None:
    names = PluginRegistry.create().policies.names()
    assert {"exp4", "mean", "majority-vote", "weighted-vote", "k-agree"} <= set(names)


@pytest.mark.parametrize("policy", [MajorityVote(APP, {}), Exp4(APP, {})], ids=["majority-vote", "exp4"])
def test_the_ensemble_beats_the_best_single_model_when_errors_are_independent(policy: SelectionPolicy) -> None:
    ensemble, best, _ = accuracy_on_stream(policy, INDEPENDENT, 5000, seed=1)
    assert ensemble >= best + 0.04, (ensemble, best)


def test_exp4_learns_to_trust_the_good_model() -> None:
    policy = Exp4(APP, {})
    accuracies = [0.9, 0.55, 0.5]
    majority, _, _ = accuracy_on_stream(MajorityVote(APP, {}), accuracies, 3000, seed=2)
    learned, best, state = accuracy_on_stream(policy, accuracies, 3000, seed=2)
    weights = policy.weights(state, ["m0", "m1", "m2"])
    assert weights["m0"] == 1.0 > weights["m1"] + weights["m2"]  # m0 outvotes the two others together
    assert learned >= best - 0.02 and learned >= majority + 0.1, (learned, best, majority)


def test_exp4_learns_per_user_weights() -> None:
    policy = Exp4(APP, {})
    _, _, state_a = accuracy_on_stream(policy, [0.9, 0.5, 0.5], 500, seed=3, uid=1)
    _, _, state_b = accuracy_on_stream(policy, [0.5, 0.5, 0.9], 500, seed=4, uid=2)
    models = ["m0", "m1", "m2"]
    assert max(models, key=policy.weights(state_a, models).get) == "m0"
    assert max(models, key=policy.weights(state_b, models).get) == "m2"


def test_exp4_regression_weights_the_accurate_model() -> None:
    policy = Exp4(APP, {"eta": 0.5, "reward": "abs_error", "reward_scale": 2.0})  # a sharper eta/(1-d): 25
    rng = random.Random(5)
    noise = {"m0": 0.2, "m1": 2.0, "m2": 4.0}
    state = policy.initial_state(list(noise))
    errors: dict[str, list[float]] = {"exp4": [], "mean": [], **{m: [] for m in noise}}
    for i in range(2000):
        truth = rng.uniform(-10, 10)
        predictions = {m: truth + rng.gauss(0, s) for m, s in noise.items()}
        output, is_default, _ = policy.combine(state, query(i), predictions)
        assert not is_default
        errors["exp4"].append(abs(output - truth))
        errors["mean"].append(abs(Mean(APP, {}).combine(None, query(i), predictions)[0] - truth))
        for model, out in predictions.items():
            errors[model].append(abs(out - truth))
        state = policy.loads_state(policy.dumps_state(policy.observe(state, query(i), truth, predictions)))
    mae = {k: statistics.fmean(v[-1000:]) for k, v in errors.items()}
    assert mae["exp4"] <= 1.1 * mae["m0"] and mae["exp4"] < mae["mean"] / 4, mae


def test_exp4_keeps_a_stragglers_weight_and_starts_a_new_model_at_the_mean() -> None:
    policy = Exp4(APP, {"eta": 1.0, "discount": 1.0})
    state = policy.initial_state(["a", "b", "c"])
    state = policy.observe(state, query(), 1, {"a": "1", "b": "0"})  # c did not answer in time
    assert state["logw"] == {"a": 0.0, "b": -1.0, "c": 0.0}
    assert policy.weights(state, ["a", "b", "c", "d"])["d"] == pytest.approx(np.exp(-1 / 3))
    output, _, _ = policy.combine(state, query(), {"a": "1", "b": "0"})
    assert output == "1"


def test_k_agree_answers_only_when_enough_answers_agree() -> None:
    policy = KAgree(APP, {"k": 2})
    assert policy.combine(None, query(), {"a": "cat", "b": "cat", "c": "dog"}) == ("cat", False, "")
    assert policy.combine(None, query(), {"a": "1", "b": 1.0, "c": "0"})[:2] == ("1", False)
    output, is_default, why = policy.combine(None, query(), {"a": "cat", "b": "dog", "c": "bird"})
    assert (output, is_default) == ("-1", True)
    assert why == "only 1 of 3 answers agree ('cat' ×1, 'dog' ×1, 'bird' ×1); k-agree needs 2"
    strict = KAgree(APP, {"k": 3})  # one of three models missed the deadline: two agreeing answers are too few
    assert strict.combine(None, query(), {"a": "cat", "b": "cat"})[1:] == (
        True, "only 2 of 2 answers agree ('cat' ×2); k-agree needs 3")


def test_k_agree_falls_back_more_often_but_is_right_more_often_when_it_answers() -> None:
    policy = KAgree(APP, {"k": 4})
    rng = random.Random(6)
    answered = right = 0
    for i in range(5000):
        truth = rng.randint(0, 1)
        output, is_default, _ = policy.combine(None, query(i), classifiers(rng, truth, INDEPENDENT))
        if not is_default:
            answered += 1
            right += int(output) == truth
    assert 0.3 < answered / 5000 < 0.8 and right / answered >= 0.9  # vs 0.75 for the best single model


def test_votes_and_means() -> None:
    assert MajorityVote(APP, {}).combine(None, query(), {"a": "0", "b": "1"})[0] == "0"  # a tie: earliest linked
    assert MajorityVote(APP, {}).combine(None, query(), {"a": "0", "b": "1", "c": 1.0})[0] == "1"
    heavy = WeightedVote(APP, {"weights": {"a": 3}})
    assert heavy.combine(None, query(), {"a": "cat", "b": "dog", "c": "dog"})[0] == "cat"
    assert Mean(APP, {}).combine(None, query(), {"a": "1.0", "b": 3})[0] == 2.0
    assert Mean(APP, {"weights": {"a": 3}}).combine(None, query(), {"a": 1.0, "b": 5.0})[0] == 2.0
    assert Mean(APP, {"weights": {"a": 0}}).combine(None, query(), {"a": 1.0})[0] == 1.0
    assert Mean(APP, {}).combine(None, query(), {"a": "cat", "b": 4})[0] == 4.0  # not a number: left out
    assert Mean(APP, {}).combine(None, query(), {"a": "cat"}) == ("-1", True, "no model answered with a number (a)")


def test_a_state_written_by_another_policy_is_not_reused() -> None:
    policy = Exp4(APP, {})
    assert policy.loads_state(b'{"policy": "exp3", "arms": {}}') == {"policy": "exp4", "logw": {}}
    assert policy.combine(policy.loads_state(b"[1, 2]"), query(), {"a": "1", "b": "1"})[0] == "1"


@pytest.mark.parametrize(("cls", "config", "message"), [
    (KAgree, {"k": 0}, r"config 'k' must be an integer ≥ 1, got 0"),
    (KAgree, {"quorum": 2}, r"policy 'k-agree' has no config key\(s\) \['quorum'\]; it reads \['k'\]"),
    (Mean, {"weights": {"a": -1}}, r"the weight of model 'a' must be a number ≥ 0, got -1"),
    (WeightedVote, {"weights": [1, 2]}, r"config 'weights' must map model names to numbers"),
    (Exp4, {"eta": 0}, r"config 'eta' must be in \(0, None\]"),
    (Exp4, {"reward": "hinge"}, r"'reward' must be one of \['match', 'abs_error', 'squared_error'\]"),
])
def test_bad_configs_are_rejected_with_what_is_allowed(cls: type[SelectionPolicy], config: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(APP, config)
