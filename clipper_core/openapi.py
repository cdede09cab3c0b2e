"""OpenAPI 3.0 documents of the query API and the management API, served at ``/openapi.json`` by each app."""

from __future__ import annotations

from typing import Any

__all__ = ["admin_openapi", "query_openapi"]

ERROR = {"type": "object", "required": ["error", "cause"], "additionalProperties": False,
         "properties": {"error": {"type": "string"}, "cause": {"type": "string"}}}
INPUT = {"oneOf": [{"type": "array", "items": {"type": "number"}, "minItems": 1},
                   {"type": "string", "minLength": 1}],
         "description": "numbers for integers/floats/doubles apps; a string for strings apps; base64 for bytes apps"}
ANY: dict[str, Any] = {}
PREDICTION = {"type": "object", "required": ["query_id", "output", "default"],
              "properties": {"query_id": {"type": "integer"}, "output": ANY, "default": {"type": "boolean"},
                             "default_explanation": {"type": "string"},
                             "models": {"type": "array", "items": {"type": "string"}}}}
NAME = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9._-]+$"}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "invalid request: the cause says what was wrong and what was expected",
            401: "missing or wrong bearer token", 404: "unknown application or path",
            405: "method not allowed", 413: "body larger than the limit", 503: "overloaded or shutting down"}
    return {str(code): _error(text[code]) for code in codes}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


