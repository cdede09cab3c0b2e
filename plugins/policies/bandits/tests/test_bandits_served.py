"""A bandit app end to end: three real models, feedback over POST /{app}/update joined by query id, the
policy converges on the model that is right, and its per-user state survives a server restart."""

from __future__ import annotations

from pathlib import Path

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.testing import ServerThread, http_json


def always_right(xs):  # type: ignore[no-untyped-def]
    return ["1.0" if x[0] > 0 else "0.0" for x in xs]


def always_one(xs):  # type: ignore[no-untyped-def]
    return ["1.0" for _ in xs]


def always_zero(xs):  # type: ignore[no-untyped-def]
    return ["0.0" for _ in xs]


def test_ucb1_app_learns_from_feedback_and_keeps_it_across_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with ServerThread(home) as server:
        conn = ClipperConnection(LocalContainerManager(clipper_home=home))
        conn.connect()
        conn.register_application("pick", "doubles", "-1.0", 2_000_000, policy="ucb1",
                                  policy_config={"c": 0.3, "seed": 1})
        for name, func in (("right", always_right), ("ones", always_one), ("zeros", always_zero)):
            python_deployer.deploy_python_closure(conn, name=name, version=1, input_type="doubles", func=func)
            conn.link_model_to_app("pick", name)
        for name in ("right", "ones", "zeros"):
            server.wait_replicas(name, "1", 1)
        correct = []
        for i in range(240):
            x = 1.0 if i % 2 else -1.0
            status, answer = http_json(f"{server.query_url}/pick/predict", {"input": [x + i * 1e-3], "uid": 5})
            assert status == 200 and answer["default"] is False
            label = 1.0 if x > 0 else 0.0
            correct.append(answer["output"] == label)
            status, _ = http_json(f"{server.query_url}/pick/update",
                                  {"uid": 5, "input": [x + i * 1e-3], "label": label, "query_id": answer["query_id"]})
            assert status == 200
        assert sum(correct[-60:]) >= 55  # converged on the model that is always right
    with ServerThread(home) as server:  # a restart: the per-user state comes back from the store
        for name in ("right", "ones", "zeros"):
            server.wait_replicas(name, "1", 1)
        status, answer = http_json(f"{server.query_url}/pick/predict", {"input": [3.0], "uid": 5})
        assert status == 200 and answer["output"] == 1.0
        status, answer = http_json(f"{server.query_url}/pick/predict", {"input": [-3.0], "uid": 5})
        assert answer["output"] == 0.0
