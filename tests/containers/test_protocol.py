"""The shared codec (docs/rpc.md, "Frames"): headers, payload kinds, zero-copy decoding, malformed input."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq
from clipper_container.protocol import (
    PROTOCOL_VERSION,
    MsgType,
    ProtocolError,
    decode_inputs,
    encode_inputs,
    pack,
    unpack,
)


def test_message_types_and_version_match_the_spec() -> None:
    assert PROTOCOL_VERSION == 1
    assert [(m.name, int(m)) for m in MsgType] == [
        ("HELLO", 0), ("WELCOME", 1), ("HEARTBEAT", 2), ("PREDICT", 3), ("RESULT", 4), ("GOODBYE", 5), ("REJECT", 6),
        ("PEERS", 7), ("DRAINING", 8)]


def test_header_roundtrip() -> None:
    header = {"t": int(MsgType.RESULT), "id": 3, "n": 2, "out": ["a", {"k": [1, 2.5, None, True]}],
              "errs": [[1, "ValueError: x"]], "compute_ms": 0.25}
    assert unpack(pack(header)) == header
    int_keys: dict[Any, Any] = {"t": 2, 7: "int key"}
    assert unpack(memoryview(pack(int_keys))) == int_keys


def test_pack_is_thread_safe() -> None:
    headers: list[dict[str, Any]] = [{"t": 4, "id": i, "out": [str(i) * (i % 50)] * (i % 7)} for i in range(2000)]
    failures: list[int] = []

    def work() -> None:
        for h in headers:
            if unpack(pack(h)) != h:
                failures.append(h["id"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not failures


@pytest.mark.parametrize("frame, message", [
    (b"\xc1", "not msgpack"),
    (b"", "not msgpack"),
    (msgpack.packb([1, 2]), "map with key 't'"),
    (msgpack.packb({"id": 1}), "map with key 't'"),
    (msgpack.packb({"t": "3"}), "must be an integer"),
    (msgpack.packb({"t": True}), "must be an integer"),
    (b"\x81\xa1t\xc4\x01\xff", "must be an integer"),  # {"t": b"\xff"}
])
def test_bad_headers_raise_protocol_error(frame: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        unpack(frame)


# -- payload kinds ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["<i4", "<f4", "<f8"])
def test_array_roundtrip(dtype: str) -> None:
    items = [np.arange(4, dtype=dtype) + i for i in range(3)]
    header, frames = encode_inputs(items, np.dtype(dtype))
    assert header == {"kind": "array", "dtype": dtype, "shape": [3, 4]}
    batch = decode_inputs(header, [bytes(f) for f in frames])
    assert batch.dtype == np.dtype(dtype) and batch.shape == (3, 4)
    np.testing.assert_array_equal(batch, np.stack(items))
    assert not batch.flags.writeable


def test_single_item_array_and_dtype_conversion() -> None:
    header, frames = encode_inputs([np.array([1.0, 2.0])], np.dtype("<f4"))  # float64 item, float32 declared
    assert header == {"kind": "array", "dtype": "<f4", "shape": [1, 2]}
    assert frames[0].dtype == np.dtype("<f4")
    np.testing.assert_array_equal(decode_inputs(header, [bytes(frames[0])]), [[1.0, 2.0]])


def test_ragged_roundtrip() -> None:
    items = [np.array([1.0]), np.array([2.0, 3.0, 4.0]), np.array([], dtype="<f8"), np.array([5.0, 6.0])]
    header, frames = encode_inputs(items, np.dtype("<f8"))
    assert header == {"kind": "ragged", "dtype": "<f8", "lens": [1, 3, 0, 2]}
    batch = decode_inputs(header, [bytes(frames[0])])
    assert len(batch) == 4
    for got, want in zip(batch, items, strict=True):
        np.testing.assert_array_equal(got, want)


def test_str_roundtrip_unicode() -> None:
    items = ["plain", "", "héllo wörld", "日本語テキスト", "emoji 😀👍", "null\x00inside"]
    header, frames = encode_inputs(items, None)
    assert header["kind"] == "str" and header["lens"] == [len(s.encode()) for s in items]
    assert decode_inputs(header, frames) == items


def test_bytes_roundtrip() -> None:
    items = [b"\x00\xff", b"", b"abc", bytes(range(256))]
    header, frames = encode_inputs(items, None)
    assert header == {"kind": "bytes", "lens": [2, 0, 3, 256]}
    assert decode_inputs(header, frames) == items


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_inputs([], np.dtype("<f8"))


# -- zero copy --------------------------------------------------------------------------------------------------

@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[Any], zmq.Socket[Any]]]:
    ctx: zmq.Context[Any] = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://protocol-test")
    b.connect("inproc://protocol-test")
    yield a, b
    ctx.destroy(linger=0)


@pytest.mark.parametrize("ragged", [False, True])
def test_decoded_numeric_batch_views_the_zmq_frame(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]],
                                                   ragged: bool) -> None:
    a, b = pair
    items = [np.arange(1000, dtype="<f8") * i for i in range(1, 5)]
    if ragged:
        items[1] = items[1][:10]
    fields, frames = encode_inputs(items, np.dtype("<f8"))
    a.send_multipart([pack({"t": int(MsgType.PREDICT), "id": 1, **fields}), *frames], copy=False)
    received = b.recv_multipart(copy=False)
    header = unpack(received[0].buffer)
    batch = decode_inputs(header, received[1:])
    frame_memory = np.asarray(received[1].buffer)
    views = batch if ragged else [batch]
    for view in views:
        assert np.shares_memory(view, frame_memory)
        assert not view.flags.writeable
    np.testing.assert_array_equal(views[0], items[0] if ragged else np.stack(items))


def _rows_of_one_buffer(dtype: str = "<f4") -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Rows as a binary V2 request gives them: views of one read-only buffer (the request body)."""
    body = b"JSON header" + (np.arange(12, dtype=dtype) * 1.5).astype(dtype).tobytes()
    tensor = np.frombuffer(memoryview(body)[11:], dtype=dtype).reshape(3, 4)
    return tensor, list(tensor)


