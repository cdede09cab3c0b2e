"""Real PyTorch models (trained here on scikit-learn's bundled digits data) deployed through the local manager
and queried over REST: the answers equal the same module called in this process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from clipper_container.manifest import IncompatibleModel, read_manifest, write_manifest
from clipper_deployer_pytorch import PyTorchDeployer, create_endpoint, deploy_pytorch_model
from clipper_deployer_pytorch.loader import load
from sklearn.datasets import load_digits
from torch import nn

from clipper_core import ClipperConnection
from clipper_core.plugins import PluginRegistry
from clipper_core.testing import DeployerContract, ServerThread
from clipper_core.testing.deployer_contract import RecordingConnection
from clipper_core.testing.deployers import assert_imports_are_lazy, batch_outputs, served_cluster

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

X, Y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
TRAIN, TEST = slice(0, 1500), slice(1500, 1520)


def train(model: nn.Module, inputs: torch.Tensor, epochs: int = 30) -> nn.Module:
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    labels = torch.from_numpy(Y[TRAIN])
    for _ in range(epochs):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    flat = torch.from_numpy(X[TRAIN])
    return {"mlp": train(mlp, flat), "cnn": train(cnn, flat.reshape(-1, 1, 8, 8), epochs=10)}


def in_process(model: nn.Module, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(inputs)).numpy()


@pytest.fixture(scope="module")
def served(models: dict[str, nn.Module], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ServerThread, ClipperConnection]]:
    def deploy(conn: ClipperConnection) -> list[str]:
        # the common case: no func, no sample (the first Linear layer says the input is 64 floats)
        create_endpoint(conn, "digits-mlp", "floats", pytorch_model=models["mlp"])
        # a CNN: flat inputs of 64 doubles reshaped to [1, 8, 8], traced on a sample batch in that shape
        create_endpoint(conn, "digits-cnn", "doubles", pytorch_model=models["cnn"],
                        sample_input=X[:4].reshape(-1, 1, 8, 8))
        # Clipper's signature: func(model, inputs) with a TorchScript module
        conn.register_application("digits-argmax", "floats", "-1", 3000000)
        deploy_pytorch_model(conn, "digits-argmax", 1, "floats",
                             lambda model, xs: model(torch.from_numpy(np.array(xs))).argmax(dim=1).tolist(),
                             models["mlp"], format="torchscript")
        conn.link_model_to_app("digits-argmax", "digits-argmax")
        return ["digits-mlp", "digits-cnn", "digits-argmax"]

    with served_cluster(tmp_path_factory.mktemp("clipper-home"), deploy) as cluster:
        yield cluster


def rows(a: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in a]


def test_mlp_single_and_batch_equal_in_process(served: tuple[ServerThread, ClipperConnection],
                                               models: dict[str, nn.Module]) -> None:
    server, _ = served
    expected = in_process(models["mlp"], X[TEST])
    status, single = server.predict("digits-mlp", {"input": rows(X[TEST])[0]})
    assert status == 200 and single["default"] is False, single
    np.testing.assert_allclose(single["output"], expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch_outputs(server, "digits-mlp", rows(X[TEST])), expected, rtol=1e-5, atol=1e-5)


def test_cnn_reshapes_flat_inputs(served: tuple[ServerThread, ClipperConnection],
                                  models: dict[str, nn.Module]) -> None:
    server, _ = served
    expected = in_process(models["cnn"], X[TEST].reshape(-1, 1, 8, 8))
    np.testing.assert_allclose(batch_outputs(server, "digits-cnn", rows(X[TEST])), expected, rtol=1e-5, atol=1e-5)


def test_clipper_style_func_with_torchscript(served: tuple[ServerThread, ClipperConnection],
                                             models: dict[str, nn.Module]) -> None:
    server, _ = served
    expected = in_process(models["mlp"], X[TEST]).argmax(axis=1).tolist()
    assert batch_outputs(server, "digits-argmax", rows(X[TEST])) == expected


def test_an_input_of_the_wrong_length_fails_alone(served: tuple[ServerThread, ClipperConnection]) -> None:
    server, _ = served
    status, answer = server.predict("digits-mlp", {"input_batch": [rows(X[TEST])[0], [0.5] * 10]})
    assert status == 200, answer
    assert [r["default"] for r in answer["batch_predictions"]] == [False, True]


def test_manifest_and_local_load(models: dict[str, nn.Module], tmp_path: Path) -> None:
    manifest = PyTorchDeployer().save(tmp_path, models["cnn"], input_type="doubles", input_shape=(1, 8, 8),
                                      name="cnn", version="2")
    assert {k: manifest[k] for k in ("deployer", "framework", "framework_version", "format", "model_file",
                                     "input_dtype", "n_features", "item_shape")} == {
        "deployer": "pytorch", "framework": "torch", "framework_version": torch.__version__, "format": "export",
        "model_file": "model.pt2", "input_dtype": "float32", "n_features": 64, "item_shape": [1, 8, 8]}
    assert "python" not in manifest and not (tmp_path / "func.pkl").exists()
    predictor = load(str(tmp_path))
    batch = X[TEST].astype(np.float64)
    batch.flags.writeable = False  # as the container hands it over
    np.testing.assert_allclose(predictor.predict(batch), in_process(models["cnn"], X[TEST].reshape(-1, 1, 8, 8)),
                               rtol=1e-5, atol=1e-5)
    ragged = [X[1500], X[1501, :10], X[1502]]
    out = predictor.predict(ragged)
    assert isinstance(out[1], ValueError) and "64 values, got 10" in str(out[1])
    np.testing.assert_allclose([out[0], out[2]], in_process(models["cnn"], X[[1500, 1502]].reshape(-1, 1, 8, 8)),
                               rtol=1e-5, atol=1e-5)
    assert torch.get_num_threads() >= 1


def test_saving_needs_a_shape_when_the_module_does_not_say(tmp_path: Path) -> None:
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(ValueError, match=r"torch\.export needs an example input: pass sample_input"):
        PyTorchDeployer().save(tmp_path, cnn, input_type="floats")
    with pytest.raises(TypeError, match=r"expected a torch\.nn\.Module"):
        PyTorchDeployer().save(tmp_path, object(), input_type="floats")
    with pytest.raises(ValueError, match="without func only numeric inputs"):
        PyTorchDeployer().save(tmp_path, nn.Linear(3, 2), input_type="strings")
    with pytest.raises(TypeError, match="needs pytorch_model"):
        deploy_pytorch_model(None, "m", 1, "floats")
    mlp = nn.Sequential(nn.Linear(3, 2)).train()
    PyTorchDeployer().save(tmp_path / "t", mlp, input_type="floats")
    assert mlp.training  # saved in eval mode, handed back as it was


def test_an_incompatible_torch_is_refused_clearly(models: dict[str, nn.Module], tmp_path: Path) -> None:
    PyTorchDeployer().save(tmp_path, models["mlp"], input_type="floats", name="mlp")
    write_manifest(tmp_path, {**read_manifest(tmp_path), "framework_version": "2.99.0"})
    with pytest.raises(IncompatibleModel, match=r"'mlp' was saved with torch 2\.99\.0; this container has torch 2\.\d+"
                                                r".*install torch>=2\.99,<3 in the container"):
        load(str(tmp_path))


def test_registered_through_the_clipper_entry_point() -> None:
    assert PluginRegistry.create().deployers.get("pytorch") is PyTorchDeployer


def test_imports_are_lazy() -> None:
    """The container imports the loader without clipper-core; neither it nor plugin discovery imports
    torch (only loading a model does)."""
    assert_imports_are_lazy("clipper_deployer_pytorch.loader", "pytorch", ("torch",))


class TestPyTorchDeployerContract(DeployerContract):
    """The deployer contract on the trained MLP, saved with torch.export (no sample: its first Linear layer
    says what it takes)."""

    input_type = "floats"

    @pytest.fixture
    def deployer(self) -> PyTorchDeployer:
        return PyTorchDeployer()

    @pytest.fixture
    def model(self, models: dict[str, nn.Module]) -> nn.Module:
        return models["mlp"]

    @pytest.fixture
    def batch(self) -> np.ndarray:
        return X[TEST][:5]

    def expected(self, model: Any, batch: Any) -> list[Any]:
        return list(in_process(model, batch).tolist())

    def code_options(self, model: Any) -> dict[str, Any]:
        return {"func": lambda m, xs: m(torch.from_numpy(np.array(xs))).argmax(dim=1).tolist(),
                "format": "torchscript"}

    def deploy_with_clipper_api(self, conn: RecordingConnection, model: Any, **args: Any) -> bool:
        deploy_pytorch_model(conn, pytorch_model=model, **args)
        return True


def test_an_export_program_runs_lean_and_equals_the_checked_module(models: dict[str, nn.Module], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPPER_NUM_THREADS", "1")
    PyTorchDeployer().save(tmp_path, models["cnn"], input_type="doubles", input_shape=(1, 8, 8))
    predictor = load(str(tmp_path))
    assert predictor.fast is not None and predictor.threads == 1
    x = torch.from_numpy(X[TEST].reshape(-1, 1, 8, 8))
    with torch.inference_mode():
        torch.testing.assert_close(predictor.fast(x), predictor.model(x))
        lean = predictor.fast.module  # type: ignore[attr-defined]
        # the same parameters, not a copy; no pytree, input checks or hooks on the way
        assert [p.data_ptr() for p in lean.parameters()] == [p.data_ptr() for p in predictor.model.parameters()]
        assert not lean._forward_pre_hooks and "tree_flatten" not in lean.code
    np.testing.assert_allclose(predictor.predict(X[TEST].astype(np.float64)), in_process(
        models["cnn"], X[TEST].reshape(-1, 1, 8, 8)), rtol=1e-5, atol=1e-5)


def test_a_failure_in_the_lean_module_is_told_by_the_checked_one(models: dict[str, nn.Module],
                                                                 tmp_path: Path) -> None:
    PyTorchDeployer().save(tmp_path, models["mlp"], input_type="floats")
    predictor = load(str(tmp_path))

    def broken(x: Any) -> Any:
        raise RuntimeError("lean")

    predictor.fast = broken  # the checked module answers instead
    np.testing.assert_allclose(predictor.predict(X[TEST]), in_process(models["mlp"], X[TEST]), rtol=1e-5, atol=1e-5)
    predictor.n_features = None  # a wrong width now reaches torch: the checked module's error, not the lean one's
    with pytest.raises((AssertionError, RuntimeError, ValueError)) as info:  # the container fails the batch
        predictor.predict(np.ones((1, 10), dtype=np.float32))
    assert "lean" not in str(info.value)


def test_a_received_frame_of_the_models_dtype_reaches_torch_without_a_copy(models: dict[str, nn.Module],
                                                                           tmp_path: Path) -> None:
    from clipper_container.protocol import decode_inputs, encode_inputs

    PyTorchDeployer().save(tmp_path, models["mlp"], input_type="floats")
    predictor = load(str(tmp_path))
    header, buffers = encode_inputs(list(X[TEST]), np.dtype(np.float32))
    frame = bytearray(buffers[0].tobytes())  # a received frame: writable memory the container owns
    batch = decode_inputs(header, [frame])
    assert not batch.flags.writeable
    seen: list[Any] = []
    predictor.fast = lambda x: seen.append(x) or predictor.model(x)
    np.testing.assert_allclose(predictor.predict(batch), in_process(models["mlp"], X[TEST]), rtol=1e-5, atol=1e-5)
    assert seen[0].data_ptr() == np.frombuffer(frame, dtype=np.float32).__array_interface__["data"][0]


THREADS_SCRIPT = """
import os, sys, threading
import numpy as np
from clipper_deployer_pytorch.loader import load
predictor = load(sys.argv[1])  # with CLIPPER_NUM_THREADS=1, in the main thread
before = len(os.listdir("/proc/self/task"))
counts = []
def run():
    for _ in range(20):
        predictor.predict(np.ones((8, 64), dtype=np.float32))
    counts.append(len(os.listdir("/proc/self/task")))
