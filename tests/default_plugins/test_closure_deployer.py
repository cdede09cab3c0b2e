"""The Python-closure deployer holds to the DeployerContract, on the Clipper quickstart's model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from clipper_core.default_plugins.closure_deployer import PythonClosureDeployer
from clipper_core.deployers.python import deploy_python_closure
from clipper_core.interfaces import Deployer
from clipper_core.testing import DeployerContract
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
