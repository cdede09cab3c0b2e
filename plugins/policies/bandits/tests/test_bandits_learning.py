"""Bandits learn on simulated streams (seeded, fast). The state goes through a JSON round trip after every
feedback, as it does through the state store."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from clipper_policy_bandits import UCB1, EpsilonGreedy, Exp3, LinUCB, ThompsonBernoulli, ThompsonGaussian

from clipper_core.inputs import InputType
from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.state import Application

MODELS = ["m-good", "m-ok", "m-bad"]
APP = Application("app", InputType.DOUBLES, "-1", 100_000)
POLICIES: dict[str, tuple[type[SelectionPolicy], dict[str, Any]]] = {
    "exp3": (Exp3, {"gamma": 0.07}),
    "epsilon-greedy": (EpsilonGreedy, {"epsilon": 0.1}),
    "ucb1": (UCB1, {"c": 0.5}),
    "thompson": (ThompsonBernoulli, {}),
    "thompson-gaussian": (ThompsonGaussian, {"sigma": 0.3}),
}


def run_stream(policy: SelectionPolicy, accuracy: dict[str, float], n: int, rng: random.Random,
               state: Any = None, uid: int = 0, picks: list[str] | None = None) -> tuple[Any, list[str]]:
    """Each query: the policy picks a model, the model is right with its accuracy, feedback says the truth."""
    state = policy.initial_state(MODELS) if state is None else state
    picks = [] if picks is None else picks
    for i in range(n):
        query = Query("app", uid, np.array([float(i)]), i)
        chosen = policy.select(state, query, MODELS)
        assert len(chosen) == 1
        label = 1.0
        output = label if rng.random() < accuracy[chosen[0]] else 0.0
        state = policy.loads_state(policy.dumps_state(policy.observe(state, query, label, {chosen[0]: output})))
        picks.append(chosen[0])
    return state, picks


@pytest.mark.parametrize("name", list(POLICIES))
def test_each_bandit_settles_on_the_best_model(name: str) -> None:
    cls, config = POLICIES[name]
    policy = cls(APP, {**config, "seed": 1})
    _, picks = run_stream(policy, {"m-good": 0.9, "m-ok": 0.7, "m-bad": 0.5}, 5000, random.Random(2))
    share = picks[-1000:].count("m-good") / 1000
    assert share >= 0.8, f"{name}: best model picked {share:.0%} of the last 1000"


@pytest.mark.parametrize("name", list(POLICIES))
def test_each_bandit_switches_when_the_best_model_degrades(name: str) -> None:
    cls, config = POLICIES[name]
    policy = cls(APP, {**config, "seed": 3, "discount": 0.99})
    rng = random.Random(4)
    state, picks = run_stream(policy, {"m-good": 0.9, "m-ok": 0.7, "m-bad": 0.5}, 2000, rng)
    state, picks = run_stream(policy, {"m-good": 0.2, "m-ok": 0.7, "m-bad": 0.5}, 1500, rng, state, picks=[])
    # within 1000 queries of the change, the new best model is the one mostly served
    switched = next(i for i in range(0, len(picks) - 200) if picks[i:i + 200].count("m-ok") >= 120)
    assert switched <= 1000, f"{name} took {switched} queries to switch"


@pytest.mark.parametrize("name", list(POLICIES))
def test_per_user_state_serves_each_group_its_best_model(name: str) -> None:
    cls, config = POLICIES[name]
    policy = cls(APP, {**config, "seed": 5})
    rng = random.Random(6)
    group_a = {"m-good": 0.9, "m-ok": 0.6, "m-bad": 0.5}
    group_b = {"m-good": 0.4, "m-ok": 0.6, "m-bad": 0.9}
    states: dict[int, Any] = {}
    picks: dict[int, list[str]] = {1: [], 2: []}
    for _ in range(30):  # interleaved, as users arrive
        for uid, accuracy in ((1, group_a), (2, group_b)):
            states[uid], _ = run_stream(policy, accuracy, 100, rng, states.get(uid), uid, picks[uid])
    assert picks[1][-1000:].count("m-good") >= 800
    assert picks[2][-1000:].count("m-bad") >= 800


def test_linucb_learns_which_model_serves_which_context() -> None:
    policy = LinUCB(APP, {"alpha": 0.5, "seed": 7})
    rng = np.random.default_rng(8)
    state = policy.initial_state(["left", "right"])
    correct = []
    for i in range(3000):
        x = rng.uniform(-1, 1, size=2)
        best = "left" if x[0] < 0 else "right"
        query = Query("app", 0, x, i)
        chosen = policy.select(state, query, ["left", "right"])[0]
        output = 1.0 if chosen == best else 0.0
        state = json.loads(json.dumps(policy.observe(state, query, 1.0, {chosen: output})))
        correct.append(chosen == best)
    assert sum(correct[-500:]) / 500 >= 0.85


def test_a_model_linked_later_gets_explored() -> None:
    policy = UCB1(APP, {"seed": 9})
    state, _ = run_stream(policy, {"m-good": 0.9, "m-ok": 0.7, "m-bad": 0.5}, 200, random.Random(10))
    newcomer = policy.select(state, Query("app", 0, np.array([0.0]), 0), [*MODELS, "m-new"])
    assert newcomer == ["m-new"]  # untried models are tried first


def test_regression_rewards() -> None:
    from clipper_policy_bandits.rewards import reward

    assert reward("match", "cat", "cat") == 1.0 and reward("match", "1", 1.0) == 1.0
    assert reward("abs_error", 2.0, 2.0) == 1.0 > reward("abs_error", 2.0, 3.0) > reward("abs_error", 2.0, 9.0)
