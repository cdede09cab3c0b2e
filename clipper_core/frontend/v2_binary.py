"""The V2 REST binary tensor data extension (KServe / Triton), both directions.

A request with the header ``Inference-Header-Content-Length: N`` carries N bytes of JSON, then the raw bytes of
every input whose ``parameters.binary_data_size`` says so, in the order of ``inputs``: little-endian, row-major;
BYTES elements each as a 4-byte little-endian length and the bytes. A numeric tensor's rows become numpy views of
the request body (no copy, no Python object per element). An answer is binary when the request asks for it
(``parameters.binary_data_output``, or the output's own ``parameters.binary_data``, which wins): the output
tensor's ``parameters.binary_data_size`` replaces its ``data``, the response's ``Inference-Header-Content-Length``
says where the JSON ends, and its ``Content-Type`` is ``application/octet-stream``; this is what
``tritonclient.http`` sends and reads by default.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from clipper_core.errors import InvalidInput
from clipper_core.inputs import InputType

__all__ = ["HEADER_LENGTH", "NUMPY", "SIZES", "binary_response", "binary_rows", "datatype_and_shape", "read_body",
           "split_request", "tensor_bytes", "wants_binary_output"]

HEADER_LENGTH = "Inference-Header-Content-Length"
OCTET_STREAM = "application/octet-stream"

# bytes per element of every V2 datatype (BYTES elements are variable: a 4-byte length, then the bytes)
SIZES = {"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1, "INT16": 2, "INT32": 4,
         "INT64": 8, "FP16": 2, "FP32": 4, "FP64": 8, "BF16": 2, "BYTES": 0}
NUMPY: dict[str, np.dtype[Any]] = {"INT32": np.dtype("<i4"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_LENGTH = struct.Struct("<I")


async def read_body(request: web.BaseRequest) -> bytes | bytearray:
    """The body in one buffer of its Content-Length, filled as it arrives: ``request.read()`` copies a large
    body twice more (into a growing bytearray, then into bytes). A body without a length, a compressed one or
    one over the size limit goes through ``request.read()`` (and its 413)."""
    size = request.content_length
    if size is None or size > request.client_max_size or "Content-Encoding" in request.headers:
        return await request.read()
    stream = request.content
    raise_limits = getattr(stream, "set_read_chunk_size", None)  # aiohttp >= 3.13
    if raise_limits is not None:
        raise_limits(size)  # as request.read() does: no pause and resume of the socket every 128 KiB
    body = bytearray(size)
    view, filled = memoryview(body), 0
    while filled < size:
        chunk, _ = await stream.readchunk()  # one received piece at a time (readany() joins them: a copy)
        if not chunk:
            break
        view[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
    view.release()
    if filled != size:
        raise InvalidInput(f"the body ended after {filled} of its Content-Length {size} bytes")
    return body


def _header_length(value: str, body_size: int) -> int:
    if not value.isdigit():
        raise InvalidInput(f"{HEADER_LENGTH} is {value!r}; expected the byte length of the request's JSON header")
    length = int(value)
    if length > body_size:
        raise InvalidInput(f"{HEADER_LENGTH} is {length} but the request body has only {body_size} bytes")
    if length == 0:
        raise InvalidInput(f"{HEADER_LENGTH} is 0; the body must start with the JSON inference request")
    return length


def _binary_size(tensor: Any, i: int) -> int | None:
    params = tensor.get("parameters") if isinstance(tensor, dict) else None
    if not isinstance(params, dict) or "binary_data_size" not in params:
        return None
    size = params["binary_data_size"]
    if size.__class__ is not int or size < 0:
        raise InvalidInput(f"'inputs[{i}].parameters.binary_data_size' is {size!r}; expected a byte count (an "
                           f"integer >= 0)")
    if "data" in tensor:
        raise InvalidInput(f"'inputs[{i}]' has both 'data' and parameters.binary_data_size; send one of them")
    return int(size)


def split_request(raw: bytes | bytearray, header_value: str) -> tuple[dict[str, Any], list[memoryview | None]]:
    """The request's JSON object, and for each of its inputs the slice of the body that holds its binary data
    (None for an input whose data is in the JSON). Sizes that do not add up raise InvalidInput naming them."""
    length = _header_length(header_value, len(raw))
    view = memoryview(raw)
    try:
        body = orjson.loads(view[:length])
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Error parsing the {length}-byte JSON header ({HEADER_LENGTH}): {exc}") from None
    if body.__class__ is not dict or body.get("inputs").__class__ is not list:
        raise InvalidInput("a V2 inference request is a JSON object whose 'inputs' holds exactly one tensor")
    sections: list[memoryview | None] = []
    offset = length
    for i, tensor in enumerate(body["inputs"]):
        size = _binary_size(tensor, i)
        if size is None:
            sections.append(None)
            continue
        if offset + size > len(raw):
            raise InvalidInput(f"'inputs[{i}].parameters.binary_data_size' is {size} but only {len(raw) - offset} "
                               f"bytes of the {len(raw)}-byte body follow the previous data")
        sections.append(view[offset:offset + size])
        offset += size
    if offset != len(raw):
        raise InvalidInput(f"the body has {len(raw) - length} bytes after its {length}-byte JSON header but the "
                           f"inputs' binary_data_size add up to {offset - length}")
    return body, sections


def datatype_and_shape(tensor: dict[str, Any], expected: str) -> tuple[str, list[int]]:
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if datatype not in SIZES:
        raise InvalidInput(f"'inputs[0].datatype' {datatype!r} is not a V2 datatype; known: {sorted(SIZES)}")
    if datatype != expected:
        raise InvalidInput(f"'inputs[0].datatype' is {datatype!r}; this app takes {expected}")
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d > 0 for d in shape):
        raise InvalidInput("'inputs[0].shape' must be a non-empty list of positive integers")
    return datatype, shape


def binary_rows(tensor: dict[str, Any], section: memoryview, input_type: InputType, expected: str,
                sized_by: str = "its binary_data_size is") -> list[Any]:
    """The per-query rows of a binary input tensor: its first dimension is the batch. Numeric rows are 1-D
    read-only views of the body (further dimensions flattened, row-major); BYTES elements are ``str`` for a
    strings app, ``bytes`` for a bytes app. ``sized_by`` names where the size came from in the error message
    (the gRPC adapter's raw_input_contents)."""
    datatype, shape = datatype_and_shape(tensor, expected)
    if datatype == "BYTES":
        if len(shape) != 1:
            raise InvalidInput(f"'inputs[0]' of BYTES must have shape [batch], got {shape}")
        return _bytes_elements(section, shape[0], input_type is InputType.STRINGS)
    if len(shape) < 2:
        raise InvalidInput(f"'inputs[0].shape' must be [batch, features, ...] for a {datatype} app, got {shape}")
    count = int(np.prod(shape))
    size = SIZES[datatype]
    if count * size != section.nbytes:
        raise InvalidInput(f"'inputs[0]' of shape {shape} and datatype {datatype} needs {count} x {size} = "
                           f"{count * size} bytes but {sized_by} {section.nbytes}")
    return list(np.frombuffer(section, dtype=NUMPY[datatype]).reshape(shape[0], -1))


def _bytes_elements(section: memoryview, n: int, text: bool) -> list[Any]:
    out: list[Any] = []
    offset, total = 0, section.nbytes
    while offset < total:
        if offset + 4 > total:
            raise InvalidInput(f"BYTES element {len(out)} of 'inputs[0]': its 4-byte length starts at byte "
                               f"{offset} of a {total}-byte tensor")
        (size,) = _LENGTH.unpack_from(section, offset)
        offset += 4
        if offset + size > total:
            raise InvalidInput(f"BYTES element {len(out)} of 'inputs[0]' has length {size} but only "
                               f"{total - offset} bytes of the {total}-byte tensor remain")
        if size == 0:
            raise InvalidInput(f"BYTES element {len(out)} of 'inputs[0]' is empty")
        piece = section[offset:offset + size]
        try:
            out.append(str(piece, "utf-8") if text else bytes(piece))
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"BYTES element {len(out)} of 'inputs[0]' is not valid UTF-8: {exc}") from None
        offset += size
    if len(out) != n:
        raise InvalidInput(f"'inputs[0]' has shape [{n}] but its {total} bytes hold {len(out)} BYTES elements")
    return out


