"""PATCH bodies: RFC 7386 JSON merge patch, an approximation of Kubernetes' strategic merge patch, RFC 6902 JSON
patch, and :func:`apply_patch`, which picks one by Content-Type and answers 400/415/422 like the real server.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from .errors import FieldError, bad_request, invalid, unsupported_media_type
from .resources import JSON, ResourceType


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


LIST_MERGE_KEYS = ("name", "type", "containerPort", "port", "mountPath", "devicePath", "ip")


def _list_merge_key(target: list[Any], patch: list[Any]) -> str | None:
    items = target + patch
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in LIST_MERGE_KEYS:
        if all(key in item for item in items):
            return key
    return None


def _strategic_merge_list(target: list[Any], patch: list[Any]) -> list[Any]:
    key = None
    if all(isinstance(item, dict) for item in patch):
        key = _list_merge_key(target, [item for item in patch if item.get("$patch") != "delete"])
    if key is None:
        return [_strip_directives(item) for item in patch]
    result = copy.deepcopy(target)
    for item in patch:
        index = next((i for i, existing in enumerate(result) if existing.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """An approximation of Kubernetes' strategic merge patch.

    Like a JSON merge patch (dicts merge, ``null`` deletes), except that a list of objects merges item by item
    when every item (old and new) carries the same key, tried in this order: ``name`` (containers, env, ports,
    volumes...), ``type`` (conditions), ``containerPort``, ``port``, ``mountPath``, ``devicePath``, ``ip``.
    A patch item ``{"name": x, "$patch": "delete"}`` removes the item; ``{"$patch": "replace"}`` in a dict
    replaces it whole; other ``$`` directives (``$setElementOrder/...``, ``$retainKeys``) are ignored.
    Lists of scalars, or of objects without a common key, are replaced. The real server uses per-field merge
    keys from the Go types (e.g. Service ports merge by ``port`` even when they are named): close, not equal.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _strategic_merge_list(result[key], value)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def apply_patch(rt: ResourceType, name: str, current: JSON, content_type: str, patch: Any) -> JSON:
    """Apply a PATCH body according to its Content-Type; answer 400/415/422 like the real server."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json-patch+json":
        if not isinstance(patch, list):
            raise bad_request("json patch must be a list of operations")
        try:
            patched = jsonpatch.apply_patch(copy.deepcopy(current), patch)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
            raise invalid(rt, name, [FieldError("", f"the server rejected our request due to an error in our "
                                                    f"request: {exc}")]) from None
        if not isinstance(patched, dict):
            raise bad_request("json patch must produce an object")
        return patched
    if media_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        raise unsupported_media_type(content_type)
    if not isinstance(patch, dict):
        raise bad_request(f"the body of the request must be a JSON object for {media_type}")
    if media_type == "application/merge-patch+json":
        merged: JSON = merge_patch(current, patch)
        return merged
    strategic: JSON = strategic_merge_patch(current, patch)
    return strategic
