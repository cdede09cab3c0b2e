"""OpenAPI 3.0.3 documents of the query API and the management API, served at ``GET /openapi.json`` by each app.

Written by hand as plain dicts (no runtime dependency). tests/test_openapi.py checks that they are valid OpenAPI,
that they list exactly the routes each aiohttp app registers (a GET route's implicit HEAD aside), and, with
schemathesis against a live server, that every answer is one they document.
"""

from __future__ import annotations

import copy
from typing import Any

from clipper_core.names import NAME_LIMIT, NAME_PATTERN

__all__ = ["admin_openapi", "query_openapi"]

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


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/{_ERRORS[code][0]}"} for code in codes}


def _error_responses() -> dict[str, Any]:
    return {name: {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}} for name, text in _ERRORS.values()}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _body(schema: dict[str, Any], example: Any = None, required: bool = True) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {"application/json": media}}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _path_param(name: str, example: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "example": example,
            "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}


APP_PARAM = _path_param("app", "hello-world")
VERSION_PARAM = _path_param("version", "1")


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
        "requestBody": _body(predict_request, {"input": [1.1, 2.2, 3.3]}),
        "responses": {"200": _json({"oneOf": [{"$ref": "#/components/schemas/Prediction"},
                                              {"$ref": "#/components/schemas/BatchPredictions"}]}),
                      **_errors(400, 404, 413, 503)}}
    update_op = {
        "summary": "Feedback: the true label of an input (teaches learning selection policies)",
        "parameters": [APP_PARAM],
        "requestBody": _body(_obj(["input", "label"], input=INPUT, label={"type": "number"},
                                  uid=INT64, query_id={**INT64, "nullable": True}),
                             {"input": [1.1, 2.2, 3.3], "label": 6.6}),
        "responses": {"200": _json(_obj(["query_id", "feedback_received", "seq"],
                                        query_id=INT64, feedback_received={"type": "boolean", "enum": [True]},
                                        seq=INT64)),
                      **_errors(400, 404, 413, 503)}}
    v2_in = _obj(["name", "shape", "datatype", "data"], name={"type": "string"},
                 shape={"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}},
                 datatype={"type": "string", "enum": ["INT32", "FP32", "FP64", "BYTES"]},
                 data={"type": "array", "description": "row-major values, flat or nested"},
                 parameters={"type": "object"})
    v2_out = _obj(["name", "shape", "datatype", "data", "parameters"], name={"type": "string"},
                  shape={"type": "array", "items": {"type": "integer"}},
                  datatype={"type": "string", "enum": ["FP64", "BYTES"]}, data={"type": "array"},
                  parameters=_obj(["default", "default_explanation", "query_id"],
                                  default={"type": "array", "items": {"type": "boolean"}},
                                  default_explanation={"type": "array", "items": {"type": "string"}},
                                  query_id={"type": "array", "items": {"type": "integer"}}))
    infer_op = {
        "summary": "Open Inference Protocol (V2) inference: each row of the one input tensor is one query",
        "requestBody": _body(_obj(["inputs"], id={"type": "string"},
                                  inputs={"type": "array", "minItems": 1, "maxItems": 1, "items": v2_in},
                                  parameters=_obj([], uid=INT64)),
                             {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64",
                                          "data": [1.1, 2.2, 3.3]}]}),
        "responses": {"200": _json(_obj(["model_name", "outputs"], model_name={"type": "string"},
                                        model_version={"type": "string"},
                                        id={**ANY, "description": "the request's id"},
                                        outputs={"type": "array", "items": v2_out})),
                      **_errors(400, 404, 413, 503)}}
    tensor_meta = _obj(["name", "datatype", "shape"], name={"type": "string"}, datatype={"type": "string"},
                       shape={"type": "array", "items": {"type": "integer"}})
    metadata = {"summary": "V2 model metadata of an app",
                "responses": {"200": _json(_obj(["name", "versions", "platform", "inputs", "outputs"],
                                                name={"type": "string"},
                                                versions={"type": "array", "items": {"type": "string"}},
                                                platform={"type": "string"},
                                                inputs={"type": "array", "items": tensor_meta},
                                                outputs={"type": "array", "items": tensor_meta})),
                              **_errors(404)}}
    ready_answer = _obj(["name", "ready"], name={"type": "string"}, ready={"type": "boolean"})
    ready = {"summary": "V2 model readiness: a current version of a linked model has a connected replica",
             "responses": {"200": _json(ready_answer, "ready"), "503": _json(ready_answer, "not ready"),
                           **_errors(404)}}

    def get(schema: dict[str, Any], summary: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": _json(schema)}}}

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
            "/health": get(_obj(["status", "apps", "replicas"], status={"type": "string", "enum": ["ok"]},
                                apps={"type": "integer", "minimum": 0}, replicas={"type": "integer", "minimum": 0}),
                           "Liveness, with the number of apps and connected replicas"),
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": _text("Prometheus text exposition format 0.0.4")}}},
            "/openapi.json": get(_obj(["openapi", "info", "paths"]), "This document"),
            "/v2": get(_obj(["name", "version", "extensions"], name={"type": "string"},
                            version={"type": "string"}, extensions={"type": "array", "items": {"type": "string"}}),
                       "V2 server metadata"),
            "/v2/health/live": get(_obj(["live"], live={"type": "boolean"}), "V2 server liveness"),
            "/v2/health/ready": get(_obj(["ready"], ready={"type": "boolean"}), "V2 server readiness"),
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
                        "BatchPredictions": _obj(["batch_predictions"], batch_predictions={
                            "type": "array", "items": {"$ref": "#/components/schemas/Prediction"}})},
            "responses": _error_responses(),
        },
    })


