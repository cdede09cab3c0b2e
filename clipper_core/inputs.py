"""Input types and the strict, fast decoding of JSON inputs into numpy arrays (or str/bytes).

Clipper's five input types keep their accepted spellings (clipper-reference §1.2). Unlike Clipper, integers are
accepted for float/double apps; booleans, strings, nested lists, NaN and out-of-range values are rejected with a
message that says what was expected.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from enum import Enum
from typing import Any

import numpy as np

from clipper_core.errors import InvalidInput

__all__ = ["INT64_MAX", "INT64_MIN", "InputType", "decode_input", "decode_inputs", "input_to_json", "json_kind",
           "parse_input_type"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The integers a client may send for ids and sizes: what every state store keeps (SQLite INTEGER, Redis)."""


class InputType(str, Enum):
    INTS = "integers"
    FLOATS = "floats"
    DOUBLES = "doubles"
    STRINGS = "strings"
    BYTES = "bytes"

    @property
    def numpy_dtype(self) -> np.dtype[Any] | None:
        return _DTYPES.get(self)

    @property
    def is_numeric(self) -> bool:
        return self in _DTYPES


_DTYPES: dict[InputType, np.dtype[Any]] = {
    InputType.INTS: np.dtype("<i4"),
    InputType.FLOATS: np.dtype("<f4"),
    InputType.DOUBLES: np.dtype("<f8"),
}

_SPELLINGS = {
    **dict.fromkeys(("integers", "ints", "integer", "int", "i"), InputType.INTS),
    **dict.fromkeys(("floats", "float", "f"), InputType.FLOATS),
    **dict.fromkeys(("doubles", "double", "d"), InputType.DOUBLES),
    **dict.fromkeys(("strings", "string", "str", "strs", "s"), InputType.STRINGS),
    **dict.fromkeys(("bytes", "byte", "b"), InputType.BYTES),
}

_EXPECTED = {
    InputType.INTS: "a non-empty JSON array of integers in the signed 32-bit range",
    InputType.FLOATS: "a non-empty JSON array of numbers",
    InputType.DOUBLES: "a non-empty JSON array of numbers",
    InputType.STRINGS: "a non-empty JSON string",
    InputType.BYTES: "a non-empty base64-encoded JSON string",
}

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER_TYPES = frozenset((int, float))


def parse_input_type(value: object) -> InputType:
    """Map any of Clipper's spellings ('doubles', 'd', 'ints', ...) to an :class:`InputType`."""
    if isinstance(value, InputType):
        return value
    if isinstance(value, str):
        found = _SPELLINGS.get(value.strip().lower())
        if found is not None:
            return found
    raise InvalidInput(
        f"invalid input_type {value!r}; expected one of integers, floats, doubles, strings, bytes"
    )


def expected_shape(input_type: InputType) -> str:
    return _EXPECTED[input_type]


def _fail(input_type: InputType, what: str, where: str) -> InvalidInput:
    return InvalidInput(f"{where} {what}; expected {_EXPECTED[input_type]} for an app of input type "
                        f"'{input_type.value}'")


def decode_inputs(values: list[Any], input_type: InputType, where: str = "input_batch") -> list[Any]:
    """Every input of an ``input_batch``. Numeric rows of one length become one [n, d] array, checked at once,
    and the inputs are its rows (views of it: a batch of them reaches the RPC frame without a copy); anything
    else, or a batch with a bad row, is decoded one input at a time (which names the bad row)."""
    dtype = _DTYPES.get(input_type)
    if dtype is not None and len(values) > 1:
        first = values[0]
        width = len(first) if first.__class__ is list else 0
        if width and all(v.__class__ is list and len(v) == width for v in values):
            flat = list(itertools.chain.from_iterable(values))
            kinds = set(map(type, flat))
            if kinds <= _NUMBER_TYPES and not (input_type is InputType.INTS and (
                    float in kinds or max(flat) > _INT32_MAX or min(flat) < _INT32_MIN)):  # (numpy 1 wraps them)
                try:
                    with np.errstate(over="ignore"):  # a float32 overflow becomes inf: refused below
                        block = np.array(values, dtype=dtype)
                except OverflowError:  # an integer out of range: the row by row pass names it
                    block = None
                if block is not None and (input_type is not InputType.FLOATS or np.isfinite(block).all()):
                    return list(block)
    return [decode_input(value, input_type, f"{where}[{i}]") for i, value in enumerate(values)]


def decode_input(value: Any, input_type: InputType, where: str = "input") -> Any:
    """Validate one JSON-decoded input and convert it to what the model receives.

    Numeric types give a 1-D contiguous numpy array of the type's dtype; strings give ``str``; bytes give
    ``bytes`` decoded strictly from base64.
    """
    dtype = _DTYPES.get(input_type)
    if dtype is not None:
        if value.__class__ is not list:
            raise _fail(input_type, f"is {json_kind(value)}", where)
        if not value:
            raise _fail(input_type, "is an empty array", where)
        kinds = set(map(type, value))
        if not kinds <= _NUMBER_TYPES:
            bad = next(v for v in value if type(v) not in _NUMBER_TYPES)
            raise _fail(input_type, f"contains {json_kind(bad)} ({_short(bad)})", where)
        if input_type is InputType.INTS:
            if float in kinds:
                raise _fail(input_type, "contains a non-integer number", where)
            if max(value) > _INT32_MAX or min(value) < _INT32_MIN:
                raise _fail(input_type, "contains an integer outside the signed 32-bit range", where)
            return np.array(value, dtype=dtype)
        if input_type is InputType.FLOATS and (max(value) > _FLOAT32_MAX or min(value) < -_FLOAT32_MAX):
            raise _fail(input_type, "contains a number outside the float32 range", where)
        try:
            return np.array(value, dtype=dtype)
        except OverflowError:
            raise _fail(input_type, "contains an integer too large for a float", where) from None
    if value.__class__ is not str:
        raise _fail(input_type, f"is {json_kind(value)}", where)
    if not value:
        raise _fail(input_type, "is an empty string", where)
    if input_type is InputType.STRINGS:
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(input_type, "is not valid base64", where) from None


def input_to_json(item: Any) -> Any:
    """A decoded input as the JSON value a client sends for it (how stores keep feedback inputs): numbers as a
    list, strings as they are, bytes as base64 text."""
    if item.__class__ is str:
        return item
    if item.__class__ is bytes:
        return base64.b64encode(item).decode("ascii")
    return item.tolist()


def json_kind(value: object) -> str:
    """How a JSON value is called in error messages: "a number", "an array", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
