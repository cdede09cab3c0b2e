"""Bandit apps end to end through a real server: linked toy models, feedback over POST /{app}/update joined by
query id, convergence on the model that serves the user best, and per-user state that survives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bandit_toy_models as toys
import pytest

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.testing import ServerThread, http_json

MODELS = {"right": toys.right, "ones": toys.ones, "zeros": toys.zeros}


def ask(server: ServerThread, app: str, x: float, uid: int) -> dict[str, Any]:
    status, answer = http_json(f"{server.query_url}/{app}/predict", {"input": [x, 0.5], "uid": uid})
    assert status == 200 and answer["default"] is False, answer
    assert len(answer["models"]) == 1  # one model per query, and the answer names it
    return dict(answer)


def teach(server: ServerThread, app: str, x: float, uid: int, query_id: int | None) -> dict[str, Any]:
    body = {"uid": uid, "input": [x, 0.5], "label": toys.label_of([x]), "query_id": query_id}
    status, answer = http_json(f"{server.query_url}/{app}/update", body)
    assert status == 200 and answer["feedback_received"] is True, answer
    return dict(answer)


def inputs(n: int, offset: int = 0) -> Iterator[float]:
    """Alternating signs, each input distinct (so no answer comes from the prediction cache)."""
    for i in range(offset, offset + n):
        yield (1.0 if i % 2 else -1.0) * (1.0 + i * 1e-3)


def wait_models(server: ServerThread) -> None:
    for name in MODELS:
        server.wait_replicas(name, "1", 1)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_exp3_and_linucb_apps_learn_from_feedback_and_keep_it_across_a_restart(home: Path) -> None:
    with ServerThread(home) as server:
        conn = ClipperConnection(LocalContainerManager(clipper_home=home))
        conn.connect()
        conn.register_application("pick", "doubles", "-1.0", 2_000_000, policy="exp3",
                                  policy_config={"gamma": 0.1, "seed": 1})
        conn.register_application("context", "doubles", "-1.0", 2_000_000, policy="linucb",
                                  policy_config={"features": [0, 1], "seed": 2})
        for name, func in MODELS.items():
            python_deployer.deploy_python_closure(conn, name=name, version=1, input_type="doubles", func=func)
            conn.link_model_to_app("pick", name)
            if name != "right":
                conn.link_model_to_app("context", name)  # ones is right for x > 0, zeros for x < 0
        wait_models(server)

        picks = []
        for x in inputs(300):
            answer = ask(server, "pick", x, uid=5)
            picks.append(answer["models"][0])
            teach(server, "pick", x, uid=5, query_id=answer["query_id"])
        assert picks[-100:].count("right") >= 80, picks[-100:]

        served_right = []
        for x in inputs(200):
            answer = ask(server, "context", x, uid=5)
            served_right.append(answer["output"] == toys.label_of([x]))
            teach(server, "context", x, uid=5, query_id=answer["query_id"])
        assert sum(served_right[-100:]) >= 90

    with ServerThread(home) as server:  # a restart: the per-user states come back from the state store
        wait_models(server)
        learned = [ask(server, "pick", x, uid=5)["models"][0] for x in inputs(100, offset=1000)]
        fresh = [ask(server, "pick", x, uid=6)["models"][0] for x in inputs(100, offset=2000)]
        assert learned.count("right") >= 80 and fresh.count("right") <= 60
        assert all(ask(server, "context", x, uid=5)["output"] == toys.label_of([x]) for x in inputs(20, 3000))
        # feedback for a query the restarted server never saw: the linked models are asked again
        assert teach(server, "pick", 7.5, uid=5, query_id=1)["seq"] == 301