def admin_openapi() -> dict[str, Any]:
    """The management frontend: Clipper's /admin API (POST with JSON bodies), plus info, plugins, and this."""
    text = _text("OK: Clipper's plain-text message")
    app = _obj(["name", "input_type", "default_output", "latency_slo_micros", "linked_models", "policy",
                "policy_config", "cache_enabled"],
               name={"type": "string"}, input_type={"type": "string"}, default_output={"type": "string"},
               latency_slo_micros={"type": "integer"}, linked_models={"type": "array", "items": {"type": "string"}},
               policy={"type": "string"}, policy_config={"type": "object"}, cache_enabled={"type": "boolean"})
    model = _obj(["model_name", "model_version", "input_type", "labels", "container_name", "model_data_path",
                  "is_current_version", "batch_size", "num_replicas"],
                 model_name={"type": "string"}, model_version={"type": "string"}, input_type={"type": "string"},
                 labels={"type": "array", "items": {"type": "string"}}, container_name={"type": "string"},
                 model_data_path={"type": "string"}, is_current_version={"type": "boolean"},
                 batch_size={"type": "integer"}, num_replicas={"type": "integer"})
    replica = _obj(["model_id", "model_name", "model_version", "model_replica_id", "input_type", "pid"],
                   model_id={"type": "string"}, model_name={"type": "string"}, model_version={"type": "string"},
                   model_replica_id={"type": "integer"}, input_type={"type": "string"},
                   pid={"type": "integer", "nullable": True})
    empty = {"type": "object", "maxProperties": 0, "description": "{} when there is no such thing"}
    strings = {"type": "array", "items": {"type": "string"}}

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def verbose_list(item: str, terse: str) -> dict[str, Any]:
        return {"oneOf": [{**strings, "description": terse},
                          {"type": "array", "items": ref(item), "minItems": 1, "description": "verbose"}]}

    def post(summary: str, body: dict[str, Any], ok: dict[str, Any], errors: tuple[int, ...],
             example: Any = None) -> dict[str, Any]:
        return {"post": {"summary": summary, "requestBody": _body(body, example),
                         "responses": {"200": ok, **_errors(*errors, 401, 413)}}}

    def ignored_body(summary: str, ok: dict[str, Any], *errors: int) -> dict[str, Any]:
        return {"post": {"summary": summary, "requestBody": _body({"type": "object"}, required=False),
                         "responses": {"200": ok, **_errors(*errors, 401)}}}

    def get(summary: str, ok: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": ok, **_errors(401)}}}

    verbose = _obj([], verbose={"type": "boolean"})
    model_ref = _obj(["model_name", "model_version"], model_name=NAME, model_version=VERSION_NAME)
    sum_model = {"model_name": "sum-model", "model_version": "1"}
    links = _obj(["app_name", "model_names"], app_name=NAME,
                 model_names={"type": "array", "items": NAME, "minItems": 1})
    link_example = {"app_name": "hello-world", "model_names": ["sum-model"]}
    paths: dict[str, Any] = {
        "/admin/ping": get("Liveness", _text("PONG")),
        "/admin/info": get("Where this server listens", _json(_obj(
            ["query_addr", "admin_addr", "metrics_addr", "rpc_addr", "pid", "home"],
            query_addr={"type": "string", "nullable": True}, admin_addr={"type": "string", "nullable": True},
            metrics_addr={"type": "string", "nullable": True}, rpc_addr={"type": "string", "nullable": True},
            pid={"type": "integer"}, home={"type": "string"}))),
        "/plugins": get("Installed plugins", _json({"type": "array", "items": _obj(
            ["name", "distribution", "version", "hooks"], name={"type": "string"},
            distribution={"type": "string"}, version={"type": "string"}, hooks=strings)})),
        "/openapi.json": get("This document", _json(_obj(["openapi", "info", "paths"]))),
        "/admin/add_app": post(
            "Register an application",
            _obj(["name", "input_type", "default_output", "latency_slo_micros"], name=NAME, input_type=INPUT_TYPE,
                 default_output={"type": "string"},
                 latency_slo_micros={"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                 policy={"type": "string", "description": "an installed selection policy (default 'default')"},
                 policy_config={"type": "object"}, cache_enabled={"type": "boolean"}),
            text, (400,), {"name": "hello-world", "input_type": "doubles", "default_output": "-1.0",
                           "latency_slo_micros": 100000}),
        "/admin/delete_app": post("Delete an application", _obj(["name"], name=NAME), text, (400, 404),
                                  {"name": "hello-world"}),
        "/admin/set_app_policy": post(
            "Change an application's selection policy",
            _obj(["name", "policy"], name=NAME, policy={"type": "string"}, policy_config={"type": "object"}),
            text, (400, 404), {"name": "hello-world", "policy": "default"}),
        "/admin/get_all_applications": post("List applications (names, or verbose objects)", verbose,
                                            _json(verbose_list("Application", "names")), (400,),
                                            {"verbose": True}),
        "/admin/get_application": post("One application ({} if there is none)", _obj(["name"], name=NAME),
                                       _json({"oneOf": [ref("Application"), empty]}), (400,),
                                       {"name": "hello-world"}),
        "/admin/get_state": post("An application's default output",
                                 _obj(["app_name"], app_name=NAME, uid=INT64),
                                 text, (400, 404), {"app_name": "hello-world"}),
        "/admin/add_model_links": post("Link models to an application", links, text, (400, 404), link_example),
        "/admin/delete_model_links": post("Unlink models from an application", links, text, (400, 404),
                                          link_example),
        "/admin/get_linked_models": post("The models linked to an application", _obj(["app_name"], app_name=NAME),
                                         _json(strings), (400, 404), {"app_name": "hello-world"}),
        "/admin/add_model": post(
            "Register a model version (and make it current)",
            _obj(["model_name", "model_version", "input_type", "batch_size"], model_name=NAME,
                 model_version=VERSION_NAME, input_type=INPUT_TYPE,
                 labels={"type": "array", "items": {"type": "string", "pattern": "^[^,:]*$"}},
                 container_name={"type": "string", "description": "a closure model directory, or NO_CONTAINER"},
                 model_data_path={"type": "string"},
                 batch_size={**INT64, "minimum": -1, "not": {"enum": [0]},
                             "description": "a fixed batch size, or -1 for adaptive batching"},
                 batch_wait_timeout_micros={**INT64, "minimum": 0}),
            text, (400,), {**sum_model, "input_type": "doubles", "batch_size": -1}),
        "/admin/set_model_version": post("Make a version current", model_ref, text, (400, 404), sum_model),
        "/admin/delete_versioned_model": post("Delete a model version (and stop its replicas)", model_ref, text,
                                              (400, 404), sum_model),
        "/admin/get_all_models": post("List models ('name:version', or verbose objects)", verbose,
                                      _json(verbose_list("Model", "name:version")), (400,), {"verbose": True}),
        "/admin/get_model": post("One model version ({} if there is none)", model_ref,
                                 _json({"oneOf": [ref("Model"), empty]}), (400,), sum_model),
        "/admin/get_all_containers": post("List connected replicas ('name:version:id', or verbose objects)",
                                          verbose, _json(verbose_list("Replica", "name:version:replica_id")),
                                          (400,), {"verbose": True}),
        "/admin/get_container": post(
            "One connected replica ({} if there is none)",
            _obj(["model_name", "model_version", "replica_id"], model_name=NAME, model_version=VERSION_NAME,
                 replica_id=INT64),
            _json({"oneOf": [ref("Replica"), empty]}), (400,), {**sum_model, "replica_id": 0}),
        "/admin/set_num_replicas": post(
            "Start or stop replicas of a closure model",
            _obj(["model_name", "model_version", "num_replicas"], model_name=NAME, model_version=VERSION_NAME,
                 num_replicas={"type": "integer", "minimum": 0, "maximum": 256}),
            _json(_obj(["model_name", "model_version", "num_replicas"], model_name={"type": "string"},
                       model_version={"type": "string"}, num_replicas={"type": "integer"})),
            (400, 404), {**sum_model, "num_replicas": 1}),
        "/admin/get_num_replicas": post(
            "Replicas wanted, running and connected", model_ref,
            _json(_obj(["num_replicas", "running", "connected"], num_replicas={"type": "integer"},
                       running={"type": "integer"}, connected={"type": "integer"})),
            (400, 404), sum_model),
        "/admin/get_logs": ignored_body("Log files (the body is ignored)",
                                        _json(_obj(["files"], files=strings))),
        "/admin/shutdown": ignored_body("Stop the server gracefully (the body is ignored)",
                                        _json(_obj(["stopping"], stopping={"type": "boolean"})), 400),
    }
    return copy.deepcopy({
        "openapi": "3.0.3",
        "info": {"title": "clipper management API", "version": VERSION,
                 "description": "Clipper's /admin API. When the server has an admin token, every endpoint needs "
                                "'Authorization: Bearer <token>'. Errors are JSON {\"error\", \"cause\"}; a "
                                "method a path does not list answers 405 with that object."},
        "servers": [{"url": "/"}],
        "security": [{}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, "Application": app, "Model": model, "Replica": replica},
            "responses": _error_responses(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the server's admin token (CLIPPER_ADMIN_TOKEN)"}},
        },
    })
