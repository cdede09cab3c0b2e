"""Reading and validating the fields of admin request bodies: every problem becomes an InvalidInput that
names the field, what was wrong, and what is expected."""

from __future__ import annotations

import dataclasses
from typing import Any

from clipper_core.autoscaling.config import AutoscalingConfig
from clipper_core.errors import InvalidInput
from clipper_core.inputs import INT64_MAX, INT64_MIN, InputType, json_kind, parse_input_type
from clipper_core.names import check_name
from clipper_core.rollouts.settings import RolloutSettings

__all__ = ["MAX_REPLICAS", "MAX_SLO_MICROS", "Body"]

MAX_SLO_MICROS = 2**31 - 1  # Clipper stores the SLO as a signed 32-bit int (~35.8 minutes)
MAX_REPLICAS = 256
"""Most replicas one model version may be asked to run."""
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", list: "an array", dict: "an object"}


class Body:
    """A parsed JSON object body with typed accessors."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _get(self, key: str, kind: type, default: Any) -> Any:
        if key not in self.data:
            if default is _REQUIRED:
                raise InvalidInput(f"JSON object does not have required key: {key}")
            return default
        value = self.data[key]
        ok = isinstance(value, int) and not isinstance(value, bool) if kind is int else isinstance(value, kind)
        if not ok:
            raise InvalidInput(f"'{key}' is {json_kind(value)}; expected {_TYPE_NAMES[kind]}")
        if kind is int and not INT64_MIN <= value <= INT64_MAX:
            raise InvalidInput(f"'{key}' is {value}; expected an integer between {INT64_MIN} and {INT64_MAX}")
        return value

    def text(self, key: str, default: Any = None) -> Any:
        return self._get(key, str, _REQUIRED if default is None else default)

    def integer(self, key: str, default: Any = None) -> Any:
        return self._get(key, int, _REQUIRED if default is None else default)

    def boolean(self, key: str, default: Any = None) -> Any:
        return self._get(key, bool, _REQUIRED if default is None else default)

    def mapping(self, key: str, default: Any = None) -> Any:
        return self._get(key, dict, _REQUIRED if default is None else default)

    def name(self, key: str) -> str:
        """An app name, model name or version: non-empty, short, and safe in paths and store keys."""
        value: str = self.text(key)
        return check_name(key, value)

    def names(self, key: str) -> list[str]:
        values = self._get(key, list, _REQUIRED)
        if not values:
            raise InvalidInput(f"'{key}' is empty; expected an array of at least one name")
        for value in values:
            if not isinstance(value, str):
                raise InvalidInput(f"'{key}' contains {json_kind(value)}; expected an array of names")
            check_name(key, value)
        return list(values)

    def version(self, key: str) -> str:
        """Clipper clients send versions as strings; integers are accepted and converted."""
        value = self.data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return check_name(key, str(value))
        return self.name(key)

    def input_type(self, key: str = "input_type") -> InputType:
        return parse_input_type(self.text(key))

    def labels(self, key: str = "labels") -> tuple[str, ...]:
        values = self._get(key, list, [])
        for value in values:
            if not isinstance(value, str):
                raise InvalidInput(f"'{key}' contains {json_kind(value)}; expected an array of strings")
            if "," in value or ":" in value:
                raise InvalidInput(f"label {value!r} contains ',' or ':', which are not allowed in labels")
        return tuple(values)

    def slo(self, key: str = "latency_slo_micros") -> int:
        value: int = self.integer(key)
        if not 0 < value <= MAX_SLO_MICROS:
            raise InvalidInput(f"'{key}' is {value}; expected microseconds between 1 and {MAX_SLO_MICROS}")
        return value

    def batch_size(self, key: str = "batch_size") -> int:
        """Clipper's batch size: a fixed positive size, or -1 for adaptive batching."""
        value: int = self.integer(key)
        if value != -1 and value <= 0:
            raise InvalidInput(f"'{key}' is {value}; expected a positive batch size or -1 (adaptive)")
        return value

    def micros(self, key: str, default: int) -> int:
        """A duration in microseconds, 0 or more."""
        value: int = self.integer(key, default)
        if value < 0:
            raise InvalidInput(f"'{key}' is {value}; expected microseconds >= 0")
        return value

    def autoscaling(self, key: str = "autoscaling", required: bool = False) -> dict[str, Any] | None:
        """Autoscaling settings (validated, defaults filled in), or None: ``null`` turns autoscaling off, and an
        absent key is None unless ``required``."""
        if key not in self.data:
            if required:
                raise InvalidInput(f"JSON object does not have required key: {key} (an object of settings, or null "
                                   "to turn autoscaling off)")
            return None
        value = self.data[key]
        return None if value is None else AutoscalingConfig.from_dict(value).to_dict()

    def rollout_settings(self, *fields: str) -> dict[str, Any]:
        """The body's keys other than ``fields`` (read by their own accessors) as rollout settings, validated
        (omitted ones take their defaults); any other key is refused, naming what is accepted."""
        settings = {key: value for key, value in self.data.items() if key not in fields}
        known = {f.name for f in dataclasses.fields(RolloutSettings)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InvalidInput(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(fields)} and "
                               f"any of the rollout settings {', '.join(sorted(known))}")
        return RolloutSettings.from_dict(settings).to_dict()

    def replica_count(self, key: str = "num_replicas") -> int:
        value: int = self.integer(key)
        if not 0 <= value <= MAX_REPLICAS:
            raise InvalidInput(f"'{key}' is {value}; expected 0 to {MAX_REPLICAS}")
        return value


_REQUIRED = object()
