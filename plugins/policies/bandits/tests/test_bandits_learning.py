"""Bandits learn on simulated streams (seeded, fast; see bandit_streams.py). The state goes through
``dumps_state``/``loads_state`` after every feedback, as it does through the state store."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import numpy as np
import pytest
from bandit_streams import (
    ACCURACY,
    APP,
    CONFIGS,
    DEGRADED,
    DISCOUNT,
    GROUP_A,
    GROUP_B,
    MODELS,
    Stream,
    make,
    per_user,
    share,
    switch_delay,
)
from clipper_policy_bandits import UCB1, Exp3, LinUCB, reward

from clipper_core.inputs import InputType
from clipper_core.interfaces import Query
from clipper_core.plugins import PluginRegistry
from clipper_core.state import Application

NAMES = list(CONFIGS)


def query(x: Any = (0.5, 0.5), uid: int = 0, query_id: int = 0) -> Query:
    return Query("app", uid, np.array(x, dtype=np.float64), query_id)


def test_the_bandits_are_registered_through_the_entry_point() -> None:
    assert set(NAMES) <= set(PluginRegistry.create().policies.names())


@pytest.mark.parametrize("name", NAMES)
def test_each_bandit_settles_on_the_best_model(name: str) -> None:
    picks = Stream(make(name, seed=1), random.Random(2)).run(ACCURACY, 5000)
    best = share(picks[-1000:], "m-good")
    assert best >= 0.8, f"{name}: best model picked {best:.0%} of the last 1000 of 5000"


@pytest.mark.parametrize("name", NAMES)
def test_each_bandit_switches_when_the_best_model_degrades(name: str) -> None:
    stream = Stream(make(name, seed=3, discount=DISCOUNT[name]), random.Random(4))
    stream.run(ACCURACY, 2000)
    after = stream.run(DEGRADED, 1500)  # m-good drops from 0.9 to 0.2: m-ok (0.7) is now the best
    delay = switch_delay(after, "m-ok")
    assert delay is not None and delay <= 400, f"{name} took {delay} queries to switch"
    assert share(after[-500:], "m-ok") >= 0.7


@pytest.mark.parametrize("name", NAMES)
def test_per_user_state_serves_each_group_its_best_model(name: str) -> None:
    group_a, group_b = per_user(name)  # group A is best served by m-good, group B by m-bad
    assert share(group_a, "m-good") >= 0.8, GROUP_A
    assert share(group_b, "m-bad") >= 0.8, GROUP_B


@pytest.mark.parametrize("name", NAMES)
def test_a_model_linked_later_is_found_and_an_unlinked_one_is_no_longer_asked(name: str) -> None:
    policy, rng = make(name, seed=7), random.Random(8)
    stream = Stream(policy, rng)
    stream.run(ACCURACY, 500)
    state, models = stream.state, [*MODELS, "m-new"]
    picks = []
    for i in range(3000):
        q = query((rng.random(), rng.random()), query_id=1000 + i)
        chosen = policy.select(state, q, models)[0]
        label = rng.randint(0, 1)
        right = rng.random() < (1.0 if chosen == "m-new" else ACCURACY[chosen])
        state = policy.loads_state(policy.dumps_state(policy.observe(state, q, label, {chosen: label if right
                                                                                        else 1 - label})))
        picks.append(chosen)
    assert share(picks[-1000:], "m-new") >= 0.7
    assert all(policy.select(state, query(), ["m-ok", "m-bad"])[0] != "m-good" for _ in range(50))


def test_linucb_learns_which_model_serves_which_context() -> None:
    policy = LinUCB(APP, {"alpha": 0.5, "seed": 7})
    rng = np.random.default_rng(8)
    state = policy.initial_state(["left", "right"])
    correct = []
    for i in range(3000):
        x = rng.uniform(-1, 1, size=2)
        best = "left" if x[0] < 0 else "right"
        q = query(x, query_id=i)
        chosen = policy.select(state, q, ["left", "right"])[0]
        state = policy.loads_state(policy.dumps_state(policy.observe(state, q, 1, {chosen: int(chosen == best)})))
        correct.append(chosen == best)
    assert sum(correct[-500:]) / 500 >= 0.85


def test_linucb_reads_the_configured_slice_of_the_input() -> None:
    policy = LinUCB(APP, {"features": [2, 3], "seed": 1})
    rng = np.random.default_rng(9)
    state = policy.initial_state(["left", "right"])
    correct = []
    for i in range(2000):
        x = rng.uniform(-1, 1, size=4)  # only x[2] decides; the other features are noise
        best = "left" if x[2] < 0 else "right"
        q = query(x, query_id=i)
        chosen = policy.select(state, q, ["left", "right"])[0]
        state = policy.loads_state(policy.dumps_state(policy.observe(state, q, 1, {chosen: int(chosen == best)})))
        correct.append(chosen == best)
    assert sum(correct[-500:]) / 500 >= 0.85
    assert len(json.loads(policy.dumps_state(state))["arms"]["left"]["b"]) == 2  # x[2] and the bias


@pytest.mark.parametrize("name", NAMES)
def test_regression_rewards_pick_the_model_with_the_smallest_error(name: str) -> None:
    policy = make(name, seed=11, reward="abs_error", reward_scale=1.0)
    rng = random.Random(12)
    noise = {"m-good": 0.1, "m-ok": 1.0, "m-bad": 3.0}  # each model's error spread around the true value
    state: Any = policy.initial_state(MODELS)
    picks = []
    for i in range(3000):
        truth = rng.uniform(-10, 10)
        q = query((rng.random(), rng.random()), query_id=i)
        chosen = policy.select(state, q, MODELS)[0]
        predictions = {chosen: truth + rng.gauss(0, noise[chosen])}
        state = policy.loads_state(policy.dumps_state(policy.observe(state, q, truth, predictions)))
        picks.append(chosen)
    assert share(picks[-1000:], "m-good") >= 0.8


def test_exp3_after_a_requery_learns_from_every_model_without_importance_weights() -> None:
    """When nothing was remembered for the query, the router asks every linked model: full information."""
    policy = Exp3(APP, {"gamma": 0.3})
    state = policy.initial_state(MODELS)
    state = policy.observe(state, query(), 1, {"m-good": "1", "m-ok": "0", "m-bad": "1"})
    logw = {m: arm["logw"] for m, arm in state["arms"].items()}
    assert logw == {"m-good": 0.0, "m-ok": pytest.approx(-0.1), "m-bad": 0.0}  # γ·r/K, the largest kept at 0
    one = policy.observe(policy.initial_state(MODELS), query(), 1, {"m-ok": "1"})  # bandit feedback: r / p
    assert one["arms"]["m-ok"]["logw"] == 0.0 and one["arms"]["m-good"]["logw"] == pytest.approx(-0.3)


def test_ucb1_tries_untried_models_first() -> None:
    policy = UCB1(APP, {"seed": 9})
    stream = Stream(policy, random.Random(10))
    stream.run(ACCURACY, 200)
    assert policy.select(stream.state, query(), [*MODELS, "m-new"]) == ["m-new"]


def test_a_state_written_by_another_policy_is_not_reused() -> None:
    """``clipper set-policy`` changes the policy; the stored per-user state of the old one must not crash it."""
    exp3_state = make("exp3", seed=1).dumps_state(Stream(make("exp3", seed=1), random.Random(1)).state)
    for name in NAMES:
        if name != "exp3":
            policy = make(name, seed=1)
            state = policy.loads_state(exp3_state)
            assert state == {"policy": name, "arms": {}}
            assert policy.select(state, query(), MODELS)[0] in MODELS
    assert make("ucb1", seed=1).loads_state(b'{"y_hat": "-1"}') == {"policy": "ucb1", "arms": {}}


@pytest.mark.parametrize(("name", "config", "message"), [
    ("exp3", {"gama": 0.1}, r"policy 'exp3' has no config key\(s\) \['gama'\]; it reads \[.*'gamma'"),
    ("exp3", {"gamma": 0}, r"config 'gamma' must be in \(0, 1\], got 0"),
    ("ucb1", {"c": "big"}, r"config 'c' must be a number, got 'big'"),
    ("thompson", {"reward": "hinge"}, r"'reward' must be one of \['match', 'abs_error', 'squared_error'\]"),
    ("epsilon-greedy", {"discount": 1.5}, r"config 'discount' must be in \(0, 1\]"),
    ("linucb", {"features": [1]}, r"'features' must be \[start, stop\]"),
])
def test_bad_configs_are_rejected_with_what_is_allowed(name: str, config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PluginRegistry.create().policies.get(name)(APP, config)


def test_linucb_needs_a_numeric_input() -> None:
    with pytest.raises(ValueError, match="linucb' needs a numeric input type"):
        LinUCB(Application("words", InputType.STRINGS, "x", 100_000), {})


def test_rewards() -> None:
    assert reward("match", "cat", "cat") == 1.0 and reward("match", "cat", "dog") == 0.0
    assert reward("match", "1", 1) == reward("match", 0.8, 1) == 1.0 and reward("match", "0", 1) == 0.0
    assert reward("abs_error", 2.0, 2.0) == 1.0 > reward("abs_error", "2.5", 3) > reward("abs_error", 2.0, 9.0)
    assert reward("squared_error", 1.0, 3.0, scale=4.0) == pytest.approx(math.exp(-1))
    assert reward("abs_error", "cat", 3) == 0.0


def test_linucb_state_round_trips_exactly_and_stays_small() -> None:
    policy = LinUCB(APP, {"seed": 1})
    stream = Stream(policy, random.Random(3))
    stream.run(ACCURACY, 300)
    state = stream.state
    data = policy.dumps_state(state)
    again = policy.loads_state(data)
    for model in MODELS:
        a_inv = again["arms"][model]["A_inv"]
        assert np.array_equal(a_inv, a_inv.T) and np.allclose(a_inv, state["arms"][model]["A_inv"], atol=1e-12)
        assert np.array_equal(again["arms"][model]["theta"], state["arms"][model]["theta"])
    assert policy.dumps_state(again) == data
    assert len(json.loads(data)["arms"]["m-good"]["A_inv"]) == 6  # the upper triangle of a 3×3 matrix
