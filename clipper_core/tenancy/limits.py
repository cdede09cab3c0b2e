"""An application's limits and priority class, and an API key's own limits: what ``/admin/set_app_limits``,
``/admin/add_api_key``, ``ClipperConnection.set_app_limits`` / ``create_api_key`` and ``clipper limits`` / ``clipper
keys`` accept, validated once here (every problem an ``InvalidInput``, HTTP 400, naming the field, what it was and
what is expected), and kept in the records as plain JSON objects (``Application.limits``, ``ApiKey.limits``).

Every limit is optional; an absent one (or ``null``) is no limit:

* ``requests_per_second`` with ``requests_burst`` and ``inputs_per_second`` with ``inputs_burst``: token buckets
  (a request costs one request token and one input token per input); a burst left out is ``max(1, ceil(rate))``,
  one second's worth, so :meth:`KeyLimits.from_json` fills it in and the stored object says it;
* ``max_concurrent``: queries of the app (or key) in flight at once;
* an app's input limits, :class:`AppLimits` only: ``max_input_length`` (elements of a numeric input, bytes of a
  bytes or string input), ``max_batch_size`` (inputs per request: an ``input_batch``'s length, a V2 tensor's rows)
  and ``max_body_bytes`` (a request body's size).

An app's priority class is one of :data:`PRIORITIES`, ``normal`` unless set (:func:`check_priority`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from clipper_core.errors import InvalidInput
from clipper_core.settings_checks import check_integer, check_number, known_settings

__all__ = ["DEFAULT_PRIORITY", "MAX_BODY_BYTES", "MAX_COUNT", "MAX_RATE", "PRIORITIES", "AppLimits", "KeyLimits",
           "check_priority", "default_burst"]

PRIORITIES = ("high", "normal", "low")
"""An app's priority classes, highest first."""
DEFAULT_PRIORITY = "normal"
MAX_RATE = 1e9
"""The highest rate (per second) a limit may name."""
MAX_COUNT = 10**9
"""The highest burst, concurrency, input length or batch size a limit may name."""
MAX_BODY_BYTES = 2**40
"""The largest body size a limit may name (1 TiB: the server's own ``CLIPPER_MAX_BODY_BYTES`` is lower anyway)."""

_L = TypeVar("_L", bound="KeyLimits")


def default_burst(rate: float) -> int:
    """The burst of a token bucket filling at ``rate`` per second when none is given: one second's worth."""
    return max(1, math.ceil(rate))


def check_priority(value: Any, key: str = "priority") -> str:
    """``value`` as a priority class (one of :data:`PRIORITIES`)."""
    if not isinstance(value, str) or value not in PRIORITIES:
        raise InvalidInput(f"'{key}' is {value!r}; expected one of {', '.join(PRIORITIES)}")
    return value


@dataclass(frozen=True)
class KeyLimits:
    """An API key's limits (and the first part of an app's, :class:`AppLimits`); None: no limit."""

    requests_per_second: float | None = None
    requests_burst: int | None = None
    inputs_per_second: float | None = None
    inputs_burst: int | None = None
    max_concurrent: int | None = None

    _BUCKETS: ClassVar[tuple[tuple[str, str], ...]] = (("requests_per_second", "requests_burst"),
                                                        ("inputs_per_second", "inputs_burst"))
    """(rate, its burst) of each token bucket."""
    _COUNTS: ClassVar[dict[str, int]] = {"max_concurrent": MAX_COUNT}
    """The integer limits besides the bursts, and the most each may be."""

    @classmethod
    def from_json(cls: type[_L], data: Any, label: str = "limits") -> _L:
        """Validate ``data``, a JSON object of limits (``label``: its field in the request, which every message
        names as ``'<label>.<limit>'``); ``null`` values are no limit, an omitted burst takes
        :func:`default_burst` of its rate. Raises :class:`~clipper_core.errors.InvalidInput`."""
        names = [f.name for f in dataclasses.fields(cls)]
        values = known_settings(f"'{label}'", data, names, "an object of limits or null")
        values = {k: v for k, v in values.items() if v is not None}
        for rate, burst in cls._BUCKETS:
            if burst in values and rate not in values:
                raise InvalidInput(f"'{label}.{burst}' is set without '{label}.{rate}'; expected both, or the "
                                   "rate alone (its burst is then one second's worth)")
        limits = cls(**values)
        limits.check(label)
        return limits.normalised()

    def check(self, label: str = "limits") -> None:
        """Raise :class:`~clipper_core.errors.InvalidInput` for a limit of the wrong type or out of range."""
        for rate, burst in self._BUCKETS:
            if getattr(self, rate) is not None:
                check_number(f"{label}.{rate}", getattr(self, rate), 0.0, MAX_RATE, open_low=True)
            if getattr(self, burst) is not None:
                check_integer(f"{label}.{burst}", getattr(self, burst), 1, MAX_COUNT)
        for name, most in self._COUNTS.items():
            if getattr(self, name) is not None:
                check_integer(f"{label}.{name}", getattr(self, name), 1, most)

    def normalised(self: _L) -> _L:
        """These (checked) limits with the rates as floats and each burst that is left out set to
        :func:`default_burst` of its rate."""
        changes: dict[str, Any] = {}
        for rate, burst in self._BUCKETS:
            value = getattr(self, rate)
            if value is not None:
                changes[rate] = float(value)
                if getattr(self, burst) is None:
                    changes[burst] = default_burst(value)
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def unlimited(self) -> bool:
        """Whether no limit is set."""
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def to_json(self) -> dict[str, Any]:
        """The limits that are set, as a JSON object (``{}`` when none is)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def stored(cls: type[_L], data: Mapping[str, Any] | None) -> _L:
        """The limits a record keeps (what :meth:`to_json` made, checked when it was stored); None: no limits."""
        return cls(**(data or {}))


@dataclass(frozen=True)
class AppLimits(KeyLimits):
    """An application's limits: a key's (rates, bursts, concurrency) and its input limits; None: no limit."""

    max_input_length: int | None = None
    max_batch_size: int | None = None
    max_body_bytes: int | None = None

    _COUNTS: ClassVar[dict[str, int]] = {"max_concurrent": MAX_COUNT, "max_input_length": MAX_COUNT,
                                         "max_batch_size": MAX_COUNT, "max_body_bytes": MAX_BODY_BYTES}
