"""DeployerContract: the behaviour every :class:`~clipper_core.interfaces.Deployer` must have.

A deployer package subclasses it in one of its test modules (with a ``Test`` name) and overrides the
``deployer``, ``model`` and ``batch`` fixtures, giving a small real model of its framework::

    class TestSklearnDeployerContract(DeployerContract):
        input_type = "doubles"

        @pytest.fixture
        def deployer(self):
            return SklearnDeployer()

        @pytest.fixture
        def model(self):
            return LogisticRegression().fit(X, y)

        @pytest.fixture
        def batch(self):
            return X[:5]                      # inputs as the container passes them

        def expected(self, model, batch):     # optional: the same model's answers in this process
            return model.predict(batch).tolist()

        def code_options(self, model):        # optional: save options that pickle Python code
            return {"func": lambda m, xs: m.predict(xs).tolist()}

        def deploy_with_clipper_api(self, conn, model, **args):   # optional: the Clipper-style function
            deploy_sklearn_model(conn, sklearn_model=model, **args)
            return True

What it checks: ``save`` writes ``clipper_model.json`` (deployer, loader, input type, name, version, the
installed versions of its requirements, and Python whenever pickled Python code is saved); the loader the
manifest names loads the saved model in this process (as ``python -m clipper_container`` would) and answers
one output per input of a batch; ``save`` refuses what it cannot save with a TypeError or ValueError naming
what it was given, leaving no manifest behind; ``deploy`` (and the package's Clipper-style function) goes
through ``conn.build_and_deploy_model`` with the saved directory, which a :class:`RecordingConnection`
captures here without a server. This module imports only pytest, numpy and clipper's own packages.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from clipper_container.loading import load_model, resolve_loader
from clipper_container.manifest import MANIFEST_NAME, read_manifest

from clipper_core.interfaces import Deployer

__all__ = ["DEPLOY_ARGS", "DeployerContract", "Deployment", "RecordingConnection"]

DEPLOY_ARGS: dict[str, Any] = {
    "name": "contract-model", "version": 3, "base_image": "contract/base:1", "labels": ["contract"],
    "registry": "registry.example:5000", "num_replicas": 2, "batch_size": 8, "pkgs_to_install": ["numpy"]}
"""What the contract deploys with (besides ``input_type`` and the model): every argument differs from its
default, so that each one is seen to reach ``build_and_deploy_model``."""


@dataclass(frozen=True)
class Deployment:
    """One ``build_and_deploy_model`` call, and a copy of the model directory as it was during the call."""

    name: str
    version: Any
    input_type: str
    model_data_path: str
    base_image: str
    labels: list[str] | None
    container_registry: str | None
    num_replicas: int
    batch_size: int
    pkgs_to_install: list[str] | None
    copy: Path


class RecordingConnection:
    """Stands in for a ``ClipperConnection``: records each ``build_and_deploy_model`` call and copies the model
    directory it names into ``keep`` (a deployer may remove its directory once the call returns)."""

    def __init__(self, keep: Path) -> None:
        self.keep = keep
        self.deployments: list[Deployment] = []

    def build_and_deploy_model(self, name: str, version: Any, input_type: str, model_data_path: str,
                               base_image: str = "default", labels: list[str] | None = None,
                               container_registry: str | None = None, num_replicas: int = 1,
                               batch_size: int = -1, pkgs_to_install: list[str] | None = None) -> None:
        copy = self.keep / str(len(self.deployments))
        shutil.copytree(model_data_path, copy)
        self.deployments.append(Deployment(name, version, input_type, model_data_path, base_image, labels,
                                           container_registry, num_replicas, batch_size, pkgs_to_install, copy))


def _running_python() -> str:
    return "{}.{}.{}".format(*sys.version_info[:3])


def _as_received(batch: Any) -> Any:
    """Numeric batches reach a loader read-only (views of the received frame)."""
    if isinstance(batch, np.ndarray):
        batch = batch.copy()
        batch.setflags(write=False)
    return batch


class DeployerContract:
    """Manifest, in-process loading, refusals and the deploy path of one deployer, on a small real model."""

    input_type: ClassVar[str] = "doubles"
    """The input type the model is saved for (``batch`` must be such inputs)."""

    @pytest.fixture
    def deployer(self) -> Deployer:
        raise NotImplementedError("override the 'deployer' fixture: return the deployer under test")

    @pytest.fixture
    def model(self) -> Any:
        raise NotImplementedError("override the 'model' fixture: return a small real model the deployer saves")

    @pytest.fixture
    def batch(self) -> Any:
        raise NotImplementedError("override the 'batch' fixture: several inputs of input_type, as the container "
                                  "passes them (a 2-D numpy array for numeric types, a list of str for strings)")

    def expected(self, model: Any, batch: Any) -> list[Any] | None:
        """The model's answers to ``batch`` computed in this process (None: only their number is checked)."""
        return None

    def assert_same_outputs(self, actual: list[Any], expected: list[Any]) -> None:
        """Numbers (and lists of numbers) within float32 round-off, anything else exactly."""
        if np.asarray(expected).dtype.kind in "fiub":
            np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                                       rtol=1e-5, atol=1e-6)
        else:
            assert actual == expected

    def unsaveable(self) -> list[Any]:
        """Objects ``save`` must refuse."""
        return [object()]

    def code_options(self, model: Any) -> dict[str, Any] | None:
        """Save options that make the model directory hold pickled Python code (e.g. ``{"func": ...}``), ``{}``
        when this deployer always pickles code, None when it never does."""
        return None

    def deploy_with_clipper_api(self, conn: RecordingConnection, model: Any, **args: Any) -> bool:
        """Deploy ``model`` through the package's Clipper-style function (``deploy_<framework>_model``) with
        ``args`` (``name``, ``version``, ``input_type``, ``base_image``, ``labels``, ``registry``, ``num_replicas``,
        ``batch_size``, ``pkgs_to_install``) and return True; False when the package has none."""
        return False

    # -- save -----------------------------------------------------------------------------------------
    def test_save_writes_the_manifest(self, deployer: Deployer, model: Any, tmp_path: Path) -> None:
        manifest = deployer.save(tmp_path / "m", model, input_type=self.input_type, name="m", version="3")
        assert read_manifest(tmp_path / "m") == manifest
        assert (manifest["deployer"], manifest["loader"], manifest["input_type"]) == (
            deployer.name, deployer.loader, self.input_type)
        assert (manifest["name"], manifest["version"]) == ("m", "3")
        assert callable(resolve_loader(manifest["loader"]))
        requirements = manifest["requirements"]
        assert requirements, "record the versions of the distributions the saved model needs"
        assert requirements == {dist: metadata.version(dist) for dist in requirements}
        if "python" in manifest or self.code_options(model) == {}:
            assert manifest["python"] == _running_python()

    def test_pickled_code_records_python(self, deployer: Deployer, model: Any, tmp_path: Path) -> None:
        options = self.code_options(model)
        if options is None:
            pytest.skip(f"{type(deployer).__name__} never pickles Python code")
        manifest = deployer.save(tmp_path / "m", model, input_type=self.input_type, **options)
        assert manifest["python"] == _running_python()
        assert manifest["requirements"]["cloudpickle"] == metadata.version("cloudpickle")

    def test_save_refuses_what_it_cannot_save(self, deployer: Deployer, tmp_path: Path) -> None:
        for i, obj in enumerate(self.unsaveable()):
            directory = tmp_path / f"bad-{i}"
            with pytest.raises((TypeError, ValueError)) as info:
                deployer.save(directory, obj, input_type=self.input_type)
            assert type(obj).__name__ in str(info.value), f"name what was given: {info.value}"
            assert not (directory / MANIFEST_NAME).exists()

    # -- load -----------------------------------------------------------------------------------------
    def test_the_manifests_loader_answers_a_batch(self, deployer: Deployer, model: Any, batch: Any,
                                                  tmp_path: Path) -> None:
        deployer.save(tmp_path / "m", model, input_type=self.input_type, name="m", version="1")
        predictor = load_model(tmp_path / "m")  # what the container does: check, import the loader, load
        outputs = list(predictor.predict(_as_received(batch)))
        assert len(outputs) == len(batch) >= 2
        assert not [o for o in outputs if isinstance(o, BaseException)], outputs
        expected = self.expected(model, batch)
        if expected is not None:
            self.assert_same_outputs(outputs, expected)
        assert len(predictor.predict(_as_received(batch[:1]))) == 1

    # -- deploy ---------------------------------------------------------------------------------------
    def _check_deployment(self, conn: RecordingConnection, batch: Any) -> None:
        [deployment] = conn.deployments
        args = DEPLOY_ARGS
        assert (deployment.name, deployment.version, deployment.input_type) == (
            args["name"], str(args["version"]), self.input_type)
        assert (deployment.base_image, deployment.labels, deployment.container_registry) == (
            args["base_image"], args["labels"], args["registry"])
        assert (deployment.num_replicas, deployment.batch_size, deployment.pkgs_to_install) == (
            args["num_replicas"], args["batch_size"], args["pkgs_to_install"])
        manifest = read_manifest(deployment.copy)
        assert (manifest["name"], manifest["version"], manifest["pkgs_to_install"]) == (
            args["name"], str(args["version"]), args["pkgs_to_install"])
        assert not Path(deployment.model_data_path).exists(), "the temporary model directory is removed"
        assert len(load_model(deployment.copy).predict(_as_received(batch))) == len(batch)

    def test_deploy_goes_through_build_and_deploy_model(self, deployer: Deployer, model: Any, batch: Any,
                                                        tmp_path: Path) -> None:
        conn = RecordingConnection(tmp_path / "kept")
        args = dict(DEPLOY_ARGS)
        deployer.deploy(conn, args.pop("name"), args.pop("version"), self.input_type, model, **args)
        self._check_deployment(conn, batch)

    def test_the_clipper_style_function_deploys_the_same_way(self, model: Any, batch: Any, tmp_path: Path) -> None:
        conn = RecordingConnection(tmp_path / "kept")
        if not self.deploy_with_clipper_api(conn, model, input_type=self.input_type, **DEPLOY_ARGS):
            pytest.skip("no Clipper-style deploy function")
        self._check_deployment(conn, batch)
