"""Open Inference Protocol (KServe V2) as an adapter over the query path: each app is a V2 "model".

``POST /v2/models/{app}[/versions/{v}]/infer`` takes one input tensor; its first dimension is the batch (a
``[n, d]`` tensor for numeric apps, ``[n]`` of BYTES for string/bytes apps) and each row becomes one clipper
query, exactly like ``input_batch``. The answer has one output tensor ``output`` (FP64 when every output is a
number, else BYTES holding each output's JSON) and, in its ``parameters``, which rows got the default output and
why. Tensors may travel in the binary tensor data extension both ways (:mod:`clipper_core.frontend.v2_binary`).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from clipper_core.errors import InvalidInput, NotFound
from clipper_core.frontend.fields import checked_key, read_uid
from clipper_core.frontend.health import not_ready_reason
from clipper_core.frontend.keys import QUERY_PATH
from clipper_core.frontend.v2_binary import (
    HEADER_LENGTH,
    binary_response,
    binary_rows,
    read_body,
    split_request,
    wants_binary_output,
)
from clipper_core.http_api import json_response
from clipper_core.inputs import InputType, decode_inputs
from clipper_core.serving.app_runtime import AppRuntime
from clipper_core.serving.prediction import Prediction
from clipper_core.serving.query_path import QueryPath
from clipper_core.serving.snapshot import Snapshot
from clipper_core.tracing import STATE as TRACING
from clipper_core.version import __version__

__all__ = ["DATATYPES", "SERVER_METADATA", "app_and_version", "metadata", "output_tensor", "setup_v2_routes"]

DATATYPES = {InputType.INTS: "INT32", InputType.FLOATS: "FP32", InputType.DOUBLES: "FP64",
             InputType.STRINGS: "BYTES", InputType.BYTES: "BYTES"}


def setup_v2_routes(app: web.Application) -> None:
    add = app.router
    add.add_get("/v2", server_metadata)
    add.add_get("/v2/health/live", live)
    add.add_get("/v2/health/ready", ready)
    add.add_get("/v2/models/{app}", model_metadata)
    add.add_get("/v2/models/{app}/versions/{version}", model_metadata)
    add.add_get("/v2/models/{app}/ready", model_ready)
    add.add_get("/v2/models/{app}/versions/{version}/ready", model_ready)
    add.add_post("/v2/models/{app}/infer", infer)
    add.add_post("/v2/models/{app}/versions/{version}/infer", infer)


async def live(request: web.Request) -> web.Response:
    return json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    reason = await not_ready_reason(request)
    if reason is not None:
        return json_response({"ready": False, "reason": reason}, status=503)
    return json_response({"ready": True})


SERVER_METADATA = {"name": "clipper", "version": __version__, "extensions": ["binary_tensor_data"]}


async def server_metadata(request: web.Request) -> web.Response:
    return json_response(SERVER_METADATA)


def app_and_version(snapshot: Snapshot, name: str, version: str | None) -> AppRuntime:
    """The app a V2 model name names; a version given must be one of its linked models' (else 404). Shared
    with the gRPC adapter."""
    rt = snapshot.app(name)
    if version is not None:
        versions = snapshot.versions_of(rt)
        if version not in versions:  # a /versions/{version} path names a version of a linked model, else 404
            raise NotFound(f"application {rt.app.name!r} has no model version {version!r}; its linked models "
                           f"have versions {versions}")
    return rt


def _app_and_version(request: web.Request) -> tuple[Snapshot, AppRuntime, str | None]:
    snapshot = request.app[QUERY_PATH].snapshot
    version = request.match_info.get("version")
    return snapshot, app_and_version(snapshot, request.match_info["app"], version), version


def metadata(snapshot: Snapshot, rt: AppRuntime) -> dict[str, Any]:
    """A V2 model's metadata (an app's): its one input tensor and one output tensor."""
    datatype = DATATYPES[rt.app.input_type]
    shape = [-1, -1] if rt.app.input_type.is_numeric else [-1]
    return {"name": rt.app.name, "versions": snapshot.versions_of(rt), "platform": "clipper",
            "inputs": [{"name": "input", "datatype": datatype, "shape": shape}],
            "outputs": [{"name": "output", "datatype": "BYTES", "shape": [-1]}]}


async def model_metadata(request: web.Request) -> web.Response:
    snapshot, rt, _ = _app_and_version(request)
    return json_response(metadata(snapshot, rt))


async def model_ready(request: web.Request) -> web.Response:
    snapshot, rt, version = _app_and_version(request)
    is_ready = snapshot.serving(rt, version)
    return json_response({"name": rt.app.name, "ready": is_ready}, status=200 if is_ready else 503)


async def infer(request: web.Request) -> web.Response:
    return await infer_model(request, request.app[QUERY_PATH], request.match_info["app"],
                             request.match_info.get("version"))


async def infer_model(request: web.BaseRequest, path: QueryPath, app_name: str, version: str | None) -> web.Response:
    """``POST /v2/models/{app_name}[/versions/{version}]/infer`` (the route, and the query port's front door)."""
    rt = path.open_app(app_name)
    guard = rt.guard
    api_key = await checked_key(request, guard) if guard is not None else None
    input_type = rt.app.input_type
    header_length = request.headers.get(HEADER_LENGTH)
    if header_length is None:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"Error parsing JSON: {exc}; expected a V2 inference request (binary tensor data "
                               f"needs the {HEADER_LENGTH} header)") from None
        items = decode_inputs(_rows(body, input_type), input_type)
    else:
        body, items = _binary_request(await read_body(request), header_length, input_type)
    uid = 0
    if isinstance(body.get("parameters"), dict) and "uid" in body["parameters"]:
        uid = read_uid(body["parameters"]["uid"])
    predictions = await path.predict(rt, items, uid=uid, version=version,
                                     traceparent=request.headers.get("traceparent") if TRACING.enabled else None,
                                     api_key=api_key)
    answer: dict[str, Any] = {"model_name": app_name, "outputs": [output_tensor(predictions)]}
    if version is not None:
        answer["model_version"] = version
    if "id" in body:
        answer["id"] = body["id"]
    if ("outputs" in body or "parameters" in body) and wants_binary_output(body, "output"):
        return binary_response(answer)
    return json_response(answer)


