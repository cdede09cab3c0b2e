"""Real scikit-learn models (trained here on the bundled digits data) deployed through the local manager and
queried over REST: the answers equal the same estimator called in this process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clipper_container.manifest import IncompatibleModel, read_manifest, write_manifest
from clipper_deployer_sklearn import SklearnDeployer, create_endpoint, deploy_sklearn_model
from clipper_deployer_sklearn.loader import load
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from clipper_core import ClipperConnection
from clipper_core.plugins import PluginRegistry
from clipper_core.testing import DeployerContract, ServerThread
from clipper_core.testing.deployer_contract import RecordingConnection
from clipper_core.testing.deployers import assert_imports_are_lazy, batch_outputs, served_cluster

X, Y = load_digits(return_X_y=True)
TRAIN, TEST = slice(0, 1500), slice(1500, 1520)
TEXTS = ["good fine great", "bad awful poor", "great good", "poor bad", "fine good", "awful bad"]
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg"]


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X[TRAIN], Y[TRAIN]),
        "forest": RandomForestClassifier(n_estimators=10, random_state=0, n_jobs=-1).fit(X[TRAIN], Y[TRAIN]),
        "ridge": Ridge().fit(X[TRAIN], X[TRAIN].sum(axis=1)),
        "text": make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(TEXTS, LABELS),
    }


@pytest.fixture(scope="module")
def served(models: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ServerThread, ClipperConnection]]:
    """One server for the module, every model deployed up front so that the replicas start in parallel."""
    def deploy(conn: ClipperConnection) -> list[str]:
        create_endpoint(conn, "digits-proba", "doubles", sklearn_model=models["logreg"], method="predict_proba",
                        sample_input=X[:2])
        create_endpoint(conn, "digits-forest", "doubles", sklearn_model=models["forest"], format="joblib")
        create_endpoint(conn, "digits-sum", "doubles", sklearn_model=models["ridge"])
        create_endpoint(conn, "sentiment", "strings", sklearn_model=models["text"])
        conn.register_application("digits-closure", "doubles", "-1", 3000000)
        deploy_sklearn_model(conn, "digits-closure", 1, "doubles",
                             lambda model, xs: [f"class {c}" for c in model.predict(xs)], models["logreg"])
        conn.link_model_to_app("digits-closure", "digits-closure")
        return ["digits-proba", "digits-forest", "digits-sum", "sentiment", "digits-closure"]

    with served_cluster(tmp_path_factory.mktemp("clipper-home"), deploy) as cluster:
        yield cluster


def rows(a: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in a]


def test_predict_proba_single_and_batch_equal_in_process(served: tuple[ServerThread, ClipperConnection],
                                                         models: dict[str, Any]) -> None:
    server, _ = served
    inputs = rows(X[TEST])
    status, single = server.predict("digits-proba", {"input": inputs[0]})
    assert status == 200 and single["default"] is False, single
    expected = models["logreg"].predict_proba(X[TEST])
    np.testing.assert_allclose(single["output"], expected[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(batch_outputs(server, "digits-proba", inputs), expected, rtol=1e-9, atol=1e-12)


def test_classes_and_regression_are_numbers(served: tuple[ServerThread, ClipperConnection],
                                            models: dict[str, Any]) -> None:
    server, _ = served
    inputs = rows(X[TEST])
    assert batch_outputs(server, "digits-forest", inputs) == models["forest"].predict(X[TEST]).tolist()
    sums = batch_outputs(server, "digits-sum", inputs)
    assert all(isinstance(s, float) for s in sums)
    np.testing.assert_allclose(sums, models["ridge"].predict(X[TEST]), rtol=1e-9)


def test_strings_in_and_string_labels_out(served: tuple[ServerThread, ClipperConnection],
                                          models: dict[str, Any]) -> None:
    server, _ = served
    texts = ["great fine", "awful", "good good bad"]
    assert batch_outputs(server, "sentiment", texts) == models["text"].predict(texts).tolist()


def test_clipper_style_func_gets_the_model_and_the_batch(served: tuple[ServerThread, ClipperConnection],
                                                         models: dict[str, Any]) -> None:
    server, _ = served
    expected = [f"class {c}" for c in models["logreg"].predict(X[TEST])]
    assert batch_outputs(server, "digits-closure", rows(X[TEST])) == expected


def test_an_input_of_the_wrong_length_fails_alone(served: tuple[ServerThread, ClipperConnection],
                                                  models: dict[str, Any]) -> None:
    server, _ = served
    status, answer = server.predict("digits-sum", {"input_batch": [rows(X[TEST])[0], [1.0, 2.0, 3.0]]})
    assert status == 200, answer
    good, bad = answer["batch_predictions"]
    assert good["default"] is False
    assert good["output"] == pytest.approx(float(models["ridge"].predict(X[TEST][:1])[0]))
    assert bad["default"] is True, bad


def test_manifest_records_framework_format_and_trusted_types(models: dict[str, Any], tmp_path: Path) -> None:
    import sklearn
    import skops

    manifest = SklearnDeployer().save(tmp_path / "forest", models["forest"], input_type="doubles",
                                      method="predict_proba", name="f", version="3")
    assert read_manifest(tmp_path / "forest") == manifest
    assert {k: manifest[k] for k in ("deployer", "loader", "framework", "framework_version", "format",
                                     "format_version", "model_file", "method", "n_features", "name", "version")} == {
        "deployer": "sklearn", "loader": "clipper_deployer_sklearn.loader:load", "framework": "scikit-learn",
        "framework_version": sklearn.__version__, "format": "skops", "format_version": skops.__version__,
        "model_file": "model.skops", "method": "predict_proba", "n_features": 64, "name": "f", "version": "3"}
    assert manifest["skops_trusted"] == ["sklearn.tree._tree.Tree"]
    assert "python" not in manifest and set(manifest["requirements"]) == {"numpy"}  # no pickled code
    assert not (tmp_path / "forest" / "func.pkl").exists()
    predictor = load(str(tmp_path / "forest"))
    np.testing.assert_array_equal(predictor.predict(X[TEST]), models["forest"].predict_proba(X[TEST]))
    assert predictor.model.n_jobs >= 1  # n_jobs=-1 (every CPU of the host) sized down to the replica


def test_skops_refuses_types_not_recorded_at_save_time(models: dict[str, Any], tmp_path: Path) -> None:
    SklearnDeployer().save(tmp_path, models["forest"], input_type="doubles")
    manifest = read_manifest(tmp_path)
    write_manifest(tmp_path, {**manifest, "skops_trusted": []})
    with pytest.raises(Exception, match=r"sklearn\.tree\._tree\.Tree"):
        load(str(tmp_path))


def test_incompatible_scikit_learn_version_is_refused_clearly(models: dict[str, Any], tmp_path: Path) -> None:
    SklearnDeployer().save(tmp_path, models["ridge"], input_type="doubles", name="old")
    write_manifest(tmp_path, {**read_manifest(tmp_path), "framework_version": "0.24.2"})
    with pytest.raises(IncompatibleModel, match=r"saved with scikit-learn 0\.24\.2; this container has "
                                                r"scikit-learn \d+\.\d+.*install scikit-learn==0\.24\.\*"):
        load(str(tmp_path))
    # the container exits with "cannot be loaded" (4), which the local manager does not restart
    proc = subprocess.run([sys.executable, "-m", "clipper_container", "--model-dir", str(tmp_path), "--version", "1",
                           "--frontend", "tcp://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "saved with scikit-learn 0.24.2" in proc.stderr


def test_joblib_and_sample_input_and_wrong_method(models: dict[str, Any], tmp_path: Path) -> None:
    manifest = SklearnDeployer().save(tmp_path / "j", models["logreg"], input_type="doubles", format="joblib",
                                      sample_input=X[0])
    assert (manifest["format"], manifest["model_file"], manifest["sample_file"]) == (
        "joblib", "model.joblib", "sample_input.npy")
    assert load(str(tmp_path / "j")).predict(X[TEST]) == models["logreg"].predict(X[TEST]).tolist()
    with pytest.raises(TypeError, match="no method 'predict_proba'"):
        SklearnDeployer().save(tmp_path / "r", models["ridge"], input_type="doubles", method="predict_proba")
    with pytest.raises(ValueError, match="format must be one of"):
        SklearnDeployer().save(tmp_path / "p", models["ridge"], input_type="doubles", format="pickle")
    with pytest.raises(TypeError, match="needs sklearn_model"):
        deploy_sklearn_model(None, "m", 1, "doubles")
    json.dumps(manifest)


def test_registered_through_the_clipper_entry_point() -> None:
    assert PluginRegistry.create().deployers.get("sklearn") is SklearnDeployer


def test_imports_are_lazy() -> None:
    """The container imports the loader without clipper-core; neither it nor plugin discovery imports
    sklearn/skops (only loading a model does)."""
    assert_imports_are_lazy("clipper_deployer_sklearn.loader", "sklearn", ("sklearn", "skops"))


class TestSklearnDeployerContract(DeployerContract):
    """The deployer contract on a fitted pipeline (scaler + logistic regression)."""

    input_type = "doubles"

    @pytest.fixture
    def deployer(self) -> SklearnDeployer:
        return SklearnDeployer()

    @pytest.fixture
    def model(self, models: dict[str, Any]) -> Any:
        return models["logreg"]

    @pytest.fixture
    def batch(self) -> np.ndarray:
        return X[TEST][:5]

    def expected(self, model: Any, batch: Any) -> list[Any]:
        return list(model.predict(batch).tolist())

    def unsaveable(self) -> list[Any]:
        return [object(), "a string, not an estimator"]

    def code_options(self, model: Any) -> dict[str, Any]:
        return {"func": lambda m, xs: [f"class {c}" for c in m.predict(xs)]}

    def deploy_with_clipper_api(self, conn: RecordingConnection, model: Any, **args: Any) -> bool:
        deploy_sklearn_model(conn, sklearn_model=model, **args)
        return True


def test_the_thread_limit_holds_in_the_thread_that_predicts(models: dict[str, Any], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenMP's thread count is per thread: the container's worker thread, not the one that loaded the model,
    runs the batches, and gets the replica's limit the first time it predicts."""
    import threading

    from threadpoolctl import threadpool_info

    monkeypatch.setenv("CLIPPER_NUM_THREADS", "1")
    SklearnDeployer().save(tmp_path, models["logreg"], input_type="doubles", method="predict_proba")
    predictor = load(str(tmp_path))
    seen: list[dict[str, int]] = []

    def run() -> None:
        predictor.predict(X[TEST])
        seen.append({info["internal_api"]: info["num_threads"] for info in threadpool_info()})

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen and set(seen[0].values()) == {1}, seen


