"""Clipper's REST query API as an adapter over the query path: ``POST /{app}/predict`` and ``/{app}/update``.

Reads Clipper's request JSON (``input`` | ``input_batch``, ``uid``, ``version``; ``input``, ``label``,
``query_id``), hands decoded inputs to :class:`~clipper_core.serving.query_path.QueryPath`, and writes Clipper's
response JSON (``query_id``, ``output``, ``default``, ``default_explanation``; ``batch_predictions``).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from clipper_core.errors import InvalidInput
from clipper_core.frontend.fields import checked_key, read_query_id, read_uid, read_version
from clipper_core.frontend.keys import QUERY_PATH
from clipper_core.http_api import JSON, read_json_object
from clipper_core.inputs import InputType, decode_input, decode_inputs
from clipper_core.serving.prediction import Prediction
from clipper_core.serving.query_path import QueryPath
from clipper_core.tracing import STATE as TRACING

__all__ = ["EXPECTED_QUERY", "answer_query", "predict", "prediction_json", "update"]

EXPECTED_QUERY = "a JSON object with 'input' or 'input_batch'"


async def predict(request: web.Request) -> web.Response:
    return await answer_query(request, request.app[QUERY_PATH], request.match_info["app"])


async def answer_query(request: web.BaseRequest, path: QueryPath, app_name: str) -> web.Response:
    """``POST /{app_name}/predict`` (the query app's route, and the query port's front door)."""
    known = path.snapshot.apps.get(app_name)
    guard = known.guard if known is not None else None
    api_key = await checked_key(request, guard) if guard is not None else None
    body = await read_json_object(request, EXPECTED_QUERY)
    rt = path.open_app(app_name)
    items, single = read_inputs(body, rt.app.input_type)
    predictions = await path.predict(rt, items, uid=read_uid(body.get("uid", 0)),
                                     version=read_version(body.get("version")),
                                     traceparent=request.headers.get("traceparent") if TRACING.enabled else None,
                                     api_key=api_key)
    if single:
        return web.Response(body=orjson.dumps(prediction_json(predictions[0])), content_type=JSON)
    answer = {"batch_predictions": [prediction_json(p) for p in predictions]}
    return web.Response(body=orjson.dumps(answer), content_type=JSON)  # inline: the hot path saves a call


def read_inputs(body: dict[str, Any], input_type: InputType) -> tuple[list[Any], bool]:
    """The decoded inputs of a query body, and whether it was a single ``input``."""
    if "input" in body:
        if "input_batch" in body:
            raise InvalidInput("request has both 'input' and 'input_batch'; send exactly one of them")
        return [decode_input(body["input"], input_type)], True
    if "input_batch" in body:
        batch = body["input_batch"]
        if batch.__class__ is not list:
            raise InvalidInput("'input_batch' must be a JSON array of inputs")
        if not batch:
            raise InvalidInput("'input_batch' is empty; expected at least one input")
        return decode_inputs(batch, input_type), False
    raise InvalidInput("JSON object does not have required keys input or input_batch")


def prediction_json(p: Prediction) -> dict[str, Any]:
    """Clipper's JSON for one prediction (``models``: which models a combining policy heard from)."""
    if p.default:
        return {"query_id": p.query_id, "output": p.output, "default": True, "default_explanation": p.explanation}
    answer = {"query_id": p.query_id, "output": p.output, "default": False}
    if p.models is not None:
        answer["models"] = p.models
    return answer


async def update(request: web.Request) -> web.Response:
    body = await read_json_object(request, "a JSON object with 'input' and 'label'")
    path = request.app[QUERY_PATH]
    rt = path.feedback_app(request.match_info["app"])
    if "input" not in body:
        raise InvalidInput("JSON object does not have required key: input")
    if "label" not in body:
        raise InvalidInput("JSON object does not have required key: label; expected a number")
    label = body["label"]
    if label.__class__ not in (int, float):
        raise InvalidInput("'label' must be a JSON number")
    item = decode_input(body["input"], rt.app.input_type)
    receipt = await path.feedback(rt, item, label, uid=read_uid(body.get("uid", 0)),
                                  query_id=read_query_id(body.get("query_id")))
    answer = {"query_id": receipt.query_id, "feedback_received": True, "seq": receipt.seq}
    return web.Response(body=orjson.dumps(answer), content_type=JSON)
