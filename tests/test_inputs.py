"""Input types: Clipper's spellings, strict decoding, and the errors that say what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from clipper_container.protocol import encode_inputs

from clipper_core.errors import InvalidInput
from clipper_core.inputs import InputType, decode_input, decode_inputs, parse_input_type


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


_BATCHES = [
    [[1.0, 2.0], [3.0, 4.5]], [[1, 2], [3, 4]], [[1.0, 2.0], [1.0, "x"]], [[1, 2], [3, 2**40]], [[1.0], [2.0, 3.0]],
    [[1.0], [3.5e38]], [[1, 2], [True, 2]], [[1.0, 2.0], []], [[1.0], [[2.0]]], [[2**70], [1]], [[1.5]], ["ab", "cd"],
]


@pytest.mark.parametrize("batch", _BATCHES)
@pytest.mark.parametrize("input_type", [InputType.INTS, InputType.FLOATS, InputType.DOUBLES])
def test_a_batch_decodes_as_its_inputs_do_one_by_one(batch: list[Any], input_type: InputType) -> None:
    def one_by_one() -> list[Any]:
        return [decode_input(v, input_type, f"input_batch[{i}]") for i, v in enumerate(batch)]

    try:
        expected = one_by_one()
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as raised:
            decode_inputs(batch, input_type)
        assert str(raised.value) == str(exc)
        return
    got = decode_inputs(batch, input_type)
    assert [g.dtype for g in got] == [e.dtype for e in expected]
    assert [g.tolist() for g in got] == [e.tolist() for e in expected]


def test_a_batch_of_rows_of_one_length_is_one_array_whose_rows_are_the_inputs() -> None:
    rows = decode_inputs([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], InputType.DOUBLES)
    base = rows[0].base
    assert isinstance(base, np.ndarray) and base.shape == (3, 2)
    assert all(row.base is base for row in rows)
    fields, buffers = encode_inputs(rows, np.dtype("<f8"))
    assert fields["shape"] == [3, 2]
    assert np.shares_memory(buffers[0], base)  # into the RPC frame without a copy
