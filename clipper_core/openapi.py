"""What the OpenAPI 3.0.3 documents of clipper's APIs share: schemas (ERROR, NAME, INT64, ...) and helpers that
build response, request-body and object schemas; and the query API's document.

The documents are served at ``GET /openapi.json`` by each app; the management API's is
:func:`clipper_core.management.openapi.admin_openapi`. Written by hand as plain dicts (no runtime dependency).
tests/test_openapi.py checks that they are valid OpenAPI, that they list exactly the routes each aiohttp app
registers (a GET route's implicit HEAD aside), and, with schemathesis against a live server, that every answer
is one they document.
"""

from __future__ import annotations

import copy
from typing import Any

from clipper_core.names import NAME_LIMIT, NAME_PATTERN

__all__ = [
    "ANY",
    "ERROR",
    "INPUT_TYPE",
    "INT64",
    "NAME",
    "VERSION",
    "VERSION_NAME",
    "error_components",
    "error_refs",
    "json_reply",
    "obj",
    "path_param",
    "query_openapi",
    "request_body",
    "text_reply",
]

VERSION = "0.1.0"
ANY: dict[str, Any] = {}
"""The empty schema: any JSON value."""
INT64: dict[str, Any] = {"type": "integer", "format": "int64"}

ERROR: dict[str, Any] = {
    "type": "object", "required": ["error", "cause"], "additionalProperties": False,
    "description": "Every error answer: a short title and a cause that says what was wrong and what was expected.",
    "properties": {"error": {"type": "string", "example": "Json error"},
                   "cause": {"type": "string", "example": "JSON object does not have required keys input or "
                                                          "input_batch"}}}
NUMBERS = {"type": "array", "minItems": 1, "items": {"type": "number"},
           "description": "the input of an integers (signed 32-bit), floats (float32 range) or doubles app"}
TEXT = {"type": "string", "minLength": 1, "description": "a strings app's input, or a bytes app's base64 input"}
INPUT: dict[str, Any] = {"oneOf": [{"$ref": "#/components/schemas/NumericInput"},
                                   {"$ref": "#/components/schemas/TextInput"}]}
PREDICTION: dict[str, Any] = {
    "type": "object", "required": ["query_id", "output", "default"],
    "properties": {
        "query_id": INT64,
        "output": {**ANY, "description": "the model's output (or the app's default output), as JSON"},
        "default": {"type": "boolean", "description": "true when this is the app's default output"},
        "default_explanation": {"type": "string", "description": "why the default output was returned"},
        "models": {"type": "array", "items": {"type": "string"},
                   "description": "models that contributed (policies that combine several models)"}}}
NAME: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": NAME_LIMIT, "pattern": f"^{NAME_PATTERN}$",
    "description": "letters, digits, '-', '_' and '.' (not '.' or '..' alone, no '..' inside); at most 128"}
VERSION_NAME: dict[str, Any] = {"oneOf": [NAME, {**INT64, "minimum": 0,
                                                 "description": "an integer is taken as its decimal string"}]}
INPUT_TYPE: dict[str, Any] = {
    "type": "string", "description": "any of Clipper's spellings, case-insensitive",
    "enum": ["integers", "ints", "integer", "int", "i", "floats", "float", "f", "doubles", "double", "d",
             "strings", "string", "str", "strs", "s", "bytes", "byte", "b"]}

_ERRORS = {400: ("BadRequest", "invalid request: the cause says what was wrong and what was expected"),
           401: ("Unauthorized", "missing or wrong 'Authorization: Bearer <token>' (when the server has a token)"),
           404: ("NotFound", "unknown application, model or replica"),
           405: ("MethodNotAllowed", "any method a path does not list (the 'Allow' header lists those it does)"),
           413: ("PayloadTooLarge", "the body is larger than the server's max_body_bytes"),
           503: ("Unavailable", "overloaded, shutting down, or the app's selection policy is unavailable")}


