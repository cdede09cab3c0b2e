"""Real Keras and TensorFlow models (trained here on scikit-learn's bundled digits data) deployed through the
local manager and queried over REST: the answers equal the same model called in this process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf
from clipper_container.manifest import IncompatibleModel, read_manifest, write_manifest
from clipper_deployer_tensorflow import (
    KerasDeployer,
    TensorFlowDeployer,
    create_endpoint,
    deploy_keras_model,
    deploy_tensorflow_model,
)
from clipper_deployer_tensorflow import keras as keras_deployer
from clipper_deployer_tensorflow.loader import load
from sklearn.datasets import load_digits

from clipper_core import ClipperConnection
from clipper_core.plugins import PluginRegistry
from clipper_core.testing import DeployerContract, ServerThread
from clipper_core.testing.deployer_contract import RecordingConnection
from clipper_core.testing.deployers import assert_imports_are_lazy, batch_outputs, served_cluster

# Keras's own conversion of TensorFlow tensors, in this process (not clipper's)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

X, Y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
TRAIN, TEST = slice(0, 1500), slice(1500, 1520)


class Affine(tf.Module):
    """A plain TensorFlow model (no Keras): y = x W + b, served through its signature."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.w = tf.Variable(rng.normal(size=(64, 3)).astype(np.float32))
        self.b = tf.Variable(np.arange(3, dtype=np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="x")])
    def __call__(self, x: Any) -> Any:
        return {"scores": tf.matmul(x, self.w) + self.b}


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    cnn = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                            keras.layers.Flatten(), keras.layers.Dense(10)])
    for model, inputs in ((mlp, X[TRAIN]), (cnn, X[TRAIN].reshape(-1, 8, 8, 1))):
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(inputs, Y[TRAIN], epochs=2, batch_size=100, verbose=0)
    return {"mlp": mlp, "cnn": cnn, "affine": Affine()}


@pytest.fixture(scope="module")
def served(models: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ServerThread, ClipperConnection]]:
    keras_file = tmp_path_factory.mktemp("keras") / "cnn.keras"
    models["cnn"].save(keras_file)

    def deploy(conn: ClipperConnection) -> list[str]:
        # Clipper's module and signature, no func: predict_on_batch, flat inputs reshaped to [8, 8, 1]
        keras_deployer.create_endpoint(conn, "digits-keras", "doubles", model_path_or_object=str(keras_file))
        # a SavedModel exported from a Keras model, and one from a plain tf.Module
        create_endpoint(conn, "digits-savedmodel", "floats", tf_sess_or_saved_model_path=models["mlp"])
        create_endpoint(conn, "affine", "floats", tf_sess_or_saved_model_path=models["affine"])
        # Clipper's func(model, inputs)
        conn.register_application("digits-keras-func", "floats", "-1", 3000000)
        deploy_keras_model(conn, "digits-keras-func", 1, "floats",
                           lambda model, xs: [int(c) for c in np.argmax(model.predict_on_batch(np.array(xs)), 1)],
                           models["mlp"])
        conn.link_model_to_app("digits-keras-func", "digits-keras-func")
        return ["digits-keras", "digits-savedmodel", "affine", "digits-keras-func"]

    with served_cluster(tmp_path_factory.mktemp("clipper-home"), deploy, timeout=120) as cluster:
        yield cluster


def rows(a: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in a]


def test_keras_cnn_single_and_batch_equal_in_process(served: tuple[ServerThread, ClipperConnection],
                                                     models: dict[str, Any]) -> None:
    server, _ = served
    expected = models["cnn"].predict_on_batch(X[TEST].reshape(-1, 8, 8, 1))
    status, single = server.predict("digits-keras", {"input": rows(X[TEST])[0]})
    assert status == 200 and single["default"] is False, single
    np.testing.assert_allclose(single["output"], expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch_outputs(server, "digits-keras", rows(X[TEST])), expected, rtol=1e-5, atol=1e-5)


