"""Query fields both query APIs (Clipper REST and V2) read from their JSON (user id, version, query id) and
headers (the API key)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from clipper_core.errors import InvalidInput
from clipper_core.inputs import INT64_MAX, INT64_MIN
from clipper_core.serving.tenancy import Guard, presented_key
from clipper_core.state import ApiKey

__all__ = ["checked_key", "read_query_id", "read_uid", "read_version", "request_key"]


async def checked_key(request: web.BaseRequest, guard: Guard) -> ApiKey | None:
    """An app's checks before its query body is parsed (``serving.tenancy``): the key's (401/403; its record,
    for the query path) and the body's size (413: ``Content-Length``, or a chunked body once read)."""
    size = request.content_length
    key = guard.precheck(request_key(request), size)
    if size is None and guard.max_body is not None:
        guard.check_body(len(await request.read()))
    return key


def request_key(request: web.BaseRequest) -> str | None:
    """The API key a request presents (``X-API-Key`` or ``Authorization: Bearer``; None without one)."""
    headers = request.headers
    key = headers.get("X-API-Key")
    return presented_key(None if key else headers.get("Authorization"), key)


def read_uid(uid: Any) -> int:
    if uid.__class__ is not int or not INT64_MIN <= uid <= INT64_MAX:
        raise InvalidInput(f"'uid' must be an integer user id between {INT64_MIN} and {INT64_MAX}")
    return int(uid)


def read_version(version: Any) -> str | None:
    """A requested model version (Clipper clients may send integers); None asks for the current one."""
    if version is None:
        return None
    if version.__class__ is int:
        version = str(version)
    if version.__class__ is not str or not version:
        raise InvalidInput("'version' must be a non-empty string naming a registered model version")
    return str(version)


def read_query_id(query_id: Any) -> int | None:
    if query_id is not None and (query_id.__class__ is not int or not INT64_MIN <= query_id <= INT64_MAX):
        raise InvalidInput(f"'query_id' must be an integer between {INT64_MIN} and {INT64_MAX}")
    return query_id
