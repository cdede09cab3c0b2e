"""AppLimits, KeyLimits and the priority classes: every field validated (type, > 0, its bound), unknown fields
refused, each problem an InvalidInput (400) naming the field and what is expected; bursts default to one second's
worth of their rate; to_json is what from_json reads back."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from clipper_core.errors import InvalidInput
from clipper_core.tenancy.limits import (
    DEFAULT_PRIORITY,
    MAX_BODY_BYTES,
    MAX_COUNT,
    PRIORITIES,
    AppLimits,
    KeyLimits,
    check_priority,
    default_burst,
)

KEY_FIELDS = ["requests_per_second", "requests_burst", "inputs_per_second", "inputs_burst", "max_concurrent"]
APP_FIELDS = [*KEY_FIELDS, "max_input_length", "max_batch_size", "max_body_bytes"]


def test_the_fields_are_the_documented_ones() -> None:
    assert [f.name for f in dataclasses.fields(KeyLimits)] == KEY_FIELDS
    assert [f.name for f in dataclasses.fields(AppLimits)] == APP_FIELDS
    assert AppLimits().unlimited and KeyLimits().unlimited
    assert AppLimits().to_json() == {} == KeyLimits.from_json({}).to_json()


def test_every_limit_roundtrips() -> None:
    data: dict[str, Any] = {"requests_per_second": 12.5, "requests_burst": 40, "inputs_per_second": 1000.0,
                            "inputs_burst": 5000, "max_concurrent": 8, "max_input_length": 4096, "max_batch_size": 64,
                            "max_body_bytes": 1 << 20}
    limits = AppLimits.from_json(data)
    assert limits == AppLimits(**data) and not limits.unlimited
    assert limits.to_json() == data
    assert AppLimits.from_json(limits.to_json()) == limits
    assert AppLimits.stored(limits.to_json()) == limits and AppLimits.stored(None) == AppLimits()


@pytest.mark.parametrize(("rate", "burst"), [(0.25, 1), (1.0, 1), (1.5, 2), (10, 10), (99.01, 100)])
def test_a_burst_left_out_is_one_seconds_worth(rate: float, burst: int) -> None:
    assert default_burst(rate) == burst
    limits = KeyLimits.from_json({"requests_per_second": rate, "inputs_per_second": rate * 2})
    assert limits.requests_burst == burst and limits.inputs_burst == default_burst(rate * 2)
    assert limits.to_json() == {"requests_per_second": float(rate), "requests_burst": burst,
                                "inputs_per_second": float(rate * 2), "inputs_burst": default_burst(rate * 2)}
    assert isinstance(limits.requests_per_second, float)  # an integer rate is kept as a number of the one type


def test_null_is_no_limit() -> None:
    assert AppLimits.from_json({"requests_per_second": None, "max_batch_size": None, "max_concurrent": 3}) == \
        AppLimits(max_concurrent=3)


def test_key_limits_have_no_input_limits() -> None:
    with pytest.raises(InvalidInput, match="'limits' has the unknown setting\\(s\\) 'max_batch_size'; expected "
                                           "some of inputs_burst, inputs_per_second, max_concurrent, "):
        KeyLimits.from_json({"max_batch_size": 4})


BAD: list[tuple[str, Any, str]] = [
    ("not an object", [1], "'limits' is list; expected an object of limits or null"),
    ("a string", "fast", "'limits' is str; expected an object of limits or null"),
    ("unknown field", {"rps": 3}, "'limits' has the unknown setting(s) 'rps'; expected some of inputs_burst, "
                                  "inputs_per_second, max_batch_size, max_body_bytes, max_concurrent, "
                                  "max_input_length, requests_burst, requests_per_second"),
    ("zero rate", {"requests_per_second": 0}, "'limits.requests_per_second' is 0; expected a number above 0 and "
                                              "at most 1e+09"),
    ("negative rate", {"inputs_per_second": -1.5}, "'limits.inputs_per_second' is -1.5; expected a number above 0"),
    ("huge rate", {"requests_per_second": 1e10}, "'limits.requests_per_second' is 1e+10; expected a number above 0"),
    ("string rate", {"requests_per_second": "10"}, "'limits.requests_per_second' is '10'; expected a number"),
    ("boolean rate", {"requests_per_second": True}, "'limits.requests_per_second' is True; expected a number"),
    ("infinite rate", {"requests_per_second": float("inf")}, "'limits.requests_per_second' is inf; expected a number"),
    ("nan rate", {"requests_per_second": float("nan")}, "'limits.requests_per_second' is nan; expected a number"),
    ("burst without rate", {"requests_burst": 5}, "'limits.requests_burst' is set without "
                                                  "'limits.requests_per_second'; expected both"),
    ("inputs burst without rate", {"inputs_burst": 5, "requests_per_second": 1},
     "'limits.inputs_burst' is set without 'limits.inputs_per_second'"),
    ("zero burst", {"requests_per_second": 1, "requests_burst": 0}, "'limits.requests_burst' is 0; expected 1 to "
                                                                    f"{MAX_COUNT}"),
    ("float burst", {"inputs_per_second": 1, "inputs_burst": 2.5}, "'limits.inputs_burst' is float; expected an "
                                                                   "integer"),
    ("zero concurrency", {"max_concurrent": 0}, f"'limits.max_concurrent' is 0; expected 1 to {MAX_COUNT}"),
    ("negative input length", {"max_input_length": -3}, "'limits.max_input_length' is -3; expected 1 to"),
    ("string batch size", {"max_batch_size": "8"}, "'limits.max_batch_size' is str; expected an integer"),
    ("boolean batch size", {"max_batch_size": True}, "'limits.max_batch_size' is bool; expected an integer"),
    ("huge batch size", {"max_batch_size": MAX_COUNT + 1}, f"'limits.max_batch_size' is {MAX_COUNT + 1}; expected"),
    ("zero body", {"max_body_bytes": 0}, f"'limits.max_body_bytes' is 0; expected 1 to {MAX_BODY_BYTES}"),
    ("huge body", {"max_body_bytes": MAX_BODY_BYTES + 1}, f"'limits.max_body_bytes' is {MAX_BODY_BYTES + 1}"),
]


@pytest.mark.parametrize(("data", "cause"), [(d, c) for _, d, c in BAD], ids=[i for i, _, _ in BAD])
def test_bad_limits_are_refused_naming_the_field(data: Any, cause: str) -> None:
    with pytest.raises(InvalidInput) as info:
        AppLimits.from_json(data)
    assert cause in info.value.message
    assert info.value.status == 400


def test_the_label_names_the_request_field() -> None:
    with pytest.raises(InvalidInput, match=r"^'key_limits\.max_concurrent' is 0; expected 1 to "):
        KeyLimits.from_json({"max_concurrent": 0}, label="key_limits")


def test_the_bounds_themselves_are_accepted() -> None:
    limits = AppLimits.from_json({"requests_per_second": 1e9, "requests_burst": MAX_COUNT, "max_concurrent": 1,
                                  "max_body_bytes": MAX_BODY_BYTES, "inputs_per_second": 1e-9})
    assert limits.inputs_burst == 1 and limits.requests_burst == MAX_COUNT


def test_priorities() -> None:
    assert PRIORITIES == ("high", "normal", "low") and DEFAULT_PRIORITY == "normal"
    assert [check_priority(p) for p in PRIORITIES] == list(PRIORITIES)
    for bad in ("urgent", "HIGH", "", None, 1, ["high"]):
        with pytest.raises(InvalidInput, match=r"^'priority' is .*; expected one of high, normal, low$"):
            check_priority(bad)
