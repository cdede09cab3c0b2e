"""Small helpers shared by the emulator's modules: timestamps and generated-name suffixes, access to an object's
metadata and labels, dotted-path lookup and JSON-path rendering, integer query parameters, and the JSON
bodies (a Success Status, any payload) of HTTP answers.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping
from typing import Any

import aiohttp.web

from .errors import _details, bad_request
from .resources import JSON, ResourceType


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_suffix(length: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # what the real apiserver uses: no vowels, no look-alikes
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _meta(obj: Mapping[str, Any]) -> JSON:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def _dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _json_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{value}"') from None


def _status_success(rt: ResourceType, obj: JSON) -> JSON:
    meta = _meta(obj)
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success",
            "details": _details(rt, meta.get("name"), uid=meta.get("uid"))}


def _json_response(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.json_response(payload, status=status)
