"""clipper's frontend <-> model-container wire protocol (see docs/rpc.md). Shared by both sides.

Every ZeroMQ message is ``[header, *payload]``: ``header`` is a msgpack map whose key ``"t"`` is a
:class:`MsgType`; payload frames are raw buffers (numpy arrays travel zero-copy). The frontend binds a ROUTER,
containers connect a DEALER, so the ROUTER sees ``[identity, header, *payload]``.
"""

from __future__ import annotations

import threading
from enum import IntEnum
from typing import Any

import msgpack
import numpy as np

__all__ = [
    "PROTOCOL_VERSION",
    "MsgType",
    "ProtocolError",
    "decode_inputs",
    "encode_inputs",
    "pack",
    "unpack",
]

PROTOCOL_VERSION = 1


class MsgType(IntEnum):
    """The ``"t"`` key of every header."""

    HELLO = 0  # container -> frontend: who I am
    WELCOME = 1  # frontend -> container: you are replica N
    HEARTBEAT = 2  # both ways
    PREDICT = 3  # frontend -> container: a batch
    RESULT = 4  # container -> frontend: outputs or errors for a batch
    GOODBYE = 5  # container -> frontend: I am stopping, send me nothing more
    REJECT = 6  # frontend -> container: your HELLO was refused (reason inside)
    PEERS = 7  # frontend -> container: every live query frontend's RPC address; connect to all of them
    DRAINING = 8  # container -> frontend: I am stopping; send no new batch, I answer every one I hold


class ProtocolError(ValueError):
    """A message that does not follow docs/rpc.md."""


_local = threading.local()