def test_consecutive_rows_of_one_buffer_are_sent_without_a_copy(pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]
                                                                ) -> None:
    a, b = pair
    tensor, rows = _rows_of_one_buffer()
    fields, frames = encode_inputs(rows, np.dtype("<f4"))
    assert fields == {"kind": "array", "dtype": "<f4", "shape": [3, 4]}  # the protocol is unchanged
    assert np.shares_memory(frames[0], tensor)
    a.send_multipart([pack({"t": int(MsgType.PREDICT), "id": 1, **fields}), *frames], copy=False)
    received = b.recv_multipart(copy=False)
    np.testing.assert_array_equal(decode_inputs(unpack(received[0].buffer), received[1:]), tensor)


@pytest.mark.parametrize("pick", ["reversed", "gap", "other dtype", "mixed buffers"])
def test_rows_that_are_not_one_consecutive_slice_are_stacked(pick: str) -> None:
    tensor, rows = _rows_of_one_buffer()
    dtype = np.dtype("<f4")
    if pick == "reversed":
        rows = rows[::-1]
    elif pick == "gap":
        rows = [rows[0], rows[2]]
    elif pick == "other dtype":
        dtype = np.dtype("<f8")
    else:
        rows = [rows[0], rows[1], np.array(rows[2])]
    fields, frames = encode_inputs(rows, dtype)
    assert fields == {"kind": "array", "dtype": dtype.str, "shape": [len(rows), 4]}
    assert not np.shares_memory(frames[0], tensor)
    np.testing.assert_array_equal(decode_inputs(fields, [bytes(frames[0])]), np.stack(rows).astype(dtype))


# -- malformed payloads -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("header, payload, message", [
    ({"kind": "array", "dtype": "<f8", "shape": [2, 3]}, b"\0" * 8, "needs 48 bytes"),
    ({"kind": "array", "dtype": "<f8"}, b"", "needs 'shape'"),
    ({"kind": "array", "dtype": "<f8", "shape": [-1, 1]}, b"", "needs 'shape'"),
    ({"kind": "array", "shape": [1, 1]}, b"\0" * 8, "needs 'dtype'"),
    ({"kind": "array", "dtype": "nonsense", "shape": [1, 1]}, b"\0" * 8, "bad dtype"),
    ({"kind": "array", "dtype": "|O", "shape": [1, 1]}, b"\0" * 8, "not numeric"),
    ({"kind": "array", "dtype": "<U4", "shape": [1, 1]}, b"\0" * 16, "not numeric"),
    ({"kind": "ragged", "dtype": "<f8"}, b"\0" * 8, "needs 'lens'"),
    ({"kind": "ragged", "dtype": "<f8", "lens": [2]}, b"\0" * 8, "add up to 16 bytes"),
    ({"kind": "str", "lens": [1, -1]}, b"", "non-negative"),
    ({"kind": "str", "lens": "3"}, b"abc", "needs 'lens'"),
    ({"kind": "str", "lens": [4]}, b"abc", "add up to 4 bytes"),
    ({"kind": "str", "lens": [2]}, b"\xc3\x28", "not valid UTF-8"),
    ({"kind": "bytes", "lens": [1]}, b"ab", "add up to 1 bytes"),
    ({"kind": "tensor"}, b"", "unknown payload kind"),
    ({}, b"", "unknown payload kind"),
])
def test_bad_payloads_raise_protocol_error(header: dict[str, Any], payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_inputs(header, [payload])


def test_wrong_frame_count() -> None:
    with pytest.raises(ProtocolError, match="1 payload frame, got 2"):
        decode_inputs({"kind": "bytes", "lens": [0]}, [b"", b""])
    with pytest.raises(ProtocolError, match="got 0"):
        decode_inputs({"kind": "bytes", "lens": [0]}, [])