def error_refs(*codes: int) -> dict[str, Any]:
    """An operation's error responses: references to the shared ones of :func:`error_components`."""
    return {str(code): {"$ref": f"#/components/responses/{_ERRORS[code][0]}"} for code in codes}


def error_components() -> dict[str, Any]:
    """The ``components.responses`` every document defines: one JSON ``Error`` response per status."""
    return {name: {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}} for name, text in _ERRORS.values()}


def json_reply(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """A response whose body is JSON matching ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text_reply(description: str = "OK") -> dict[str, Any]:
    """A plain-text response."""
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def request_body(schema: dict[str, Any], example: Any = None, required: bool = True) -> dict[str, Any]:
    """A JSON request body matching ``schema``, with an example when given."""
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    """An object schema with these ``properties``, of which ``required`` must be present."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def path_param(name: str, example: str) -> dict[str, Any]:
    """A required path segment (no '/')."""
    return {"name": name, "in": "path", "required": True, "example": example,
            "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}


APP_PARAM = path_param("app", "hello-world")
VERSION_PARAM = path_param("version", "1")


def query_openapi() -> dict[str, Any]:
    """The query frontend: Clipper's predict/update REST API, health, metrics, and the Open Inference Protocol."""
    predict_request = {
        "type": "object", "description": "exactly one of 'input' and 'input_batch'",
        "oneOf": [{"required": ["input"]}, {"required": ["input_batch"]}],
        "properties": {
            "input": INPUT,
            "input_batch": {"type": "array", "minItems": 1, "items": INPUT},
            "version": {"oneOf": [{"type": "string", "minLength": 1, "nullable": True}, INT64],
                        "description": "serve this version of the (single) linked model (null: the current)"},
            "uid": {**INT64, "description": "user id for per-user policies"}}}
    predict_op = {
        "summary": "Predict (Clipper's REST API): one input, or a batch", "parameters": [APP_PARAM],
        "requestBody": request_body(predict_request, {"input": [1.1, 2.2, 3.3]}),
        "responses": {"200": json_reply({"oneOf": [{"$ref": "#/components/schemas/Prediction"},
                                                   {"$ref": "#/components/schemas/BatchPredictions"}]}),
                      **error_refs(400, 404, 413, 503)}}
    update_op = {
        "summary": "Feedback: the true label of an input (teaches learning selection policies)",
        "parameters": [APP_PARAM],
        "requestBody": request_body(obj(["input", "label"], input=INPUT, label={"type": "number"},
                                        uid=INT64, query_id={**INT64, "nullable": True}),
                                    {"input": [1.1, 2.2, 3.3], "label": 6.6}),
        "responses": {"200": json_reply(obj(["query_id", "feedback_received", "seq"],
                                            query_id=INT64, feedback_received={"type": "boolean", "enum": [True]},
                                            seq=INT64)),
                      **error_refs(400, 404, 413, 503)}}
    v2_in = obj(["name", "shape", "datatype", "data"], name={"type": "string"},
                shape={"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}},
                datatype={"type": "string", "enum": ["INT32", "FP32", "FP64", "BYTES"]},
                data={"type": "array", "description": "row-major values, flat or nested"},
                parameters={"type": "object"})
    v2_out = obj(["name", "shape", "datatype", "data", "parameters"], name={"type": "string"},
                 shape={"type": "array", "items": {"type": "integer"}},
                 datatype={"type": "string", "enum": ["FP64", "BYTES"]}, data={"type": "array"},
                 parameters=obj(["default", "default_explanation", "query_id"],
                                default={"type": "array", "items": {"type": "boolean"}},
                                default_explanation={"type": "array", "items": {"type": "string"}},
                                query_id={"type": "array", "items": {"type": "integer"}}))
    infer_op = {
        "summary": "Open Inference Protocol (V2) inference: each row of the one input tensor is one query",
        "requestBody": request_body(obj(["inputs"], id={"type": "string"},
                                        inputs={"type": "array", "minItems": 1, "maxItems": 1, "items": v2_in},
                                        parameters=obj([], uid=INT64)),
                                    {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                                                 "data": [1.1, 2.2, 3.3]}]}),
        "responses": {"200": json_reply(obj(["model_name", "outputs"], model_name={"type": "string"},
                                            model_version={"type": "string"},
                                            id={**ANY, "description": "the request's id"},
                                            outputs={"type": "array", "items": v2_out})),
                      **error_refs(400, 404, 413, 503)}}
    tensor_meta = obj(["name", "datatype", "shape"], name={"type": "string"}, datatype={"type": "string"},
                      shape={"type": "array", "items": {"type": "integer"}})
    metadata = {"summary": "V2 model metadata of an app",
                "responses": {"200": json_reply(obj(["name", "versions", "platform", "inputs", "outputs"],
                                                    name={"type": "string"},
                                                    versions={"type": "array", "items": {"type": "string"}},
                                                    platform={"type": "string"},
                                                    inputs={"type": "array", "items": tensor_meta},
                                                    outputs={"type": "array", "items": tensor_meta})),
                              **error_refs(404)}}
    ready_answer = obj(["name", "ready"], name={"type": "string"}, ready={"type": "boolean"})
    ready = {"summary": "V2 model readiness: a current version of a linked model has a connected replica",
             "responses": {"200": json_reply(ready_answer, "ready"), "503": json_reply(ready_answer, "not ready"),
                           **error_refs(404)}}

    def get(schema: dict[str, Any], summary: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": json_reply(schema)}}}

    return copy.deepcopy({  # a fresh document: the shared schema pieces above must not be mutated through it
        "openapi": "3.0.3",
        "info": {"title": "clipper query API", "version": VERSION,
                 "description": "Clipper-compatible prediction serving. Errors are JSON {\"error\", \"cause\"}; "
                                "a method a path does not list answers 405 with that object."},
        "servers": [{"url": "/"}],
        "paths": {
            "/{app}/predict": {"post": predict_op},
            "/{app}/predict/": {"post": predict_op},
            "/{app}/update": {"post": update_op},
            "/{app}/update/": {"post": update_op},
            "/health": get(obj(["status", "apps", "replicas"], status={"type": "string", "enum": ["ok"]},
                               apps={"type": "integer", "minimum": 0}, replicas={"type": "integer", "minimum": 0}),
                           "Liveness, with the number of apps and connected replicas"),
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": text_reply("Prometheus text exposition format 0.0.4")}}},
            "/openapi.json": get(obj(["openapi", "info", "paths"]), "This document"),
            "/v2": get(obj(["name", "version", "extensions"], name={"type": "string"},
                           version={"type": "string"}, extensions={"type": "array", "items": {"type": "string"}}),
                       "V2 server metadata"),
            "/v2/health/live": get(obj(["live"], live={"type": "boolean"}), "V2 server liveness"),
            "/v2/health/ready": get(obj(["ready"], ready={"type": "boolean"}), "V2 server readiness"),
            "/v2/models/{app}": {"get": {**metadata, "parameters": [APP_PARAM]}},
            "/v2/models/{app}/versions/{version}": {"get": {**metadata, "parameters": [APP_PARAM, VERSION_PARAM]}},
            "/v2/models/{app}/ready": {"get": {**ready, "parameters": [APP_PARAM]}},
            "/v2/models/{app}/versions/{version}/ready": {"get": {**ready, "parameters": [APP_PARAM, VERSION_PARAM]}},
            "/v2/models/{app}/infer": {"post": {**infer_op, "parameters": [APP_PARAM]}},
            "/v2/models/{app}/versions/{version}/infer": {"post": {**infer_op,
                                                                   "parameters": [APP_PARAM, VERSION_PARAM]}},
        },
        "components": {
            "schemas": {"Error": ERROR, "Prediction": PREDICTION, "NumericInput": NUMBERS, "TextInput": TEXT,
                        "BatchPredictions": obj(["batch_predictions"], batch_predictions={
                            "type": "array", "items": {"$ref": "#/components/schemas/Prediction"}})},
            "responses": error_components(),
        },
    })