def test_saved_models_equal_in_process(served: tuple[ServerThread, ClipperConnection],
                                       models: dict[str, Any]) -> None:
    server, _ = served
    np.testing.assert_allclose(batch_outputs(server, "digits-savedmodel", rows(X[TEST])),
                               models["mlp"].predict_on_batch(X[TEST]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch_outputs(server, "affine", rows(X[TEST])),
                               models["affine"](tf.constant(X[TEST]))["scores"].numpy(), rtol=1e-5, atol=1e-5)


def test_clipper_style_func(served: tuple[ServerThread, ClipperConnection], models: dict[str, Any]) -> None:
    server, _ = served
    expected = np.argmax(models["mlp"].predict_on_batch(X[TEST]), axis=1).tolist()
    assert batch_outputs(server, "digits-keras-func", rows(X[TEST])) == expected


def test_an_input_of_the_wrong_length_fails_alone(served: tuple[ServerThread, ClipperConnection]) -> None:
    server, _ = served
    status, answer = server.predict("digits-savedmodel", {"input_batch": [[0.5] * 3, rows(X[TEST])[0]]})
    assert status == 200, answer
    assert [r["default"] for r in answer["batch_predictions"]] == [True, False]


def test_manifests(models: dict[str, Any], tmp_path: Path) -> None:
    manifest = KerasDeployer().save(tmp_path / "k", models["cnn"], input_type="floats")
    assert {k: manifest[k] for k in ("deployer", "framework", "framework_version", "format", "model_file",
                                     "keras_backend", "tensorflow_version", "input_dtype", "n_features",
                                     "item_shape")} == {
        "deployer": "keras", "framework": "keras", "framework_version": keras.__version__, "format": "keras",
        "model_file": "model.keras", "keras_backend": "tensorflow", "tensorflow_version": tf.__version__,
        "input_dtype": "float32", "n_features": 64, "item_shape": [8, 8, 1]}
    assert "python" not in manifest
    manifest = TensorFlowDeployer().save(tmp_path / "t", models["affine"], input_type="floats")
    assert {k: manifest[k] for k in ("deployer", "framework", "format", "model_file", "signature", "input_key",
                                     "output_key", "n_features")} == {
        "deployer": "tensorflow", "framework": "tensorflow", "format": "saved_model", "model_file": "saved_model",
        "signature": "serving_default", "input_key": "x", "output_key": "scores", "n_features": 64}
    assert (tmp_path / "t" / "saved_model" / "saved_model.pb").is_file()
    # a SavedModel directory is copied as it is
    copied = TensorFlowDeployer().save(tmp_path / "c", tmp_path / "t" / "saved_model", input_type="floats")
    assert copied["output_key"] == "scores"
    np.testing.assert_allclose(load(str(tmp_path / "c")).predict(X[TEST]),
                               models["affine"](tf.constant(X[TEST]))["scores"].numpy(), rtol=1e-6, atol=1e-6)


def test_save_errors(models: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only numeric inputs"):
        KerasDeployer().save(tmp_path, models["mlp"], input_type="strings")
    with pytest.raises(TypeError, match=r"expected a keras\.Model"):
        KerasDeployer().save(tmp_path, object(), input_type="floats")
    with pytest.raises(ValueError, match="not a SavedModel directory"):
        TensorFlowDeployer().save(tmp_path / "x", tmp_path, input_type="floats")
    with pytest.raises(ValueError, match="has no signature 'predict'"):
        TensorFlowDeployer().save(tmp_path / "s", models["affine"], input_type="floats", signature="predict")


def test_an_incompatible_keras_is_refused_clearly(models: dict[str, Any], tmp_path: Path) -> None:
    KerasDeployer().save(tmp_path, models["mlp"], input_type="floats", name="mlp")
    write_manifest(tmp_path, {**read_manifest(tmp_path), "framework_version": "2.15.0"})
    with pytest.raises(IncompatibleModel, match=r"'mlp' was saved with keras 2\.15\.0; this container has keras 3"):
        load(str(tmp_path))


def test_registered_through_the_clipper_entry_point() -> None:
    registry = PluginRegistry.create()
    assert registry.deployers.get("keras") is KerasDeployer
    assert registry.deployers.get("tensorflow") is TensorFlowDeployer


def test_imports_are_lazy() -> None:
    """The container imports the loader without clipper-core; neither it nor plugin discovery imports
    tensorflow/keras (only loading a model does)."""
    assert_imports_are_lazy("clipper_deployer_tensorflow.loader", "keras", ("tensorflow", "keras"))


class TestKerasDeployerContract(DeployerContract):
    """The deployer contract on the trained Keras MLP, saved as ``.keras``."""

    input_type = "floats"

    @pytest.fixture
    def deployer(self) -> KerasDeployer:
        return KerasDeployer()

    @pytest.fixture
    def model(self, models: dict[str, Any]) -> Any:
        return models["mlp"]

    @pytest.fixture
    def batch(self) -> np.ndarray:
        return X[TEST][:5]

    def expected(self, model: Any, batch: Any) -> list[Any]:
        return list(np.asarray(model.predict_on_batch(batch)).tolist())

    def code_options(self, model: Any) -> dict[str, Any]:
        return {"func": lambda m, xs: [int(c) for c in np.argmax(m.predict_on_batch(np.array(xs)), 1)]}

    def deploy_with_clipper_api(self, conn: RecordingConnection, model: Any, **args: Any) -> bool:
        deploy_keras_model(conn, model_path_or_object=model, **args)
        return True


class TestTensorFlowDeployerContract(DeployerContract):
    """The deployer contract on a plain ``tf.Module`` saved as a SavedModel, called through its signature."""

    input_type = "floats"

    @pytest.fixture
    def deployer(self) -> TensorFlowDeployer:
        return TensorFlowDeployer()

    @pytest.fixture
    def model(self, models: dict[str, Any]) -> Any:
        return models["affine"]

    @pytest.fixture
    def batch(self) -> np.ndarray:
        return X[TEST][:5]

    def expected(self, model: Any, batch: Any) -> list[Any]:
        return list(model(tf.constant(batch))["scores"].numpy().tolist())

    def code_options(self, model: Any) -> dict[str, Any]:
        return {"func": lambda m, xs: m.signatures["serving_default"](x=tf.constant(np.array(xs)))["scores"]
                .numpy().tolist()}

    def deploy_with_clipper_api(self, conn: RecordingConnection, model: Any, **args: Any) -> bool:
        deploy_tensorflow_model(conn, tf_sess_or_saved_model_path=model, **args)
        return True


def test_make_current_false_deploys_a_version_that_takes_no_traffic(served: tuple[ServerThread, ClipperConnection],
                                                                   models: dict[str, Any]) -> None:
    server, conn = served
    deploy_keras_model(conn, "digits-keras-func", 2, "floats", model_path_or_object=models["mlp"],
                       make_current=False)
    deploy_tensorflow_model(conn, "affine", 2, "floats", tf_sess_or_saved_model_path=models["affine"],
                            make_current=False)
    for name in ("digits-keras-func", "affine"):
        server.wait_replicas(name, "2", 1, timeout=120)
        assert conn.get_current_model_version(name) == "1"
        status, answer = server.predict(name, {"input": rows(X[TEST])[0], "version": "2"})
        assert status == 200 and answer["default"] is False, answer
