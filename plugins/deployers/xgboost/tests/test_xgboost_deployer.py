"""Real XGBoost models (trained here on scikit-learn's bundled digits data) deployed through the local manager
and queried over REST: the answers equal the same model called in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost
from clipper_container.manifest import IncompatibleModel, read_manifest, write_manifest
from clipper_deployer_xgboost import XGBoostDeployer, create_endpoint, deploy_xgboost_model
from clipper_deployer_xgboost.loader import load
from sklearn.datasets import load_digits

from clipper_core import ClipperConnection
from clipper_core.plugins import PluginRegistry
from clipper_core.testing import DeployerContract, ServerThread
from clipper_core.testing.deployer_contract import RecordingConnection
from clipper_core.testing.deployers import assert_imports_are_lazy, batch_outputs, served_cluster

X, Y = load_digits(return_X_y=True)
TRAIN, TEST = slice(0, 1500), slice(1500, 1520)


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    regression = xgboost.train({"objective": "reg:squarederror", "max_depth": 3, "nthread": 1},
                               xgboost.DMatrix(X[TRAIN], label=X[TRAIN].sum(axis=1)), num_boost_round=20)
    classifier = xgboost.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(X[TRAIN], Y[TRAIN])
    return {"booster": regression, "classifier": classifier}


@pytest.fixture(scope="module")
def served(models: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ServerThread, ClipperConnection]]:
    def deploy(conn: ClipperConnection) -> list[str]:
        create_endpoint(conn, "digit-sum", "floats", xgboost_model=models["booster"])
        create_endpoint(conn, "digit-class", "doubles", xgboost_model=models["classifier"])
        create_endpoint(conn, "digit-proba", "doubles", xgboost_model=models["classifier"], method="predict_proba",
                        sample_input=X[:3])
        return ["digit-sum", "digit-class", "digit-proba"]

    with served_cluster(tmp_path_factory.mktemp("clipper-home"), deploy) as cluster:
        yield cluster


def rows(a: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in a]


def test_booster_single_and_batch_equal_in_process(served: tuple[ServerThread, ClipperConnection],
                                                   models: dict[str, Any]) -> None:
    server, _ = served
    expected = models["booster"].inplace_predict(X[TEST].astype(np.float32))
    status, single = server.predict("digit-sum", {"input": rows(X[TEST])[0]})
    assert status == 200 and single["default"] is False, single
    assert single["output"] == pytest.approx(float(expected[0]), rel=1e-6)
    np.testing.assert_allclose(batch_outputs(server, "digit-sum", rows(X[TEST])), expected, rtol=1e-6)


def test_classifier_classes_and_probabilities(served: tuple[ServerThread, ClipperConnection],
                                              models: dict[str, Any]) -> None:
    server, _ = served
    clf = models["classifier"]
    assert batch_outputs(server, "digit-class", rows(X[TEST])) == clf.predict(X[TEST]).tolist()
    probabilities = batch_outputs(server, "digit-proba", rows(X[TEST]))
    np.testing.assert_allclose(probabilities, clf.predict_proba(X[TEST]), rtol=1e-6, atol=1e-7)
    status, single = server.predict("digit-proba", {"input": rows(X[TEST])[3]})
    assert status == 200
    np.testing.assert_allclose(single["output"], clf.predict_proba(X[TEST][3:4])[0], rtol=1e-6, atol=1e-7)


def test_an_input_of_the_wrong_length_fails_alone(served: tuple[ServerThread, ClipperConnection]) -> None:
    server, _ = served
    status, answer = server.predict("digit-class", {"input_batch": [rows(X[TEST])[0], [1.0]]})
    assert status == 200, answer
    assert [r["default"] for r in answer["batch_predictions"]] == [False, True]


def test_manifest_records_framework_and_json_format(models: dict[str, Any], tmp_path: Path) -> None:
    manifest = XGBoostDeployer().save(tmp_path, models["classifier"], input_type="doubles", method="predict_proba")
    assert {k: manifest[k] for k in ("deployer", "framework", "framework_version", "format", "model_file",
                                     "estimator", "method", "n_features")} == {
        "deployer": "xgboost", "framework": "xgboost", "framework_version": xgboost.__version__, "format": "json",
        "model_file": "model.json", "estimator": "XGBClassifier", "method": "predict_proba", "n_features": 64}
    assert "python" not in manifest  # nothing pickled: any Python can read it
    import json

    assert "learner" in json.loads((tmp_path / "model.json").read_text())  # XGBoost's JSON, not a pickle
    predictor = load(str(tmp_path))
    assert predictor.model.get_params()["n_jobs"] >= 1


def test_clipper_style_func_and_errors(models: dict[str, Any], tmp_path: Path) -> None:
    XGBoostDeployer().save(tmp_path / "f", models["booster"], input_type="doubles",
                           func=lambda booster, xs: [str(round(float(v), 3)) for v in booster.inplace_predict(xs)])
    manifest = read_manifest(tmp_path / "f")
    assert manifest["func_file"] == "func.pkl" and "cloudpickle" in manifest["requirements"] and manifest["python"]
    out = load(str(tmp_path / "f")).predict(X[TEST])
    assert out == [str(round(float(v), 3)) for v in models["booster"].inplace_predict(X[TEST])]
    with pytest.raises(TypeError, match=r"expected an xgboost\.Booster"):
        XGBoostDeployer().save(tmp_path / "x", object(), input_type="doubles")
    with pytest.raises(ValueError, match="without func only numeric inputs"):
        XGBoostDeployer().save(tmp_path / "s", models["booster"], input_type="bytes")
    with pytest.raises(TypeError, match="needs xgboost_model"):
        deploy_xgboost_model(None, "m", 1, "doubles")


def test_a_model_from_a_newer_xgboost_is_refused_clearly(models: dict[str, Any], tmp_path: Path) -> None:
    XGBoostDeployer().save(tmp_path, models["booster"], input_type="doubles", name="future")
    write_manifest(tmp_path, {**read_manifest(tmp_path), "framework_version": "99.1.0"})
    with pytest.raises(IncompatibleModel, match=r"'future' was saved with xgboost 99\.1\.0; this container has "
                                                r"xgboost .* install xgboost>=99\.1 in the container"):
        load(str(tmp_path))
    # an older release's model loads in a newer XGBoost
    write_manifest(tmp_path, {**read_manifest(tmp_path), "framework_version": "1.7.6"})
    assert len(load(str(tmp_path)).predict(X[TEST])) == 20


def test_registered_through_the_clipper_entry_point() -> None:
    assert PluginRegistry.create().deployers.get("xgboost") is XGBoostDeployer


def test_imports_are_lazy() -> None:
    """The container imports the loader without clipper-core; neither it nor plugin discovery imports
    xgboost (only loading a model does)."""
    assert_imports_are_lazy("clipper_deployer_xgboost.loader", "xgboost", ("xgboost",))


class TestXGBoostDeployerContract(DeployerContract):
    """The deployer contract on the trained XGBClassifier."""

    input_type = "doubles"

    @pytest.fixture
    def deployer(self) -> XGBoostDeployer:
        return XGBoostDeployer()

    @pytest.fixture
    def model(self, models: dict[str, Any]) -> Any:
        return models["classifier"]

    @pytest.fixture
    def batch(self) -> np.ndarray:
        return X[TEST][:5]

    def expected(self, model: Any, batch: Any) -> list[Any]:
        return list(model.predict(batch).tolist())

    def code_options(self, model: Any) -> dict[str, Any]:
        return {"func": lambda m, xs: m.predict(np.array(xs)).tolist()}

    def deploy_with_clipper_api(self, conn: RecordingConnection, model: Any, **args: Any) -> bool:
        deploy_xgboost_model(conn, xgboost_model=model, **args)
        return True


def test_make_current_false_deploys_a_version_that_takes_no_traffic(served: tuple[ServerThread, ClipperConnection],
                                                                   models: dict[str, Any]) -> None:
    server, conn = served
    deploy_xgboost_model(conn, "digit-sum", 2, "floats", xgboost_model=models["booster"], make_current=False)
    server.wait_replicas("digit-sum", "2", 1, timeout=90)
    assert conn.get_current_model_version("digit-sum") == "1"
    status, answer = server.predict("digit-sum", {"input": rows(X[TEST])[0], "version": "2"})
    assert status == 200 and answer["default"] is False, answer
