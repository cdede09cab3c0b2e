"""``clipper deploy MODEL_FILE --deployer NAME``: tiny real models of each framework the test venv has (each test
skips without its framework), saved to files, deployed from the command line through the plugin registry's
deployers onto a real server, each answering a prediction as the framework itself does; and ``clipper deploy
--help`` listing the installed deployers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipper_core.cli import main
from clipper_core.plugins import PluginRegistry
from clipper_core.testing import ServerThread
from tests.conftest import Run

X = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]




def deploy_and_predict(cli: Run, server: ServerThread, home: Path, model: Path, *flags: str) -> list[Any]:
    """Register app ``m``, deploy ``model`` as ``m:1`` linked to it, and answer :data:`X` (no default output)."""
    where = ["--home", str(home)]
    code, out, err = cli("register", "m", *where, "--input-type", "doubles", "--slo-micros", "20000000")
    assert (code, err) == (0, ""), err
    code, out, err = cli("deploy", str(model), *where, "--name", "m", "--version", "1", "--input-type", "doubles",
                         "--app", "m", *flags)
    assert (code, err) == (0, ""), err
    assert out == "deployed m:1 with 1 replica(s), linked to m\n"
    assert server.connected_replicas("m", "1") == 1  # deploy waited for it
    status, answer = server.predict("m", {"input_batch": X})
    assert status == 200, answer
    assert not any(p["default"] for p in answer["batch_predictions"]), answer
    return [p["output"] for p in answer["batch_predictions"]]


def test_help_lists_the_installed_deployers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    text = capsys.readouterr().out
    assert "installed deployers (--deployer; third-party deployer plugins appear here once installed):" in text
    for name in PluginRegistry.create().deployers.names():  # whatever deployer plugin is installed is listed
        assert f"\n  {name} " in text
    assert "  python_closure   FILE.py:FUNCTION  (clipper-core (python_closure))" in text
    assert "  sklearn          .skops, .joblib, .pkl  (clipper-deployer-sklearn)" in text


def test_sklearn_skops_file(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path, cli: Run) -> None:
    pytest.importorskip("sklearn")
    skops_io = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    data = rng.normal(size=(60, 3))
    clf = LogisticRegression().fit(data, (data[:, 0] + data[:, 2] > 0).astype(int))
    path = tmp_path / "model.skops"
    skops_io.dump(clf, path)
    outputs = deploy_and_predict(cli, clipper_server, clipper_home, path, "--deployer", "sklearn",
                                 "--option", "method=predict_proba")
    assert np.allclose(outputs, clf.predict_proba(np.array(X)))


def test_xgboost_json_file(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path, cli: Run) -> None:
    xgboost = pytest.importorskip("xgboost")
    rng = np.random.default_rng(1)
    data = rng.normal(size=(80, 3))
    model = xgboost.XGBRegressor(n_estimators=4, max_depth=2).fit(data, data[:, 0] * 2 - data[:, 1])
    path = tmp_path / "model.json"
    model.save_model(path)
    outputs = deploy_and_predict(cli, clipper_server, clipper_home, path)  # .json: the xgboost deployer's
    assert np.allclose(outputs, model.predict(np.array(X)), atol=1e-5)


def test_pytorch_export_file(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path, cli: Run) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    program = torch.export.export(net, (torch.zeros(2, 3),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "model.pt2"
    torch.export.save(program, path)
    outputs = deploy_and_predict(cli, clipper_server, clipper_home, path, "--deployer", "pytorch")
    with torch.no_grad():
        expected = net(torch.tensor(X, dtype=torch.float32)).numpy()
    assert np.allclose(outputs, expected, atol=1e-5)


def test_keras_file(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path, cli: Run) -> None:
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    path = tmp_path / "model.keras"
    model.save(path)
    outputs = deploy_and_predict(cli, clipper_server, clipper_home, path, "--deployer", "keras")
    assert np.allclose(outputs, model.predict_on_batch(np.array(X, dtype=np.float32)), atol=1e-5)


def test_tensorflow_saved_model_directory(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path,
                                          cli: Run) -> None:
    tf = pytest.importorskip("tensorflow")

    class Affine(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([[1.0], [2.0], [-1.0]], dtype=tf.float64)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float64)])
        def __call__(self, x: Any) -> Any:
            return tf.matmul(x, self.w) + 0.5

    module = Affine()
    path = tmp_path / "saved"
    tf.saved_model.save(module, str(path))
    outputs = deploy_and_predict(cli, clipper_server, clipper_home, path)  # a directory: the tensorflow deployer's
    assert np.allclose(np.ravel(outputs), np.array(X) @ np.array([1.0, 2.0, -1.0]) + 0.5)


def test_wrong_or_unknown_files_are_refused(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path,
                                            cli: Run) -> None:
    where = ["--home", str(clipper_home)]
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\0")
    common = ["--name", "m", "--version", "1", "--input-type", "doubles", *where]
    assert cli("deploy", str(weights), *common) == (
        1, "", "clipper: error: no installed deployer takes a .bin file; name one with --deployer\n")
    assert cli("deploy", str(weights), "--deployer", "sklearn", *common) == (
        1, "", "clipper: error: deployer 'sklearn' does not take weights.bin; it takes .skops, .joblib, .pkl\n")
    assert cli("deploy", str(tmp_path / "gone.skops"), *common) == (
        1, "", f"clipper: error: no such file or directory: {tmp_path / 'gone.skops'} (expected FILE.py:FUNCTION "
               "or a model file)\n")
    assert cli("deploy", str(weights), "--option", "no-equals", *common) == (
        1, "", "clipper: error: --option 'no-equals': expected KEY=VALUE, e.g. method=predict_proba\n")


def test_a_clipper_file_deploys_a_framework_file(clipper_server: ServerThread, clipper_home: Path, tmp_path: Path,
                                                 cli: Run) -> None:
    pytest.importorskip("sklearn")
    skops_io = pytest.importorskip("skops.io")
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(2)
    data = rng.normal(size=(30, 3))
    reg = LinearRegression().fit(data, data @ np.array([1.0, -2.0, 0.5]))
    skops_io.dump(reg, tmp_path / "reg.skops")
    file = tmp_path / "clipper.yaml"
    file.write_text("applications:\n  - {name: m, input_type: doubles, slo_micros: 20000000}\n"
                    "models:\n  - {name: m, version: 1, input_type: doubles, file: reg.skops}\n"
                    "links:\n  - {app: m, model: m}\n")
    code, out, err = cli("apply", "--home", str(clipper_home), "-f", str(file))
    assert (code, err) == (0, ""), err
    assert f"+ model m:1: deploy file {tmp_path / 'reg.skops'} with sklearn, 1 replica(s)" in out.splitlines()
    status, answer = clipper_server.predict("m", {"input_batch": X})
    assert status == 200 and np.allclose([p["output"] for p in answer["batch_predictions"]], reg.predict(np.array(X)))
    assert "no changes" in cli("apply", "--home", str(clipper_home), "-f", str(file))[1]
