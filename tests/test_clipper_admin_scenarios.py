"""Clipper's integration scenarios (clipper-reference §10.2, clipper_admin_tests.py) in local mode, through
``ClipperConnection`` against a real server with real replica processes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clipper_core import ClipperConnection, ClipperException
from clipper_core.deployers import python as python_deployer
from clipper_core.serving.prediction import NO_MODELS
from clipper_core.testing import ServerThread, http_json, wait_until
from tests import models


def deploy(conn: ClipperConnection, name: str, version: Any, func: Any, replicas: int = 1, **kw: Any) -> None:
    python_deployer.deploy_python_closure(conn, name=name, version=version, input_type=kw.pop("input_type", "doubles"),
                                          func=func, num_replicas=replicas, **kw)


def connected(server: ServerThread, name: str, version: Any, n: int) -> None:
    server.wait_replicas(name, str(version), n)


def predict(conn: ClipperConnection, app: str, body: Any, trailing_slash: bool = False) -> Any:
    status, answer = http_json(f"http://{conn.get_query_addr()}/{app}/predict{'/' if trailing_slash else ''}", body)
    assert status == 200, answer
    return answer


def test_register_model_two_versions_and_read_back(clipper_conn: ClipperConnection) -> None:
    clipper_conn.register_model("m", "v1", "doubles", labels=["a", "b"])
    clipper_conn.register_model("m", "v2", "doubles")
    assert clipper_conn.get_all_models() == ["m:v1", "m:v2"]
    info = clipper_conn.get_model_info("m", "v1")
    assert info is not None
    assert (info["labels"], info["is_current_version"], info["container_name"]) == (["a", "b"], False, "NO_CONTAINER")
    assert clipper_conn.get_model_info("m", "v2")["is_current_version"] is True  # type: ignore[index]
    assert clipper_conn.get_model_info("m", "v9") is None


def test_apps_register_list_info_unregister(clipper_conn: ClipperConnection) -> None:
    clipper_conn.register_application("app-x", "doubles", "0.0", 100000)
    assert clipper_conn.get_all_apps() == ["app-x"]
    info = clipper_conn.get_app_info("app-x")
    assert info is not None
    assert (info["name"], info["input_type"], info["latency_slo_micros"], info["linked_models"]) == (
        "app-x", "doubles", 100000, [])
    assert clipper_conn.get_app_info("nope") is None
    clipper_conn.unregister_application("app-x")
    assert clipper_conn.get_all_apps() == []


def test_link_unregistered_model_fails(clipper_conn: ClipperConnection) -> None:
    clipper_conn.register_application("app", "doubles", "0.0", 100000)
    with pytest.raises(ClipperException, match="No model with name"):
        clipper_conn.link_model_to_app("app", "ghost")


def test_link_and_unlink(clipper_conn: ClipperConnection) -> None:
    clipper_conn.register_application("app", "doubles", "0.0", 100000)
    clipper_conn.register_model("m", "1", "doubles")
    assert clipper_conn.get_linked_models("app") == []
    clipper_conn.link_model_to_app("app", "m")
    assert clipper_conn.get_linked_models("app") == ["m"]
    clipper_conn.unlink_model_from_app("app", "m")
    assert clipper_conn.get_linked_models("app") == []


def test_set_num_replicas_on_containerless_model_fails(clipper_conn: ClipperConnection) -> None:
    clipper_conn.register_model("m", "1", "doubles")
    with pytest.raises(ClipperException, match="containerless model"):
        clipper_conn.set_num_replicas("m", 2, "1")


def test_a_registry_is_refused_clearly_by_a_manager_that_does_not_push(clipper_conn: ClipperConnection,
                                                                      tmp_path: Path) -> None:
    with pytest.raises(ClipperException, match="container manager 'local' does not push images to a registry"):
        clipper_conn.build_model("m", 1, str(tmp_path), container_registry="registry.example.com")


def test_set_model_version_flips_current(clipper_conn: ClipperConnection) -> None:
    clipper_conn.register_model("m", "1", "doubles")
    clipper_conn.register_model("m", "2", "doubles")
    assert clipper_conn.get_current_model_version("m") == "2"
    clipper_conn.set_model_version("m", "1")
    assert clipper_conn.get_current_model_version("m") == "1"
    assert clipper_conn.get_model_info("m", "2")["is_current_version"] is False  # type: ignore[index]


def test_logs_and_inspect_instance(clipper_conn: ClipperConnection, clipper_server: ServerThread,
                                   tmp_path: Path) -> None:
    deploy(clipper_conn, "noop", 1, models.noop)
    connected(clipper_server, "noop", 1, 1)
    files = clipper_conn.get_clipper_logs(str(tmp_path / "logs"))
    assert any(Path(f).name == "noop_1_0.log" for f in files)
    metrics = clipper_conn.inspect_instance()
    assert metrics['clipper_model_replicas_connected{model="noop",version="1"}'] == 1.0


def test_deploy_and_scale_up_and_down(clipper_conn: ClipperConnection, clipper_server: ServerThread) -> None:
    deploy(clipper_conn, "noop", 1, models.noop)
    connected(clipper_server, "noop", 1, 1)
    assert len(clipper_conn.get_all_model_replicas()) == 1
    clipper_conn.set_num_replicas("noop", 4)
    connected(clipper_server, "noop", 1, 4)
    assert clipper_conn.get_num_replicas("noop") == 4
    clipper_conn.set_num_replicas("noop", 2)
    connected(clipper_server, "noop", 1, 2)
    wait_until(lambda: len(clipper_conn.get_all_model_replicas()) == 2, what="2 registered replicas")
    replica = clipper_conn.get_model_replica_info("noop", "1", 0)
    assert replica is not None and replica["model_id"] == "noop:1"


def test_stop_inactive_model_versions(clipper_conn: ClipperConnection, clipper_server: ServerThread) -> None:
    deploy(clipper_conn, "m", 1, models.version_one, replicas=2)
    deploy(clipper_conn, "m", 2, models.version_two, replicas=3)
    connected(clipper_server, "m", 2, 3)
    clipper_conn.stop_inactive_model_versions(["m"])
    connected(clipper_server, "m", 1, 0)
    assert clipper_conn.get_all_models() == ["m:2"]
    wait_until(lambda: len(clipper_conn.get_all_model_replicas()) == 3, what="3 replicas left")


def test_stop_models_versioned_and_all(clipper_conn: ClipperConnection, clipper_server: ServerThread) -> None:
    deploy(clipper_conn, "a", 1, models.noop)
    deploy(clipper_conn, "b", 1, models.noop)
    deploy(clipper_conn, "b", 2, models.noop)
    deploy(clipper_conn, "c", 1, models.noop)
    connected(clipper_server, "c", 1, 1)
    clipper_conn.stop_models(["a"])
    assert "a:1" not in clipper_conn.get_all_models()
    clipper_conn.stop_versioned_models({"b": ["1"]})
    assert sorted(clipper_conn.get_all_models()) == ["b:2", "c:1"]
    clipper_conn.stop_all_model_containers()
    assert clipper_conn.get_all_models() == []
    wait_until(lambda: clipper_conn.get_all_model_replicas() == [], what="no replicas")


def test_create_endpoint_and_test_predict_function(clipper_conn: ClipperConnection,
                                                   clipper_server: ServerThread) -> None:
    python_deployer.create_endpoint(clipper_conn, "summer", "doubles", models.feature_sum, slo_micros=2_000_000)
    connected(clipper_server, "summer", 1, 1)
    single = {"input": [1.1, 2.2, 3.3]}
    batch = {"input_batch": [[1.1, 2.2, 3.3], [7.7, 8.8, 9.9]]}
    local_single = clipper_conn.test_predict_function(single, models.feature_sum, "doubles")
    local_batch = clipper_conn.test_predict_function(batch, models.feature_sum, "doubles")
    live_single = predict(clipper_conn, "summer", single, trailing_slash=True)
    live_batch = predict(clipper_conn, "summer", batch, trailing_slash=True)
    assert live_single["output"] == pytest.approx(float(local_single[0]))
    assert [p["output"] for p in live_batch["batch_predictions"]] == pytest.approx([float(x) for x in local_batch])


def test_query_specific_model_version(clipper_conn: ClipperConnection, clipper_server: ServerThread) -> None:
    clipper_conn.register_application("versioned", "doubles", "-1.0", 2_000_000)
    deploy(clipper_conn, "m", 1, models.version_one)
    deploy(clipper_conn, "m", 2, models.version_two)
    clipper_conn.link_model_to_app("versioned", "m")
    connected(clipper_server, "m", 1, 1)
    connected(clipper_server, "m", 2, 1)
    assert predict(clipper_conn, "versioned", {"input": [1.0], "version": "1"})["output"] == 1
    assert predict(clipper_conn, "versioned", {"input": [1.0], "version": "2"})["output"] == 2
    assert predict(clipper_conn, "versioned", {"input": [1.0]})["output"] == 2


def test_long_suite(clipper_conn: ClipperConnection, clipper_server: ServerThread) -> None:
    """Unlinked default; noop non-default; input_batch of 4; a closure returning len(x)."""
    clipper_conn.register_application("unlinked", "doubles", "DEFAULT", 3_000_000)
    answer = predict(clipper_conn, "unlinked", {"input": [1.0]})
    assert answer["default"] is True and answer["output"] == "DEFAULT"
    python_deployer.create_endpoint(clipper_conn, "noop-app", "doubles", models.noop, slo_micros=3_000_000)
    python_deployer.create_endpoint(clipper_conn, "len-app", "doubles", models.length_model, slo_micros=3_000_000)
    connected(clipper_server, "len-app", 1, 1)
    connected(clipper_server, "noop-app", 1, 1)
    assert predict(clipper_conn, "noop-app", {"input": [1.0]})["default"] is False
    batch = predict(clipper_conn, "noop-app", {"input_batch": [[1.0], [2.0], [3.0], [4.0]]})
    assert len(batch["batch_predictions"]) == 4
    assert predict(clipper_conn, "len-app", {"input": [1.0, 2.0, 3.0]})["output"] == 3


def test_fixed_batch_size_model_processes_specified_batch_size_when_saturated(
        clipper_conn: ClipperConnection, clipper_server: ServerThread) -> None:
    clipper_conn.register_application("fixed", "doubles", "-1.0", 30_000_000)
    deploy(clipper_conn, "nine", 1, models.slow_batch_size_model, batch_size=9)
    clipper_conn.link_model_to_app("fixed", "nine")
    connected(clipper_server, "nine", 1, 1)
    url = f"http://{clipper_conn.get_query_addr()}/fixed/predict"

    async def burst() -> list[Any]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=450)) as session:
            async def one(i: int) -> Any:
                async with session.post(url, json={"input": [float(i)]}) as response:
                    return (await response.json())["output"]
            return await asyncio.gather(*(one(i) for i in range(450)))

    outputs = asyncio.run(burst())
    assert max(outputs) == 9
    assert sum(1 for o in outputs if o == 9) >= 0.7 * 450


def test_replica_removal_down_to_no_connected_models(clipper_conn: ClipperConnection,
                                                     clipper_server: ServerThread) -> None:
    python_deployer.create_endpoint(clipper_conn, "shrink", "doubles", models.noop, slo_micros=3_000_000,
                                    num_replicas=2)
    connected(clipper_server, "shrink", 1, 2)
    assert predict(clipper_conn, "shrink", {"input": [1.0]})["default"] is False
    clipper_conn.set_num_replicas("shrink", 1)
    connected(clipper_server, "shrink", 1, 1)
    assert predict(clipper_conn, "shrink", {"input": [2.0]})["default"] is False
    clipper_conn.set_num_replicas("shrink", 0)
    connected(clipper_server, "shrink", 1, 0)
    answer = predict(clipper_conn, "shrink", {"input": [3.0]})
    assert answer["default"] is True
    assert answer["default_explanation"] == NO_MODELS
