"""Ensemble apps end to end through a real server: a model slower than the SLO is left out and the answer
lists who contributed; k-agree falls back to the default output on disagreement; exp4 learns from feedback
over POST /{app}/update which model to trust."""

from __future__ import annotations

import time
from typing import Any

import ensemble_toy_models as toys

from clipper_core.deployers import python as python_deployer
from clipper_core.testing import ServerThread, http_json


def predict(server: ServerThread, app: str, x: float) -> dict[str, Any]:
    status, answer = http_json(f"{server.query_url}/{app}/predict", {"input": [x]})
    assert status == 200, answer
    return dict(answer)


def test_an_ensemble_with_a_model_slower_than_the_slo_answers_in_time_with_the_others(
        clipper_conn: Any, clipper_server: ServerThread) -> None:
    clipper_conn.register_application("avg", "doubles", "-1.0", 300_000, policy="mean")
    clipper_conn.register_application("agree", "doubles", "-1.0", 300_000, policy="k-agree", policy_config={"k": 2})
    for name, func in (("one", toys.one), ("three", toys.three), ("slow", toys.slower_than_the_slo)):
        python_deployer.deploy_python_closure(clipper_conn, name=name, version=1, input_type="doubles", func=func)
        clipper_conn.link_model_to_app("avg", name)
        clipper_conn.link_model_to_app("agree", name)
    for name in ("one", "three", "slow"):
        clipper_server.wait_replicas(name, "1", 1)

    started = time.monotonic()
    answer = predict(clipper_server, "avg", 1.0)
    elapsed = time.monotonic() - started
    assert answer["default"] is False and answer["output"] == 2.0
    assert answer["models"] == ["one", "three"]  # the slow model did not contribute
    assert elapsed < 0.5, f"answered in {elapsed:.2f} s; the SLO is 0.3 s and the slow model takes 1 s"

    answer = predict(clipper_server, "agree", 2.0)  # 1.0 and 3.0 arrived in time; they disagree
    assert answer["default"] is True and answer["output"] == -1.0
    assert answer["default_explanation"] == "only 1 of 2 answers agree ('1.0' ×1, '3.0' ×1); k-agree needs 2"


def test_exp4_learns_from_feedback_which_model_to_trust(clipper_conn: Any, clipper_server: ServerThread) -> None:
    clipper_conn.register_application("trust", "doubles", "-1", 2_000_000, policy="exp4",
                                      policy_config={"eta": 0.5})
    for name, func in (("right", toys.right), ("wrong-a", toys.wrong), ("wrong-b", toys.wrong)):
        python_deployer.deploy_python_closure(clipper_conn, name=name, version=1, input_type="doubles", func=func)
        clipper_conn.link_model_to_app("trust", name)
    for name in ("right", "wrong-a", "wrong-b"):
        clipper_server.wait_replicas(name, "1", 1)

    outputs = []
    for i in range(12):
        x = (1.0 if i % 2 else -1.0) * (1 + i / 100)
        answer = predict(clipper_server, "trust", x)
        assert answer["models"] == ["right", "wrong-a", "wrong-b"]
        outputs.append(answer["output"] == toys.label_of([x]))
        status, ack = http_json(f"{clipper_server.query_url}/trust/update",
                                {"input": [x], "label": toys.label_of([x]), "query_id": answer["query_id"]})
        assert status == 200 and ack["feedback_received"] is True
    # weights 1 : 1 : 1, then 1 : 0.61 : 0.61 (the wrong ones still outvote the right one), then 1 : 0.37 : 0.37
    assert outputs[:2] == [False, False] and all(outputs[2:])
