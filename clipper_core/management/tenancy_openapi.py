"""The OpenAPI description of the tenancy endpoints (:mod:`clipper_core.management.tenancy`): their paths and the
schemas of what they take and answer, merged into :func:`clipper_core.management.openapi.admin_openapi`."""

from __future__ import annotations

from typing import Any

from clipper_core.openapi import NAME, error_refs, json_reply, obj, request_body
from clipper_core.tenancy.keys import KEY_ID_LENGTH
from clipper_core.tenancy.limits import MAX_BODY_BYTES, MAX_COUNT, MAX_RATE, PRIORITIES

__all__ = ["APP_LIMITS", "KEY_LIMITS", "TENANCY_SCHEMAS", "tenancy_paths"]


def _closed(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "additionalProperties": False, "description": description}


def _limit(kind: str, most: float, what: str) -> dict[str, Any]:
    if kind == "number":
        return {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": most, "nullable": True,
                "description": what}
    return {"type": "integer", "minimum": 1, "maximum": most, "nullable": True, "description": what}


_KEY_FIELDS: dict[str, Any] = {
    "requests_per_second": _limit("number", MAX_RATE, "a token bucket of requests filling at this rate"),
    "requests_burst": _limit("integer", MAX_COUNT, "its size (needs requests_per_second; default one second's "
                                                   "worth, max(1, ceil(rate)))"),
    "inputs_per_second": _limit("number", MAX_RATE, "a token bucket of inputs (each input of a batch counts)"),
    "inputs_burst": _limit("integer", MAX_COUNT, "its size (needs inputs_per_second; default one second's worth)"),
    "max_concurrent": _limit("integer", MAX_COUNT, "queries in flight at once"),
}
KEY_LIMITS = _closed(obj([], **_KEY_FIELDS), "An API key's own limits; an absent or null limit is no limit")
APP_LIMITS = _closed(obj([], **_KEY_FIELDS, max_input_length=_limit(
    "integer", MAX_COUNT, "elements of a numeric input, bytes of a bytes or string input"),
    max_batch_size=_limit("integer", MAX_COUNT, "inputs a request may carry (input_batch, a V2 tensor's rows)"),
    max_body_bytes=_limit("integer", MAX_BODY_BYTES, "a request body's size")),
    "An application's limits; an absent or null limit is no limit")
KEY_ID = {"type": "string", "pattern": f"^[0-9a-f]{{{KEY_ID_LENGTH}}}$", "description": "a key's public id"}
PRIORITY = {"type": "string", "enum": list(PRIORITIES), "description": "the app's priority class (normal)"}
LABEL = {"type": "string", "maxLength": 256, "pattern": "^[^\\x00-\\x1f\\x7f]*$",
         "description": "what the key is for (printable text)"}

API_KEY = _closed(obj(["key_id", "app_name", "label", "limits", "created_at"], key_id=KEY_ID,
                      app_name={"type": "string"}, label={"type": "string"},
                      limits={**KEY_LIMITS, "nullable": True, "description": "null: only the app's limits apply"},
                      created_at={"type": "number", "description": "unix seconds"}),
                  "An API key as listings show it: never its secret nor its digest")
NEW_API_KEY = _closed(obj(["key_id", "api_key", "app_name", "label", "limits", "created_at"],
                          **API_KEY["properties"], api_key={
                              "type": "string", "pattern": "^clk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$",
                              "description": "the key itself: shown this once, never again (only its salted "
                                             "digest is stored); send it as 'Authorization: Bearer <key>'"}),
                      "A new API key, with its secret")
REVOKED = _closed(obj([*API_KEY["required"], "revoked"], **API_KEY["properties"], revoked={"type": "boolean"}),
                  "The revoked key")
APP_LIMITS_REPLY = _closed(obj(["app_name", "require_api_key", "priority", "limits", "api_keys"],
                               app_name={"type": "string"}, require_api_key={"type": "boolean"}, priority=PRIORITY,
                               limits={**APP_LIMITS, "nullable": True, "description": "null: no limits"},
                               api_keys={"type": "integer", "minimum": 0, "description": "the app's API keys"}),
                           "What is in force for an application")

TENANCY_SCHEMAS: dict[str, Any] = {"ApiKey": API_KEY, "NewApiKey": NEW_API_KEY, "AppLimits": APP_LIMITS_REPLY}
"""The components the tenancy paths refer to."""


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _post(summary: str, body: dict[str, Any], ok: dict[str, Any], example: Any) -> dict[str, Any]:
    return {"post": {"summary": summary, "requestBody": request_body(body, example),
                     "responses": {"200": ok, **error_refs(400, 404, 401, 413)}}}


def tenancy_paths() -> dict[str, Any]:
    app = {"app_name": "hello-world"}
    return {
        "/admin/add_api_key": _post(
            "A new API key of an application (its secret is in this answer only)",
            _closed(obj(["app_name"], app_name=NAME, label=LABEL,
                        limits={**KEY_LIMITS, "nullable": True, "description": "the key's own limits (null: none)"}),
                    "unknown keys are refused"),
            json_reply(_ref("NewApiKey")), {**app, "label": "ci", "limits": {"requests_per_second": 10}}),
        "/admin/get_api_keys": _post(
            "API keys (of one application), without their secrets",
            _closed(obj([], app_name={**NAME, "nullable": True, "description": "absent or null: every app's"}),
                    "unknown keys are refused"),
            json_reply({"type": "array", "items": _ref("ApiKey")}), app),
        "/admin/revoke_api_key": _post(
            "Revoke an API key: every query frontend refuses it as soon as the store's change feed tells it",
            _closed(obj(["key_id"], key_id=KEY_ID), "unknown keys are refused"), json_reply(REVOKED),
            {"key_id": "0123456789ab"}),
        "/admin/set_app_limits": _post(
            "Change an application's key requirement, priority class or limits (what is given; limits replaces "
            "the whole set, null or {} removes it)",
            {**_closed(obj(["app_name"], app_name=NAME, require_api_key={"type": "boolean"}, priority=PRIORITY,
                           limits={**APP_LIMITS, "nullable": True}),
                       "unknown keys are refused; at least one of require_api_key, priority and limits"),
             "minProperties": 2},
            json_reply(_ref("AppLimits")),
            {**app, "require_api_key": True, "priority": "high",
             "limits": {"requests_per_second": 100, "max_concurrent": 16, "max_batch_size": 64}}),
        "/admin/get_app_limits": _post(
            "An application's key requirement, priority class and limits",
            _closed(obj(["app_name"], app_name=NAME), "unknown keys are refused"), json_reply(_ref("AppLimits")),
            app),
    }
