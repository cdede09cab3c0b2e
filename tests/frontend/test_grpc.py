"""The V2 gRPC endpoint against a real server (port 0, real model replicas), through the stub generated from
clipper's grpc_predict_v2.proto on a grpc.aio channel: every RPC; ModelInfer with ``contents`` and with
``raw_input_contents`` for FP32, FP64, INT32/INT64 and BYTES, answered as the REST API answers the same rows;
version routing; errors as gRPC status codes with the REST API's messages; a failing model's default output;
readiness false while draining; off unless its port is set; a clear error when grpcio is missing."""

from __future__ import annotations

import json
import struct
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc import aio

from clipper_core.config import ConfigError
from clipper_core.frontend.grpc import grpc_predict_v2_pb2 as pb
from clipper_core.frontend.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from clipper_core.testing import ServerThread
from tests import models
from tests.conftest import Deploy, SlowQueryInFlight

Tensor = pb.ModelInferRequest.InferInputTensor
MAX_BODY = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    home = tmp_path_factory.mktemp("grpc")
    with ServerThread(home, grpc_port=0, max_body_bytes=MAX_BODY) as server:
        deploy = Deploy(server, Path(home))
        deploy.app("d", input_type="doubles")
        deploy.app("f", input_type="floats")
        deploy.app("i", input_type="integers")
        deploy.app("s", input_type="strings")
        deploy.app("b", input_type="bytes", default_output="")
        deploy.app("v", input_type="doubles")
        deploy.app("e", input_type="doubles")
        deploy.app("u", input_type="strings", default_output="")
        deploy("dsum", 1, models.float_sum, app="d")
        deploy("fsum", 1, models.float_sum, input_type="floats", app="f")
        deploy("isum", 1, models.float_sum, input_type="integers", app="i")
        deploy("slen", 1, models.length_model, input_type="strings", app="s")
        deploy("blen", 1, models.bytes_length, input_type="bytes", app="b")
        deploy("ver", 1, models.version_one, app="v")
        deploy("ver", 2, models.version_two)  # the current version from now on
        deploy("err", 1, models.error_model, app="e")
        deploy("upper", 1, models.echo_strings, input_type="strings", app="u")
        yield server


@pytest.fixture
async def stub(server: ServerThread) -> AsyncIterator[pb_grpc.GRPCInferenceServiceStub]:
    async with aio.insecure_channel(server.server.grpc_addr) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def rest(server: ServerThread, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.query_url}{path}", data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def bytes_tensor(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


# -- server RPCs ----------------------------------------------------------------------------------------------

async def test_server_live_ready_and_metadata(server: ServerThread, stub: Any) -> None:
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live is True
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready is True
    meta = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert {"name": meta.name, "version": meta.version, "extensions": list(meta.extensions)} == rest(server, "/v2")[1]


@pytest.mark.parametrize("app", ["d", "f", "i", "s", "b", "v"])
async def test_model_metadata_is_the_rest_metadata(server: ServerThread, stub: Any, app: str) -> None:
    meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name=app))

    def tensors(items: Any) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

    assert {"name": meta.name, "versions": list(meta.versions), "platform": meta.platform,
            "inputs": tensors(meta.inputs), "outputs": tensors(meta.outputs)} == rest(server, f"/v2/models/{app}")[1]


async def test_model_ready_and_its_versions(stub: Any) -> None:
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="d"))).ready is True
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="v", version="1"))).ready is True
    assert (await stub.ModelMetadata(pb.ModelMetadataRequest(name="v", version="2"))).versions == ["1", "2"]


# -- ModelInfer: tensors ------------------------------------------------------------------------------------

ROWS = np.arange(12, dtype="<f8").reshape(4, 3) / 3
CASES: dict[str, tuple[str, str, Any, list[Any]]] = {
    # name: (app, datatype, rows as numpy, expected outputs)
    "FP64": ("d", "FP64", ROWS, ROWS.sum(axis=1).tolist()),
    "FP32": ("f", "FP32", ROWS.astype("<f4"), ROWS.astype("<f4").sum(axis=1).tolist()),
    "INT32": ("i", "INT32", np.array([[1, 2], [3, -4]], dtype="<i4"), [3.0, -1.0]),
    "INT64": ("i", "INT64", np.array([[1, 2], [2**31 - 1, 0]], dtype="<i8"), [3.0, float(2**31 - 1)]),
    "BYTES strings": ("s", "BYTES", [b"ab", "héllo".encode(), b"x"], [2, 5, 1]),
    "BYTES bytes": ("b", "BYTES", [b"\x00\xff", b"z"], [2, 1]),
}
CONTENTS = {"FP64": "fp64_contents", "FP32": "fp32_contents", "INT32": "int_contents", "INT64": "int64_contents",
            "BYTES": "bytes_contents"}