def wants_binary_output(body: dict[str, Any], name: str) -> bool:
    """Whether the request asks for output ``name`` in binary: its own ``parameters.binary_data`` if it is
    among the requested ``outputs``, else the request's ``parameters.binary_data_output``."""
    outputs = body.get("outputs")
    if outputs.__class__ is list:
        for output in outputs:
            if output.__class__ is dict and output.get("name") == name:
                params = output.get("parameters")
                if params.__class__ is dict and "binary_data" in params:
                    return params["binary_data"] is True
    params = body.get("parameters")
    return params.__class__ is dict and params.get("binary_data_output") is True


def tensor_bytes(datatype: str, data: list[Any]) -> bytes:
    """An output tensor's ``data`` as raw bytes (shared with the gRPC adapter's raw_output_contents)."""
    if datatype == "BYTES":
        encoded = [d.encode() for d in data]
        return b"".join(_LENGTH.pack(len(e)) + e for e in encoded)
    return np.asarray(data, dtype=NUMPY[datatype]).tobytes()


def binary_response(answer: dict[str, Any]) -> web.Response:
    """Render a V2 answer whose output tensors hold ``data`` with their data in binary after the JSON."""
    chunks = []
    for tensor in answer["outputs"]:
        data = tensor_bytes(tensor["datatype"], tensor.pop("data"))
        tensor["parameters"]["binary_data_size"] = len(data)
        chunks.append(data)
    header = orjson.dumps(answer)
    return web.Response(body=b"".join([header, *chunks]), content_type=OCTET_STREAM,
                        headers={HEADER_LENGTH: str(len(header))})