worker = threading.Thread(target=run)
worker.start()
worker.join()
print(before, counts[0])
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2, reason="needs Linux, 2 CPUs")
def test_batches_in_another_thread_run_on_the_replicas_threads_only(models: dict[str, nn.Module],
                                                                     tmp_path: Path) -> None:
    """OpenMP's thread count is per thread: the container's worker thread, not the one that loaded the model,
    must not start a team of every CPU (whose idle members spin). A fresh process, so that no earlier test
    started the team already."""
    PyTorchDeployer().save(tmp_path, models["mlp"], input_type="floats")
    env = {**os.environ, "CLIPPER_NUM_THREADS": "1"}
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", THREADS_SCRIPT, str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    before, during = int(out[-2]), int(out[-1])
    assert during == before + 1, f"{before} threads before, {during} while a batch ran in one more thread"


def test_make_current_false_deploys_a_version_that_takes_no_traffic(served: tuple[ServerThread, ClipperConnection],
                                                                   models: dict[str, nn.Module]) -> None:
    server, conn = served
    deploy_pytorch_model(conn, "digits-mlp", 2, "floats", pytorch_model=models["mlp"], make_current=False)
    server.wait_replicas("digits-mlp", "2", 1, timeout=90)
    assert conn.get_current_model_version("digits-mlp") == "1"
    status, answer = server.predict("digits-mlp", {"input": rows(X[TEST])[0], "version": "2"})
    assert status == 200 and answer["default"] is False, answer
