"""The query API's OpenAPI 3.0.3 document (Clipper REST, health, metrics, Open Inference Protocol V2), served
at ``GET /openapi.json`` by the query app; the pieces it shares with the management API's document are in
:mod:`clipper_core.openapi`."""

from __future__ import annotations

import copy
from typing import Any

from clipper_core.openapi import (
    ANY,
    ERROR,
    INT64,
    VERSION,
    error_components,
    error_refs,
    json_reply,
    obj,
    path_param,
    request_body,
    text_reply,
)

__all__ = ["query_openapi"]

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
OCTET_STREAM, HEADER_LENGTH = "application/octet-stream", "Inference-Header-Content-Length"
BINARY_REQUEST = (
    "The binary tensor data extension (what tritonclient.http sends by default): the header "
    f"{HEADER_LENGTH}: N says the body starts with N bytes of the JSON inference request, whose input tensor "
    "carries parameters.binary_data_size (its byte count) instead of data; the tensor's raw bytes follow: "
    "little-endian, row-major, shape x datatype size bytes (INT32 4, FP32 4, FP64 8; rows are the first dimension, "
    "the others are flattened), BYTES elements each as a 4-byte little-endian length and the bytes. The request may "
    "ask for a binary answer (parameters.binary_data_output, or outputs: [{name: output, parameters: {binary_data}}])."
    " Sizes that do not add up are a 400 naming them.")
BINARY_ANSWER = (
    f"A binary answer: the {HEADER_LENGTH} response header gives the byte length N of the JSON answer that starts "
    "the body; its output tensor has parameters.binary_data_size instead of data, and those bytes follow (FP64 "
    "little-endian, or BYTES elements each as a 4-byte little-endian length and the bytes).")
APP_PARAM = path_param("app", "hello-world")
VERSION_PARAM = path_param("version", "1")


def _get(schema: dict[str, Any], summary: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": json_reply(schema)}}}


def _clipper_rest() -> dict[str, Any]:
    """Clipper's predict and update (feedback) endpoints, with and without the trailing slash."""
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
    return {"/{app}/predict": {"post": predict_op}, "/{app}/predict/": {"post": predict_op},
            "/{app}/update": {"post": update_op}, "/{app}/update/": {"post": update_op}}


def _health() -> dict[str, Any]:
    """Readiness, liveness, metrics and this document."""
    health = {"get": {"summary": "Readiness, with the number of apps and connected replicas: 503 while the server "
                                 "drains for a graceful stop or its state store is unreachable (the cause says which)",
                      "responses": {"200": json_reply(obj(["status", "apps", "replicas"],
                                                          status={"type": "string", "enum": ["ok"]},
                                                          apps={"type": "integer", "minimum": 0},
                                                          replicas={"type": "integer", "minimum": 0})),
                                    **error_refs(503)}}}
    not_ready = obj(["ready", "reason"], ready={"type": "boolean", "enum": [False]}, reason={"type": "string"})
    server_ready = {"get": {"summary": "V2 server readiness: false (503) while the server drains or its state store "
                                       "is unreachable",
                            "responses": {"200": json_reply(obj(["ready"], ready={"type": "boolean", "enum": [True]})),
                                          "503": json_reply(not_ready, "not ready, and why")}}}
    return {
        "/health": health,
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
            "200": text_reply("Prometheus text exposition format 0.0.4")}}},
        "/openapi.json": _get(obj(["openapi", "info", "paths"]), "This document"),
        "/v2/health/live": _get(obj(["live"], live={"type": "boolean"}), "V2 server liveness: true while it serves"),
        "/v2/health/ready": server_ready,
    }


def _open_inference() -> dict[str, Any]:
    """The Open Inference Protocol (V2) endpoints: server and model metadata, model readiness, inference."""
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
    json_request = request_body(obj(["inputs"], id={"type": "string"},
                                    inputs={"type": "array", "minItems": 1, "maxItems": 1, "items": v2_in},
                                    parameters=obj([], uid=INT64)),
                                {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                                             "data": [1.1, 2.2, 3.3]}]})
    json_request["content"][OCTET_STREAM] = {"schema": {"type": "string", "format": "binary",
                                                        "description": BINARY_REQUEST}}
    answer = json_reply(obj(["model_name", "outputs"], model_name={"type": "string"}, model_version={"type": "string"},
                            id={**ANY, "description": "the request's id"},
                            outputs={"type": "array", "items": v2_out}))
    answer["content"][OCTET_STREAM] = {"schema": {"type": "string", "format": "binary",
                                                  "description": BINARY_ANSWER}}
    answer["headers"] = {HEADER_LENGTH: {"description": "binary answers only: the byte length of the JSON answer "
                                                        "that starts the body", "schema": {"type": "integer"}}}
    infer_op = {
        "summary": "Open Inference Protocol (V2) inference: each row of the one input tensor is one query",
        "description": "The request and the answer are JSON, or use the binary tensor data extension (see "
                       "the application/octet-stream media): the answer is binary when the request's "
                       "parameters.binary_data_output or its outputs[].parameters.binary_data (which wins) is true.",
        "requestBody": json_request,
        "responses": {"200": answer, **error_refs(400, 404, 413, 503)}}
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
    return {
        "/v2": _get(obj(["name", "version", "extensions"], name={"type": "string"},
                        version={"type": "string"}, extensions={"type": "array", "items": {"type": "string"}}),
                    "V2 server metadata"),
        "/v2/models/{app}": {"get": {**metadata, "parameters": [APP_PARAM]}},
        "/v2/models/{app}/versions/{version}": {"get": {**metadata, "parameters": [APP_PARAM, VERSION_PARAM]}},
        "/v2/models/{app}/ready": {"get": {**ready, "parameters": [APP_PARAM]}},
        "/v2/models/{app}/versions/{version}/ready": {"get": {**ready, "parameters": [APP_PARAM, VERSION_PARAM]}},
        "/v2/models/{app}/infer": {"post": {**infer_op, "parameters": [APP_PARAM]}},
        "/v2/models/{app}/versions/{version}/infer": {"post": {**infer_op,
                                                               "parameters": [APP_PARAM, VERSION_PARAM]}},
    }


def query_openapi() -> dict[str, Any]:
    """The query frontend: Clipper's predict/update REST API, health, metrics, and the Open Inference Protocol."""
    order = ["/{app}/predict", "/{app}/predict/", "/{app}/update", "/{app}/update/", "/health", "/metrics",
             "/openapi.json", "/v2", "/v2/health/live", "/v2/health/ready"]
    paths = {**_clipper_rest(), **_health(), **_open_inference()}
    paths = {**{path: paths[path] for path in order}, **{k: v for k, v in paths.items() if k not in order}}
    return copy.deepcopy({  # a fresh document: the shared schema pieces above must not be mutated through it
        "openapi": "3.0.3",
        "info": {"title": "clipper query API", "version": VERSION,
                 "description": "Clipper-compatible prediction serving. Errors are JSON {\"error\", \"cause\"}; "
                                "a method a path does not list answers 405 with that object."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, "Prediction": PREDICTION, "NumericInput": NUMBERS, "TextInput": TEXT,
                        "BatchPredictions": obj(["batch_predictions"], batch_predictions={
                            "type": "array", "items": {"$ref": "#/components/schemas/Prediction"}})},
            "responses": error_components(),
        },
    })
