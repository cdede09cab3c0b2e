"""The records' JSON codec both durable stores use: bytes as base64 text, numpy values as lists, anything else
refused; every record round-trips in both layouts (one JSON object, or one column per field)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from clipper_core.inputs import InputType
from clipper_core.state import Application, Feedback, Model, Replica, codec

RECORDS: list[Any] = [
    Application("a", InputType.BYTES, "x", 5, "exp3", {"k": [1, 2]}, cache_enabled=False),
    Model("m", "1", InputType.STRINGS, ("l1", "l2"), "img", "/d", 4, 9, 2, 12.5),
    Model("m", "2", InputType.INTS, autoscaling={"max_replicas": 4, "target_latency_fraction": 0.5, "x": [None]}),
    Replica("m", "1", 3, InputType.FLOATS, "fe", {"addr": "tcp://x"}),
    Feedback("a", 7, [1.5, 2.0], {"y": 1}, 5, 99.0, 3),
]


def test_non_json_values_are_stored_as_the_stores_always_did() -> None:
    assert codec.dumps({"b": b"\x00\x01", "a": np.array([[1, 2]]), "n": np.float32(0.5)}) == \
        '{"b":"AAE=","a":[[1,2]],"n":0.5}'
    with pytest.raises(TypeError, match=r"^cannot store a object as JSON$"):
        codec.dumps(object())


@pytest.mark.parametrize("flat", [False, True], ids=["object", "columns"])
@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_round_trips(record: Any, flat: bool) -> None:
    fields = codec.encode(record, flat=flat)
    assert list(fields) == list(record.__dataclass_fields__)
    if flat:
        assert all(isinstance(fields[name], str) for name in codec.JSON_FIELDS[type(record)])
    stored = fields if flat else codec.loads(codec.dumps(fields))
    assert codec.decode(type(record), stored, flat=flat) == record


def test_a_flat_row_reads_sqlite_types_back() -> None:
    fields = codec.encode(RECORDS[0], flat=True) | {"cache_enabled": 0}  # SQLite hands booleans back as 0/1
    assert codec.decode(Application, fields, flat=True).cache_enabled is False
    model = codec.decode(Model, codec.encode(RECORDS[1], flat=True), flat=True)
    assert isinstance(model.labels, tuple) and model.input_type is InputType.STRINGS


def test_a_model_stored_before_autoscaling_reads_back_without_it() -> None:
    """A Redis record written by an older clipper has no "autoscaling" field: the model is not autoscaled."""
    old = codec.encode(RECORDS[1])
    del old["autoscaling"]
    assert codec.decode(Model, codec.loads(codec.dumps(old))) == RECORDS[1]
    assert RECORDS[1].autoscaling is None
    assert codec.encode(RECORDS[1], flat=True)["autoscaling"] == "null"
