"""Input types: Clipper's spellings, strict decoding, and the errors that say what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from clipper_core.errors import InvalidInput
from clipper_core.inputs import InputType, decode_input, parse_input_type


@pytest.mark.parametrize(("spelling", "expected"), [
    ("integers", InputType.INTS), ("ints", InputType.INTS), ("i", InputType.INTS), ("int", InputType.INTS),
    ("floats", InputType.FLOATS), ("f", InputType.FLOATS), ("doubles", InputType.DOUBLES), ("d", InputType.DOUBLES),
    ("strings", InputType.STRINGS), ("str", InputType.STRINGS), ("s", InputType.STRINGS), ("bytes", InputType.BYTES),
    ("b", InputType.BYTES), ("Doubles", InputType.DOUBLES),
])
def test_clipper_spellings(spelling: str, expected: InputType) -> None:
    assert parse_input_type(spelling) is expected


@pytest.mark.parametrize("bad", ["tensor", "", 3, None, ["doubles"]])
def test_unknown_input_type_names_the_valid_ones(bad: object) -> None:
    with pytest.raises(InvalidInput, match="expected one of integers, floats, doubles, strings, bytes"):
        parse_input_type(bad)


def test_numeric_inputs_become_contiguous_arrays_of_the_type() -> None:
    for kind, dtype in ((InputType.DOUBLES, np.float64), (InputType.FLOATS, np.float32), (InputType.INTS, np.int32)):
        arr = decode_input([1, 2, 3], kind)
        assert arr.dtype == dtype and arr.flags.c_contiguous and arr.tolist() == [1, 2, 3]
    assert decode_input([1, 2.5], InputType.DOUBLES).tolist() == [1.0, 2.5]


@pytest.mark.parametrize(("value", "kind", "message"), [
    ("abc", InputType.DOUBLES, "input is a string; expected a non-empty JSON array of numbers"),
    ([], InputType.DOUBLES, "input is an empty array"),
    ([1.0, "2"], InputType.DOUBLES, "contains a string ('2')"),
    ([1.0, True], InputType.DOUBLES, "contains a boolean (True)"),
    ([1.0, None], InputType.DOUBLES, "contains null"),
    ([[1.0], [2.0]], InputType.DOUBLES, "contains an array"),
    ([1.5], InputType.INTS, "contains a non-integer number"),
    ([2**31], InputType.INTS, "outside the signed 32-bit range"),
    ([1e39], InputType.FLOATS, "outside the float32 range"),
    ([10**400], InputType.DOUBLES, "too large for a float"),
    ({"a": 1}, InputType.DOUBLES, "input is an object"),
    (5, InputType.STRINGS, "input is a number; expected a non-empty JSON string"),
    ("", InputType.STRINGS, "input is an empty string"),
    ("not base64!", InputType.BYTES, "is not valid base64"),
    ([1, 2], InputType.BYTES, "input is an array"),
])
def test_bad_inputs_say_what_was_expected(value: object, kind: InputType, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        decode_input(value, kind)
    assert message in err.value.message
    assert "expected" in err.value.message


def test_strings_and_bytes() -> None:
    assert decode_input("héllo", InputType.STRINGS) == "héllo"
    assert decode_input("AAEC", InputType.BYTES) == b"\x00\x01\x02"
