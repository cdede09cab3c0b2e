"""What the OpenAPI 3.0.3 documents of clipper's APIs share: schemas (ERROR, NAME, INT64, ...) and helpers that
build response, request-body and object schemas.

The documents are served at ``GET /openapi.json`` by each app: the query API's is
:func:`clipper_core.frontend.openapi.query_openapi`, the management API's
:func:`clipper_core.management.openapi.admin_openapi`. Written by hand as plain dicts (no runtime dependency).
tests/test_openapi.py checks that they are valid OpenAPI, that they list exactly the routes each aiohttp app
registers (a GET route's implicit HEAD aside), and, with schemathesis against a live server, that every answer
is one they document.
"""

from __future__ import annotations

from typing import Any

from clipper_core.names import NAME_LIMIT, NAME_PATTERN
from clipper_core.version import __version__

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
    "request_body",
    "text_reply",
]

VERSION = __version__
ANY: dict[str, Any] = {}
"""The empty schema: any JSON value."""
INT64: dict[str, Any] = {"type": "integer", "format": "int64"}

ERROR: dict[str, Any] = {
    "type": "object", "required": ["error", "cause"], "additionalProperties": False,
    "description": "Every error answer: a short title and a cause that says what was wrong and what was expected.",
    "properties": {"error": {"type": "string", "example": "Json error"},
                   "cause": {"type": "string", "example": "JSON object does not have required keys input or "
                                                          "input_batch"}}}
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
           503: ("Unavailable", "overloaded, shutting down, not ready, or the app's selection policy is unavailable")}


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