APP_PARAM = {"name": "app", "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}


def query_openapi() -> dict[str, Any]:
    predict_request = {"type": "object", "properties": {
        "input": INPUT, "input_batch": {"type": "array", "items": INPUT, "minItems": 1},
        "version": {"type": "string"}, "uid": {"type": "integer"}}}
    predict_op = {"summary": "Predict (Clipper's REST API)", "parameters": [APP_PARAM],
                  "requestBody": _body(predict_request),
                  "responses": {"200": _json({"oneOf": [
                      {"$ref": "#/components/schemas/Prediction"},
                      {"type": "object", "required": ["batch_predictions"], "properties": {
                          "batch_predictions": {"type": "array",
                                                "items": {"$ref": "#/components/schemas/Prediction"}}}}]}),
                                **_errors(400, 404, 413, 503)}}
    update_op = {"summary": "Feedback: the true label of an input", "parameters": [APP_PARAM],
                 "requestBody": _body({"type": "object", "required": ["input", "label"], "properties": {
                     "uid": {"type": "integer"}, "input": INPUT, "label": {"type": "number"},
                     "query_id": {"type": "integer"}}}),
                 "responses": {"200": _json({"type": "object", "required": ["feedback_received", "seq"],
                                             "properties": {"query_id": {"type": "integer"},
                                                            "feedback_received": {"type": "boolean"},
                                                            "seq": {"type": "integer"}}}),
                               **_errors(400, 404, 413, 503)}}
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string"}, "data": {"type": "array"}, "parameters": {"type": "object"}}}
    infer_op = {"summary": "Open Inference Protocol (V2) inference over an app",
                "requestBody": _body({"type": "object", "required": ["inputs"], "properties": {
                    "id": {"type": "string"}, "inputs": {"type": "array", "items": tensor},
                    "parameters": {"type": "object"}}}),
                "responses": {"200": _json({"type": "object", "required": ["model_name", "outputs"], "properties": {
                    "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
                    "outputs": {"type": "array", "items": tensor}}}), **_errors(400, 404, 413, 503)}}
    version_param = {"name": "version", "in": "path", "required": True,
                     "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
    metadata = {"responses": {"200": _json({"type": "object"}), **_errors(404)}}
    ready = {"responses": {"200": _json({"type": "object"}), "503": _json({"type": "object"}, "not ready"),
                           **_errors(404)}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "clipper query API", "version": "0.1.0"},
        "servers": [{"url": "/"}],
        "paths": {
            "/{app}/predict": {"post": predict_op},
            "/{app}/predict/": {"post": predict_op},
            "/{app}/update": {"post": update_op},
            "/{app}/update/": {"post": update_op},
            "/health": {"get": {"responses": {"200": _json({"type": "object"})}}},
            "/metrics": {"get": {"responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"responses": {"200": _json({"type": "object"})}}},
            "/v2": {"get": {"responses": {"200": _json({"type": "object"})}}},
            "/v2/health/live": {"get": {"responses": {"200": _json({"type": "object"})}}},
            "/v2/health/ready": {"get": {"responses": {"200": _json({"type": "object"})}}},
            "/v2/models/{app}": {"get": {**metadata, "parameters": [APP_PARAM]}},
            "/v2/models/{app}/versions/{version}": {"get": {**metadata, "parameters": [APP_PARAM, version_param]}},
            "/v2/models/{app}/ready": {"get": {**ready, "parameters": [APP_PARAM]}},
            "/v2/models/{app}/versions/{version}/ready": {"get": {**ready,
                                                                  "parameters": [APP_PARAM, version_param]}},
            "/v2/models/{app}/infer": {"post": {**infer_op, "parameters": [APP_PARAM]}},
            "/v2/models/{app}/versions/{version}/infer": {"post": {**infer_op,
                                                                   "parameters": [APP_PARAM, version_param]}},
        },
        "components": {"schemas": {"Error": ERROR, "Prediction": PREDICTION}},
    }


def admin_openapi() -> dict[str, Any]:
    text = {"description": "OK (Clipper's plain-text message)",
            "content": {"text/plain": {"schema": {"type": "string"}}}}
    errors = _errors(400, 401, 404, 413)

    def post(body: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
        return {"post": {"requestBody": _body(body), "responses": {"200": ok, **errors}}}

    def obj(required: list[str], **props: Any) -> dict[str, Any]:
        return {"type": "object", "required": required, "properties": props}

    verbose = obj([], verbose={"type": "boolean"})
    model_ref = obj(["model_name", "model_version"], model_name=NAME, model_version=NAME)
    app_fields = {"name": NAME, "input_type": {"type": "string"}, "default_output": {"type": "string"},
                  "latency_slo_micros": {"type": "integer", "minimum": 1, "maximum": 2147483647},
                  "policy": {"type": "string"}, "policy_config": {"type": "object"},
                  "cache_enabled": {"type": "boolean"}}
    any_json = _json(ANY)
    paths: dict[str, Any] = {
        "/admin/ping": {"get": {"responses": {"200": text, **_errors(401)}}},
        "/admin/info": {"get": {"responses": {"200": _json({"type": "object"}), **_errors(401)}}},
        "/plugins": {"get": {"responses": {"200": _json({"type": "array"}), **_errors(401)}}},
        "/openapi.json": {"get": {"responses": {"200": _json({"type": "object"}), **_errors(401)}}},
        "/admin/add_app": post(obj(["name", "input_type", "default_output", "latency_slo_micros"], **app_fields), text),
        "/admin/delete_app": post(obj(["name"], name=NAME), text),
        "/admin/set_app_policy": post(obj(["name", "policy"], name=NAME, policy={"type": "string"},
                                          policy_config={"type": "object"}), text),
        "/admin/get_all_applications": post(verbose, _json({"type": "array"})),
        "/admin/get_application": post(obj(["name"], name=NAME), _json({"type": "object"})),
        "/admin/get_state": post(obj(["app_name"], app_name=NAME, uid={"type": "integer"}), text),
        "/admin/add_model_links": post(obj(["app_name", "model_names"], app_name=NAME,
                                           model_names={"type": "array", "items": NAME, "minItems": 1}), text),
        "/admin/delete_model_links": post(obj(["app_name", "model_names"], app_name=NAME,
                                              model_names={"type": "array", "items": NAME, "minItems": 1}), text),
        "/admin/get_linked_models": post(obj(["app_name"], app_name=NAME), _json({"type": "array"})),
        "/admin/add_model": post(obj(["model_name", "model_version", "input_type", "batch_size"],
                                     model_name=NAME, model_version=NAME, input_type={"type": "string"},
                                     labels={"type": "array", "items": {"type": "string"}},
                                     container_name={"type": "string"}, model_data_path={"type": "string"},
                                     batch_size={"type": "integer"},
                                     batch_wait_timeout_micros={"type": "integer", "minimum": 0}), text),
        "/admin/set_model_version": post(model_ref, text),
        "/admin/delete_versioned_model": post(model_ref, text),
        "/admin/get_all_models": post(verbose, _json({"type": "array"})),
        "/admin/get_model": post(model_ref, _json({"type": "object"})),
        "/admin/get_all_containers": post(verbose, _json({"type": "array"})),
        "/admin/get_container": post(obj(["model_name", "model_version", "replica_id"], model_name=NAME,
                                         model_version=NAME, replica_id={"type": "integer"}),
                                     _json({"type": "object"})),
        "/admin/set_num_replicas": post(obj(["model_name", "model_version", "num_replicas"], model_name=NAME,
                                            model_version=NAME, num_replicas={"type": "integer", "minimum": 0,
                                                                              "maximum": 256}), any_json),
        "/admin/get_num_replicas": post(model_ref, any_json),
        "/admin/get_logs": post({"type": "object"}, any_json),
        "/admin/shutdown": post({"type": "object"}, any_json),
    }
    return {"openapi": "3.0.3", "info": {"title": "clipper management API", "version": "0.1.0"},
            "servers": [{"url": "/"}], "paths": paths,
            "components": {"schemas": {"Error": ERROR},
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}