def pack(header: dict[str, Any]) -> bytes:
    """Serialise a header map. Thread-safe: a ``msgpack.Packer`` keeps an internal buffer, so each thread
    gets its own (the container packs RESULTs in its worker thread and HEARTBEATs in its I/O thread)."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(header)


def unpack(frame: bytes | memoryview) -> dict[str, Any]:
    """Parse a header frame; raise :class:`ProtocolError` unless it is a msgpack map with an integer ``"t"``."""
    try:
        header = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolError(f"header is not msgpack: {exc}") from None
    if not isinstance(header, dict) or "t" not in header:
        raise ProtocolError("header must be a msgpack map with key 't'")
    if not isinstance(header["t"], int) or isinstance(header["t"], bool):
        raise ProtocolError(f"header key 't' must be an integer, got {header['t']!r}")
    return header


# -- batch payloads ------------------------------------------------------------------------------------
# kind "array":  one frame, a C-contiguous array of shape [n, d] (numeric inputs of equal length)
# kind "ragged": one frame, the 1-D concatenation of n numeric inputs; "lens" gives each length (elements)
# kind "str":    one frame, the UTF-8 concatenation of n strings; "lens" gives each length in bytes
# kind "bytes":  one frame, the concatenation of n byte strings; "lens" gives each length in bytes

def encode_inputs(items: list[Any], dtype: np.dtype[Any] | None) -> tuple[dict[str, Any], list[Any]]:
    """Frontend side: turn a batch of decoded inputs into header fields and payload buffers.

    Numeric items are 1-D arrays of ``dtype``; equal lengths give one [n, d] array (one copy when the batch is
    assembled from separate requests; none when its rows are consecutive views of one buffer, as a binary V2
    request's tensor is), otherwise a flat concatenation plus lengths. ``str`` and ``bytes`` items are
    concatenated with their byte lengths.
    """
    if not items:
        raise ValueError("cannot encode an empty batch")
    if dtype is not None:
        first = len(items[0])
        if all(len(item) == first for item in items):
            block = _consecutive_rows(items, dtype)
            if block is not None:
                return {"kind": "array", "dtype": dtype.str, "shape": list(block.shape)}, [block]
            block = np.stack(items) if len(items) > 1 else np.reshape(items[0], (1, first))
            # the header announces `dtype`, so the buffer must hold exactly that (no copy when it already does)
            block = np.ascontiguousarray(block, dtype=dtype)
            return {"kind": "array", "dtype": dtype.str, "shape": list(block.shape)}, [block]
        flat = np.ascontiguousarray(np.concatenate(items), dtype=dtype)
        return {"kind": "ragged", "dtype": dtype.str, "lens": [len(i) for i in items]}, [flat]
    if isinstance(items[0], str):
        encoded = [item.encode() for item in items]
        return {"kind": "str", "lens": [len(b) for b in encoded]}, [b"".join(encoded)]
    return {"kind": "bytes", "lens": [len(b) for b in items]}, [b"".join(items)]


def _consecutive_rows(items: list[Any], dtype: np.dtype[Any]) -> np.ndarray[Any, Any] | None:
    """The [n, d] slice of one buffer when the rows are consecutive views of it, in order (a binary request's
    tensor, split into queries): no copy. None otherwise (rows from separate requests, another dtype)."""
    base = items[0].base
    if len(items) < 2 or base is None or base.__class__ is not np.ndarray or not base.flags.c_contiguous:
        return None
    step = items[0].nbytes
    start = items[0].__array_interface__["data"][0]
    for i, item in enumerate(items):
        if (item.base is not base or item.dtype != dtype or not item.flags.c_contiguous
                or item.__array_interface__["data"][0] != start + i * step):
            return None
    offset = start - base.__array_interface__["data"][0]
    return np.frombuffer(base, dtype=dtype, count=len(items) * len(items[0]), offset=offset).reshape(len(items), -1)


_NUMERIC_KINDS = frozenset("biuf")


def _dtype(header: dict[str, Any]) -> np.dtype[Any]:
    try:
        dtype = np.dtype(header["dtype"])
    except KeyError:
        raise ProtocolError(f"payload kind {header.get('kind')!r} needs 'dtype'") from None
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"bad dtype {header['dtype']!r}: {exc}") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
        raise ProtocolError(f"dtype {dtype.str!r} is not numeric")
    return dtype


def _lens(header: dict[str, Any], total: int, unit: int) -> list[int]:
    lens = header.get("lens")
    if not isinstance(lens, list) or not all(isinstance(n, int) and n >= 0 for n in lens):
        raise ProtocolError(f"payload kind {header.get('kind')!r} needs 'lens', a list of non-negative ints")
    if sum(lens) * unit != total:
        raise ProtocolError(f"'lens' add up to {sum(lens) * unit} bytes but the payload has {total}")
    return lens


def decode_inputs(header: dict[str, Any], frames: list[Any]) -> Any:
    """Container side: rebuild the batch the model receives.

    "array" gives an [n, d] numpy array that views the received frame (zero-copy, read-only); "ragged" a list
    of 1-D views; "str" a list of ``str``; "bytes" a list of ``bytes``. Anything inconsistent (unknown kind,
    sizes that do not match the payload, a non-numeric dtype, invalid UTF-8) raises :class:`ProtocolError`.
    """
    if len(frames) != 1:
        raise ProtocolError(f"a PREDICT message carries 1 payload frame, got {len(frames)}")
    buf = memoryview(frames[0].buffer if hasattr(frames[0], "buffer") else frames[0]).cast("B")
    kind = header.get("kind")
    if kind == "array":
        dtype = _dtype(header)
        shape = header.get("shape")
        if (not isinstance(shape, list) or len(shape) != 2
                or not all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ProtocolError(f"payload kind 'array' needs 'shape' [n, d], got {shape!r}")
        if shape[0] * shape[1] * dtype.itemsize != buf.nbytes:
            raise ProtocolError(f"shape {shape} of {dtype.str} needs {shape[0] * shape[1] * dtype.itemsize} "
                                f"bytes but the payload has {buf.nbytes}")
        array = np.frombuffer(buf, dtype=dtype).reshape(shape[0], shape[1])
        array.flags.writeable = False
        return array
    if kind == "ragged":
        dtype = _dtype(header)
        lens = _lens(header, buf.nbytes, dtype.itemsize)
        flat = np.frombuffer(buf, dtype=dtype)
        flat.flags.writeable = False
        out, start = [], 0
        for n in lens:
            out.append(flat[start:start + n])
            start += n
        return out
    if kind in ("str", "bytes"):
        lens = _lens(header, buf.nbytes, 1)
        pieces: list[Any] = []
        start = 0
        try:
            for n in lens:
                piece = buf[start:start + n]
                pieces.append(str(piece, "utf-8") if kind == "str" else bytes(piece))
                start += n
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"item {len(pieces)} is not valid UTF-8: {exc}") from None
        return pieces
    raise ProtocolError(f"unknown payload kind {kind!r}")
