"""The Clipper README quickstart, with only the imports and the container manager changed, against a real
background clipper process; and a restart of that process keeps every registration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from clipper_core import ClipperConnection, LocalContainerManager
from clipper_core.deployers import python as python_deployer
from clipper_core.state.sqlite import SqliteStateStore
from clipper_core.testing import http_json, wait_until


def feature_sum(xs):  # type: ignore[no-untyped-def]  # verbatim from Clipper's README
    return [str(sum(x)) for x in xs]


def manager(home: Path) -> LocalContainerManager:
    return LocalContainerManager(clipper_home=home, clipper_query_port=0, clipper_management_port=0,
                                 clipper_rpc_port=0)


def predict_until_served(conn: ClipperConnection, app: str, body: dict[str, object]) -> dict[str, object]:
    answers: list[dict[str, object]] = []

    def served() -> bool:
        answers.append(http_json(f"http://{conn.get_query_addr()}/{app}/predict", body)[1])
        return answers[-1]["default"] is False

    wait_until(served, 30, interval=0.05, what=f"a non-default answer from {app}")
    return answers[-1]


def test_clipper_quickstart(tmp_path: Path) -> None:
    clipper_conn = ClipperConnection(manager(tmp_path / "home"))
    clipper_conn.start_clipper()
    try:
        clipper_conn.register_application(name="hello-world", input_type="doubles", default_output="-1.0",
                                          slo_micros=100000)
        python_deployer.deploy_python_closure(clipper_conn, name="sum-model", version=1, input_type="doubles",
                                              func=feature_sum)
        clipper_conn.link_model_to_app(app_name="hello-world", model_name="sum-model")
        answer = predict_until_served(clipper_conn, "hello-world", {"input": [1.1, 2.2, 3.3]})
        assert answer["output"] == pytest.approx(6.6)
    finally:
        clipper_conn.stop_all()
    assert not (tmp_path / "home" / "runtime.json").exists()


def test_restart_keeps_every_registration_and_brings_replicas_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    conn = ClipperConnection(manager(home))
    conn.start_clipper()
    try:
        conn.register_application("app-a", "doubles", "-1.0", 2_000_000)
        conn.register_application("app-b", "strings", "none", 500_000)
        python_deployer.deploy_python_closure(conn, name="m", version=1, input_type="doubles", func=feature_sum)
        python_deployer.deploy_python_closure(conn, name="m", version=2, input_type="doubles", func=feature_sum,
                                              num_replicas=2)
        conn.set_model_version("m", "1")
        conn.link_model_to_app("app-a", "m")
        status, ack = http_json(f"http://{conn.get_query_addr()}/app-a/update",
                                {"uid": 3, "input": [1.0], "label": 1.0})
        assert status == 200 and ack["feedback_received"] is True
        before = (conn.get_all_apps(verbose=True), conn.get_all_models(verbose=True), conn.get_linked_models("app-a"))
    finally:
        conn.stop_all()

    conn = ClipperConnection(manager(home))
    conn.start_clipper()
    try:
        after = (conn.get_all_apps(verbose=True), conn.get_all_models(verbose=True), conn.get_linked_models("app-a"))
        assert after == before
        assert conn.get_current_model_version("m") == "1"
        assert predict_until_served(conn, "app-a", {"input": [2.0, 3.0]})["output"] == 5.0
        assert conn.get_num_replicas("m", "2") == 2
    finally:
        conn.stop_all()

    async def feedback() -> list[object]:
        store = SqliteStateStore(home / "state.db")
        await store.open()
        try:
            return [(f.uid, f.label) for f in await store.list_feedback("app-a")]
        finally:
            await store.close()

    assert asyncio.run(feedback()) == [(3, 1.0)]