def _binary_request(raw: bytes | bytearray, header_length: str,
                    input_type: InputType) -> tuple[dict[str, Any], list[Any]]:
    """A request in the binary tensor data extension: its JSON object and its decoded rows."""
    body, sections = split_request(raw, header_length)
    if len(sections) != 1:
        raise InvalidInput("a V2 inference request is a JSON object whose 'inputs' holds exactly one tensor")
    section = sections[0]
    if section is None:
        return body, decode_inputs(_rows(body, input_type), input_type)
    return body, binary_rows(body["inputs"][0], section, input_type, DATATYPES[input_type])


def output_tensor(predictions: list[Prediction]) -> dict[str, Any]:
    """The answer's one output tensor ``output`` with ``data`` (shared with the gRPC adapter)."""
    outputs = [p.output for p in predictions]
    numeric = all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in outputs)
    return {
        "name": "output", "shape": [len(outputs)], "datatype": "FP64" if numeric else "BYTES",
        "data": outputs if numeric else [o if isinstance(o, str) else orjson.dumps(o).decode() for o in outputs],
        "parameters": {"default": [p.default for p in predictions],
                       "default_explanation": [p.explanation for p in predictions],
                       "query_id": [p.query_id for p in predictions]},
    }


def _rows(body: Any, input_type: InputType) -> list[Any]:
    """Split the request's single input tensor into per-query rows, checking shape and datatype."""
    expected = DATATYPES[input_type]
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or len(body["inputs"]) != 1:
        raise InvalidInput("a V2 inference request is a JSON object whose 'inputs' holds exactly one tensor")
    tensor = body["inputs"][0]
    if not isinstance(tensor, dict):
        raise InvalidInput("'inputs[0]' must be a tensor object with name, shape, datatype and data")
    datatype, shape, data = tensor.get("datatype"), tensor.get("shape"), tensor.get("data")
    if datatype != expected:
        raise InvalidInput(f"'inputs[0].datatype' is {datatype!r}; this app takes {expected}")
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d > 0 for d in shape):
        raise InvalidInput("'inputs[0].shape' must be a non-empty list of positive integers")
    if not isinstance(data, list):
        params = tensor.get("parameters")
        if isinstance(params, dict) and "binary_data_size" in params:
            raise InvalidInput(f"'inputs[0].parameters.binary_data_size' is {params['binary_data_size']!r} but the "
                               f"request has no {HEADER_LENGTH} header saying where its JSON ends")
        raise InvalidInput("'inputs[0].data' must be an array")
    flat = _flatten(data)
    if input_type.is_numeric:
        if len(shape) != 2:
            raise InvalidInput(f"'inputs[0].shape' must be [batch, features] for a {expected} app, got {shape}")
        n, d = shape
        if len(flat) != n * d:
            raise InvalidInput(f"'inputs[0].data' has {len(flat)} values; shape {shape} needs {n * d}")
        return [flat[i * d:(i + 1) * d] for i in range(n)]
    if len(shape) != 1 or len(flat) != shape[0]:
        raise InvalidInput(f"'inputs[0]' of BYTES must have shape [batch] matching its {len(flat)} values")
    return flat


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for v in data:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out
