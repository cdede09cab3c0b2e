"""Pieces both web apps share: the one middleware that renders errors as JSON, and JSON responses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from clipper_core.errors import ClipperError, InvalidInput
from clipper_core.inputs import json_kind

__all__ = ["error_middleware", "error_response", "json_response", "read_json_object"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSON = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def error_body(title: str, cause: str) -> bytes:
    return orjson.dumps({"error": title, "cause": cause})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render ClipperError and aiohttp HTTP errors as ``{"error", "cause"}``; never leak a traceback."""
    try:
        return await handler(request)
    except Exception as exc:
        return error_response(request.app, request, exc)


def error_response(app: web.Application, request: web.BaseRequest, exc: Exception) -> web.StreamResponse:
    """The JSON answer to an exception a handler of ``app`` raised (HTTP redirects are raised again)."""
    if isinstance(exc, ClipperError):
        return web.Response(body=orjson.dumps(exc.to_json()), status=exc.status, content_type=JSON,
                            headers=exc.headers)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        cause = _http_cause(request, exc)
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
        return web.Response(body=error_body(exc.reason, cause), status=exc.status, content_type=JSON,
                            headers=headers)
    hook = app.get(HANDLE_EXCEPTION)
    if hook is not None:
        replacement = hook(app=app, request=request, exception=exc)
        if replacement is not None:
            return replacement
    log.exception("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return web.Response(body=error_body("Internal error", f"{type(exc).__name__}: {exc}"), status=500,
                        content_type=JSON)


HANDLE_EXCEPTION: web.AppKey[Callable[..., Any]] = web.AppKey("clipper_handle_exception")


def _http_cause(request: web.BaseRequest, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no such endpoint: {request.method} {request.path}"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    return exc.text or exc.reason


async def read_json_object(request: web.BaseRequest, expected: str = "a JSON object") -> dict[str, Any]:
    """Parse the body as a JSON object or raise InvalidInput saying what is wrong and ``expected``."""
    body = await request.read()
    if not body:
        raise InvalidInput(f"request body is empty; expected {expected}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "Inference-Header-Content-Length" in request.headers:  # the V2 binary extension sent to a JSON-only path
            raise InvalidInput(f"Error parsing JSON: {exc}; this endpoint takes JSON only (expected {expected}): the "
                               "binary tensor data extension (Inference-Header-Content-Length) is for "
                               "/v2/models/{app}/infer") from None
        raise InvalidInput(f"Error parsing JSON: {exc}; expected {expected}") from None
    if data.__class__ is not dict:
        raise InvalidInput(f"request body is a JSON value that is {json_kind(data)}; expected {expected}")
    return data
