"""The one JSON encoding of state records, shared by the SQLite and Redis stores.

Values that are not plain JSON are stored as the stores always stored them: bytes (also bytearray and
memoryview) as base64 text, numpy arrays and scalars as lists and numbers (their ``tolist()``); anything else
is refused with a TypeError before a write. Both stores keep a record by its field names: Redis as one JSON
object per record, SQLite as one column per field, where the JSON-valued fields (:data:`JSON_FIELDS`) are
columns of JSON text (``flat=True`` below).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from clipper_core.inputs import InputType
from clipper_core.state.records import ApiKey, Application, Feedback, Model, Replica

__all__ = ["JSON_FIELDS", "decode", "dumps", "encode", "json_default", "loads"]

R = TypeVar("R", Application, Model, Replica, Feedback, ApiKey)

JSON_FIELDS: dict[type, tuple[str, ...]] = {
    Application: ("policy_config", "limits"), Model: ("labels", "autoscaling"), Replica: ("info",),
    Feedback: ("input", "label"), ApiKey: ("limits",)}
"""The fields of each record that hold JSON values (a column of JSON text in a flat layout)."""


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)``: bytes become base64 text, numpy values lists and numbers."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``."""
    return json.dumps(value, default=json_default, separators=(",", ":"))


def loads(raw: str | bytes) -> Any:
    return json.loads(raw)


def encode(record: Application | Model | Replica | Feedback | ApiKey, *, flat: bool = False) -> dict[str, Any]:
    """The record's fields by name, in declaration order, as stored: ``input_type`` as its text and, with
    ``flat``, the JSON-valued fields as JSON text. Raises TypeError for a value JSON cannot hold. The values are
    the record's own (not copies): dump them, do not keep the dict."""
    data = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    if "input_type" in data:
        data["input_type"] = data["input_type"].value
    if flat:
        for name in JSON_FIELDS[type(record)]:
            data[name] = dumps(data[name])
    return data


def decode(kind: type[R], data: Mapping[str, Any], *, flat: bool = False) -> R:
    """The record of type ``kind`` from its stored fields (what :func:`encode` made, with the same ``flat``)."""
    fields = dict(data)
    if flat:
        for name in JSON_FIELDS[kind]:
            fields[name] = json.loads(fields[name])
    if "input_type" in fields:
        fields["input_type"] = InputType(fields["input_type"])
    if kind is Model:
        fields["labels"] = tuple(fields["labels"])
    elif kind is Application:
        fields["cache_enabled"] = bool(fields["cache_enabled"])
        if "require_api_key" in fields:  # absent from a record written before API keys: the default (False)
            fields["require_api_key"] = bool(fields["require_api_key"])
    return kind(**fields)
