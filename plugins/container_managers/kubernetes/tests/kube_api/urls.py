"""Request decoding: splitting a Kubernetes API URL into group, version, plural, namespace, name and subresource
(kmock's parser cannot parse ``/api/v1/namespaces[/x[/status]]`` or ``services/x:port/proxy/...``), decoding
JSON bodies, and the RBAC verb of a request.
"""

from __future__ import annotations

import json
from typing import Any

import kmock
from kmock._internal import parsing as kmock_parsing

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def parse_api_path(path: str) -> kmock_parsing.ParsedPath:
    """Split a Kubernetes API URL into group, version, plural, namespace, name, subresource."""
    parts = path.strip("/").split("/")
    version: str | None
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == "apis":
        group, version, rest = parts[1], (parts[2] if len(parts) > 2 else None), parts[3:]
    else:
        return kmock_parsing.ParsedPath()
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return kmock_parsing.ParsedPath(group, version, plural, namespace, name, subresource)


def _decode_body(body: bytes) -> Any:
    """JSON bodies only: YAML, protobuf and CBOR are not served."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def request_verb(request: kmock.Request) -> str:
    """The RBAC verb of a request (the proxy subresource uses the plain HTTP verbs)."""
    method = str(request.method.value).upper()
    if method == "GET":
        if request.name is None:
            return "watch" if request.params.get("watch") in ("true", "1") else "list"
        return "watch" if request.params.get("watch") in ("true", "1") else "get"
    collection = {"POST": "create", "DELETE": "deletecollection"}
    named = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "HEAD": "get"}
    return (named if request.name is not None else collection).get(method, method.lower())
