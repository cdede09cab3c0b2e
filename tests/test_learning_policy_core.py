"""The core's side of learning policies, with a small policy defined here: several linked models, per-user
state, feedback joined with the predictions of the query it answers, state persisted, stragglers left out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from clipper_core import hookimpl
from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.testing import ServerThread, http_json
from tests import models
from tests.conftest import Deploy

UNLUCKY = 13.0


class MeanAndCount(SelectionPolicy):
    """Queries every linked model, answers their mean, counts feedback per user and remembers what it saw."""

    name: ClassVar[str] = "test-mean-count"
    max_models: ClassVar[int | None] = None
    needs_state: ClassVar[bool] = True

    def initial_state(self, models: list[str]) -> Any:
        return {"feedback": 0, "seen": []}

    def select(self, state: Any, query: Query, models: list[str]) -> list[str]:
        return list(models)

    def combine(self, state: Any, query: Query, predictions: dict[str, Any]) -> tuple[Any, bool, str]:
        values = [float(v) for v in predictions.values()]
        return sum(values) / len(values), False, ""

    def observe(self, state: Any, query: Query, feedback: Any, predictions: dict[str, Any]) -> Any:
        if feedback == UNLUCKY:
            raise RuntimeError("this policy cannot learn from 13")
        return {"feedback": state["feedback"] + 1,
                "seen": [*state["seen"], {"label": feedback, "predictions": predictions}]}


class Plugin:
    @hookimpl
    def clipper_register_policies(self) -> list[type[SelectionPolicy]]:
        return [MeanAndCount]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    import clipper_core.plugins as plugins
    import clipper_core.server.assembly as server_module

    original = plugins.make_plugin_manager
    # server.py holds its own reference to the factory: patch that one (the plugin rides in as an extra object)
    monkeypatch.setattr(server_module, "make_plugin_manager",
                        lambda **kw: original(**{**kw, "extra": [*kw.get("extra", []), Plugin()]}))
    with ServerThread(tmp_path / "home") as server:
        yield server


def stored_state(server: ServerThread, app: str, uid: int) -> Any:
    store = server.server.ctx.store
    raw = asyncio.run_coroutine_threadsafe(store.get_policy_state(app, uid), server.loop).result(10)
    return json.loads(raw) if raw is not None else None


def test_several_models_feedback_joined_by_query_id_and_state_persisted(server: ServerThread,
                                                                        tmp_path: Path) -> None:
    deploy = Deploy(server, tmp_path)
    deploy.app("ens", policy="test-mean-count", slo_micros=2_000_000)
    deploy("one", 1, models.version_one, app="ens")
    deploy("two", 1, models.version_two, app="ens")
    status, answer = server.predict("ens", {"input": [5.0], "uid": 7})
    assert status == 200 and answer["output"] == 1.5 and answer["models"] == ["one", "two"]
    status, ack = http_json(f"{server.query_url}/ens/update",
                            {"uid": 7, "input": [5.0], "label": 2.0, "query_id": answer["query_id"]})
    assert status == 200 and ack["feedback_received"] is True
    state = stored_state(server, "ens", 7)
    assert state["feedback"] == 1
    assert state["seen"] == [{"label": 2.0, "predictions": {"one": "1", "two": "2"}}]  # no re-query was needed
    assert stored_state(server, "ens", 8) is None  # per user


def test_feedback_without_a_remembered_query_re_queries_every_model(server: ServerThread, tmp_path: Path) -> None:
    deploy = Deploy(server, tmp_path)
    deploy.app("ens", policy="test-mean-count", slo_micros=2_000_000)
    deploy("one", 1, models.version_one, app="ens")
    deploy("two", 1, models.version_two, app="ens")
    status, _ = http_json(f"{server.query_url}/ens/update", {"uid": 1, "input": [9.0], "label": 1.0})
    assert status == 200
    assert stored_state(server, "ens", 1)["seen"][0]["predictions"] == {"one": "1", "two": "2"}


def test_a_straggler_is_left_out_at_the_slo(server: ServerThread, tmp_path: Path) -> None:
    deploy = Deploy(server, tmp_path)
    deploy.app("ens", policy="test-mean-count", slo_micros=200_000)
    deploy("one", 1, models.version_one, app="ens")
    deploy("slow", 1, models.slow_model, app="ens")  # 0.5 s: always later than the SLO
    status, answer = server.predict("ens", {"input": [3.0]})
    assert status == 200 and answer["default"] is False
    assert answer["output"] == 1.0 and answer["models"] == ["one"]


def test_feedback_is_kept_and_acknowledged_when_the_policy_fails_to_learn(server: ServerThread,
                                                                         tmp_path: Path) -> None:
    """Feedback is stored before the policy sees it: a policy error must not answer an error (the client would
    resend feedback that is already kept) nor lose what the policy learned before."""
    deploy = Deploy(server, tmp_path)
    deploy.app("ens", policy="test-mean-count", slo_micros=2_000_000)
    deploy("one", 1, models.version_one, app="ens")
    for label, seq in ((1.0, 1), (UNLUCKY, 2), (2.0, 3)):
        status, ack = http_json(f"{server.query_url}/ens/update", {"uid": 3, "input": [5.0], "label": label})
        assert (status, ack["feedback_received"], ack["seq"]) == (200, True, seq)
    assert [s["label"] for s in stored_state(server, "ens", 3)["seen"]] == [1.0, 2.0]
    store = server.server.ctx.store
    kept = asyncio.run_coroutine_threadsafe(store.list_feedback("ens"), server.loop).result(10)
    assert [f.label for f in kept] == [1.0, UNLUCKY, 2.0]


def test_a_new_policy_config_starts_learning_afresh(server: ServerThread, tmp_path: Path) -> None:
    deploy = Deploy(server, tmp_path)
    deploy.app("ens", policy="test-mean-count", slo_micros=2_000_000)
    deploy("one", 1, models.version_one, app="ens")

    def feedback() -> None:
        status, _ = http_json(f"{server.query_url}/ens/update", {"uid": 4, "input": [5.0], "label": 1.0})
        assert status == 200

    feedback()
    feedback()
    assert stored_state(server, "ens", 4)["feedback"] == 2
    status, _ = http_json(f"{server.admin_url}/admin/set_app_policy",
                          {"name": "ens", "policy": "test-mean-count", "policy_config": {"version": 2}})
    assert status == 200
    assert stored_state(server, "ens", 4) is None
    deadline = time.monotonic() + 10  # the frontend hears of the change through the store's change feed
    while server.server.ctx.query_path.snapshot.app("ens").app.policy_config != {"version": 2}:
        assert time.monotonic() < deadline, "the frontend never saw the new policy_config"
        time.sleep(0.01)
    feedback()
    assert stored_state(server, "ens", 4)["feedback"] == 1  # not 3: nothing cached in memory survived either