def infer_request(app: str, datatype: str, rows: Any, raw: bool, **fields: Any) -> pb.ModelInferRequest:
    shape = [len(rows)] if datatype == "BYTES" else list(rows.shape)
    if raw:
        data = bytes_tensor(rows) if datatype == "BYTES" else rows.tobytes()
        return pb.ModelInferRequest(model_name=app, inputs=[Tensor(name="input", datatype=datatype, shape=shape)],
                                    raw_input_contents=[data], **fields)
    values = list(rows) if datatype == "BYTES" else rows.ravel().tolist()
    contents = pb.InferTensorContents(**{CONTENTS[datatype]: values})
    return pb.ModelInferRequest(model_name=app, inputs=[Tensor(name="input", datatype=datatype, shape=shape,
                                                               contents=contents)], **fields)


def outputs(answer: pb.ModelInferResponse) -> tuple[Any, dict[str, Any]]:
    """The output tensor's values (raw or contents) and its parameters (JSON-decoded)."""
    (output,) = answer.outputs
    params = {key: json.loads(value.string_param) for key, value in output.parameters.items()}
    if answer.raw_output_contents:
        (raw,) = answer.raw_output_contents
        if output.datatype == "FP64":
            return np.frombuffer(raw, "<f8").tolist(), params
        values, offset = [], 0
        while offset < len(raw):
            (size,) = struct.unpack_from("<I", raw, offset)
            values.append(raw[offset + 4:offset + 4 + size].decode())
            offset += 4 + size
        return values, params
    if output.datatype == "FP64":
        return list(output.contents.fp64_contents), params
    return [v.decode() for v in output.contents.bytes_contents], params


@pytest.mark.parametrize("raw", [True, False], ids=["raw_input_contents", "contents"])
@pytest.mark.parametrize("case", list(CASES))
async def test_infer(server: ServerThread, stub: Any, case: str, raw: bool) -> None:
    app, datatype, rows, expected = CASES[case]
    answer = await stub.ModelInfer(infer_request(app, datatype, rows, raw, id=f"req-{case}"))
    assert answer.model_name == app and answer.id == f"req-{case}" and answer.model_version == ""
    (output,) = answer.outputs
    assert (output.name, output.datatype, list(output.shape)) == ("output", "FP64", [len(expected)])
    assert bool(answer.raw_output_contents) is raw  # answered the way it was asked
    values, params = outputs(answer)
    assert values == pytest.approx(expected)
    assert params["default"] == [False] * len(expected)
    assert params["default_explanation"] == [""] * len(expected)
    assert len(set(params["query_id"])) == len(expected)


async def test_infer_answers_as_the_rest_api_does(server: ServerThread, stub: Any) -> None:
    answer = await stub.ModelInfer(infer_request("d", "FP64", ROWS, raw=False))
    status, body = rest(server, "/v2/models/d/infer", {"inputs": [
        {"name": "input", "shape": [4, 3], "datatype": "FP64", "data": ROWS.tolist()}]})
    assert status == 200
    values, params = outputs(answer)
    (expected,) = body["outputs"]
    assert values == expected["data"]
    for key in ("default", "default_explanation"):
        assert params[key] == expected["parameters"][key]


@pytest.mark.parametrize("raw", [True, False], ids=["raw_output_contents", "contents"])
async def test_string_outputs_are_a_bytes_tensor(server: ServerThread, stub: Any, raw: bool) -> None:
    answer = await stub.ModelInfer(infer_request("u", "BYTES", [b"ab", "é".encode()], raw))
    assert answer.outputs[0].datatype == "BYTES" and list(answer.outputs[0].shape) == [2]
    assert bool(answer.raw_output_contents) is raw
    status, body = rest(server, "/v2/models/u/infer", json_tensor("BYTES", [2], ["ab", "é"]))
    assert status == 200
    assert outputs(answer)[0] == ["AB", "É"] == body["outputs"][0]["data"]


