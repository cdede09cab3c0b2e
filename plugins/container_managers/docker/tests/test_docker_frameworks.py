"""Framework deployers in Docker mode (issue 7): a scikit-learn and a PyTorch model, trained here on
scikit-learn's bundled digits data, deployed with their deployers onto a DockerContainerManager. The model
images are built FROM clipper/model-sklearn and clipper/model-pytorch (``build.sh sklearn pytorch``), chosen
from the model directory's manifest; the answers through the published query port equal the in-process ones."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import docker
import numpy as np
import pytest
import torch
from clipper_deployer_pytorch import create_endpoint as create_torch_endpoint
from clipper_deployer_sklearn import create_endpoint as create_sklearn_endpoint
from clipper_docker.names import framework_image
from docker_test_helpers import Make, predict
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn

from clipper_core import ClipperConnection

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[4]
X, Y = load_digits(return_X_y=True)
X = X / 16.0
TRAIN, TEST = slice(0, 1500), slice(1500, 1512)


@pytest.fixture(scope="module")
def framework_images(docker_host: str, clipper_images: dict[str, float], docker_client: docker.DockerClient
                     ) -> dict[str, float]:
    started = time.monotonic()
    done = subprocess.run(["bash", str(REPO / "containers" / "docker" / "build.sh"), "sklearn", "pytorch"],
                          capture_output=True, text=True, timeout=1500, env={**os.environ, "DOCKER_HOST": docker_host})
    assert done.returncode == 0, f"build.sh sklearn pytorch failed:\n{done.stderr[-4000:]}"
    for deployer in ("sklearn", "pytorch"):
        docker_client.images.get(framework_image(deployer))
    return {"build_seconds": time.monotonic() - started}


def outputs(conn: ClipperConnection, app: str, batch: np.ndarray) -> list[list[float]]:
    status, answer = predict(conn.cm, app, {"input_batch": batch.tolist()}, timeout=30)  # type: ignore[arg-type]
    assert status == 200, answer
    assert not any(p["default"] for p in answer["batch_predictions"]), answer
    return [p["output"] for p in answer["batch_predictions"]]


def single(conn: ClipperConnection, app: str, row: np.ndarray) -> list[float]:
    status, answer = predict(conn.cm, app, {"input": row.tolist()}, timeout=30)  # type: ignore[arg-type]
    assert status == 200 and answer["default"] is False, answer
    return list(answer["output"])


def test_sklearn_and_pytorch_models_in_docker_answer_as_in_process(make_manager: Make,
                                                                    framework_images: dict[str, float]) -> None:
    classifier = LogisticRegression(max_iter=300).fit(X[TRAIN], Y[TRAIN])
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(mlp.parameters(), lr=0.01)
    inputs, labels = torch.from_numpy(X[TRAIN]).float(), torch.from_numpy(Y[TRAIN])
    for _ in range(30):
        optimizer.zero_grad()
        nn.functional.cross_entropy(mlp(inputs), labels).backward()
        optimizer.step()
    mlp.eval()

    manager = make_manager("frameworks")
    conn = ClipperConnection(manager)
    conn.start_clipper()
    create_sklearn_endpoint(conn, "digits-sklearn", "doubles", sklearn_model=classifier, method="predict_proba")
    create_torch_endpoint(conn, "digits-torch", "floats", pytorch_model=mlp)
    replicas = {c.labels["ai.clipper.model.name"]: c for c in manager.client.containers.list(
        filters={"label": [f"ai.clipper.container.label={manager.cluster}", "ai.clipper.role=model"]})}
    assert set(replicas) == {"digits-sklearn", "digits-torch"}
    for app, deployer in (("digits-sklearn", "sklearn"), ("digits-torch", "pytorch")):  # built FROM its framework
        base = manager.client.images.get(framework_image(deployer)).id
        assert base in {layer["Id"] for layer in replicas[app].image.history()}, (app, deployer)

    expected = classifier.predict_proba(X[TEST])
    np.testing.assert_allclose(outputs(conn, "digits-sklearn", X[TEST]), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(single(conn, "digits-sklearn", X[TEST][0]), expected[0], rtol=1e-9, atol=1e-12)
    with torch.no_grad():
        logits = mlp(torch.from_numpy(X[TEST]).float()).numpy()
    np.testing.assert_allclose(outputs(conn, "digits-torch", X[TEST].astype(np.float32)), logits, rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(single(conn, "digits-torch", X[TEST][0].astype(np.float32)), logits[0], rtol=1e-4,
                               atol=1e-5)
    print(f"framework images built in {framework_images['build_seconds']:.0f} s")
    conn.stop_all()
