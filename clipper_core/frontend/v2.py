"""Open Inference Protocol (KServe V2) over clipper apps: each app is a V2 "model".

``POST /v2/models/{app}[/versions/{v}]/infer`` takes one input tensor; its first dimension is the batch (a
``[n, d]`` tensor for numeric apps, ``[n]`` of BYTES for string/bytes apps) and each row becomes one clipper
query, exactly like ``input_batch``. The answer has one output tensor ``output`` (FP64 when every output is a
number, else BYTES holding each output's JSON) and, in its ``parameters``, which rows got the default output and
why.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from clipper_core.errors import InvalidInput, NotFound
from clipper_core.inputs import InputType
from clipper_core.serving.app_runtime import AppRuntime
from clipper_core.serving.router import Router

__all__ = ["setup_v2_routes"]

DATATYPES = {InputType.INTS: "INT32", InputType.FLOATS: "FP32", InputType.DOUBLES: "FP64",
             InputType.STRINGS: "BYTES", InputType.BYTES: "BYTES"}
JSON = "application/json"


def setup_v2_routes(app: web.Application, router_key: web.AppKey[Router]) -> None:
    async def live(request: web.Request) -> web.Response:
        return _json({"live": True})

    async def ready(request: web.Request) -> web.Response:
        return _json({"ready": True})

    async def server_metadata(request: web.Request) -> web.Response:
        from clipper_core import __version__

        return _json({"name": "clipper", "version": __version__, "extensions": []})

    async def model_metadata(request: web.Request) -> web.Response:
        router = request.app[router_key]
        rt = router.app_runtime(request.match_info["app"])
        versions = _versions(router, rt)
        _check_version(rt, request.match_info.get("version"), versions)
        datatype = DATATYPES[rt.app.input_type]
        shape = [-1, -1] if rt.app.input_type.is_numeric else [-1]
        return _json({"name": rt.app.name, "versions": versions, "platform": "clipper",
                      "inputs": [{"name": "input", "datatype": datatype, "shape": shape}],
                      "outputs": [{"name": "output", "datatype": "BYTES", "shape": [-1]}]})

    async def model_ready(request: web.Request) -> web.Response:
        router = request.app[router_key]
        rt = router.app_runtime(request.match_info["app"])
        version = request.match_info.get("version")
        if version is not None:
            _check_version(rt, version, _versions(router, rt))
        is_ready = any(
            (mr := router.models.get((name, version or router.current.get(name, "")))) is not None
            and mr.num_replicas > 0 for name in rt.linked)
        return _json({"name": rt.app.name, "ready": is_ready}, status=200 if is_ready else 503)

    async def infer(request: web.Request) -> web.Response:
        router = request.app[router_key]
        app_name = request.match_info["app"]
        rt = router.app_runtime(app_name)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"Error parsing JSON: {exc}; expected a V2 inference request") from None
        rows = _rows(body, rt.app.input_type)
        query: dict[str, Any] = {"input_batch": rows}
        version = request.match_info.get("version")
        if version is not None:
            query["version"] = version
        if isinstance(body.get("parameters"), dict) and "uid" in body["parameters"]:
            query["uid"] = body["parameters"]["uid"]
        result = await router.predict(app_name, query)
        predictions = result["batch_predictions"]
        outputs = [p["output"] for p in predictions]
        numeric = all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in outputs)
        tensor: dict[str, Any] = {
            "name": "output", "shape": [len(outputs)], "datatype": "FP64" if numeric else "BYTES",
            "data": outputs if numeric else [o if isinstance(o, str) else orjson.dumps(o).decode()
                                             for o in outputs],
            "parameters": {"default": [p["default"] for p in predictions],
                           "default_explanation": [p.get("default_explanation", "") for p in predictions],
                           "query_id": [p["query_id"] for p in predictions]},
        }
        answer: dict[str, Any] = {"model_name": app_name, "outputs": [tensor]}
        if version is not None:
            answer["model_version"] = version
        if "id" in body:
            answer["id"] = body["id"]
        return _json(answer)

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


def _versions(router: Router, rt: AppRuntime) -> list[str]:
    """Every version of the models linked to the app, sorted."""
    return sorted({v for name in rt.linked for v in router.versions.get(name, {})})


def _check_version(rt: AppRuntime, version: str | None, versions: list[str]) -> None:
    """A ``/versions/{version}`` path must name a version of one of the app's linked models (else 404)."""
    if version is not None and version not in versions:
        raise NotFound(f"application {rt.app.name!r} has no model version {version!r}; its linked models have "
                       f"versions {versions}")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON)


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