async def test_further_dimensions_are_flattened_into_features(stub: Any) -> None:
    image = np.arange(8, dtype="<f4").reshape(2, 2, 2)
    for raw in (True, False):
        answer = await stub.ModelInfer(infer_request("f", "FP32", image, raw))
        assert outputs(answer)[0] == [6.0, 22.0]


async def test_uid_parameter(stub: Any) -> None:
    request = infer_request("d", "FP64", ROWS[:1], raw=True, parameters={"uid": pb.InferParameter(int64_param=7)})
    assert outputs(await stub.ModelInfer(request))[0] == pytest.approx([ROWS[0].sum()])


async def test_a_failing_model_answers_the_default_output_as_rest_does(server: ServerThread, stub: Any) -> None:
    answer = await stub.ModelInfer(infer_request("e", "FP64", ROWS[:2], raw=True))
    values, params = outputs(answer)
    status, body = rest(server, "/v2/models/e/infer", {"inputs": [
        {"name": "input", "shape": [2, 3], "datatype": "FP64", "data": ROWS[:2].tolist()}]})
    assert status == 200
    assert values == [-1.0, -1.0] == body["outputs"][0]["data"]
    assert params["default"] == [True, True]
    assert params["default_explanation"] == body["outputs"][0]["parameters"]["default_explanation"]
    assert all(params["default_explanation"])


# -- ModelInfer: versions -----------------------------------------------------------------------------------

async def test_version_routing(stub: Any) -> None:
    current = await stub.ModelInfer(infer_request("v", "FP64", ROWS[:1], raw=True))
    assert outputs(current)[0] == [2.0] and current.model_version == ""
    one = await stub.ModelInfer(infer_request("v", "FP64", ROWS[:1], raw=True, model_version="1"))
    assert outputs(one)[0] == [1.0] and one.model_version == "1"
    two = await stub.ModelInfer(infer_request("v", "FP64", ROWS[:1], raw=False, model_version="2"))
    assert outputs(two)[0] == [2.0] and two.model_version == "2"


# -- errors: gRPC codes, REST messages ----------------------------------------------------------------------

def json_tensor(datatype: str, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "datatype": datatype, "shape": shape, "data": data}]}


SAME_AS_REST: dict[str, tuple[Any, str, Any, grpc.StatusCode]] = {
    # name: (gRPC request, REST path, REST body (None: GET), code)
    "unknown model": (pb.ModelInferRequest(model_name="nope"), "/v2/models/nope/infer", {"inputs": []},
                      grpc.StatusCode.NOT_FOUND),
    "bad datatype": (infer_request("d", "FP32", ROWS.astype("<f4"), raw=True), "/v2/models/d/infer",
                     json_tensor("FP32", [4, 3], ROWS.ravel().tolist()), grpc.StatusCode.INVALID_ARGUMENT),
    "empty tensor": (pb.ModelInferRequest(model_name="d", inputs=[Tensor(name="input", datatype="FP64", shape=[0, 3])],
                                          raw_input_contents=[b""]),
                     "/v2/models/d/infer", json_tensor("FP64", [0, 3], []), grpc.StatusCode.INVALID_ARGUMENT),
    "unknown version": (infer_request("v", "FP64", ROWS[:1], raw=True, model_version="9"),
                        "/v2/models/v/versions/9/infer", json_tensor("FP64", [1, 3], ROWS[0].tolist()),
                        grpc.StatusCode.INVALID_ARGUMENT),
    "uid not an integer": (infer_request("d", "FP64", ROWS[:1], raw=True,
                                         parameters={"uid": pb.InferParameter(string_param="7")}),
                           "/v2/models/d/infer", {**json_tensor("FP64", [1, 3], ROWS[0].tolist()),
                                                  "parameters": {"uid": "7"}}, grpc.StatusCode.INVALID_ARGUMENT),
    "metadata of an unknown model": (pb.ModelMetadataRequest(name="nope"), "/v2/models/nope", None,
                                     grpc.StatusCode.NOT_FOUND),
    "metadata of an unknown version": (pb.ModelMetadataRequest(name="v", version="9"), "/v2/models/v/versions/9",
                                       None, grpc.StatusCode.NOT_FOUND),
    "readiness of an unknown model": (pb.ModelReadyRequest(name="nope"), "/v2/models/nope/ready", None,
                                      grpc.StatusCode.NOT_FOUND),
}
HTTP = {grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INVALID_ARGUMENT: 400}