def test_a_received_frame_is_handed_to_the_estimator_without_a_copy(models: dict[str, Any], tmp_path: Path) -> None:
    from clipper_container.protocol import decode_inputs, encode_inputs

    SklearnDeployer().save(tmp_path, models["ridge"], input_type="doubles")
    predictor = load(str(tmp_path))
    header, buffers = encode_inputs(list(X[TEST].astype(np.float64)), np.dtype("<f8"))
    frame = bytearray(buffers[0].tobytes())
    seen: list[np.ndarray] = []
    predict = predictor._call
    predictor._call = lambda batch: seen.append(batch) or predict(batch)
    out = predictor.predict(decode_inputs(header, [frame]))
    np.testing.assert_allclose(out, models["ridge"].predict(X[TEST].astype(np.float64)))
    assert seen[0].flags.writeable and np.shares_memory(seen[0], np.frombuffer(frame, dtype="<f8"))


def test_make_current_false_deploys_a_version_that_takes_no_traffic(served: tuple[ServerThread, ClipperConnection],
                                                                   models: dict[str, Any]) -> None:
    server, conn = served
    deploy_sklearn_model(conn, "digits-sum", 2, "doubles", sklearn_model=models["ridge"], make_current=False)
    server.wait_replicas("digits-sum", "2", 1, timeout=90)
    assert conn.get_current_model_version("digits-sum") == "1"
    status, answer = server.predict("digits-sum", {"input": rows(X[TEST])[0], "version": "2"})
    assert status == 200 and answer["default"] is False, answer
    assert answer["output"] == pytest.approx(float(models["ridge"].predict(X[TEST][:1])[0]), rel=1e-6)
