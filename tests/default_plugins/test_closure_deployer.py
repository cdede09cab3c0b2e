"""The Python-closure deployer holds to the DeployerContract, on the Clipper quickstart's model; with
``make_current=False`` it deploys a version that does not take the traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipper_core import ClipperConnection
from clipper_core.default_plugins.closure_deployer import PythonClosureDeployer
from clipper_core.deployers.python import deploy_python_closure
from clipper_core.deployers.target import deploy_target
from clipper_core.interfaces import Deployer
from clipper_core.testing import DeployerContract, ServerThread
from clipper_core.testing.deployer_contract import RecordingConnection
from tests import models


class TestPythonClosureDeployer(DeployerContract):
    input_type = "doubles"

    @pytest.fixture
    def deployer(self) -> Deployer:
        return PythonClosureDeployer()

    @pytest.fixture
    def model(self) -> Any:
        return models.feature_sum

    @pytest.fixture
    def batch(self) -> Any:
        return np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.5, 0.25, 0.125]])

    def expected(self, model: Any, batch: Any) -> list[Any]:
        return list(model(batch))

    def unsaveable(self) -> list[Any]:
        return [object(), 42, "feature_sum"]

    def code_options(self, model: Any) -> dict[str, Any]:
        return {}  # the model is the pickled code

    def deploy_with_clipper_api(self, conn: RecordingConnection, model: Any, **args: Any) -> bool:
        deploy_python_closure(conn, func=model, **args)
        return True


def test_deploy_with_make_current_false_registers_the_version_beside_the_current_one(
        clipper_server: ServerThread, clipper_conn: ClipperConnection) -> None:
    """The version runs (its replica connects, a query naming it gets its answer) but takes no traffic; the
    default, as in Clipper, makes the new version current."""
    clipper_conn.register_application("versions", "doubles", "-1", 2_000_000)
    deploy_python_closure(clipper_conn, "v", 1, "doubles", models.version_one)
    clipper_conn.link_model_to_app("versions", "v")
    deploy_python_closure(clipper_conn, "v", 2, "doubles", models.version_two, make_current=False)
    clipper_server.wait_replicas("v", "1", 1)
    clipper_server.wait_replicas("v", "2", 1)
    assert clipper_conn.get_current_model_version("v") == "1"
    info = clipper_conn.get_model_info("v", 2)
    assert info is not None and info["is_current_version"] is False
    assert clipper_server.predict("versions", {"input": [0.0]})[1]["output"] == 1
    assert clipper_server.predict("versions", {"input": [0.0], "version": "2"})[1]["output"] == 2
    assert clipper_conn.start_rollout("v", 2)["candidate"] == "2"  # a candidate, as rollouts want it
    clipper_conn.abort_rollout("v")
    deploy_python_closure(clipper_conn, "v", 3, "doubles", models.version_two)
    assert clipper_conn.get_current_model_version("v") == "3"


def test_a_deployer_deploys_through_a_target_that_keeps_the_current_version(tmp_path: Path) -> None:
    """``deploy_target``: the connection itself by default; with make_current=False its build_and_deploy_model
    gets ``make_current=False`` on top of Clipper's arguments."""
    calls: list[dict[str, Any]] = []

    class Connection(RecordingConnection):
        def build_and_deploy_model(self, *args: Any, make_current: bool = True, **kwargs: Any) -> None:
            calls.append({"make_current": make_current})
            super().build_and_deploy_model(*args, **kwargs)

    conn = Connection(tmp_path)
    assert deploy_target(conn) is conn and deploy_target(conn, make_current=True) is conn
    deploy_python_closure(conn, "m", 1, "doubles", models.feature_sum)
    deploy_python_closure(conn, "m", 2, "doubles", models.feature_sum, make_current=False, num_replicas=2)
    assert calls == [{"make_current": True}, {"make_current": False}]
    assert [(d.version, d.num_replicas) for d in conn.deployments] == [("1", 1), ("2", 2)]
