"""Calls to a live server's management API (a ``ServerThread``) the endpoint tests of several features share:
``call`` (status and JSON), ``ok`` (a 200's answer), ``refused`` (a JSON error of the given status and cause); and
``resolved``, an OpenAPI schema with its ``$ref``s inlined, to validate answers against."""

from __future__ import annotations

from typing import Any

from clipper_core.testing import ServerThread, http_json

__all__ = ["call", "ok", "refused", "resolved"]


def call(server: ServerThread, endpoint: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    return http_json(f"{server.admin_url}/admin/{endpoint}", body, token=token)


def ok(server: ServerThread, endpoint: str, body: Any) -> Any:
    status, answer = call(server, endpoint, body)
    assert status == 200, (endpoint, body, status, answer)
    return answer


def resolved(schema: Any, doc: dict[str, Any]) -> Any:
    """``schema`` (part of the OpenAPI document ``doc``) with every ``$ref`` replaced by what it names."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref is not None:
            return resolved(doc["components"]["schemas"][ref.rsplit("/", 1)[1]], doc)
        return {key: resolved(value, doc) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolved(item, doc) for item in schema]
    return schema


def refused(server: ServerThread, endpoint: str, body: Any, status: int, cause: str) -> str:
    got, answer = call(server, endpoint, body)
    assert got == status, (endpoint, body, got, answer)
    assert isinstance(answer, dict) and set(answer) == {"error", "cause"}, answer
    assert cause in answer["cause"], answer
    return str(answer["cause"])
