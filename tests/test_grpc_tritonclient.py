"""NVIDIA's ``tritonclient.grpc`` against clipper's V2 gRPC endpoint, called as a user calls it: numpy inputs
through ``InferInput.set_data_from_numpy`` (raw_input_contents), ``InferResult.as_numpy``, the health and metadata
calls, version routing and errors as ``InferenceServerException`` with the REST API's message.

The client runs in a process of its own, as a user's would: tritonclient's generated modules and clipper's
(which the server in this process has loaded) both define the protobuf package ``inference``, and one Python
process cannot hold two definitions of it (protobuf's default descriptor pool refuses the second).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clipper_core.testing import ServerThread
from tests import models
from tests.conftest import Deploy

CLIENT = r'''
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

client = grpcclient.InferenceServerClient(sys.argv[1])
out = {"live": client.is_server_live(), "ready": client.is_server_ready(),
       "model_ready": client.is_model_ready("d"), "server": client.get_server_metadata(as_json=True),
       "metadata": client.get_model_metadata("d", as_json=True)}

def infer(model, array, datatype, **kw):
    tensor = grpcclient.InferInput("input", list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    result = client.infer(model, inputs=[tensor], outputs=[grpcclient.InferRequestedOutput("output")], **kw)
    output = result.get_output("output")
    values = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("output").tolist()]
    return {"values": values, "datatype": output.datatype,
            "params": {k: json.loads(v.string_param) for k, v in output.parameters.items()},
            "version": result.get_response().model_version, "id": result.get_response().id}

doubles = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])
out["d"] = infer("d", doubles, "FP64", request_id="r1")
out["f"] = infer("f", doubles.astype(np.float32), "FP32")
out["i"] = infer("i", np.array([[1, 2], [3, 4]]), "INT64")  # numpy's default integers
out["s"] = infer("s", np.array([b"ab", "h\u00e9llo".encode()], dtype=np.object_), "BYTES")
out["u"] = infer("u", np.array([b"ab", b"cd"], dtype=np.object_), "BYTES")
out["v1"] = infer("v", doubles[:1], "FP64", model_version="1")
out["v"] = infer("v", doubles[:1], "FP64")
errors = {}
for name, call in {"unknown model": lambda: infer("nope", doubles, "FP64"),
                   "bad datatype": lambda: infer("d", doubles.astype(np.float32), "FP32"),
                   "unknown version": lambda: infer("v", doubles[:1], "FP64", model_version="9"),
                   "metadata of an unknown model": lambda: client.get_model_metadata("nope")}.items():
    try:
        call()
    except InferenceServerException as exc:
        errors[name] = {"status": exc.status(), "message": exc.message()}
out["errors"] = errors
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    home = tmp_path_factory.mktemp("grpc-triton")
    with ServerThread(home, grpc_port=0) as server:
        deploy = Deploy(server, Path(home))
        deploy.app("d", input_type="doubles")
        deploy.app("f", input_type="floats")
        deploy.app("i", input_type="integers")
        deploy.app("s", input_type="strings")
        deploy.app("u", input_type="strings", default_output="")
        deploy.app("v", input_type="doubles")
        deploy("dsum", 1, models.float_sum, app="d")
        deploy("fsum", 1, models.float_sum, input_type="floats", app="f")
        deploy("isum", 1, models.float_sum, input_type="integers", app="i")
        deploy("slen", 1, models.length_model, input_type="strings", app="s")
        deploy("upper", 1, models.echo_strings, input_type="strings", app="u")
        deploy("ver", 1, models.version_one, app="v")
        deploy("ver", 2, models.version_two)
        yield server


@pytest.fixture(scope="module")
def answers(server: ServerThread) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CLIENT, server.server.grpc_addr], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_health_and_metadata(answers: dict[str, Any]) -> None:
    assert answers["live"] is True and answers["ready"] is True and answers["model_ready"] is True
    assert answers["server"]["name"] == "clipper"
    meta = answers["metadata"]  # MessageToJson: int64 as strings
    assert meta["name"] == "d" and meta["versions"] == ["1"] and meta["platform"] == "clipper"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": ["-1", "-1"]}]


def test_infer_with_numpy_inputs(answers: dict[str, Any]) -> None:
    assert answers["d"]["values"] == [6.0, 15.5] and answers["d"]["datatype"] == "FP64"
    assert answers["d"]["id"] == "r1"
    assert answers["d"]["params"]["default"] == [False, False]
    assert answers["f"]["values"] == [6.0, 15.5]
    assert answers["i"]["values"] == [3.0, 7.0]
    assert answers["s"]["values"] == [2.0, 5.0]
    assert answers["u"]["values"] == ["AB", "CD"] and answers["u"]["datatype"] == "BYTES"


def test_version_routing(answers: dict[str, Any]) -> None:
    assert answers["v1"]["values"] == [1.0] and answers["v1"]["version"] == "1"
    assert answers["v"]["values"] == [2.0] and answers["v"]["version"] == ""


def test_errors(server: ServerThread, answers: dict[str, Any]) -> None:
    errors = answers["errors"]
    assert errors["unknown model"] == {"status": "StatusCode.NOT_FOUND",
                                       "message": "application 'nope' does not exist"}
    assert errors["bad datatype"] == {"status": "StatusCode.INVALID_ARGUMENT",
                                      "message": "'inputs[0].datatype' is 'FP32'; this app takes FP64"}
    assert errors["unknown version"] == {"status": "StatusCode.INVALID_ARGUMENT",
                                         "message": "Requested version: 9 does not exist for model: ver"}
    assert errors["metadata of an unknown model"]["status"] == "StatusCode.NOT_FOUND"
