"""The V2 REST binary tensor data extension against a real server: binary inputs (numeric rows, BYTES elements)
and binary outputs as the request asks, the same answers as JSON, a 400 naming the sizes for every malformed
binary request (and the server keeps serving), and NVIDIA's ``tritonclient.http`` with its defaults."""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipper_core.testing import ServerThread
from tests import models
from tests.conftest import Deploy

HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    home = tmp_path_factory.mktemp("v2-binary")
    with ServerThread(home, max_body_bytes=4 * 1024 * 1024) as server:
        deploy = Deploy(server, Path(home))
        deploy.app("d", input_type="doubles")
        deploy.app("f", input_type="floats")
        deploy.app("s", input_type="strings")
        deploy.app("b", input_type="bytes", default_output="")
        deploy("dsum", 1, models.float_sum, app="d")
        deploy("fsum", 1, models.float_sum, input_type="floats", app="f")
        deploy("slen", 1, models.length_model, input_type="strings", app="s")
        yield server


def post(server: ServerThread, path: str, body: bytes, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"{server.query_url}{path}", data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def binary_body(inputs: list[dict[str, Any]], data: bytes, **extra: Any) -> tuple[bytes, dict[str, str]]:
    header = json.dumps({"inputs": inputs, **extra}).encode()
    return header + data, {HEADER: str(len(header)), "Content-Type": "application/octet-stream"}


def numeric(array: np.ndarray[Any, Any], datatype: str, **extra: Any) -> tuple[bytes, dict[str, str]]:
    data = array.tobytes()
    tensor = {"name": "input", "shape": list(array.shape), "datatype": datatype,
              "parameters": {"binary_data_size": len(data)}}
    return binary_body([tensor], data, **extra)


def strings(values: list[bytes]) -> tuple[bytes, dict[str, str]]:
    data = b"".join(struct.pack("<I", len(v)) + v for v in values)
    tensor = {"name": "input", "shape": [len(values)], "datatype": "BYTES",
              "parameters": {"binary_data_size": len(data)}}
    return binary_body([tensor], data)


def read_binary_answer(headers: dict[str, str], body: bytes) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    assert headers["Content-Type"] == "application/octet-stream"
    length = int(headers[HEADER])
    answer = json.loads(body[:length])
    (output,) = answer["outputs"]
    assert "data" not in output and output["parameters"]["binary_data_size"] == len(body) - length
    return answer, np.frombuffer(body[length:], dtype="<f8")


ROWS = np.arange(12, dtype="<f8").reshape(4, 3) / 3


def test_binary_input_gives_the_same_json_answer_as_json_input(server: ServerThread) -> None:
    status, headers, raw = post(server, "/v2/models/d/infer", *numeric(ROWS, "FP64", id="r1"))
    assert status == 200, raw
    assert headers["Content-Type"].startswith("application/json") and HEADER not in headers
    answer = json.loads(raw)
    json_status, _, json_raw = post(server, "/v2/models/d/infer", json.dumps(
        {"id": "r1", "inputs": [{"name": "input", "shape": [4, 3], "datatype": "FP64", "data": ROWS.tolist()}]}
    ).encode())
    assert json_status == 200
    (output,) = answer["outputs"]
    assert output["data"] == pytest.approx(ROWS.sum(axis=1).tolist())
    expected = json.loads(json_raw)
    for tensor in (output, expected["outputs"][0]):
        del tensor["parameters"]["query_id"]
    assert answer == expected


@pytest.mark.parametrize("asked", [{"parameters": {"binary_data_output": True}},
                                   {"outputs": [{"name": "output", "parameters": {"binary_data": True}}]},
                                   {"parameters": {"binary_data_output": False},
                                    "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}])
def test_binary_output_when_asked(server: ServerThread, asked: dict[str, Any]) -> None:
    status, headers, raw = post(server, "/v2/models/d/infer", *numeric(ROWS, "FP64", **asked))
    assert status == 200, raw
    answer, values = read_binary_answer(headers, raw)
    assert answer["outputs"][0]["datatype"] == "FP64" and answer["outputs"][0]["shape"] == [4]
    np.testing.assert_allclose(values, ROWS.sum(axis=1))
    assert answer["outputs"][0]["parameters"]["default"] == [False] * 4


def test_output_binary_data_false_wins_over_binary_data_output(server: ServerThread) -> None:
    asked = {"parameters": {"binary_data_output": True},
             "outputs": [{"name": "output", "parameters": {"binary_data": False}}]}
    status, headers, raw = post(server, "/v2/models/d/infer", *numeric(ROWS, "FP64", **asked))
    assert status == 200 and HEADER not in headers
    assert json.loads(raw)["outputs"][0]["data"] == pytest.approx(ROWS.sum(axis=1).tolist())


def test_chunked_binary_request(server: ServerThread) -> None:
    body, headers = numeric(ROWS, "FP64")  # no Content-Length: the body arrives in chunks of unknown total
    request = urllib.request.Request(f"{server.query_url}/v2/models/d/infer", data=iter([body[:50], body[50:]]),
                                     headers={**headers, "Transfer-Encoding": "chunked"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["outputs"][0]["data"] == pytest.approx(ROWS.sum(axis=1).tolist())


def test_json_input_can_ask_for_binary_output(server: ServerThread) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1.5, 2.0]}],
            "parameters": {"binary_data_output": True}}
    status, headers, raw = post(server, "/v2/models/d/infer", json.dumps(body).encode())
    assert status == 200
    assert read_binary_answer(headers, raw)[1].tolist() == [3.5]


def test_image_sized_float32_input(server: ServerThread) -> None:
    image = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    status, _, raw = post(server, "/v2/models/f/infer", *numeric(image, "FP32"))
    assert status == 200, raw
    assert json.loads(raw)["outputs"][0]["data"] == [pytest.approx(float(image.reshape(-1).sum()), rel=1e-5)]


def test_bytes_elements(server: ServerThread) -> None:
    status, _, raw = post(server, "/v2/models/s/infer", *strings([b"ab", "héllo".encode(), b"x"]))
    assert status == 200, raw
    assert json.loads(raw)["outputs"][0]["data"] == [2, 5, 1]
    status, _, raw = post(server, "/v2/models/b/infer", *strings([b"\x00\xff", b"z"]))
    assert status == 200, raw


def _tensor(datatype: str = "FP64", shape: list[int] | None = None, size: int = 48) -> dict[str, Any]:
    return {"name": "input", "shape": shape or [2, 3], "datatype": datatype, "parameters": {"binary_data_size": size}}


def _with_header(header: bytes, data: bytes, length: str) -> tuple[bytes, dict[str, str]]:
    return header + data, {HEADER: length}


GOOD = json.dumps({"inputs": [_tensor()]}).encode()
CASES: list[tuple[str, str, tuple[bytes, dict[str, str]], str]] = [
    ("header length past the body", "d", _with_header(GOOD, b"", str(len(GOOD) + 10)),
     f"{HEADER} is {len(GOOD) + 10} but the request body has only {len(GOOD)} bytes"),
    ("header length not a number", "d", _with_header(GOOD, bytes(48), "12a"), f"{HEADER} is '12a'"),
    ("header length zero", "d", _with_header(GOOD, bytes(48), "0"), f"{HEADER} is 0"),
    ("header not JSON", "d", _with_header(GOOD, bytes(48), str(len(GOOD) - 2)), "Error parsing the"),
    ("tensor bytes not shape x size", "d", binary_body([_tensor(size=40)], bytes(40)),
     "shape [2, 3] and datatype FP64 needs 6 x 8 = 48 bytes but its binary_data_size is 40"),
    ("binary_data_size past the body", "d", binary_body([_tensor()], bytes(20)),
     "binary_data_size' is 48 but only 20 bytes"),
    ("bytes left over", "d", binary_body([_tensor()], bytes(56)),
     "the body has 56 bytes after its"),
    ("unknown datatype", "d", binary_body([_tensor("FP17")], bytes(48)), "'FP17' is not a V2 datatype"),
    ("other datatype", "d", binary_body([_tensor("FP32", size=24)], bytes(24)), "this app takes FP64"),
    ("negative binary_data_size", "d", binary_body([_tensor(size=-1)], b""), "expected a byte count"),
    ("one dimension", "d", binary_body([_tensor(shape=[6])], bytes(48)), "must be [batch, features, ...]"),
    ("two inputs", "d", binary_body([_tensor(), _tensor()], bytes(96)), "holds exactly one tensor"),
    ("BYTES length past the tensor", "s", binary_body([_tensor("BYTES", [1], 6)], struct.pack("<I", 9) + b"ab"),
     "has length 9 but only 2 bytes of the 6-byte tensor remain"),
    ("BYTES count not the shape", "s", binary_body([_tensor("BYTES", [2], 5)], struct.pack("<I", 1) + b"a"),
     "has shape [2] but its 5 bytes hold 1 BYTES elements"),
    ("BYTES not UTF-8", "s", binary_body([_tensor("BYTES", [1], 6)], struct.pack("<I", 2) + b"\xc3\x28"),
     "not valid UTF-8"),
    ("binary_data_size without the header", "d", (GOOD + bytes(48), {}), "Error parsing JSON"),
    ("binary_data_size in JSON only", "d", (GOOD, {}), f"has no {HEADER} header"),
]


@pytest.mark.parametrize(("app", "request_", "cause"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_binary_request_is_a_400_naming_the_sizes(server: ServerThread, app: str,
                                                            request_: tuple[bytes, dict[str, str]],
                                                            cause: str) -> None:
    status, _, raw = post(server, f"/v2/models/{app}/infer", *request_)
    assert status == 400, raw
    body = json.loads(raw)
    assert set(body) == {"error", "cause"} and cause in body["cause"], body
    ok_status, _, ok = post(server, "/v2/models/d/infer", *numeric(ROWS, "FP64"))
    assert ok_status == 200, ok


def test_binary_request_to_clipper_rest_is_a_400(server: ServerThread) -> None:
    status, _, raw = post(server, "/d/predict", *numeric(ROWS, "FP64"))
    assert status == 400
    assert "this endpoint takes JSON only" in json.loads(raw)["cause"]


def test_binary_rows_reach_the_rpc_frame_without_a_copy() -> None:
    from clipper_container.protocol import encode_inputs

    from clipper_core.frontend.v2_binary import binary_rows, split_request
    from clipper_core.inputs import InputType

    raw, headers = numeric(ROWS, "FP64")
    body, (section,) = split_request(bytearray(raw), headers[HEADER])
    assert section is not None
    rows = binary_rows(body["inputs"][0], section, InputType.DOUBLES, "FP64")
    fields, (frame,) = encode_inputs(rows, np.dtype("<f8"))
    assert fields == {"kind": "array", "dtype": "<f8", "shape": [4, 3]}
    assert np.shares_memory(frame, rows[0]) and np.array_equal(frame, ROWS)


# -- tritonclient.http with its defaults -------------------------------------------------------------------------

def test_tritonclient_http(server: ServerThread) -> None:
    import tritonclient.http as httpclient  # the dev extra installs it
    client = httpclient.InferenceServerClient(server.query_url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("d") and client.is_model_ready("d", "1")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        rows = np.random.default_rng(1).random((5, 3))
        expected = models.float_sum(rows)
        tensor = httpclient.InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows)  # binary by default
        for outputs in (None, [httpclient.InferRequestedOutput("output")],
                        [httpclient.InferRequestedOutput("output", binary_data=False)]):
            result = client.infer("d", [tensor], outputs=outputs)
            got = result.as_numpy("output")
            assert got.shape == (5,) and got.tolist() == expected
        assert client.infer("d", [tensor], model_version="1").as_numpy("output").tolist() == expected
        text = httpclient.InferInput("input", [2], "BYTES")
        text.set_data_from_numpy(np.array([b"abc", b"de"], dtype=np.object_))
        assert client.infer("s", [text]).as_numpy("output").tolist() == [3, 2]
    finally:
        client.close()
