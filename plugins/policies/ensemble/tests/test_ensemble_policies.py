"""Ensembles: accuracy beyond the best single model when errors are independent, exp4 learning weights,
k-agree refusing to answer on disagreement, and (end to end) a straggler left out at the SLO."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from clipper_policy_ensemble import Exp4, KAgree, MajorityVote, Mean

from clipper_core.deployers import python as python_deployer
from clipper_core.inputs import InputType
from clipper_core.interfaces import Query
from clipper_core.state import Application
from clipper_core.testing import ServerThread, http_json

APP = Application("app", InputType.DOUBLES, "-1", 100_000)


def query(i: int = 0) -> Query:
    return Query("app", 0, np.array([0.0]), i)


def noisy_classifiers(rng: random.Random, truth: int, accuracies: list[float]) -> dict[str, str]:
    return {f"m{i}": str(truth if rng.random() < acc else 1 - truth) for i, acc in enumerate(accuracies)}


def test_majority_vote_beats_the_best_single_model_when_errors_are_independent() -> None:
    rng = random.Random(1)
    policy = MajorityVote(APP, {})
    accuracies = [0.75, 0.7, 0.7, 0.7, 0.7]
    ensemble_right, best_right = 0, 0
    for i in range(5000):
        truth = rng.randint(0, 1)
        predictions = noisy_classifiers(rng, truth, accuracies)
        output, is_default, _ = policy.combine(None, query(i), predictions)
        ensemble_right += int(output) == truth and not is_default
        best_right += int(predictions["m0"]) == truth
    assert ensemble_right >= best_right
    assert ensemble_right / 5000 >= 0.8


def test_exp4_learns_to_trust_the_good_models() -> None:
    rng = random.Random(2)
    policy = Exp4(APP, {"eta": 0.3})
    models = ["m0", "m1", "m2"]
    state = policy.initial_state(models)
    accuracies = [0.9, 0.55, 0.5]
    right = []
    for i in range(3000):
        truth = rng.randint(0, 1)
        predictions = noisy_classifiers(rng, truth, accuracies)
        output, _, _ = policy.combine(state, query(i), predictions)
        right.append(int(output) == truth)
        state = json.loads(json.dumps(policy.observe(state, query(i), float(truth), predictions)))
    weights = policy.weights(state, models)
    assert weights["m0"] > 10 * weights["m1"]
    assert sum(right[-1000:]) / 1000 >= 0.85  # close to the best model, far above an unweighted vote


def test_k_agree_answers_only_on_agreement() -> None:
    policy = KAgree(APP, {"k": 2})
    assert policy.combine(None, query(), {"a": "cat", "b": "cat", "c": "dog"}) == ("cat", False, "")
    output, is_default, why = policy.combine(None, query(), {"a": "cat", "b": "dog", "c": "bird"})
    assert (output, is_default) == ("-1", True) and "only 1 of 3 models agree" in why


def test_mean_with_weights() -> None:
    assert Mean(APP, {}).combine(None, query(), {"a": "1.0", "b": 3})[0] == 2.0
    assert Mean(APP, {"weights": {"a": 3}}).combine(None, query(), {"a": 1.0, "b": 5.0})[0] == 2.0


def fast_one(xs):  # type: ignore[no-untyped-def]
    return ["1.0" for _ in xs]


def fast_three(xs):  # type: ignore[no-untyped-def]
    return ["3.0" for _ in xs]


def very_slow(xs):  # type: ignore[no-untyped-def]
    import time

    time.sleep(1.0)
    return ["100.0" for _ in xs]


def test_an_ensemble_with_a_model_slower_than_the_slo_answers_in_time_with_the_others(
        clipper_conn: object, clipper_server: ServerThread) -> None:
    import time

    conn = clipper_conn
    conn.register_application("avg", "doubles", "-1.0", 300_000, policy="mean")  # type: ignore[attr-defined]
    for name, func in (("fast-one", fast_one), ("fast-three", fast_three), ("slow", very_slow)):
        python_deployer.deploy_python_closure(conn, name=name, version=1, input_type="doubles", func=func)
        conn.link_model_to_app("avg", name)  # type: ignore[attr-defined]
    for name in ("fast-one", "fast-three", "slow"):
        clipper_server.wait_replicas(name, "1", 1)
    started = time.monotonic()
    status, answer = http_json(f"{clipper_server.query_url}/avg/predict", {"input": [1.0]})
    elapsed = time.monotonic() - started
    assert status == 200 and answer["default"] is False
    assert answer["output"] == 2.0 and answer["models"] == ["fast-one", "fast-three"]
    assert elapsed < 0.6  # the SLO is 0.3 s; the slow model takes 1 s


def test_registered_with_clipper(tmp_path: Path) -> None:
    from clipper_core.plugins import PluginRegistry

    names = PluginRegistry.create().policies.names()
    assert {"exp4", "mean", "majority-vote", "weighted-vote", "k-agree"} <= set(names)