async def call(stub: Any, request: Any) -> Any:
    method = {pb.ModelInferRequest: stub.ModelInfer, pb.ModelMetadataRequest: stub.ModelMetadata,
              pb.ModelReadyRequest: stub.ModelReady}[type(request)]
    return await method(request)


@pytest.mark.parametrize("case", list(SAME_AS_REST))
async def test_errors_have_the_rest_apis_message(server: ServerThread, stub: Any, case: str) -> None:
    request, path, body, code = SAME_AS_REST[case]
    with pytest.raises(aio.AioRpcError) as raised:
        await call(stub, request)
    status, answer = rest(server, path, body)
    assert status == HTTP[code], answer
    assert (raised.value.code(), raised.value.details()) == (code, answer["cause"])


def _raw(datatype: str, shape: list[int], data: bytes, app: str = "d") -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name=app, inputs=[Tensor(name="input", datatype=datatype, shape=shape)],
                                raw_input_contents=[data])


def _contents(datatype: str, shape: list[int], app: str = "d", **values: Any) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name=app, inputs=[Tensor(name="input", datatype=datatype, shape=shape,
                                                               contents=pb.InferTensorContents(**values))])


INVALID: dict[str, tuple[pb.ModelInferRequest, str]] = {
    "no input": (pb.ModelInferRequest(model_name="d"), "a V2 inference request's 'inputs' holds exactly one tensor"),
    "two inputs": (pb.ModelInferRequest(model_name="d", inputs=[Tensor(name="a"), Tensor(name="b")]),
                   "a V2 inference request's 'inputs' holds exactly one tensor"),
    "unknown datatype": (_raw("FP99", [1, 3], b""), "'inputs[0].datatype' 'FP99' is not a V2 datatype"),
    "raw size does not match the shape": (_raw("FP64", [2, 3], ROWS[:1].tobytes() + b"\0" * 16),
                                          "'inputs[0]' of shape [2, 3] and datatype FP64 needs 6 x 8 = 48 bytes but "
                                          "raw_input_contents[0] has 40"),
    "contents count does not match the shape": (_contents("FP64", [2, 3], fp64_contents=[1.0] * 5),
                                                "'inputs[0]' of shape [2, 3] and datatype FP64 needs 6 values but "
                                                "its contents.fp64_contents has 5"),
    "contents in another datatype's field": (_contents("FP64", [1, 2], fp32_contents=[1.0, 2.0]),
                                             "'inputs[0]' of shape [1, 2] and datatype FP64 needs 2 values but "
                                             "its contents.fp64_contents has 0"),
    "a numeric tensor of one dimension": (_raw("FP64", [3], ROWS[0].tobytes()),
                                          "'inputs[0].shape' must be [batch, features, ...] for a FP64 app, got [3]"),
    "both raw and contents": (pb.ModelInferRequest(model_name="d", inputs=[Tensor(
        name="input", datatype="FP64", shape=[1, 1], contents=pb.InferTensorContents(fp64_contents=[1.0]))],
        raw_input_contents=[b"\0" * 8]), "'inputs[0]' has both 'contents' and raw_input_contents; send one of them"),
    "two raw entries": (pb.ModelInferRequest(model_name="d", inputs=[Tensor(name="input", datatype="FP64",
                                                                            shape=[1, 1])],
                                             raw_input_contents=[b"\0" * 8, b"\0" * 8]),
                        "'raw_input_contents' has 2 entries; it needs one per input tensor (1)"),
    "INT64 beyond int32": (_raw("INT64", [1, 1], np.array([[2**31]], "<i8").tobytes(), app="i"),
                           "'inputs[0]' of INT64 has values outside the signed 32-bit range"),
    "INT64 contents beyond int32": (_contents("INT64", [1, 1], app="i", int64_contents=[-(2**31) - 1]),
                                    "'inputs[0]' of INT64 has values outside the signed 32-bit range"),
    "INT64 raw size": (_raw("INT64", [1, 2], b"\0" * 12, app="i"),
                       "'inputs[0]' of shape [1, 2] and datatype INT64 needs 2 x 8 = 16 bytes but "
                       "raw_input_contents[0] has 12"),
    "INT64 to a doubles app": (_raw("INT64", [1, 1], b"\0" * 8),
                               "'inputs[0].datatype' is 'INT64'; this app takes FP64"),
    "an empty BYTES element": (_contents("BYTES", [2], app="s", bytes_contents=[b"a", b""]),
                               "BYTES element 1 of 'inputs[0]' is empty"),
    "an empty raw BYTES element": (_raw("BYTES", [1], bytes_tensor([b""]), app="s"),
                                   "BYTES element 0 of 'inputs[0]' is empty"),
    "BYTES that are not UTF-8": (_contents("BYTES", [1], app="s", bytes_contents=[b"\xff"]),
                                 "BYTES element 0 of 'inputs[0]' is not valid UTF-8"),
    "BYTES count does not match the shape": (_contents("BYTES", [3], app="s", bytes_contents=[b"a"]),
                                             "'inputs[0]' has shape [3] but its contents.bytes_contents holds 1 "
                                             "BYTES elements"),
    "BYTES of two dimensions": (_contents("BYTES", [1, 1], app="s", bytes_contents=[b"a"]),
                                "'inputs[0]' of BYTES must have shape [batch], got [1, 1]"),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_requests_are_invalid_argument(stub: Any, case: str) -> None:
    request, message = INVALID[case]
    with pytest.raises(aio.AioRpcError) as raised:
        await stub.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(message), raised.value.details()


async def test_a_request_over_the_body_limit_is_resource_exhausted(stub: Any) -> None:
    big = np.zeros((1, MAX_BODY // 8 + 16), dtype="<f8")
    with pytest.raises(aio.AioRpcError) as raised:
        await stub.ModelInfer(infer_request("d", "FP64", big, raw=True))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live  # and the server goes on


# -- lifecycle --------------------------------------------------------------------------------------------

async def test_not_ready_and_refusing_queries_while_draining(tmp_path: Path) -> None:
    server = ServerThread(tmp_path, grpc_port=0).start()
    try:
        slow = SlowQueryInFlight(server, tmp_path)
        async with aio.insecure_channel(server.server.grpc_addr) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert (await stub.ServerReady(pb.ServerReadyRequest())).ready is True
            slow.begin()  # a query in flight, the server draining
            assert (await stub.ServerReady(pb.ServerReadyRequest())).ready is False
            assert (await stub.ServerLive(pb.ServerLiveRequest())).live is True
            with pytest.raises(aio.AioRpcError) as raised:
                await stub.ModelInfer(infer_request("slowapp", "FP64", ROWS[:1], raw=True))
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert raised.value.details() == "clipper is shutting down and takes no new queries"
            assert dict(raised.value.trailing_metadata() or ())["retry-after"] == "1"
            slow.finish()
        assert slow.results[0][0] == 200  # the query in flight was answered
    finally:
        server.stop()


def test_off_unless_its_port_is_set(tmp_path: Path) -> None:
    with ServerThread(tmp_path) as server:
        assert server.server.grpc_addr == ""
        assert json.loads((tmp_path / "runtime.json").read_text())["grpc_addr"] == ""


def test_runtime_file_names_the_grpc_address(server: ServerThread) -> None:
    runtime = json.loads((server.config.home / "runtime.json").read_text())
    assert runtime["grpc_addr"] == server.server.grpc_addr and runtime["grpc_addr"].startswith("127.0.0.1:")


def test_missing_grpcio_fails_the_start_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc.aio", None)  # import grpc.aio raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'clipper-core\[grpc\]'"):
        ServerThread(tmp_path, grpc_port=0).start()


def test_a_port_in_use_fails_the_start(server: ServerThread, tmp_path: Path) -> None:
    port = int(server.server.grpc_addr.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:"):
        ServerThread(tmp_path, grpc_port=port).start()


def test_cli_grpc_port() -> None:
    from clipper_core.cli import _config, build_parser

    for command in (["start", "--foreground"], ["frontend"]):
        args = build_parser().parse_args([*command, "--grpc-port", "0"])
        assert _config(args).grpc_port == 0
    assert _config(build_parser().parse_args(["frontend"])).grpc_port is None
